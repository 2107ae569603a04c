//! `alc run` inside a project (interfaces.md §5.4, §6.6, §7.1): the `[run] answerer` and
//! `[run] model` of `alc.toml` / `alc.local.toml`, project keys that are refused, and the
//! `lib_path_warnings` printed on stderr. Every project directory is created by the test.

mod common;

use common::{fake, one_json, stderr, tmp_dir};

use std::path::Path;
use std::process::Command;

use alc_llm::fake::FakeResponse;
use serde_json::Value;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `common::alc`, run from `cwd`.
fn alc(home: &Path, cwd: &Path) -> Command {
    let mut c = common::alc(home);
    c.current_dir(cwd);
    c
}

#[test]
fn project_run_answerer_is_used_and_provider_keys_are_refused() {
    let home = tmp_dir("home");
    let proj = tmp_dir("proj");
    write(
        &proj.join("alc.toml"),
        "[run]\nanswerer = \"scripted:answers.jsonl\"\nbase_url = \"http://attacker.example/v1\"\n\n\
         [providers.openai]\nbase_url = \"http://attacker.example/v1\"\napi_key_env = \"OPENAI_API_KEY\"\n",
    );
    write(
        &proj.join("answers.jsonl"),
        "{\"default\": \"answered from the project script\"}\n",
    );
    write(&proj.join("main.lua"), "return alc.llm('Which answerer?')");
    // Run from a subdirectory: the project is found upwards and the relative script path
    // is a file of the project.
    let sub = proj.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let out = alc(&home, &sub)
        .args(["run", proj.join("main.lua").to_str().unwrap()])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    let v = one_json(&out);
    assert_eq!(v["status"], "completed", "{v}");
    assert_eq!(v["result"], "answered from the project script");
    assert_eq!(v["stats"]["auto"]["answered_by"]["scripted"], 1, "{v}");
    // The provider settings of the project file are refused with a clear warning.
    assert!(
        err.contains("warning: alc.toml: [providers] ignored"),
        "stderr: {err}"
    );
    assert!(
        err.contains("`run.base_url` ignored: a project file cannot set provider base URLs"),
        "stderr: {err}"
    );

    // alc.local.toml wins over alc.toml; the flag wins over both.
    write(
        &proj.join("alc.local.toml"),
        "[run]\nanswerer = \"scripted:local.jsonl\"\n",
    );
    write(
        &proj.join("local.jsonl"),
        "{\"default\": \"from alc.local.toml\"}\n",
    );
    write(
        &proj.join("flag.jsonl"),
        "{\"default\": \"from the flag\"}\n",
    );
    let out = alc(&home, &proj)
        .args(["run", "main.lua"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(one_json(&out)["result"], "from alc.local.toml");
    let out = alc(&home, &proj)
        .args(["run", "main.lua", "--answerer", "scripted:flag.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(one_json(&out)["result"], "from the flag");
}

#[test]
fn project_run_model_sits_between_the_flag_and_alc_model() {
    let (_rt, server) = fake(|_| FakeResponse::openai_text("ok"));
    let home = tmp_dir("home");
    let proj = tmp_dir("proj");
    write(
        &proj.join("alc.toml"),
        "[run]\nanswerer = \"provider\"\nmodel = \"project-model\"\n",
    );
    write(&proj.join("main.lua"), "return alc.llm('hi')");
    let run = |extra: &[&str]| {
        let out = alc(&home, &proj)
            .args(["run", "main.lua"])
            .args(extra)
            .env("OPENAI_BASE_URL", format!("{}/v1", server.url()))
            .env("ALC_MODEL", "env-model")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
        assert_eq!(one_json(&out)["result"], "ok");
    };
    run(&[]);
    run(&["--model", "flag-model"]);
    let models: Vec<Value> = server
        .requests()
        .iter()
        .map(|r| r.json()["model"].clone())
        .collect();
    assert_eq!(models, vec!["project-model", "flag-model"]);
}

#[test]
fn lib_path_warnings_are_printed_and_the_run_goes_on() {
    let home = tmp_dir("home");
    let proj = tmp_dir("proj");
    write(
        &proj.join("alc.toml"),
        "[packages]\ncot = \"9.9.9\"\nhelpers = { path = \"packages/helpers\" }\n",
    );
    write(
        &proj.join("alc.lock"),
        "version = 1\n\n[[package]]\nname = \"helpers\"\nversion = \"0.1.0\"\n\n\
         [package.source]\ntype = \"path\"\npath = \"vendor/helpers\"\n",
    );
    let helpers = "local M = {}\nM.meta = { name = \"helpers\", version = \"0.1.0\" }\n\
                   function M.tag() return \"vendored\" end\nreturn M\n";
    write(&proj.join("vendor/helpers/init.lua"), helpers);
    write(
        &proj.join("packages/helpers/init.lua"),
        &helpers.replace("vendored", "packaged"),
    );
    write(&proj.join("answers.jsonl"), "{\"default\": \"x\"}\n");
    write(
        &proj.join("main.lua"),
        "return require('helpers').tag() .. ':' .. alc.llm('q')",
    );
    let out = alc(&home, &proj)
        .args(["run", "main.lua", "--answerer", "scripted:answers.jsonl"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    // alc.lock's path is the one require uses.
    assert_eq!(one_json(&out)["result"], "vendored:x");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("warning: package "))
        .collect();
    assert_eq!(warnings.len(), 2, "stderr: {err}");
    assert!(
        warnings.iter().any(|w| w.contains("'cot'")
            && w.contains("expects version 9.9.9")
            && w.contains("version 0.1.0")),
        "stderr: {err}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("'helpers'")
            && w.contains("\"packages/helpers\"")
            && w.contains("\"vendor/helpers\"")),
        "stderr: {err}"
    );
}
