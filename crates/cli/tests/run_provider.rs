//! `alc run` with the provider answerer, as a subprocess against the fake provider of
//! `alc_llm` (interfaces.md §4.2, §7, §10 items 38–46, 72–75).

mod common;

use common::{alc, fake, one_json, script, stderr, tmp_dir};

use std::process::Stdio;
use std::time::{Duration, Instant};

use alc_llm::fake::{FakeRequest, FakeResponse};
use serde_json::json;

fn echo(req: &FakeRequest) -> FakeResponse {
    let body = req.json();
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    FakeResponse::openai_text(&format!("echo:{prompt}"))
}

#[test]
fn batch_is_answered_by_the_provider() {
    let (_rt, server) = fake(echo);
    let home = tmp_dir("batch");
    let f = script(
        &home,
        "batch.lua",
        r#"local r = alc.llm_batch({ { prompt = "a" }, { prompt = "b", system = "S" }, { prompt = "c" } })
           return r"#,
    );
    let out = alc(&home)
        .args(["run", &f, "--answerer", "provider", "-v"])
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("OPENAI_API_KEY", "sk-secret")
        .env("ALC_MODEL", "fake-model")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    let v = one_json(&out);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["result"], json!(["echo:a", "echo:b", "echo:c"]));
    let auto = &v["stats"]["auto"];
    assert_eq!(auto["answered_by"]["provider"], 3);
    assert_eq!(auto["prompt_tokens"]["source"], "definite", "{auto}");
    assert_eq!(auto["prompt_tokens"]["tokens"], 30);
    assert_eq!(auto["response_tokens"]["tokens"], 15);
    assert!(auto["usage_by_model"]
        .as_object()
        .is_some_and(|m| !m.is_empty()));
    // Requests: model, bearer header, system + user messages.
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    for r in &reqs {
        assert_eq!(r.json()["model"], "fake-model");
        assert_eq!(r.header("authorization"), Some("Bearer sk-secret"));
    }
    assert!(reqs
        .iter()
        .any(|r| r.json()["messages"][0] == json!({"role": "system", "content": "S"})));
    // -v: one plain line per call on stderr; the key never leaves the process.
    assert_eq!(err.matches("llm q-").count(), 3, "{err}");
    assert!(
        !err.contains("sk-secret") && !String::from_utf8_lossy(&out.stdout).contains("sk-secret")
    );
}

#[test]
fn provider_is_the_default_answerer_when_configured() {
    let (_rt, server) = fake(echo);
    let home = tmp_dir("default");
    let f = script(&home, "one.lua", "return alc.llm('hi')");
    let out = alc(&home)
        .args(["run", &f])
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("ALC_MODEL", "m")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(one_json(&out)["result"], "echo:hi");
    // Without -v and without a terminal: nothing but the result.
    assert!(stderr(&out).trim().is_empty(), "{}", stderr(&out));
}

#[test]
fn unauthorized_exits_6_with_an_error_payload() {
    let (_rt, server) = fake(|_| {
        FakeResponse::json(
            401,
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        )
    });
    let home = tmp_dir("401");
    let f = script(&home, "one.lua", "return alc.llm('hi')");
    let out = alc(&home)
        .args(["run", &f, "--answerer", "provider"])
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("OPENAI_API_KEY", "sk-secret")
        .env("ALC_MODEL", "m")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "stderr: {}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "error");
    assert_eq!(v["code"], "provider_error");
    assert_eq!(v["provider_error_class"], "auth");
    assert_eq!(v["provider_status"], 401);
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("401"),
        "{err}"
    );
    assert!(!err.contains("sk-secret"));
    assert_eq!(server.count(), 1, "auth errors are not retried");
}

#[test]
fn provider_without_configuration_exits_6_unavailable() {
    let home = tmp_dir("unavailable");
    let f = script(&home, "one.lua", "return alc.llm('hi')");
    let out = alc(&home)
        .args(["run", &f, "--answerer", "provider"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "stderr: {}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["code"], "provider_unavailable");
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
}

#[test]
fn model_selector_routes_to_a_named_provider() {
    let (_rt, server) = fake(echo);
    let home = tmp_dir("route");
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[providers.local]\nkind = \"openai_chat\"\nbase_url = \"{}/v1\"\nmodel = \"default-m\"\n",
            server.url()
        ),
    )
    .unwrap();
    let f = script(&home, "one.lua", "return alc.llm('hi')");
    let out = alc(&home)
        .args(["run", &f, "--answerer", "provider", "--model", "local:m:3b"])
        // The default provider points nowhere: only the selector can reach the fake.
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(one_json(&out)["result"], "echo:hi");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].json()["model"], "m:3b");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert!(reqs[0].header("authorization").is_none());
}

#[test]
fn bundled_package_runs_with_the_provider_before_init() {
    let (_rt, server) = fake(|_| FakeResponse::openai_text("The answer is 4."));
    let home = tmp_dir("cot");
    let out = alc(&home)
        .args([
            "run",
            "cot",
            "--task",
            "What is 2+2?",
            "--answerer",
            "provider",
            "--max-concurrency",
            "2",
        ])
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("ALC_MODEL", "fake-model")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let v = one_json(&out);
    assert_eq!(v["status"], "completed", "{v}");
    assert!(
        v["stats"]["auto"]["answered_by"]["provider"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert!(server.count() >= 1);
    assert!(server
        .requests()
        .iter()
        .any(|r| r.body_contains("What is 2+2?")));
    assert!(!home.join("packages/cot").exists(), "nothing was installed");
}

trait BodyContains {
    fn body_contains(&self, s: &str) -> bool;
}
impl BodyContains for FakeRequest {
    fn body_contains(&self, s: &str) -> bool {
        String::from_utf8_lossy(&self.body).contains(s)
    }
}

#[test]
fn unknown_package_exits_4() {
    let home = tmp_dir("nopkg");
    let out = alc(&home)
        .args(["run", "no_such_pkg", "--answerer", "host"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "stderr: {}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn sigint_during_a_slow_provider_call_exits_130_with_empty_stdout() {
    let (_rt, server) = fake(|_| FakeResponse::openai_text("late").delay(Duration::from_secs(30)));
    let home = tmp_dir("sigint");
    let f = script(&home, "one.lua", "return alc.llm('slow')");
    let child = alc(&home)
        .args(["run", &f, "--answerer", "provider"])
        .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
        .env("ALC_MODEL", "m")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.count() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no request arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "exits promptly");
    assert_eq!(out.status.code(), Some(130), "stderr: {}", stderr(&out));
    assert!(out.stdout.is_empty(), "stdout: {:?}", out.stdout);
}
