//! Checklist items of `lua-api.md` §4 that depend on the CLI's configuration and process
//! environment: trusted mode (item 17) and `os.getenv` of the engine's own variables
//! (item 10).

mod common;

use common::tmp_dir;

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Runs `script` with `alc run` from `cwd` under `home` (no LLM calls are answered) and
/// returns the session result.
fn run_result(home: &Path, cwd: &Path, script: &str, envs: &[(&str, &str)]) -> Value {
    let file = cwd.join("script.lua");
    write(&file, script);
    let answers = cwd.join("answers.jsonl");
    write(&answers, "");
    let mut c = Command::new(env!("CARGO_BIN_EXE_alc"));
    for v in [
        "ALC_ANSWERER",
        "ALC_MODEL",
        "ALC_PROVIDER",
        "ALC_PROJECT_ROOT",
        "ALC_PACKAGES_PATH",
    ] {
        c.env_remove(v);
    }
    c.env("ALC_HOME", home);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c
        .current_dir(cwd)
        .args([
            "run",
            file.to_str().unwrap(),
            "--answerer",
            &format!("scripted:{}", answers.display()),
        ])
        .stdin(Stdio::null())
        .output()
        .expect("alc runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["status"], "completed", "{v}");
    v["result"].clone()
}

const TRUSTED_PROBE: &str =
    "return {popen = type(io.popen), binary_load_fails = load(\"\\27Lua\\84\\0\") == nil}\n";

#[test]
fn item17_trusted_mode_is_off_by_default() {
    let home = tmp_dir("home");
    let cwd = tmp_dir("cwd");
    let v = run_result(&home, &cwd, TRUSTED_PROBE, &[]);
    assert_eq!(v, json!({"popen": "nil", "binary_load_fails": true}));
}

#[test]
fn item17_trusted_config_enables_stock_io() {
    let home = tmp_dir("home");
    write(&home.join("config.toml"), "[sandbox]\ntrusted = true\n");
    let cwd = tmp_dir("cwd");
    let v = run_result(&home, &cwd, TRUSTED_PROBE, &[]);
    assert_eq!(v, json!({"popen": "function", "binary_load_fails": true}));
}

#[test]
fn item17_trusted_in_project_file_has_no_effect() {
    let home = tmp_dir("home");
    let proj = tmp_dir("proj");
    write(&proj.join("alc.toml"), "[sandbox]\ntrusted = true\n");
    let v = run_result(&home, &proj, TRUSTED_PROBE, &[]);
    assert_eq!(v, json!({"popen": "nil", "binary_load_fails": true}));
}

#[test]
fn item10_engine_environment_is_not_visible() {
    let home = tmp_dir("home");
    let cwd = tmp_dir("cwd");
    let pkgs = tmp_dir("pkgs");
    let v = run_result(
        &home,
        &cwd,
        "return {path = os.getenv('PATH') == nil, home = os.getenv('HOME'), pkgs = os.getenv('ALC_PACKAGES_PATH') == nil}\n",
        &[("ALC_PACKAGES_PATH", pkgs.to_str().unwrap())],
    );
    assert_eq!(v, json!({"path": true, "home": "", "pkgs": true}));
}
