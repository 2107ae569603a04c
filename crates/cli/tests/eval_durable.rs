//! Durable evals and the response cache, as subprocesses against the fake provider of
//! `alc_llm`: an `alc eval run` killed with SIGKILL halfway is finished by
//! `alc eval resume` with the numbers of an uninterrupted run and no provider call
//! served twice; a rerun is answered from the cache; `--resample` asks again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alc_llm::fake::{FakeRequest, FakeResponse, FakeServer};
use serde_json::Value;

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "alc-eval-durable-{}-{}-{name}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The fake provider: answers each prompt deterministically (the dataset's answer for even
/// case numbers, a wrong one for odd), records the body of every call it serves, and, while
/// `limit` is set, leaves every call beyond the limit unanswered (not served).
struct Provider {
    _rt: tokio::runtime::Runtime,
    server: FakeServer,
    served: Arc<Mutex<Vec<String>>>,
    hanging: Arc<AtomicUsize>,
    limited: Arc<AtomicBool>,
}

fn provider(limit: Option<usize>) -> Provider {
    let cases: Vec<(String, String)> =
        std::fs::read_to_string(repo().join("datasets/arith50.jsonl"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                (
                    v["input"].as_str().unwrap().to_string(),
                    v["expected"].as_str().unwrap().to_string(),
                )
            })
            .collect();
    let served = Arc::new(Mutex::new(Vec::new()));
    let hanging = Arc::new(AtomicUsize::new(0));
    let limited = Arc::new(AtomicBool::new(limit.is_some()));
    let (s, h, l) = (served.clone(), hanging.clone(), limited.clone());
    let limit = limit.unwrap_or(usize::MAX);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start(move |req: &FakeRequest| {
        let body = req.json();
        let prompt = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        {
            let mut served = s.lock().unwrap();
            if l.load(Ordering::SeqCst) && served.len() >= limit {
                h.fetch_add(1, Ordering::SeqCst);
                return FakeResponse::openai_text("too late").delay(Duration::from_secs(600));
            }
            served.push(String::from_utf8_lossy(&req.body).into_owned());
        }
        let answer = cases
            .iter()
            .enumerate()
            .find(|(_, (input, _))| prompt.contains(input.as_str()))
            .map(|(i, (_, expected))| {
                if i % 2 == 0 {
                    expected.clone()
                } else {
                    "0".to_string()
                }
            })
            .unwrap_or_else(|| "unknown".into());
        FakeResponse::openai_text(&format!("1. Work it out.\nANSWER: {answer}"))
    }));
    Provider {
        _rt: rt,
        server,
        served,
        hanging,
        limited,
    }
}

impl Provider {
    fn served(&self) -> Vec<String> {
        self.served.lock().unwrap().clone()
    }
}

fn alc(home: &Path, p: &Provider, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alc"));
    for v in [
        "ALC_ANSWERER",
        "ALC_PROVIDER",
        "ALC_PROJECT_ROOT",
        "ALC_MAX_CONCURRENCY",
        "ALC_REQUEST_TIMEOUT",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ] {
        c.env_remove(v);
    }
    c.env("ALC_HOME", home)
        .env("ALC_PACKAGES_PATH", repo().join("packages"))
        .env("OPENAI_BASE_URL", format!("{}/v1", p.server.url()))
        .env("OPENAI_API_KEY", "sk-test")
        .env("ALC_MODEL", "fake-model")
        .current_dir(home)
        .args(args)
        .stdin(Stdio::null());
    c
}

