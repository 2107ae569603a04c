//! Checklist items of interfaces.md §10 that the other CLI tests cover only in part,
//! run against the `alc` binary (providers through `alc_llm::fake::FakeServer`).
//! Each test is named after its item (`item_NN_...`).

mod common;

use common::{alc, fake, one_json, script, stderr, tmp_dir};

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_llm::fake::{FakeRequest, FakeResponse, FakeServer};
use serde_json::{json, Value};

fn with_provider(mut c: Command, server: &FakeServer) -> Command {
    c.env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("OPENAI_API_KEY", "sk-test")
        .env("ALC_MODEL", "fake-model");
    c
}

fn overloaded() -> FakeResponse {
    FakeResponse::json(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
    .header("retry-after-ms", "10")
}

fn failing_first(n: usize, fail: fn() -> FakeResponse) -> impl Fn(&FakeRequest) -> FakeResponse {
    let seen = Arc::new(AtomicUsize::new(0));
    move |_req: &FakeRequest| {
        if seen.fetch_add(1, Ordering::SeqCst) < n {
            fail()
        } else {
            FakeResponse::openai_text("fine")
        }
    }
}

// ------------------------------------------------------------------ item 31

#[test]
fn item_31_changed_package_prompt_is_replay_divergence() {
    let home = tmp_dir("divergence");
    let pkgs = home.join("pkgs");
    std::fs::create_dir_all(pkgs.join("twostep")).unwrap();
    let source = |first: &str| {
        format!(
            "local M = {{}}\nM.meta = {{name = \"twostep\", version = \"0.1.0\"}}\n\
             function M.run(ctx)\n  local a = alc.llm(\"{first}\")\n  local b = alc.llm(\"second\")\n  \
             ctx.result = a .. b\n  return ctx\nend\nreturn M\n"
        )
    };
    let init = pkgs.join("twostep").join("init.lua");
    std::fs::write(&init, source("first")).unwrap();
    let run = |args: &[&str]| {
        alc(&home)
            .env("ALC_PACKAGES_PATH", &pkgs)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["run", "twostep", "--answerer", "host"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let p = one_json(&out);
    assert_eq!(p["prompt"], "first");
    let id = p["session_id"].as_str().unwrap().to_string();
    let out = run(&["sessions", "resume", &id, "--response", "A"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(one_json(&out)["prompt"], "second");

    // The package changes while the session waits: its first prompt differs on replay.
    std::fs::write(&init, source("a different first prompt")).unwrap();
    let out = run(&["sessions", "resume", &id, "--response", "B"]);
    let v = one_json(&out);
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["code"], "replay_divergence", "{v}");
    assert_ne!(out.status.code(), Some(0));
}

// ------------------------------------------------------------------ item 32

/// A line-delimited JSON-RPC client for `alc serve`.
struct Serve {
    child: std::process::Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    next: u64,
}

impl Serve {
    fn start(home: &Path) -> Serve {
        let mut child = alc(home)
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut s = Serve {
            child,
            lines,
            next: 1,
        };
        s.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "acceptance", "version": "1"}}),
        );
        s.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        s
    }

    fn send(&mut self, v: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{v}").unwrap();
        stdin.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let line = self.lines.next().expect("a response").unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == json!(id) && v.get("method").is_none() {
                return v;
            }
        }
    }

    fn tool(&mut self, name: &str, args: Value) -> Value {
        let r = self.request("tools/call", json!({"name": name, "arguments": args}));
        let text = r["result"]["content"][0]["text"].as_str().unwrap();
        serde_json::from_str(text).unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn item_32_resume_of_a_session_hosted_by_a_server_exits_5() {
    let home = tmp_dir("hosted");
    let mut srv = Serve::start(&home);
    let p = srv.tool("alc_run", json!({"code": "return alc.llm('q')"}));
    assert_eq!(p["status"], "needs_response");
    let id = p["session_id"].as_str().unwrap().to_string();
    let out = alc(&home)
        .args(["sessions", "resume", &id, "--response", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // The server still owns it and can finish it.
    let done = srv.tool("alc_continue", json!({"session_id": id, "response": "y"}));
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"], "y");
}

// ------------------------------------------------------------------ items 40, 41, 43, 44

#[test]
fn item_40_retry_after_2_then_success_with_two_attempts_in_the_transcript() {
    let seen = Arc::new(AtomicUsize::new(0));
    let (_rt, server) = fake(move |_req| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            FakeResponse::json(
                429,
                json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
            )
            .header("retry-after", "2")
        } else {
            FakeResponse::openai_text("fine")
        }
    });
    let home = tmp_dir("retry-after");
    let f = script(&home, "one.lua", "return alc.llm('hi')");
    let t = Instant::now();
    let out = with_provider(alc(&home), &server)
        .args(["run", &f, "--answerer", "provider"])
        .output()
        .unwrap();
    let elapsed = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["result"], "fine");
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(server.count(), 2);
    let id = v["session_id"].as_str().unwrap();
    let out = alc(&home)
        .args(["sessions", "show", id, "--transcript", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let transcript: Value = serde_json::from_str(text.trim()).unwrap();
    let attempts = find_key(&transcript, "attempts");
    assert_eq!(attempts, vec![json!(2)], "{transcript}");
}

/// Every value of `key` anywhere in `v`.
fn find_key(v: &Value, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key && !x.is_null() {
                    out.push(x.clone());
                }
                out.extend(find_key(x, key));
            }
        }
        Value::Array(a) => a.iter().for_each(|x| out.extend(find_key(x, key))),
        _ => {}
    }
    out
}

