//! Helpers shared by the CLI subprocess tests: temporary homes, the `alc` binary with a
//! clean environment, the fake provider on its own runtime, and stdout/stderr readers.
//! Each test binary uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use alc_llm::fake::{FakeRequest, FakeResponse, FakeServer};
use serde_json::Value;

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory named after the test binary and `name`.
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "alc-{}-{}-{}-{name}",
        env!("CARGO_CRATE_NAME"),
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A runtime that keeps the fake server answering while the test blocks on the child.
pub fn fake(
    handler: impl Fn(&FakeRequest) -> FakeResponse + Send + Sync + 'static,
) -> (tokio::runtime::Runtime, FakeServer) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(FakeServer::start(handler));
    (rt, server)
}

/// `alc` with a clean environment: a fresh home, no provider, answerer or log
/// variables, a working directory outside any project, no stdin.
pub fn alc(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alc"));
    for v in [
        "ALC_ANSWERER",
        "ALC_MODEL",
        "ALC_PROVIDER",
        "ALC_PROJECT_ROOT",
        "ALC_PACKAGES_PATH",
        "ALC_MAX_CONCURRENCY",
        "ALC_REQUEST_TIMEOUT",
        "ALC_LOG_LEVEL",
        "ALC_LOG_DIR",
        "RUST_LOG",
        "NO_COLOR",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ] {
        c.env_remove(v);
    }
    c.env("ALC_HOME", home);
    c.current_dir(home);
    c.stdin(Stdio::null());
    c
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn script(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The child's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout as exactly one JSON document on one newline-terminated line.
pub fn one_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).expect("utf-8 stdout");
    assert!(
        text.ends_with('\n'),
        "stdout ends with a newline: {text:?}; stderr: {}",
        stderr(out)
    );
    assert_eq!(text.trim_end().lines().count(), 1, "one line: {text:?}");
    serde_json::from_str(text.trim_end()).expect("stdout is one JSON document")
}
