//! `[log] transcripts` (interfaces.md §9.1, §9.3) in the CLI views: once a session has
//! ended in `metadata` mode, `alc sessions show --transcript` shows sizes and digests
//! instead of prompt and response text, as `alc_log_view` does.

mod common;

use common::tmp_dir;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// `common::alc` with `env` added.
fn alc(home: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = common::alc(home);
    c.envs(env.iter().copied());
    c
}

fn json_out(out: &Output) -> Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// Runs one scripted session and returns its `sessions show --transcript --json` view.
fn run_and_show(home: &Path, env: &[(&str, &str)]) -> Value {
    std::fs::write(home.join("a.jsonl"), "{\"default\": \"SECRET ANSWER\"}\n").unwrap();
    std::fs::write(
        home.join("f.lua"),
        "return alc.llm('SECRET PROMPT', {system = 'SECRET SYSTEM'})",
    )
    .unwrap();
    let v = json_out(
        &alc(home, env)
            .args(["run", "f.lua", "--answerer", "scripted:a.jsonl"])
            .output()
            .unwrap(),
    );
    assert_eq!(v["status"], "completed", "{v}");
    let id = v["session_id"].as_str().unwrap().to_string();
    json_out(
        &alc(home, env)
            .args(["sessions", "show", &id, "--transcript", "--json"])
            .output()
            .unwrap(),
    )
}

#[test]
fn metadata_mode_shows_sizes_and_digests_of_a_finished_session() {
    let home = tmp_dir("metadata");
    std::fs::write(
        home.join("config.toml"),
        "[log]\ntranscripts = \"metadata\"\n",
    )
    .unwrap();
    let doc = run_and_show(&home, &[]);
    let e = &doc["exchanges"][0];
    assert!(
        e["prompt"].is_null() && e["system"].is_null() && e["response"].is_null(),
        "{e}"
    );
    assert_eq!(e["prompt_chars"], "SECRET PROMPT".len());
    assert_eq!(e["system_chars"], "SECRET SYSTEM".len());
    assert_eq!(e["response_chars"], "SECRET ANSWER".len());
    assert_eq!(e["prompt_digest"].as_str().map(str::len), Some(32));
    assert!(!doc["exchanges"].to_string().contains("SECRET"), "{doc}");
    // The journal itself keeps stand-ins, not the text, once the session has ended.
    let db = rusqlite::Connection::open(home.join("alc.db")).unwrap();
    let bodies: Vec<String> = db
        .prepare("SELECT body FROM records WHERE kind IN ('pause', 'answer')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    for b in &bodies {
        assert!(!b.contains("SECRET") && b.contains("[redacted: "), "{b}");
    }
    // The CLI's session is in the transcript tables too (what `alc_log_view` reads),
    // ended and redacted.
    let (status, retention, prompt, chars): (String, String, Option<String>, i64) = db
        .query_row(
            "SELECT s.status, s.retention, e.prompt, e.prompt_chars
             FROM transcript_sessions s JOIN transcript_exchanges e USING (session_id)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), retention.as_str(), prompt, chars),
        ("completed", "metadata", None, "SECRET PROMPT".len() as i64)
    );
}

#[test]
fn full_mode_shows_text_and_alc_log_level_off_redacts() {
    let home = tmp_dir("full");
    let doc = run_and_show(&home, &[]);
    assert_eq!(doc["exchanges"][0]["prompt"], "SECRET PROMPT");
    assert_eq!(doc["exchanges"][0]["response"], "SECRET ANSWER");
    let home = tmp_dir("off");
    let doc = run_and_show(&home, &[("ALC_LOG_LEVEL", "off")]);
    assert!(doc["exchanges"][0]["prompt"].is_null(), "{doc}");
    assert_eq!(doc["exchanges"][0]["response_chars"], "SECRET ANSWER".len());
}