fn report(o: &Output) -> Value {
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert!(
        o.status.success(),
        "exit {:?}; stderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
    serde_json::from_str(text.trim_end()).expect("stdout is the report JSON")
}

fn eval_args(dataset: &str) -> Vec<String> {
    [
        "eval",
        "run",
        "--strategy",
        "sc",
        "--dataset",
        dataset,
        "--limit",
        "6",
        "--concurrency",
        "2",
        "--answerer",
        "provider",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What must not depend on interruptions or the cache: aggregate numbers and, per case,
/// output, score, pass, LLM calls and tokens.
fn numbers(r: &Value) -> Value {
    let cases: Vec<Value> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            serde_json::json!([
                c["case_id"],
                c["repeat"],
                c["output"],
                c["score"],
                c["passed"],
                c["errored"],
                c["llm_calls"],
                c["tokens"]
            ])
        })
        .collect();
    serde_json::json!({
        "aggregated": r["aggregated"],
        "llm_calls": r["usage"]["llm_calls"],
        "tokens": r["usage"]["tokens"],
        "cases": cases,
    })
}

fn counts(bodies: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for b in bodies {
        *m.entry(b.clone()).or_insert(0) += 1;
    }
    m
}

fn cache_entries(home: &Path) -> i64 {
    let Ok(conn) = rusqlite::Connection::open(home.join("alc.db")) else {
        return 0;
    };
    conn.query_row("SELECT count(*) FROM response_cache", [], |r| r.get(0))
        .unwrap_or(0)
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_eval_resumes_to_the_uninterrupted_result_without_repeating_calls() {
    let dataset = repo().join("datasets/arith50.jsonl");
    let dataset = dataset.to_str().unwrap();

    // The uninterrupted run.
    let base = provider(None);
    let home_a = tmp_dir("base");
    let out = alc(
        &home_a,
        &base,
        &eval_args(dataset)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .output()
    .unwrap();
    let baseline = report(&out);
    let baseline_calls = base.served();
    assert_eq!(baseline_calls.len(), 30, "6 cases × 5 samples");
    assert_eq!(baseline["aggregated"]["passed"], 3, "{baseline}");

    // The same eval, killed once 13 calls were served and their answers kept.
    const SERVED_BEFORE_KILL: usize = 13;
    let fake = provider(Some(SERVED_BEFORE_KILL));
    let home_b = tmp_dir("killed");
    let mut child = alc(
        &home_b,
        &fake,
        &eval_args(dataset)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for("the call limit", Duration::from_secs(60), || {
        fake.served().len() == SERVED_BEFORE_KILL && fake.hanging.load(Ordering::SeqCst) > 0
    });
    wait_for(
        "the served answers to be stored",
        Duration::from_secs(30),
        || cache_entries(&home_b) == SERVED_BEFORE_KILL as i64,
    );
    child.kill().unwrap(); // SIGKILL
    let killed = child.wait_with_output().unwrap();
    assert!(!killed.status.success());
    assert!(killed.stdout.is_empty(), "no report from the killed run");

    // The unfinished eval is listed, then resumed with the provider answering again.
    fake.limited.store(false, Ordering::SeqCst);
    let out = alc(&home_b, &fake, &["eval", "resume", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let unfinished = listed["unfinished"].as_array().unwrap();
    assert_eq!(unfinished.len(), 1, "{listed}");
    assert_eq!(unfinished[0]["total"], 6);
    assert_eq!(unfinished[0]["running"], false);
    let eval_id = unfinished[0]["eval_id"].as_str().unwrap().to_string();

    let out = alc(&home_b, &fake, &["eval", "resume", &eval_id])
        .output()
        .unwrap();
    let resumed = report(&out);
    assert_eq!(resumed["eval_id"], eval_id.as_str());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("continue from the journal"), "{log}");
    // 13 is not a multiple of 5: at least one batch was cut short, and its served
    // answers came back from the cache instead of the provider.
    assert!(
        resumed["usage"]["cache_hits"].as_u64().unwrap() >= 1,
        "{resumed}"
    );
    assert_eq!(numbers(&resumed), numbers(&baseline));

    // Every call of the uninterrupted run was served exactly once over kill and resume.
    let served = fake.served();
    assert_eq!(
        served.len(),
        baseline_calls.len(),
        "calls over kill + resume"
    );
    assert_eq!(counts(&served), counts(&baseline_calls));

    // Nothing is left to resume, and the eval is in the history under its id.
    let out = alc(&home_b, &fake, &["eval", "resume", "--json"])
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["unfinished"], serde_json::json!([]));
    let out = alc(&home_b, &fake, &["eval", "resume", &eval_id])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a finished eval is not resumed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already finished"));
}

#[test]
fn rerun_is_answered_from_the_cache_and_resample_asks_again() {
    let dataset = repo().join("datasets/arith50.jsonl");
    let dataset = dataset.to_str().unwrap();
    let fake = provider(None);
    let home = tmp_dir("cache");
    let args = eval_args(dataset);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let first = report(&alc(&home, &fake, &args).output().unwrap());
    assert_eq!(fake.served().len(), 30);
    assert_eq!(first["usage"]["cache_hits"], 0);

    // Same eval again: no provider call, same numbers, every answer from the cache.
    let again = report(&alc(&home, &fake, &args).output().unwrap());
    assert_eq!(fake.served().len(), 30, "the rerun cost no provider call");
    assert_eq!(again["usage"]["cache_hits"], 30);
    assert!(again["summary"]
        .as_str()
        .unwrap()
        .contains("30 answers from the cache"));
    assert_eq!(numbers(&again), numbers(&first));
    assert_ne!(again["eval_id"], first["eval_id"]);

    // --resample asks the provider for every answer again.
    let mut resample = args.clone();
    resample.push("--resample");
    let fresh = report(&alc(&home, &fake, &resample).output().unwrap());
    assert_eq!(fake.served().len(), 60);
    assert_eq!(fresh["usage"]["cache_hits"], 0);

    // --no-cache neither reads nor writes.
    let mut off = args.clone();
    off.push("--no-cache");
    report(&alc(&home, &fake, &off).output().unwrap());
    assert_eq!(fake.served().len(), 90);
    assert_eq!(cache_entries(&home), 30);
}
