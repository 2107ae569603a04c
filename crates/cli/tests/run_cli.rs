//! `alc run` as a subprocess: stdout discipline, exit codes, answerers.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn alc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alc"));
    c.env_remove("ALC_ANSWERER");
    c.env("ALC_HOME", tmp_dir("home"));
    c
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alc-cli-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(name: &str, text: &str) -> PathBuf {
    let p = tmp_dir("files").join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> Output {
    alc()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("alc runs")
}

/// Stdout must be exactly one JSON document followed by a newline.
fn one_json(out: &Output) -> serde_json::Value {
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8 stdout");
    assert!(text.ends_with('\n'), "stdout ends with a newline: {text:?}");
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "one line on stdout: {text:?}"
    );
    serde_json::from_str(text.trim_end()).expect("stdout is one JSON document")
}

#[test]
fn example_runs_with_shipped_answers() {
    let root = repo();
    let out = run(&[
        "run",
        root.join("examples/debate.lua").to_str().unwrap(),
        "--answerer",
        &format!(
            "scripted:{}",
            root.join("examples/debate.answers.jsonl").display()
        ),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = one_json(&out);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["result"]["verdict"], "FOR");
    assert_eq!(v["stats"]["auto"]["llm_calls"], 3);
    assert_eq!(v["stats"]["auto"]["pauses"], 2);
    assert!(v["session_id"].as_str().unwrap().starts_with("s-"));
}

#[test]
fn script_output_never_reaches_stdout() {
    let script = write(
        "printer.lua",
        "print('from print')\nio.write('from io.write\\n')\nio.stdout:write('from stdout\\n')\nio.stderr:write('from stderr\\n')\nreturn 'done'",
    );
    let out = run(&["run", script.to_str().unwrap(), "--answerer", "host"]);
    assert_eq!(out.status.code(), Some(0));
    let v = one_json(&out);
    assert_eq!(v["result"], "done");
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [
        "lua: from print",
        "lua: from io.write",
        "lua: from stdout",
        "lua: from stderr",
    ] {
        assert!(err.contains(line), "stderr has {line:?}: {err}");
    }
}

#[test]
fn lua_error_exits_1_with_the_script_line() {
    let script = write("boom.lua", "local x = 1\nerror('boom')\n");
    let out = run(&["run", script.to_str().unwrap(), "--answerer", "host"]);
    assert_eq!(out.status.code(), Some(1));
    let v = one_json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["code"], "lua_error");
    assert_eq!(v["error"], "session:2: boom");
    let tb = v["traceback"].as_str().unwrap();
    assert!(tb.contains("session:2"), "traceback names the line: {tb}");
    assert!(
        !tb.contains("/work") && !tb.contains(".rs"),
        "no host paths: {tb}"
    );
}

#[test]
fn os_exit_cannot_end_the_process() {
    let script = write("exit.lua", "os.exit(0)\n");
    let out = run(&["run", script.to_str().unwrap(), "--answerer", "host"]);
    assert_eq!(out.status.code(), Some(1));
    let v = one_json(&out);
    assert_eq!(v["code"], "lua_error");
    assert!(v["error"].as_str().unwrap().contains("nil"), "{v}");
}

#[test]
fn bad_ctx_is_a_usage_error() {
    let script = write("ok.lua", "return 1");
    let out = run(&[
        "run",
        script.to_str().unwrap(),
        "--ctx",
        "{not json",
        "--answerer",
        "host",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: --ctx is not valid JSON"), "{err}");
}

#[test]
fn ctx_and_task_reach_the_script() {
    let script = write("ctx.lua", "return {task = ctx.task, n = ctx.n}");
    let out = run(&[
        "run",
        script.to_str().unwrap(),
        "--ctx",
        r#"{"n": 3}"#,
        "--task",
        "T",
        "--answerer",
        "host",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = one_json(&out);
    assert_eq!(v["result"], serde_json::json!({"task": "T", "n": 3}));
}

#[test]
fn missing_file_exits_4() {
    let out = run(&["run", "/nonexistent/strategy.lua", "--answerer", "host"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_answerer_exits_2() {
    let script = write("ok2.lua", "return 1");
    let out = run(&["run", script.to_str().unwrap(), "--answerer", "oracle"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown answerer 'oracle'"));
}

#[test]
fn no_answerer_without_a_terminal_exits_2() {
    let script = write("ok3.lua", "return alc.llm('x')");
    let out = run(&["run", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn host_answerer_prints_the_pause_and_exits_3() {
    let script = write("pause.lua", "return alc.llm('What is 2+2?')");
    let out = run(&["run", script.to_str().unwrap(), "--answerer", "host"]);
    assert_eq!(out.status.code(), Some(3));
    let v = one_json(&out);
    assert_eq!(v["status"], "needs_response");
    assert_eq!(v["query_id"], "q-0");
    assert_eq!(v["round"], 1);
    assert_eq!(v["prompt"], "What is 2+2?");
    assert_eq!(v["system"], serde_json::Value::Null);
    assert_eq!(v["max_tokens"], 1024);
    assert!(v.get("grounded").is_none());
}

#[test]
fn scripted_without_a_match_fails_with_its_code() {
    let script = write("nomatch.lua", "return alc.llm('unanswerable')");
    let answers = write(
        "nomatch.jsonl",
        "{\"match\": \"something else\", \"response\": \"x\"}\n",
    );
    let out = run(&[
        "run",
        script.to_str().unwrap(),
        "--answerer",
        &format!("scripted:{}", answers.display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v = one_json(&out);
    assert_eq!(v["code"], "scripted_no_match");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .starts_with("scripted_no_match: "));
}

#[test]
fn scripted_file_errors_name_the_line() {
    let script = write("ok4.lua", "return 1");
    let answers = write("bad.jsonl", "{\"response\": \"a\"}\nnot json\n");
    let out = run(&[
        "run",
        script.to_str().unwrap(),
        "--answerer",
        &format!("scripted:{}", answers.display()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2"));
}

#[test]
fn ask_without_human_rules_is_unavailable() {
    let script = write(
        "ask.lua",
        "local v, s = alc.ask('Ship it?', {choices = {'yes', 'no'}, default = 'no'})\nreturn {v = v, s = s}",
    );
    let answers = write("llm_only.jsonl", "{\"default\": \"x\"}\n");
    let out = run(&[
        "run",
        script.to_str().unwrap(),
        "--answerer",
        &format!("scripted:{}", answers.display()),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v = one_json(&out);
    assert_eq!(
        v["result"],
        serde_json::json!({"v": "no", "s": "unavailable"})
    );
    assert_eq!(v["stats"]["auto"]["pauses"], 0);
}

#[test]
fn terminal_answerer_under_a_pseudo_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return;
    }
    let script = write(
        "term.lua",
        "local a = alc.llm('Name a colour', {system = 'Be brief.'})\nreturn a",
    );
    let cmd = format!(
        "{} run {} --answerer terminal",
        env!("CARGO_BIN_EXE_alc"),
        script.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs");
    {
        let stdin = child.stdin.as_mut().unwrap();
        stdin.write_all(b"blue\n.\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Name a colour"), "prompt shown: {text}");
    assert!(text.contains("Be brief."), "system shown: {text}");
    assert!(text.contains("\"result\":\"blue\""), "answer used: {text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}
