//! `alc pkg test <NAME|PATH>`: run a package's `spec/*_spec.lua` files (interfaces.md
//! §4.2, lua-api.md §1.3).
//!
//! Each spec file runs as its own engine session (a fresh VM with the session sandbox)
//! whose program is our lust-style prelude (`lust.lua`); the prelude loads the spec's
//! source under its logical chunk name `<package>/spec/<file>`, runs it and returns the
//! results as the session value. The package's collection root comes first on the
//! resolution path, so `require("<package>")` loads the copy under test.
//!
//! A spec that reaches a real host-yield function (`alc.llm`, `alc.llm_batch`,
//! `alc.ask`, `alc.fork`) pauses its session: the runner cancels it and reports the test
//! that was running as failed (results recorded before the pause are kept).
//!
//! Output: per file one line `<file>: N passed, N failed` followed by each failure;
//! then the summary line `N passed, N failed`. Exit 0 when nothing failed, else 8.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alc_core::{
    CancelCode, CancelReason, EngineConfig, Outcome, Program, QueryRequest, SessionSpec, UntilPause,
};
use alc_engine::{Engine, HostServices, PackageRoots};
use clap::Args;
use serde_json::{json, Value};

/// The test prelude prepended to every spec session.
const LUST: &str = include_str!("lust.lua");

/// Exit code when a test failed (interfaces.md §4.3).
pub const TESTS_FAILED: u8 = 8;
const OK: u8 = 0;
const USAGE: u8 = 2;
const NOT_FOUND: u8 = 4;
const INTERNAL: u8 = 70;

/// Wall-clock limit of one spec file.
const SPEC_DEADLINE_MS: u64 = 120_000;

/// Arguments of `alc pkg test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// A package directory, a collection directory (every package below it), or the
    /// name of a package on the resolution path.
    pub target: String,
    /// Run only tests whose full name (`describe > ... > it`) contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Print one JSON report on stdout instead of the human listing.
    #[arg(long)]
    pub json: bool,
}

/// One test's outcome.
#[derive(Debug, Clone)]
struct TestResult {
    name: String,
    ok: bool,
    error: Option<String>,
}

/// One spec file's outcome.
#[derive(Debug)]
struct FileReport {
    file: String,
    tests: Vec<TestResult>,
}

impl FileReport {
    fn passed(&self) -> usize {
        self.tests.iter().filter(|t| t.ok).count()
    }
    fn failed(&self) -> usize {
        self.tests.iter().filter(|t| !t.ok).count()
    }
}

/// The packages to test and the collection root they live in.
struct Target {
    root: PathBuf,
    packages: Vec<String>,
}

fn search_roots(home: Option<&Path>) -> Vec<(String, PathBuf)> {
    let mut roots = Vec::new();
    if let Ok(paths) = std::env::var("ALC_PACKAGES_PATH") {
        for p in std::env::split_paths(&paths) {
            if !p.as_os_str().is_empty() {
                roots.push(("ALC_PACKAGES_PATH".to_string(), p));
            }
        }
    }
    let home = home
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ALC_HOME").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".algocline")));
    if let Some(home) = home {
        roots.push(("global".to_string(), home.join("packages")));
    }
    roots
}