#[test]
fn item_41_overloaded_three_times_succeeds_four_times_exits_6() {
    let home = tmp_dir("overloaded");
    let f = script(&home, "one.lua", "return alc.llm('hi')");

    let (_rt, server) = fake(failing_first(3, overloaded));
    let out = with_provider(alc(&home), &server)
        .args(["run", &f, "--answerer", "provider"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(one_json(&out)["result"], "fine");
    assert_eq!(server.count(), 4);

    let (_rt2, server) = fake(failing_first(4, overloaded));
    let out = with_provider(alc(&home), &server)
        .args(["run", &f, "--answerer", "provider"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["code"], "provider_error");
    assert_eq!(v["provider_error_class"], "overloaded");
    assert_eq!(server.count(), 4);
}

#[test]
fn item_43_batch_of_20_never_exceeds_max_concurrency_4() {
    let (_rt, server) = fake(|req| {
        let p = req.json()["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        FakeResponse::openai_text(&format!("echo {p}")).delay(Duration::from_millis(100))
    });
    let home = tmp_dir("concurrency");
    let f = script(
        &home,
        "batch.lua",
        "local qs = {} for i = 1, 20 do qs[i] = {prompt = 'p' .. i} end\n\
         local r = alc.llm_batch(qs)\nreturn {first = r[1], last = r[20], n = #r}",
    );
    let out = with_provider(alc(&home), &server)
        .env("ALC_MAX_CONCURRENCY", "4")
        .args(["run", &f, "--answerer", "provider"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(
        v["result"],
        json!({"first": "echo p1", "last": "echo p20", "n": 20})
    );
    assert_eq!(server.count(), 20);
    assert!(server.peak_open() <= 4, "peak {}", server.peak_open());
    assert!(server.peak_open() >= 2, "peak {}", server.peak_open());
}

#[test]
fn item_44_pcall_around_a_failing_provider_call_lets_the_script_continue() {
    let (_rt, server) = fake(|_req| {
        FakeResponse::json(
            401,
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        )
    });
    let home = tmp_dir("pcall");
    let f = script(
        &home,
        "pcall.lua",
        "local ok, e = pcall(alc.llm, 'hi')\nreturn {ok = ok, after = 'continued', err = tostring(e)}",
    );
    let out = with_provider(alc(&home), &server)
        .args(["run", &f, "--answerer", "provider"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["result"]["ok"], false);
    assert_eq!(v["result"]["after"], "continued");
    assert!(!v["result"]["err"].as_str().unwrap().is_empty());
}

// ------------------------------------------------------------------ items 49, 78 (terminal)

fn has_script() -> bool {
    Command::new("script").arg("--version").output().is_ok()
}

/// Runs `alc run FILE --answerer terminal` under a pseudo-terminal, typing `input`.
fn under_pty(home: &Path, file: &str, input: &[u8]) -> (Option<i32>, String) {
    let cmd = format!(
        "{} run {} --answerer terminal",
        env!("CARGO_BIN_EXE_alc"),
        file
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env("ALC_HOME", home)
        .env_remove("ALC_ANSWERER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    child.stdin.as_mut().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn item_49_terminal_cancel_exits_9() {
    if !has_script() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let home = tmp_dir("term-cancel");
    let f = script(&home, "term.lua", "return alc.llm('Name a colour')");
    let (code, text) = under_pty(&home, &f, b":cancel\n");
    assert!(text.contains("Name a colour"), "{text}");
    assert_eq!(code, Some(9), "{text}");
}

#[test]
fn item_78_scripted_human_line_answers_alc_ask() {
    let home = tmp_dir("ask-scripted");
    let f = script(
        &home,
        "ask.lua",
        "local v, s = alc.ask('Ship it?', {choices = {'yes', 'no'}, default = 'no'})\nreturn {v = v, s = s}",
    );
    let answers = script(
        &home,
        "human.jsonl",
        "{\"kind\":\"human\",\"match\":\"Ship\",\"response\":\"yes\"}\n{\"default\": \"x\"}\n",
    );
    let out = alc(&home)
        .args(["run", &f, "--answerer", &format!("scripted:{answers}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["result"], json!({"v": "yes", "s": "accepted"}));
}

#[test]
fn item_78_terminal_lists_numbered_choices_and_accepts_1() {
    if !has_script() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let home = tmp_dir("ask-term");
    let f = script(
        &home,
        "ask.lua",
        "local v, s = alc.ask('Ship it?', {choices = {'yes', 'no'}, default = 'no'})\nreturn {v = v, s = s}",
    );
    let (code, text) = under_pty(&home, &f, b"1\n");
    assert!(text.contains("Ship it?"), "{text}");
    assert!(
        text.contains("1") && text.contains("yes") && text.contains("2") && text.contains("no"),
        "{text}"
    );
    assert!(text.contains("\"v\":\"yes\""), "{text}");
    assert!(text.contains("\"s\":\"accepted\""), "{text}");
    assert_eq!(code, Some(0), "{text}");
}

// ------------------------------------------------------------------ items 72, 74

#[test]
fn item_72_scripted_run_prints_one_json_and_output_only_on_stderr() {
    let home = tmp_dir("stdout");
    let f = script(
        &home,
        "talk.lua",
        "print('from print')\nio.write('from io.write\\n')\nio.stdout:write('from stdout\\n')\n\
         alc.progress(1, 2, 'halfway')\nlocal a = alc.llm('q')\nreturn a",
    );
    let answers = script(&home, "a.jsonl", "{\"default\": \"answer\"}\n");
    let out = alc(&home)
        .args([
            "run",
            &f,
            "-v",
            "--answerer",
            &format!("scripted:{answers}"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["result"], "answer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = stderr(&out);
    for text in ["from print", "from io.write", "from stdout", "halfway"] {
        assert!(!stdout.contains(text), "{text:?} on stdout: {stdout}");
        assert!(err.contains(text), "{text:?} missing from stderr: {err}");
    }
}

#[test]
fn item_74_exit_codes() {
    let home = tmp_dir("exits");
    let boom = script(&home, "boom.lua", "error('boom')");
    let out = alc(&home)
        .args(["run", &boom, "--answerer", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(one_json(&out)["code"], "lua_error");

    let ok = script(&home, "ok.lua", "return 1");
    let out = alc(&home)
        .args(["run", &ok, "--answerer", "host", "--ctx", "{not json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());

    let out = alc(&home)
        .args(["run", "no_such_package_here", "--answerer", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
}

#[test]
fn item_74_sigint_during_a_provider_call_exits_130_and_leaves_the_session_resumable() {
    let (_rt, server) = fake(|_| FakeResponse::openai_text("late").delay(Duration::from_secs(30)));
    let home = tmp_dir("sigint");
    let f = script(&home, "one.lua", "return alc.llm('slow')");
    let child = with_provider(alc(&home), &server)
        .args(["run", &f, "--answerer", "provider"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.count() == 0 {
        assert!(start.elapsed() < Duration::from_secs(20), "no request");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let out = alc(&home)
        .args(["sessions", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let l = one_json(&out);
    assert_eq!(l["total"], 1, "{l}");
    assert_eq!(l["sessions"][0]["status"], "resumable", "{l}");
    assert_eq!(l["sessions"][0]["resumable"], true, "{l}");
}
