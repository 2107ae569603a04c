//! The diagnostic log (interfaces.md §4.1, §5.1, §5.2, §9.4, §10 item 70): `alc run` as a
//! subprocess against the fake provider of `alc_llm`, then the day's file under
//! `<home>/logs/`, the level flags, colour and the rotation limit.

mod common;

use common::{alc, fake, script, stderr, tmp_dir};

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use alc_llm::fake::{FakeRequest, FakeResponse, FakeServer};
use serde_json::Value;

const PROMPT: &str = "PROMPT-TEXT-5d1e-what-is-the-capital";
const RESPONSE: &str = "RESPONSE-TEXT-a77c-paris";
const KEY: &str = "sk-DIAG-SECRET-0f9b2c";

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8 stdout");
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
    serde_json::from_str(text.trim_end()).expect("stdout is one JSON document")
}

/// Today's UTC date as the log file names it.
fn utc_today() -> String {
    let out = Command::new("date").args(["-u", "+%F"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The names of the entries of `<home>/logs`, sorted.
fn log_files(home: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(home.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn todays_log(home: &Path) -> String {
    let path = home.join("logs").join(format!("alc-{}.log", utc_today()));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; logs: {:?}", path.display(), log_files(home)))
}

/// One `alc run` answered by the fake provider: the first request gets a 429, the retry
/// the response.
fn provider_run(home: &Path, server: &FakeServer, extra: &[&str]) -> Output {
    std::fs::write(
        home.join("config.toml"),
        "[provider]\nretry_base_ms = 1\nretry_max_ms = 5\n",
    )
    .unwrap();
    let f = script(home, "ask.lua", &format!("return alc.llm({PROMPT:?})"));
    let mut args = vec!["run", f.as_str(), "--answerer", "provider"];
    args.extend_from_slice(extra);
    alc(home)
        .args(&args)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("OPENAI_API_KEY", KEY)
        .env("ALC_MODEL", "fake-model")
        .output()
        .unwrap()
}

fn rate_limited_once() -> impl Fn(&FakeRequest) -> FakeResponse + Send + Sync + 'static {
    let n = Arc::new(AtomicUsize::new(0));
    move |_req: &FakeRequest| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            FakeResponse::json(429, serde_json::json!({"error": {"message": "slow down"}}))
        } else {
            FakeResponse::openai_text(RESPONSE)
        }
    }
}

#[test]
fn provider_requests_are_logged_without_prompt_response_or_key() {
    let (_rt, server) = fake(rate_limited_once());
    let home = tmp_dir("provider");
    let out = provider_run(&home, &server, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert_eq!(stdout_json(&out)["result"], RESPONSE);
    // The default stderr stays quiet: the info events went to the file only.
    assert!(err.trim().is_empty(), "{err}");
    assert_eq!(server.count(), 2);

    assert_eq!(log_files(&home), vec![format!("alc-{}.log", utc_today())]);
    let log = todays_log(&home);
    let line = |needles: &[&str]| {
        log.lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("no line with {needles:?} in:\n{log}"))
            .to_string()
    };
    let failed = line(&["provider request failed", "status=429", "attempt=1"]);
    assert!(failed.contains("error_class=rate_limited"), "{failed}");
    let ok = line(&["provider request", "status=200", "attempt=2"]);
    for field in ["provider=openai", "model=fake-model", "latency_ms="] {
        assert!(ok.contains(field), "{field} in {ok}");
    }
    let summary = line(&["alc started", "command=run"]);
    assert!(summary.contains("key set"), "{summary}");
    line(&["session ended", "status=completed"]);
    line(&["command finished", "exit_code=0"]);
    for secret in [PROMPT, RESPONSE, KEY] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("logs"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn verbose_and_log_level_show_events_on_stderr_without_secrets() {
    let (_rt, server) = fake(rate_limited_once());
    let home = tmp_dir("verbose");
    let out = provider_run(
        &home,
        &server,
        &["--log-level", "debug", "--color", "never"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert!(err.contains("provider request"), "{err}");
    assert!(err.contains("status=200"), "{err}");
    for secret in [PROMPT, RESPONSE, KEY] {
        assert!(!err.contains(secret), "{secret} on stderr:\n{err}");
    }
    assert!(
        !err.contains('\u{1b}'),
        "no ANSI escapes with --color never: {err:?}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn log_level_off_writes_nothing() {
    let home = tmp_dir("off");
    let f = script(&home, "one.lua", "return 1");
    let out = alc(&home)
        .args(["run", &f, "--answerer", "host", "--log-level", "off", "-v"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout_json(&out)["result"], 1);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert!(
        !home.join("logs").exists(),
        "no log directory with --log-level off"
    );

    let out = alc(&home)
        .args(["run", &f, "--answerer", "host"])
        .env("ALC_LOG_LEVEL", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        !home.join("logs").exists(),
        "no log directory with ALC_LOG_LEVEL=off"
    );

    // The control: without `off` the same run creates today's file.
    let out = alc(&home)
        .args(["run", &f, "--answerer", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(todays_log(&home).contains("alc started"));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn levels_follow_flag_then_environment() {
    let home = tmp_dir("levels");
    let f = script(&home, "one.lua", "return 1");
    // ALC_LOG_LEVEL=warn: the file exists but holds no info events.
    let out = alc(&home)
        .args(["run", &f, "--answerer", "host"])
        .env("ALC_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(!todays_log(&home).contains("alc started"));
    // The flag beats the variable, for the file and for stderr.
    let out = alc(&home)
        .args(["run", &f, "--answerer", "host", "--log-level", "info"])
        .env("ALC_LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(todays_log(&home).contains("alc started"));
    assert!(stderr(&out).contains("alc started"), "{}", stderr(&out));
    // A failing command is recorded in the file, its message printed once on stderr.
    let out = alc(&home)
        .args(["run", "missing.lua", "--answerer", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error:"), "{err}");
    assert!(todays_log(&home).contains("command failed command=run exit_code=4"));
    // An unknown level is a usage error.
    let out = alc(&home)
        .args(["run", &f, "--answerer", "host", "--log-level", "loud"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn color_never_and_no_color_keep_stderr_plain() {
    let home = tmp_dir("color");
    let f = script(&home, "one.lua", "return 1");
    let run = |extra: &[&str], no_color: bool| {
        let mut c = alc(&home);
        c.args(["run", &f, "--answerer", "host", "--log-level", "info"])
            .args(extra);
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("alc started"), "{err}");
        err
    };
    // The control: colour on request, so the check below can see escapes.
    assert!(run(&["--color", "always"], false).contains('\u{1b}'));
    assert!(!run(&["--color", "never"], false).contains('\u{1b}'));
    assert!(!run(&[], true).contains('\u{1b}'));
    assert!(!run(&["--color", "auto"], true).contains('\u{1b}'));
    // The file never holds escapes.
    assert!(!todays_log(&home).contains('\u{1b}'));
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn an_unusable_log_directory_costs_one_warning() {
    let home = tmp_dir("unusable");
    // A regular file where the log directory should be.
    std::fs::write(home.join("logs"), "not a directory").unwrap();
    let f = script(&home, "one.lua", "return 1");
    let out = alc(&home)
        .args(["run", &f, "--answerer", "host"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert_eq!(stdout_json(&out)["result"], 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("warning: diagnostic log disabled"), "{err}");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn old_daily_files_are_pruned_to_fourteen() {
    let home = tmp_dir("rotation");
    let logs = home.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for day in 1..=20 {
        std::fs::write(logs.join(format!("alc-2001-02-{day:02}.log")), "old\n").unwrap();
    }
    std::fs::write(logs.join("keep-me.txt"), "other").unwrap();
    let f = script(&home, "one.lua", "return 1");
    let out = alc(&home)
        .args(["run", &f, "--answerer", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let names = log_files(&home);
    let dated: Vec<&String> = names.iter().filter(|n| n.starts_with("alc-")).collect();
    assert_eq!(dated.len(), 14, "{names:?}");
    assert!(names.contains(&format!("alc-{}.log", utc_today())));
    assert!(names.contains(&"keep-me.txt".to_string()));
    // The oldest went first.
    assert!(
        !names.contains(&"alc-2001-02-07.log".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"alc-2001-02-08.log".to_string()),
        "{names:?}"
    );
    let _ = std::fs::remove_dir_all(&home);
}