fn resolve_target(target: &str, home: Option<&Path>) -> Result<Target, (u8, String)> {
    let path = Path::new(target);
    if path.is_dir() {
        let dir = path
            .canonicalize()
            .map_err(|e| (NOT_FOUND, format!("{target}: {e}")))?;
        if dir.join("init.lua").is_file() {
            let name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .ok_or_else(|| (USAGE, format!("{target}: not a package directory name")))?;
            if !alc_engine::valid_package_name(&name) {
                return Err((
                    USAGE,
                    format!("{target}: '{name}' is not a valid package name"),
                ));
            }
            let root = dir.parent().map(Path::to_path_buf).unwrap_or(dir.clone());
            return Ok(Target {
                root,
                packages: vec![name],
            });
        }
        let mut packages = Vec::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| (NOT_FOUND, format!("{target}: {e}")))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if !p.join("init.lua").is_file() {
                continue;
            }
            if let Some(name) = p.file_name().and_then(|n| n.to_str()) {
                if alc_engine::valid_package_name(name) {
                    packages.push(name.to_string());
                }
            }
        }
        if packages.is_empty() {
            return Err((
                NOT_FOUND,
                format!("{target}: no init.lua at the root or in any subdirectory"),
            ));
        }
        packages.sort();
        return Ok(Target {
            root: dir,
            packages,
        });
    }
    if alc_engine::valid_package_name(target) {
        for (_, root) in search_roots(home) {
            if root.join(target).join("init.lua").is_file() {
                return Ok(Target {
                    root,
                    packages: vec![target.to_string()],
                });
            }
        }
        return Err((NOT_FOUND, format!("package '{target}' not found")));
    }
    Err((
        NOT_FOUND,
        format!("{target}: no such directory, and not a valid package name"),
    ))
}

fn spec_files(root: &Path, package: &str) -> Vec<(String, PathBuf)> {
    let dir = root.join(package).join("spec");
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let p = entry.path();
            let Some(name) = p.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue;
            };
            if name.ends_with("_spec.lua") && p.is_file() {
                files.push((format!("{package}/spec/{name}"), p));
            }
        }
    }
    files.sort();
    files
}

