//! `alc info` and configuration precedence through the binary (interfaces.md §2.10, §5).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "alc-info-config-{}-{}-{name}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.canonicalize().unwrap()
}

fn alc(home: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alc"));
    for v in [
        "ALC_ANSWERER",
        "ALC_MODEL",
        "ALC_PROVIDER",
        "ALC_PROJECT_ROOT",
        "ALC_PACKAGES_PATH",
        "ALC_LOG_DIR",
        "ALC_LOG_LEVEL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ] {
        c.env_remove(v);
    }
    c.env("ALC_HOME", home);
    c.current_dir(cwd);
    c.stdin(Stdio::null());
    c
}

fn json_out(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    serde_json::from_str(text.trim_end()).unwrap()
}

#[test]
fn info_prints_fields_and_masks_keys() {
    let home = tmp_dir("home");
    std::fs::write(
        home.join("config.toml"),
        "[providers.local]\nbase_url = \"http://localhost:11434/v1\"\nmodel = \"llama3.2\"\n[bogus]\nx = 1\n",
    )
    .unwrap();
    let out = alc(&home, &home)
        .arg("info")
        .env("OPENAI_API_KEY", "sk-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains("sk-secret"), "{all}");
    let v = json_out(&out);
    assert_eq!(v["name"], "algocline");
    assert!(v["version"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(v["home"]["source"], "ALC_HOME");
    assert_eq!(v["home"]["path"], home.display().to_string());
    assert_eq!(v["database"], home.join("alc.db").display().to_string());
    assert_eq!(
        v["config_files"],
        serde_json::json!([home.join("config.toml").display().to_string()])
    );
    assert_eq!(v["default_answerer"], "host");
    assert!(v["bundled_packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "cot"));
    let providers = v["providers"].as_array().unwrap();
    let by_name = |n: &str| providers.iter().find(|p| p["name"] == n).unwrap().clone();
    assert_eq!(by_name("openai")["api_key"], "set");
    assert_eq!(by_name("openai")["base_url"], "https://api.openai.com/v1");
    assert_eq!(by_name("local")["api_key"], "missing");
    assert_eq!(by_name("local")["model"], "llama3.2");
    assert!(v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("bogus")));

    // --home beats ALC_HOME.
    let other = tmp_dir("other");
    let out = alc(&home, &home)
        .args(["--home", other.to_str().unwrap(), "info"])
        .output()
        .unwrap();
    let v = json_out(&out);
    assert_eq!(v["home"]["source"], "--home");
    assert_eq!(v["home"]["path"], other.display().to_string());
    let out = alc(&home, &home)
        .args(["info", "--home", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(json_out(&out)["home"]["source"], "--home");
}

/// Answerer precedence: flag > ALC_ANSWERER > project `[run] answerer` > config.toml.
#[test]
fn answerer_precedence_flag_env_project_config() {
    let home = tmp_dir("prec-home");
    let proj = tmp_dir("prec-proj");
    let script = proj.join("s.lua");
    std::fs::write(&script, "return alc.llm('q')").unwrap();
    let answers = proj.join("a.jsonl");
    std::fs::write(&answers, "{\"default\": \"scripted-answer\"}\n").unwrap();
    let s = script.to_str().unwrap();
    let scripted = format!("scripted:{}", answers.display());

    // config.toml alone: host → the pause, exit 3.
    std::fs::write(home.join("config.toml"), "[answerer]\ndefault = \"host\"\n").unwrap();
    let out = alc(&home, &proj).args(["run", s]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_out(&out)["status"], "needs_response");

    // project alc.toml beats config.toml.
    std::fs::write(
        proj.join("alc.toml"),
        format!("[run]\nanswerer = {:?}\n", scripted),
    )
    .unwrap();
    let out = alc(&home, &proj).args(["run", s]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_out(&out)["result"], "scripted-answer");

    // ALC_ANSWERER beats the project.
    let out = alc(&home, &proj)
        .args(["run", s])
        .env("ALC_ANSWERER", "host")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));

    // The flag beats the environment.
    let out = alc(&home, &proj)
        .args(["run", s, "--answerer", &scripted])
        .env("ALC_ANSWERER", "host")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));

    // A project root elsewhere: its files are not consulted.
    let elsewhere = tmp_dir("prec-elsewhere");
    let out = alc(&home, &proj)
        .args(["run", s, "--project-root", elsewhere.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));

    // A bad --project-root is a usage error.
    let out = alc(&home, &proj)
        .args(["run", s, "--project-root", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn no_answerer_anywhere_exits_2_naming_the_options() {
    let home = tmp_dir("none");
    let script = home.join("s.lua");
    std::fs::write(&script, "return alc.llm('q')").unwrap();
    let out = alc(&home, &home)
        .args(["run", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for opt in ["provider", "scripted:FILE", "terminal", "host"] {
        assert!(err.contains(opt), "{err}");
    }
}

#[test]
fn unknown_config_keys_warn_but_run() {
    let home = tmp_dir("warn");
    std::fs::write(
        home.join("config.toml"),
        "[session]\nnot_a_key = 1\n[answerer]\ndefault = \"host\"\n",
    )
    .unwrap();
    let script = home.join("s.lua");
    std::fs::write(&script, "return 1 + 1").unwrap();
    let out = alc(&home, &home)
        .args(["run", script.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json_out(&out)["result"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:") && err.contains("session.not_a_key"),
        "{err}"
    );
}

#[test]
fn session_config_reaches_the_engine() {
    let home = tmp_dir("engine");
    std::fs::write(
        home.join("config.toml"),
        "[answerer]\ndefault = \"host\"\n[budget.default]\nmax_llm_calls = 1\n",
    )
    .unwrap();
    let script = home.join("s.lua");
    std::fs::write(&script, "return os.getenv('ALC_SHAPE_CHECK') or 'none'").unwrap();
    let out = alc(&home, &home)
        .args(["run", script.to_str().unwrap()])
        .env("ALC_SHAPE_CHECK", "on")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json_out(&out)["result"],
        "on",
        "env_allow default passes ALC_SHAPE_CHECK"
    );

    let script2 = home.join("s2.lua");
    std::fs::write(&script2, "alc.llm('a')\nreturn alc.llm('b')").unwrap();
    let answers = home.join("a.jsonl");
    std::fs::write(&answers, "{\"default\": \"x\"}\n").unwrap();
    let out = alc(&home, &home)
        .args([
            "run",
            script2.to_str().unwrap(),
            "--answerer",
            &format!("scripted:{}", answers.display()),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(json_out(&out)["code"], "budget_exceeded");
}
