//! Durable sessions from the CLI (interfaces.md §4.2 `alc sessions …`, §9.2; checklist
//! items 29–32, 73–75): `alc run` journals to `<home>/alc.db`, sessions survive SIGKILL
//! and SIGINT, and `alc sessions resume` continues them without asking an answered
//! question again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A fresh home and file directory per test.
struct Env {
    home: PathBuf,
    files: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let base = std::env::temp_dir().join(format!("alc-durable-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let home = base.join("home");
        let files = base.join("files");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&files).unwrap();
        Env { home, files }
    }

    fn base(&self) -> PathBuf {
        self.home.parent().unwrap().to_path_buf()
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_alc"));
        c.env_remove("ALC_ANSWERER");
        c.env("ALC_HOME", &self.home);
        c.stdin(Stdio::null());
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("alc runs")
    }

    fn spawn(&self, args: &[&str]) -> Child {
        self.cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("alc starts")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.files.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn list(&self, extra: &[&str]) -> Value {
        let mut args = vec!["sessions", "list", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(out.status.code(), Some(0), "list: {}", stderr(&out));
        one_json(&out)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(self.base());
        }
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn one_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8 stdout");
    assert!(
        text.ends_with('\n') && text.trim_end().lines().count() == 1,
        "one JSON line on stdout: {text:?}; stderr: {}",
        stderr(out)
    );
    serde_json::from_str(text.trim_end()).expect("stdout is JSON")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn kill(child: &mut Child, signal: i32) {
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// 20 sequential `alc.llm` calls with a CPU loop before each (so a process is killable
/// mid-step); prompts carry a seeded random number, so a replay must repeat it exactly.
fn strategy(spin: u64) -> String {
    format!(
        r#"
local function spin(n)
  local x = 0
  for i = 1, n do x = (x + i) % 7919 end
  return x
end
local acc = {{}}
for i = 1, 20 do
  spin({spin})
  local r = alc.llm("step " .. i .. " nonce " .. math.random(1000000) .. " prev " .. (acc[#acc] or "none"))
  acc[#acc + 1] = r
end
return {{answers = acc, n = #acc, last = acc[#acc]}}
"#
    )
}

const SPIN: u64 = 400_000;

/// The answer the tests give to a prompt `step N …`.
fn answer_for(prompt: &str) -> String {
    let n: u64 = prompt
        .strip_prefix("step ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected prompt {prompt:?}"));
    format!("ans-{n}")
}

/// Rules answering steps `from..=20` once each (`times: 1`) and nothing else.
fn rules(from: u64) -> String {
    (from..=20)
        .map(|n| {
            format!("{{\"match\": \"step {n} nonce\", \"response\": \"ans-{n}\", \"times\": 1}}\n")
        })
        .collect()
}

/// The result of an uninterrupted run with the same seed and answers.
fn uninterrupted(env: &Env, script: &Path) -> Value {
    let answers = env.write("all.jsonl", &rules(1));
    let out = env.run(&[
        "run",
        script.to_str().unwrap(),
        "--seed",
        "7",
        "--answerer",
        &format!("scripted:{}", answers.display()),
    ]);
    assert_eq!(code(&out), 0, "uninterrupted run: {}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["result"]["n"], 20);
    v["result"].clone()
}

fn pause_key(p: &Value) -> (u64, String) {
    (
        p["round"].as_u64().expect("round"),
        p["query_id"].as_str().expect("query_id").to_string(),
    )
}

/// Checklist 29/30 from the CLI, host flow: answers go in one `alc sessions resume` at a
/// time; three of those processes are SIGKILLed at different points (just started,
/// mid-replay, later); re-fetching continues, nothing acknowledged is asked again and the
/// result equals an uninterrupted run.
#[test]
fn host_flow_survives_sigkill_of_resume_processes() {
    let env = Env::new("kill-host");
    let script = env.write("twenty.lua", &strategy(SPIN));
    let expected = uninterrupted(&env, &script);

    let out = env.run(&[
        "run",
        script.to_str().unwrap(),
        "--seed",
        "7",
        "--answerer",
        "host",
    ]);
    assert_eq!(code(&out), 3, "first pause: {}", stderr(&out));
    let mut pause = one_json(&out);
    assert_eq!(pause["status"], "needs_response");
    let id = pause["session_id"].as_str().unwrap().to_string();

    // step → delay before SIGKILL of the resume process answering it.
    let kills: [(u64, u64); 3] = [(3, 5), (7, 120), (12, 400)];
    let mut killed = HashSet::new();
    let mut served: Vec<(u64, String)> = Vec::new();
    let mut acked: HashSet<(u64, String)> = HashSet::new();
    let mut steps = 0;
    let final_doc = loop {
        steps += 1;
        assert!(steps < 80, "too many steps; served {served:?}");
        let key = pause_key(&pause);
        assert!(
            !acked.contains(&key),
            "{key:?} asked again after it was acknowledged"
        );
        served.push(key.clone());
        let prompt = pause["prompt"].as_str().expect("prompt").to_string();
        let answer = answer_for(&prompt);
        let step: u64 = answer[4..].parse().unwrap();
        if let Some(&(_, delay)) = kills.iter().find(|(k, _)| *k == step) {
            if killed.insert(step) {
                let mut child = env.spawn(&[
                    "sessions",
                    "resume",
                    &id,
                    "--response",
                    &answer,
                    "--answerer",
                    "host",
                ]);
                std::thread::sleep(Duration::from_millis(delay));
                kill(&mut child, libc::SIGKILL);
                let status = child.wait().unwrap();
                // Re-fetch: the same question if the answer was lost, else the next one.
                let out = env.run(&["sessions", "resume", &id, "--answerer", "host"]);
                let c = code(&out);
                let doc = one_json(&out);
                eprintln!(
                    "step {step}: killed after {delay} ms (exit {:?}); re-fetch exit {c}, same question: {}",
                    status.code(),
                    c == 3 && pause_key(&doc) == key
                );
                if status.code().is_some() {
                    // The child finished before the kill: its answer was acknowledged.
                    acked.insert(key.clone());
                }
                match c {
                    0 => break doc,
                    3 => {
                        if pause_key(&doc) != key {
                            acked.insert(key.clone());
                        }
                        pause = doc;
                        continue;
                    }
                    other => panic!("re-fetch exited {other}: {}", stderr(&out)),
                }
            }
        }
        let out = env.run(&[
            "sessions",
            "resume",
            &id,
            "--response",
            &answer,
            "--answerer",
            "host",
        ]);
        acked.insert(key);
        let doc = one_json(&out);
        match code(&out) {
            0 => break doc,
            3 => pause = doc,
            other => panic!("resume exited {other}: {}", stderr(&out)),
        }
    };
    assert_eq!(killed.len(), 3);
    assert_eq!(final_doc["status"], "completed", "{final_doc}");
    assert_eq!(final_doc["result"], expected);
    let distinct: HashSet<&(u64, String)> = served.iter().collect();
    assert_eq!(distinct.len(), 20, "served {served:?}");

    // A finished session re-fetched prints its final payload again.
    let out = env.run(&["sessions", "resume", &id]);
    assert_eq!(code(&out), 0);
    assert_eq!(one_json(&out)["result"], expected);
}

/// `alc run --answerer scripted:F` SIGKILLed mid-run is listed `resumable`; resuming it
/// with rules that only answer the questions not answered yet (each once) completes it
/// with the uninterrupted result.
#[test]
fn scripted_run_killed_then_resumed() {
    let env = Env::new("kill-scripted");
    let script = env.write("twenty.lua", &strategy(SPIN));
    let expected = uninterrupted(&env, &script);
    let answers = env.write("answers.jsonl", &rules(1));
    let mut child = env.spawn(&[
        "run",
        script.to_str().unwrap(),
        "--seed",
        "7",
        "--answerer",
        &format!("scripted:{}", answers.display()),
    ]);
    // Kill once a few answers are in the journal (the uninterrupted run is completed).
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(50));
        let l = env.list(&["--status", "all"]);
        let calls = l["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] != "completed")
            .map(|s| s["round"].as_u64().unwrap_or(0))
            .max()
            .unwrap_or(0);
        if calls >= 5 {
            break;
        }
    }
    kill(&mut child, libc::SIGKILL);
    child.wait().unwrap();

    let l = env.list(&[]);
    let entries = l["sessions"].as_array().unwrap();
    let run_entry = entries
        .iter()
        .find(|s| s["llm_calls"].as_u64().is_some() && s["status"] != "completed")
        .expect("the killed session");
    assert_eq!(run_entry["status"], "resumable", "{l}");
    assert_eq!(run_entry["owner"], "none");
    assert_eq!(run_entry["resumable"], true);
    let id = run_entry["session_id"].as_str().unwrap().to_string();
    assert_eq!(env.list(&["--status", "resumable"])["total"], 1);

    // How many answers the journal holds.
    let out = env.run(&["sessions", "show", &id, "--transcript", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown = one_json(&out);
    let answered = shown["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["answered_at"].is_null())
        .count() as u64;
    assert!((1..20).contains(&answered), "answered {answered}");

    // Only the questions still open: re-asking an answered one gets no match and fails.
    let rest = env.write("rest.jsonl", &rules(answered + 1));
    let out = env.run(&[
        "sessions",
        "resume",
        &id,
        "--answerer",
        &format!("scripted:{}", rest.display()),
    ]);
    assert_eq!(code(&out), 0, "resume: {}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["result"], expected);
    let l = env.list(&["--status", "completed"]);
    assert!(l["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["session_id"] == id.as_str()));
}

const TWO_CALLS: &str = r#"
local a = alc.llm("first question")
local b = alc.llm("second question after " .. a)
return {a = a, b = b}
"#;

/// Checklist 73/75 and the `alc sessions` commands: list shape, show, transcript, cancel,
/// prune and unknown ids.
#[test]
fn sessions_commands() {
    let env = Env::new("commands");
    let script = env.write("two.lua", TWO_CALLS);
    let s = script.to_str().unwrap();

    let out = env.run(&["run", s, "--answerer", "host", "--task", "hello task"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let p = one_json(&out);
    assert_eq!(p["status"], "needs_response");
    assert_eq!(p["prompt"], "first question");
    let id = p["session_id"].as_str().unwrap().to_string();

    // §2.9 shape.
    let l = env.list(&[]);
    assert_eq!(l["total"], 1);
    assert_eq!(l["has_more"], false);
    let e = &l["sessions"][0];
    let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "answerer",
            "created_at",
            "kind",
            "llm_calls",
            "owner",
            "resumable",
            "round",
            "session_id",
            "status",
            "strategy",
            "task_hint",
            "updated_at"
        ]
    );
    assert_eq!(e["session_id"], id.as_str());
    assert_eq!(e["kind"], "run");
    assert_eq!(e["strategy"], Value::Null);
    assert_eq!(e["status"], "resumable");
    assert_eq!(e["answerer"], "host");
    assert_eq!(e["task_hint"], "hello task");
    assert_eq!(e["owner"], "none");
    assert_eq!(e["resumable"], true);
    assert_eq!(e["round"], 1);
    assert!(e["created_at"].as_i64().unwrap() <= e["updated_at"].as_i64().unwrap());

    // Table form.
    let out = env.run(&["sessions", "list"]);
    assert_eq!(code(&out), 0);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("SESSION"), "{table}");
    assert!(
        table.contains(&id) && table.contains("resumable"),
        "{table}"
    );

    // Answers one by one.
    let out = env.run(&["sessions", "resume", &id, "--response", "A1"]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let p2 = one_json(&out);
    assert_eq!(p2["prompt"], "second question after A1");
    let out = env.run(&[
        "sessions",
        "resume",
        &id,
        "--response",
        "B2",
        "--query-id",
        p2["query_id"].as_str().unwrap(),
        "--round",
        &p2["round"].to_string(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let done = one_json(&out);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["b"], "B2");

    // show: snapshot and transcript.
    let out = env.run(&["sessions", "show", &id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "completed");
    assert!(v.get("exchanges").is_none());
    let out = env.run(&["sessions", "show", &id, "--transcript", "--json"]);
    let v = one_json(&out);
    let x = v["exchanges"].as_array().unwrap();
    assert_eq!(x.len(), 2, "{v}");
    assert_eq!(x[0]["prompt"], "first question");
    assert_eq!(x[0]["response"], "A1");
    assert_eq!(x[1]["response"], "B2");
    assert_eq!(x[1]["answered_by"], "host");
    let out = env.run(&["sessions", "show", &id, "--transcript"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("first question") && text.contains("round 2"),
        "{text}"
    );

    // cancel a paused session, then resuming it is refused.
    let out = env.run(&["run", s, "--answerer", "host"]);
    assert_eq!(code(&out), 3);
    let id2 = one_json(&out)["session_id"].as_str().unwrap().to_string();
    let out = env.run(&["sessions", "cancel", &id2, "--reason", "no longer needed"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let c = one_json(&out);
    assert_eq!(c["status"], "cancelled", "{c}");
    let out = env.run(&["sessions", "cancel", &id2]);
    assert_eq!(code(&out), 0);
    assert_eq!(one_json(&out)["already_terminal"], true);
    let out = env.run(&["sessions", "resume", &id2, "--response", "late"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("not paused"), "{}", stderr(&out));
    let out = env.run(&["sessions", "resume", &id2]);
    assert_eq!(code(&out), 9);
    assert_eq!(one_json(&out)["status"], "cancelled");
    let l = env.list(&["--status", "cancelled"]);
    assert_eq!(l["total"], 1);
    assert_eq!(l["sessions"][0]["reason"]["detail"], "no longer needed");

    // Unknown ids → 4.
    let ghost = "s-00000000000000000000000000000000";
    for args in [
        vec!["sessions", "show", ghost],
        vec!["sessions", "resume", ghost],
        vec!["sessions", "resume", ghost, "--response", "x"],
        vec!["sessions", "cancel", ghost],
        vec!["sessions", "show", "not-an-id"],
    ] {
        let out = env.run(&args);
        assert_eq!(code(&out), 4, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("not found"));
    }

    // prune: dry run lists, then deletes.
    let out = env.run(&["sessions", "prune", "--older-than", "0", "--dry-run"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("would delete 2 "), "{text}");
    assert!(text.contains(&id) && text.contains(&id2), "{text}");
    assert_eq!(env.list(&[])["total"], 2);
    let out = env.run(&["sessions", "prune", "--dry-run"]);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("would delete 0 "));
    let out = env.run(&["sessions", "prune", "--older-than", "0"]);
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("deleted 2 "));
    assert_eq!(env.list(&[])["total"], 0);
    let out = env.run(&["sessions", "show", &id]);
    assert_eq!(code(&out), 4);
}

/// Checklist 32 from the CLI: a session hosted by a live `alc run` is busy (exit 5) to
/// every other process; SIGINT then leaves it resumable (exit 130, checklist 74).
#[test]
fn busy_while_hosted_and_sigint_leaves_resumable() {
    let env = Env::new("busy");
    let script = env.write(
        "slow.lua",
        r#"
local x = 0
for i = 1, 2000000000 do x = (x + i) % 7919 end
return alc.llm("after the loop " .. x)
"#,
    );
    let mut child = env.spawn(&["run", script.to_str().unwrap(), "--answerer", "host"]);
    let started = Instant::now();
    let id = loop {
        assert!(started.elapsed() < Duration::from_secs(30), "never listed");
        std::thread::sleep(Duration::from_millis(50));
        let l = env.list(&[]);
        if let Some(e) = l["sessions"].as_array().unwrap().first() {
            assert_eq!(e["status"], "running", "{l}");
            assert_eq!(e["owner"], "other_process");
            assert_eq!(e["resumable"], false);
            break e["session_id"].as_str().unwrap().to_string();
        }
    };
    let out = env.run(&["sessions", "resume", &id, "--answerer", "host"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    assert!(stderr(&out).contains("busy"));
    assert!(out.stdout.is_empty());
    let out = env.run(&["sessions", "resume", &id, "--response", "x"]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let out = env.run(&["sessions", "cancel", &id]);
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let out = env.run(&["sessions", "show", &id, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(one_json(&out)["status"], "running");
    assert_eq!(env.list(&["--status", "active"])["total"], 1);

    kill(&mut child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let l = env.list(&[]);
    assert_eq!(l["sessions"][0]["status"], "resumable", "{l}");
    assert_eq!(l["sessions"][0]["owner"], "none");
}