fn parse_results(v: &Value) -> Vec<TestResult> {
    let mut out = Vec::new();
    let list = v
        .get("results")
        .or_else(|| v.get("done"))
        .and_then(Value::as_array);
    if let Some(list) = list {
        for r in list {
            out.push(TestResult {
                name: r
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string(),
                ok: r.get("ok").and_then(Value::as_bool).unwrap_or(false),
                error: r.get("error").and_then(Value::as_str).map(str::to_string),
            });
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

async fn run_file(
    engine: &Engine,
    logical: &str,
    source: String,
    filter: Option<&str>,
) -> FileReport {
    let mut report = FileReport {
        file: logical.to_string(),
        tests: Vec::new(),
    };
    let fail = |msg: String| TestResult {
        name: format!("({logical})"),
        ok: false,
        error: Some(msg),
    };
    let mut spec = SessionSpec::new(Program::Code {
        source: LUST.to_string(),
        name: Some("lust".into()),
    });
    let mut lust = json!({"source": source, "chunk": logical});
    if let Some(f) = filter {
        lust["filter"] = json!(f);
    }
    spec.ctx = json!({ "__lust": lust });
    spec.seed = Some(0);
    spec.human_channel = false;
    spec.labels.insert("kind".into(), "pkg_test".into());
    spec.limits.deadline_ms = Some(SPEC_DEADLINE_MS);
    let id = match engine.spawn(spec).await {
        Ok(id) => id,
        Err(e) => {
            report
                .tests
                .push(fail(format!("cannot start the spec session: {e}")));
            return report;
        }
    };
    let wait = Duration::from_millis(SPEC_DEADLINE_MS + 10_000);
    loop {
        match engine.run_until_pause(&id, wait).await {
            Err(e) => {
                report.tests.push(fail(format!("session error: {e}")));
                return report;
            }
            Ok(UntilPause::Running { .. }) => continue,
            Ok(UntilPause::Terminal { terminal }) => {
                match &terminal.outcome {
                    Outcome::Completed { value } => report.tests = parse_results(value),
                    Outcome::Failed {
                        message, traceback, ..
                    } => {
                        let mut msg = message.clone();
                        if let Some(tb) = traceback {
                            msg.push('\n');
                            msg.push_str(tb);
                        }
                        if let Some(v) = terminal.metrics.custom.get("lust") {
                            report.tests = parse_results(v);
                        }
                        report
                            .tests
                            .push(fail(format!("spec session failed: {msg}")));
                    }
                    Outcome::Cancelled { .. } => {
                        report.tests.push(fail("spec session was cancelled".into()));
                    }
                }
                return report;
            }
            Ok(UntilPause::Paused { snapshot }) => {
                let what = snapshot
                    .pending
                    .as_ref()
                    .and_then(|p| p.queries.first())
                    .map(|q| match &q.request {
                        QueryRequest::Llm { query } => {
                            format!("alc.llm prompt {:?}", truncate(&query.prompt, 120))
                        }
                        QueryRequest::Human { question } => {
                            format!("alc.ask question {:?}", truncate(&question.question, 120))
                        }
                    })
                    .unwrap_or_else(|| "a host request".into());
                let lust = snapshot.metrics.custom.get("lust");
                if let Some(v) = lust {
                    report.tests = parse_results(v);
                }
                let current = lust
                    .and_then(|v| v.get("current"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let msg = format!(
                    "the spec paused on a real host call ({what}); specs must replace `alc` \
                     (or its alc.llm / alc.llm_batch members) with a mock; the file was cancelled"
                );
                report.tests.push(TestResult {
                    name: current.unwrap_or_else(|| format!("({logical})")),
                    ok: false,
                    error: Some(msg),
                });
                let reason = CancelReason {
                    code: CancelCode::Internal,
                    detail: Some("package test paused on a real host call".into()),
                };
                let _ = engine.cancel(&id, reason).await;
                return report;
            }
        }
    }
}

/// Runs `alc pkg test` and returns the exit code.
pub fn run(args: TestArgs, home: Option<PathBuf>, quiet: bool) -> u8 {
    let target = match resolve_target(&args.target, home.as_deref()) {
        Ok(t) => t,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    let mut roots = vec![("collection".to_string(), target.root.clone())];
    roots.extend(search_roots(home.as_deref()));
    let services = HostServices {
        modules: Arc::new(PackageRoots::new(roots)),
        ..HostServices::default()
    };
    let config = EngineConfig {
        workers: 1,
        ..EngineConfig::default()
    };
    let engine = match Engine::start_blocking(config, services) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return INTERNAL;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return INTERNAL;
        }
    };

    let mut reports = Vec::new();
    for package in &target.packages {
        let files = spec_files(&target.root, package);
        if files.is_empty() && !quiet && !args.json {
            eprintln!("{package}: no spec/*_spec.lua files");
        }
        for (logical, path) in files {
            let report = match std::fs::read_to_string(&path) {
                Ok(source) => {
                    rt.block_on(run_file(&engine, &logical, source, args.filter.as_deref()))
                }
                Err(e) => FileReport {
                    file: logical.clone(),
                    tests: vec![TestResult {
                        name: format!("({logical})"),
                        ok: false,
                        error: Some(format!("cannot read the spec file: {e}")),
                    }],
                },
            };
            if !args.json {
                print_file(&report);
            }
            reports.push(report);
        }
    }
    engine.shutdown_now(alc_engine::ShutdownMode::Cancel);

    let passed: usize = reports.iter().map(FileReport::passed).sum();
    let failed: usize = reports.iter().map(FileReport::failed).sum();
    if args.json {
        let files: Vec<Value> = reports
            .iter()
            .map(|r| {
                let tests: Vec<Value> = r
                    .tests
                    .iter()
                    .map(|t| {
                        let mut v = json!({"name": t.name, "ok": t.ok});
                        if let Some(e) = &t.error {
                            v["error"] = json!(e);
                        }
                        v
                    })
                    .collect();
                json!({"file": r.file, "passed": r.passed(), "failed": r.failed(), "tests": tests})
            })
            .collect();
        println!(
            "{}",
            json!({"files": files, "passed": passed, "failed": failed})
        );
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed > 0 {
        TESTS_FAILED
    } else {
        OK
    }
}

fn print_file(report: &FileReport) {
    println!(
        "{}: {} passed, {} failed",
        report.file,
        report.passed(),
        report.failed()
    );
    for t in report.tests.iter().filter(|t| !t.ok) {
        println!("  FAIL {}", t.name);
        if let Some(e) = &t.error {
            for line in e.lines() {
                println!("       {line}");
            }
        }
    }
}
