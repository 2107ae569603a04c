//! `alc run`: drive one session to its end with an answerer (interfaces.md §4.2).
//!
//! Answerers: `host` (print the pause, exit 3), `provider` (the `alc_llm` client answers
//! each pause's LLM queries concurrently; human questions go to the terminal when stdin is
//! one), `terminal` and `scripted:FILE`. Modules resolve through `alc_pkg::Resolver`, so
//! bundled packages work before `alc init`. stdout receives exactly one JSON document;
//! progress, prompts, Lua output and errors go to stderr. SIGINT / SIGTERM stop the
//! process with 130 / 143 and nothing on stdout.
//!
//! Sessions are journaled in `<home>/alc.db` (durability from `[journal] durability`),
//! with `alc.state` in the same database: a paused host session, an interrupted or a
//! killed run stays `resumable` for `alc sessions resume` (`sessions_cmd`), which reuses
//! [`Host`], [`make_answerer`] and [`drive`] from here.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alc_config::{LoadOptions, Settings};
use alc_core::WaitError;
use alc_core::{
    Answer, AnswerMeta, Answers, AskStatus, CancelCode, CancelReason, EventBody, ObserveItem,
    Outcome, PendingQuery, Program, QueryRequest, SessionId, SessionSpec, Snapshot, UntilPause,
};
use alc_engine::{Engine, HostServices};
use alc_llm::{Client, ProviderError};
use alc_mcp::transcripts::{TranscriptMode, Transcripts};
use clap::Args;
use serde_json::Value;

use crate::answer::scripted::ScriptedAnswerer;
use crate::answer::terminal::{HumanPrompt, LlmPrompt, TerminalAnswerer, TerminalReply};
use crate::progress::Progress;
use alc_mcp::wire as payload;

/// Exit codes (interfaces.md §4.3).
pub mod exit {
    /// Session completed.
    pub const OK: u8 = 0;
    /// Session failed.
    pub const FAILED: u8 = 1;
    /// Usage error.
    pub const USAGE: u8 = 2;
    /// Paused waiting for a host answer.
    pub const PAUSED: u8 = 3;
    /// File, package or session not found.
    pub const NOT_FOUND: u8 = 4;
    /// Busy or conflict: the session is hosted by another live process.
    pub const BUSY: u8 = 5;
    /// Provider error.
    pub const PROVIDER: u8 = 6;
    /// Storage or I/O error.
    pub const IO: u8 = 7;
    /// Session cancelled.
    pub const CANCELLED: u8 = 9;
    /// Internal error.
    pub const INTERNAL: u8 = 70;
    /// Interrupted by SIGINT.
    pub const SIGINT: u8 = 130;
    /// Interrupted by SIGTERM.
    pub const SIGTERM: u8 = 143;
}

/// Options shared by every command (interfaces.md §4.1).
#[derive(Debug, Clone, Default)]
pub struct Global {
    /// `--home`.
    pub home: Option<PathBuf>,
    /// `-v` count.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
}

/// Arguments of `alc run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A `.lua` file, `-` for stdin, or the name of a package (installed or bundled).
    pub target: String,
    /// Sets `ctx.task`.
    #[arg(long)]
    pub task: Option<String>,
    /// The session context: a JSON object, or `@FILE` holding one.
    #[arg(long)]
    pub ctx: Option<String>,
    /// Who answers: `host`, `provider`, `terminal` or `scripted:FILE`.
    #[arg(long)]
    pub answerer: Option<String>,
    /// Model selector for the provider answerer (`<provider>:<model>` or a model name).
    #[arg(long)]
    pub model: Option<String>,
    /// Project root (default: `ALC_PROJECT_ROOT`, else the nearest `alc.toml` upwards).
    #[arg(long, value_name = "DIR")]
    pub project_root: Option<PathBuf>,
    /// Wall-clock deadline for the whole session, in seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Maximum simultaneous provider requests.
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<usize>,
    /// Fixed seed for `math.random` (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Do not show progress on stderr.
    #[arg(long)]
    pub no_progress: bool,
    /// Home directory (beats `ALC_HOME`).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
}

pub(crate) type Terminal = TerminalAnswerer<std::io::StdinLock<'static>, std::io::Stderr>;

pub(crate) enum Answerer {
    Scripted(ScriptedAnswerer),
    Terminal(Box<Terminal>),
    Host,
    Provider {
        client: Client,
        run_model: Option<String>,
        /// Human questions go here when stdin is a terminal.
        human: Option<Box<Terminal>>,
    },
}

pub(crate) fn usage_error(msg: impl std::fmt::Display, hint: Option<&str>) -> u8 {
    eprintln!("error: {msg}");
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
    exit::USAGE
}

fn parse_ctx(arg: Option<&str>) -> Result<serde_json::Map<String, Value>, (u8, String)> {
    let Some(arg) = arg else {
        return Ok(serde_json::Map::new());
    };
    let text = if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| {
            (
                exit::NOT_FOUND,
                format!("cannot read --ctx file {path}: {e}"),
            )
        })?
    } else {
        arg.to_string()
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err((exit::USAGE, "--ctx must be a JSON object".into())),
        Err(e) => Err((exit::USAGE, format!("--ctx is not valid JSON: {e}"))),
    }
}

fn program_for(target: &str, resolver: &alc_pkg::Resolver) -> Result<Program, (u8, String)> {
    if target == "-" {
        let mut source = String::new();
        std::io::stdin()
            .read_to_string(&mut source)
            .map_err(|e| (exit::IO, format!("cannot read the script from stdin: {e}")))?;
        return Ok(Program::Code {
            source,
            name: Some("session".into()),
        });
    }
    let path = std::path::Path::new(target);
    if target.ends_with(".lua") || path.is_file() {
        let source = std::fs::read_to_string(path)
            .map_err(|e| (exit::NOT_FOUND, format!("cannot read {target}: {e}")))?;
        return Ok(Program::Code {
            source,
            name: Some("session".into()),
        });
    }
    if alc_engine::valid_package_name(target) {
        if resolver.locate(target).is_none() {
            return Err((
                exit::NOT_FOUND,
                format!("package '{target}' not found (not installed, linked or bundled)"),
            ));
        }
        return Ok(Program::Package {
            name: target.to_string(),
            entry: "run".into(),
        });
    }
    Err((
        exit::NOT_FOUND,
        format!("{target}: no such file, and not a valid package name"),
    ))
}

fn terminal() -> Box<Terminal> {
    Box::new(TerminalAnswerer::new(
        std::io::stdin().lock(),
        std::io::stderr(),
    ))
}

/// Set once the final document is about to be printed; the signal handler then lets the
/// process finish normally instead of exiting 130 with a half-written stdout.
static OUTPUT: Mutex<bool> = Mutex::new(false);

/// Prints the one stdout document (followed by a newline). Returns false when an
/// interruption already claimed the process.
pub(crate) fn emit(doc: &Value) {
    let mut started = OUTPUT.lock().unwrap_or_else(|e| e.into_inner());
    *started = true;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{doc}");
    let _ = out.flush();
}

/// Runs `alc run` and returns the exit code.
pub fn run(args: RunArgs, global: &Global) -> u8 {
    let quiet = global.quiet;
    let settings = match Settings::load(&LoadOptions {
        home: args.home.clone().or_else(|| global.home.clone()),
        project_root: args.project_root.clone(),
        cwd: None,
    }) {
        Ok(s) => s,
        Err(e) => return usage_error(e, None),
    };
    if !quiet {
        for w in &settings.warnings {
            eprintln!("warning: {w}");
        }
    }
    if let Some(t) = args.timeout {
        if !t.is_finite() || t <= 0.0 {
            return usage_error("--timeout must be a positive number of seconds", None);
        }
    }
    if args.max_concurrency == Some(0) {
        return usage_error("--max-concurrency must be at least 1", None);
    }

    // Which answerer: flag > ALC_ANSWERER > project [run] > config.toml > built-in rule.
    let stdin_tty = std::io::stdin().is_terminal();
    let choice = match settings.answerer(args.answerer.as_deref()) {
        Some(s) => s.value,
        None if settings.provider_configured() => "provider".into(),
        None if stdin_tty => "terminal".into(),
        None => {
            return usage_error(
                "no answerer: no LLM provider is configured, stdin is not a terminal and no --answerer was given",
                Some("pass --answerer provider (with OPENAI_API_KEY, OPENAI_BASE_URL or ANTHROPIC_API_KEY set), --answerer scripted:FILE, --answerer terminal or --answerer host"),
            )
        }
    };
    if args.target == "-" && choice == "terminal" {
        return usage_error(
            "the script cannot come from stdin with the terminal answerer",
            Some("pass the script as a file"),
        );
    }

    let resolver = alc_pkg::Resolver::new(settings.pkg_env());
    // Project package problems (expected versions, alc.toml vs alc.lock) do not stop
    // the run; they are reported like the MCP `lib_path_warnings`.
    for w in alc_pkg::check::lib_path_warnings(resolver.env()) {
        eprintln!("warning: {w}");
    }
    let program = match program_for(&args.target, &resolver) {
        Ok(p) => p,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    let mut ctx = match parse_ctx(args.ctx.as_deref()) {
        Ok(c) => c,
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            return code;
        }
    };
    if let Some(task) = &args.task {
        ctx.insert("task".into(), Value::String(task.clone()));
    }

    let progress = Progress::new(quiet, args.no_progress, global.verbose);
    let mut answerer = match make_answerer(
        &choice,
        &settings,
        args.model.as_deref(),
        args.max_concurrency,
        &progress,
        quiet,
    ) {
        Ok(a) => a,
        Err(code) => {
            progress.finish();
            return code;
        }
    };

    let mut spec = SessionSpec::new(program);
    if let Some(Value::String(t)) = ctx.get("task") {
        spec.labels.insert("task_hint".into(), preview(t, 100));
    }
    spec.ctx = Value::Object(ctx);
    spec.seed = args.seed;
    spec.human_channel = human_channel(&answerer);
    spec.labels.insert("kind".into(), "run".into());
    record_answerer(
        &mut spec.labels,
        &choice,
        settings.run_model(args.model.as_deref()).as_deref(),
    );
    if let Some(t) = args.timeout {
        spec.limits.deadline_ms = Some((t * 1000.0) as u64);
    }

    let host = match Host::start(&settings, resolver, &progress, quiet) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let engine = host.engine.clone();
    let id = match engine.spawn_now(spec) {
        Ok(id) => id,
        Err(e) => {
            progress.finish();
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let code = host
        .rt
        .block_on(drive(&engine, &id, &mut answerer, quiet, &progress));
    host.finish();
    code
}

/// Records who answers in the session labels (`answerer`, and the script path of a
/// scripted answerer, the model selector), so listings show it and `alc sessions resume`
/// continues with the same answerer by default.
fn record_answerer(
    labels: &mut std::collections::BTreeMap<String, String>,
    choice: &str,
    model: Option<&str>,
) {
    if let Some(path) = choice.strip_prefix("scripted:") {
        labels.insert("answerer".into(), "scripted".into());
        let abs = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
        labels.insert("answerer_script".into(), abs.to_string_lossy().into_owned());
    } else {
        labels.insert("answerer".into(), choice.to_string());
    }
    if let Some(m) = model {
        labels.insert("model".into(), m.to_string());
    }
}

/// The answerer recorded in a session's labels (`host` when none was recorded).
pub(crate) fn recorded_answerer(labels: &std::collections::BTreeMap<String, String>) -> String {
    match labels.get("answerer").map(String::as_str) {
        Some("scripted") => match labels.get("answerer_script") {
            Some(path) => format!("scripted:{path}"),
            None => "host".into(),
        },
        Some(a) => a.to_string(),
        None => "host".into(),
    }
}

/// The first `n` characters of `s`.
pub(crate) fn preview(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Whether `answerer` can answer `alc.ask` questions (the spec's `human_channel`).
pub(crate) fn human_channel(answerer: &Answerer) -> bool {
    match answerer {
        Answerer::Scripted(s) => s.has_human_rules(),
        Answerer::Terminal(_) | Answerer::Host => true,
        Answerer::Provider { human, .. } => human.is_some(),
    }
}

/// Builds the answerer named `choice` (`host`, `provider`, `terminal`, `scripted:FILE`).
/// Errors are printed; the exit code is returned.
pub(crate) fn make_answerer(
    choice: &str,
    settings: &Settings,
    model: Option<&str>,
    max_concurrency: Option<usize>,
    progress: &Progress,
    quiet: bool,
) -> Result<Answerer, u8> {
    let stdin_tty = std::io::stdin().is_terminal();
    Ok(match choice {
        a if a.starts_with("scripted:") => {
            let path = &a["scripted:".len()..];
            match ScriptedAnswerer::from_file(std::path::Path::new(path)) {
                Ok(s) => Answerer::Scripted(s),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(exit::USAGE);
                }
            }
        }
        "terminal" => {
            if !stdin_tty {
                return Err(usage_error(
                    "--answerer terminal needs stdin to be a terminal",
                    Some("use --answerer provider or --answerer scripted:FILE for non-interactive runs"),
                ));
            }
            Answerer::Terminal(terminal())
        }
        "host" => Answerer::Host,
        "provider" => {
            let mut providers = settings.providers();
            if !quiet {
                for w in providers.warnings() {
                    eprintln!("warning: {w}");
                }
            }
            if let Some(n) = max_concurrency {
                providers.settings.max_concurrency = n;
            }
            let hook_progress = progress.clone();
            let client = match Client::new(providers) {
                Ok(c) => c.with_retry_hook(Arc::new(move |ev| hook_progress.retry(ev))),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Err(exit::PROVIDER);
                }
            };
            Answerer::Provider {
                client,
                run_model: settings.run_model(model),
                human: stdin_tty.then(terminal),
            }
        }
        other => {
            return Err(usage_error(
                format!("unknown answerer '{other}'"),
                Some("use host, provider, terminal or scripted:FILE"),
            ));
        }
    })
}

/// Opens the session journal `<home>/alc.db` with the configured durability. Sessions
/// appended through it are recorded in the transcript tables (as `alc serve` records
/// them), kept as `[log] transcripts` says.
pub(crate) fn open_journal(settings: &Settings) -> Result<alc_store::SqliteJournal, u8> {
    let path = settings.database_path();
    if let Some(dir) = path.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: cannot create {}: {e}", dir.display());
            return Err(exit::IO);
        }
    }
    let mut journal = alc_store::SqliteJournal::open(&path, settings.engine_config().durability)
        .map_err(|e| {
            eprintln!("error: cannot open the session database: {e}");
            exit::IO
        })?;
    let mode = TranscriptMode::parse(settings.transcript_mode()).unwrap_or_default();
    if let Err(e) = Transcripts::record_journal(&mut journal, &path, mode) {
        tracing::warn!(error = %e, "sessions are not recorded in transcripts");
    }
    Ok(journal)
}

/// An engine on the durable journal, its async runtime and the SIGINT / SIGTERM handler.
pub(crate) struct Host {
    /// The runtime `drive` runs on.
    pub rt: tokio::runtime::Runtime,
    /// The engine (SQLite journal; `alc.state` in the same database).
    pub engine: Engine,
    /// The engine's journal (a handle sharing its connection).
    pub journal: alc_store::SqliteJournal,
}

impl Host {
    /// Starts the runtime, the signal handlers and the engine. Errors are printed; the
    /// exit code is returned.
    pub fn start(
        settings: &Settings,
        resolver: alc_pkg::Resolver,
        progress: &Progress,
        quiet: bool,
    ) -> Result<Host, u8> {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                progress.finish();
                eprintln!("error: cannot start the async runtime: {e}");
                return Err(exit::INTERNAL);
            }
        };
        // Register the signal handlers before any work starts.
        let signals = {
            let _guard = rt.enter();
            Signals::register()
        };
        let journal = match open_journal(settings) {
            Ok(j) => j,
            Err(code) => {
                progress.finish();
                return Err(code);
            }
        };
        let services = HostServices {
            modules: Arc::new(resolver),
            env_allow: Arc::new(settings.env_allow()),
            trusted: settings.sandbox_trusted(),
            state: Arc::new(journal.state_store()),
            state_shares_journal: true,
            cards: Arc::new(alc_engine::FileCardStore::new(settings.home.join("cards"))),
            ..HostServices::default()
        };
        // A CLI process hosts only the session it works on: other open sessions stay in
        // the journal for whoever names them (never adopted eagerly here).
        let mut config = settings.engine_config();
        config.recovery = alc_core::Recovery::OnDemand;
        let engine = match Engine::start_with_journal(config, Arc::new(journal.clone()), services) {
            Ok(e) => e,
            Err(e) => {
                progress.finish();
                eprintln!("error: {e}");
                return Err(exit::IO);
            }
        };
        if let Some(signals) = signals {
            let engine = engine.clone();
            let progress = progress.clone();
            rt.spawn(async move {
                let code = signals.recv().await;
                interrupt(code, &engine, &progress, quiet);
            });
        }
        Ok(Host {
            rt,
            engine,
            journal,
        })
    }

    /// Stops the engine leaving open sessions durable (`Drain`: a paused or interrupted
    /// session stays resumable from the journal), then the runtime.
    pub fn finish(self) {
        self.engine.shutdown_now(alc_engine::ShutdownMode::Drain);
        self.rt.shutdown_timeout(Duration::from_millis(200));
    }
}

/// SIGINT / SIGTERM listeners.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> Option<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Some(Signals {
            int: signal(SignalKind::interrupt()).ok()?,
            term: signal(SignalKind::terminate()).ok()?,
        })
    }

    async fn recv(mut self) -> u8 {
        tokio::select! {
            _ = self.int.recv() => exit::SIGINT,
            _ = self.term.recv() => exit::SIGTERM,
        }
    }
}

/// Stops the process after SIGINT / SIGTERM: in-flight provider requests are abandoned,
/// running Lua is parked (the session stays for durable resume once journaled), and
/// nothing is written to stdout.
fn interrupt(code: u8, engine: &Engine, progress: &Progress, quiet: bool) {
    let started = OUTPUT.lock().unwrap_or_else(|e| e.into_inner());
    if *started {
        // The result is being printed; let the normal exit happen.
        drop(started);
        return;
    }
    progress.finish();
    if !quiet {
        let what = if code == exit::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        eprintln!("error: interrupted by {what}");
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let e = engine.clone();
    std::thread::spawn(move || {
        e.shutdown_now(alc_engine::ShutdownMode::Drain);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(1));
    let _ = std::io::stderr().flush();
    tracing::error!(target: crate::diag::FILE_ONLY, exit_code = code, "interrupted by a signal");
    // Keep the lock: no stdout document may start from here on.
    std::process::exit(i32::from(code));
}

/// Feeds Lua output and progress events to stderr as they arrive.
async fn watch(engine: Engine, id: SessionId, quiet: bool, progress: Progress) {
    let Ok(mut stream) = engine.observe(&id, 0) else {
        return;
    };
    while let Some(item) = stream.next().await {
        if let ObserveItem::Event { event } = item {
            match event.body {
                EventBody::Log { entry } if !quiet => {
                    progress.line(&format!("lua: {}", entry.message));
                }
                EventBody::Progress { progress: p } => progress.step(p.step, p.total, &p.message),
                EventBody::Paused { round, .. } => progress.round(round),
                _ => {}
            }
        }
    }
}

fn exit_code(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Completed { .. } => exit::OK,
        Outcome::Cancelled { .. } => exit::CANCELLED,
        Outcome::Failed { kind, code, .. } => {
            match payload::failure_code(*kind, code.as_deref()).as_str() {
                "provider_error" | "provider_unavailable" => exit::PROVIDER,
                "io_error" => exit::IO,
                "internal" => exit::INTERNAL,
                _ => exit::FAILED,
            }
        }
    }
}

/// Adds `provider_error_class` / `provider_status` to a provider failure (§7.6) when the
/// shared payload does not carry them yet.
fn enrich_provider_failure(doc: &mut Value) {
    if doc["code"] != "provider_error" || doc.get("provider_error_class").is_some() {
        return;
    }
    let Some(msg) = doc["error"].as_str() else {
        return;
    };
    let Some(at) = msg.find("provider_error[") else {
        return;
    };
    if let Some((class, status)) = ProviderError::parse_message(&msg[at..]) {
        doc["provider_error_class"] = Value::String(class.as_str().to_string());
        doc["provider_status"] = status.map(Value::from).unwrap_or(Value::Null);
    }
}

pub(crate) async fn drive(
    engine: &Engine,
    id: &SessionId,
    answerer: &mut Answerer,
    quiet: bool,
    progress: &Progress,
) -> u8 {
    let watcher = (!quiet || progress.enabled())
        .then(|| tokio::spawn(watch(engine.clone(), id.clone(), quiet, progress.clone())));
    let code = loop {
        let until = match engine.run_until_pause(id, Duration::from_secs(3600)).await {
            Ok(u) => u,
            Err(e) => {
                progress.finish();
                eprintln!("error: {e}");
                break match e {
                    WaitError::Busy { .. } => exit::BUSY,
                    WaitError::NotFound { .. } => exit::NOT_FOUND,
                    _ => exit::INTERNAL,
                };
            }
        };
        match until {
            UntilPause::Running { .. } => continue,
            UntilPause::Terminal { terminal } => {
                if let Some(w) = &watcher {
                    // Let the last log lines arrive before the display is cleared.
                    let _ = tokio::time::timeout(Duration::from_millis(200), async {
                        while !w.is_finished() {
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    })
                    .await;
                }
                progress.finish();
                let mut doc = payload::terminal(&terminal);
                let code = exit_code(&terminal.outcome);
                tracing::info!(
                    session_id = %id,
                    status = %doc["status"].as_str().unwrap_or("-"),
                    code = %doc["code"].as_str().unwrap_or("-"),
                    "session ended"
                );
                if code == exit::PROVIDER {
                    enrich_provider_failure(&mut doc);
                    if !quiet {
                        let msg = doc["error"].as_str().unwrap_or("provider failure");
                        eprintln!("error: {}", msg.lines().next().unwrap_or(msg));
                    }
                }
                emit(&doc);
                break code;
            }
            UntilPause::Paused { snapshot } => {
                if matches!(answerer, Answerer::Host) {
                    progress.finish();
                    tracing::info!(session_id = %id, round = snapshot.round, "session paused for a host answer");
                    emit(&payload::pause(&snapshot));
                    break exit::PAUSED;
                }
                progress.round(snapshot.round);
                let answers = if let Answerer::Provider {
                    client,
                    run_model,
                    human,
                } = &mut *answerer
                {
                    provider_pause(client, run_model.as_deref(), human, &snapshot, progress).await
                } else {
                    progress.suspend(|| answer_pause(answerer, &snapshot))
                };
                match answers {
                    Ok(answers) => {
                        if let Err(e) = engine.resume(id, answers).await {
                            progress.finish();
                            eprintln!("error: answer refused: {e}");
                            break exit::INTERNAL;
                        }
                    }
                    Err(Stop::Cancel) => {
                        let reason = CancelReason {
                            code: CancelCode::User,
                            detail: Some("cancelled at the terminal".into()),
                        };
                        let _ = engine.cancel(id, reason).await;
                    }
                    Err(Stop::Io(e)) => {
                        progress.finish();
                        eprintln!("error: {e}");
                        break exit::IO;
                    }
                }
            }
        }
    };
    if let Some(task) = watcher {
        // The stream ends after the terminal event; a paused exit stops it here.
        let _ = tokio::time::timeout(Duration::from_millis(200), task).await;
    }
    code
}

fn open_queries(snapshot: &Snapshot) -> (u64, i64, Vec<PendingQuery>) {
    let pending = snapshot
        .pending
        .as_ref()
        .expect("a paused snapshot carries its pending batch");
    let open = pending
        .queries
        .iter()
        .filter(|q| !pending.answered.contains(&q.id))
        .cloned()
        .collect();
    (pending.round, pending.issued_at, open)
}

/// The provider answers every LLM query of the pause concurrently (one request each,
/// under the client's limits); human questions go to the terminal meanwhile, or are
/// closed as `cancelled` when there is none.
async fn provider_pause(
    client: &Client,
    run_model: Option<&str>,
    human: &mut Option<Box<Terminal>>,
    snapshot: &Snapshot,
    progress: &Progress,
) -> Result<Answers, Stop> {
    let (round, issued_at, open) = open_queries(snapshot);
    let mut set = tokio::task::JoinSet::new();
    let llm: Vec<(usize, PendingQuery)> = open
        .iter()
        .enumerate()
        .filter(|(_, q)| matches!(q.request, QueryRequest::Llm { .. }))
        .map(|(i, q)| (i, q.clone()))
        .collect();
    progress.calls_started(llm.len());
    for (i, q) in llm {
        let client = client.clone();
        let run_model = run_model.map(str::to_string);
        let progress = progress.clone();
        set.spawn(async move {
            let item = client
                .answer_batch_detailed(std::slice::from_ref(&q), run_model.as_deref())
                .await
                .pop()
                .expect("one item per query");
            progress.call_finished(&q.id, round, &item.outcome);
            (i, item.answer)
        });
    }
    let mut answers: Vec<Option<Answer>> = vec![None; open.len()];
    for (i, q) in open.iter().enumerate() {
        if !matches!(q.request, QueryRequest::Human { .. }) {
            continue;
        }
        let a = match human {
            Some(t) => progress.suspend(|| answer_terminal(t, q, round, issued_at))?,
            None => {
                let mut a = Answer::ask_status(Some(q.id.clone()), AskStatus::Cancelled);
                a.meta = meta("provider");
                a
            }
        };
        answers[i] = Some(a);
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, a)) => answers[i] = Some(a),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    Ok(Answers {
        round: Some(round),
        answers: answers.into_iter().flatten().collect(),
    })
}

enum Stop {
    Cancel,
    Io(std::io::Error),
}

fn answer_pause(answerer: &mut Answerer, snapshot: &Snapshot) -> Result<Answers, Stop> {
    let (round, issued_at, open) = open_queries(snapshot);
    let mut answers = Vec::with_capacity(open.len());
    for q in &open {
        answers.push(answer_one(answerer, q, round, issued_at)?);
    }
    Ok(Answers {
        round: Some(round),
        answers,
    })
}

fn meta(answerer: &str) -> AnswerMeta {
    AnswerMeta {
        answerer: Some(answerer.to_string()),
        ..AnswerMeta::default()
    }
}

fn answer_one(
    answerer: &mut Answerer,
    q: &PendingQuery,
    round: u64,
    issued_at: i64,
) -> Result<Answer, Stop> {
    match answerer {
        Answerer::Scripted(s) => {
            let mut a = s.answer_pending(q);
            a.meta = meta("scripted");
            Ok(a)
        }
        Answerer::Terminal(t) => answer_terminal(t, q, round, issued_at),
        Answerer::Host | Answerer::Provider { .. } => {
            unreachable!("host pauses are printed and provider pauses answered elsewhere")
        }
    }
}

fn answer_terminal(
    t: &mut Terminal,
    q: &PendingQuery,
    round: u64,
    issued_at: i64,
) -> Result<Answer, Stop> {
    let id = Some(q.id.clone());
    let reply = match &q.request {
        QueryRequest::Llm { query } => t.ask_llm(&LlmPrompt {
            query_id: q.id.as_str(),
            round,
            max_tokens: query.max_tokens,
            model: query.model.as_deref(),
            system: query.system.as_deref(),
            prompt: &query.prompt,
        }),
        QueryRequest::Human { question } => t.ask_human(&HumanPrompt {
            query_id: q.id.as_str(),
            round,
            question: &question.question,
            choices: &question.choices,
            schema: question.schema.as_ref(),
            default: question.default.as_ref(),
            expires_at: question.timeout_ms.map(|ms| issued_at + ms as i64),
        }),
    }
    .map_err(Stop::Io)?;
    let mut a = match reply {
        TerminalReply::Text(text) => Answer::text(id, text),
        TerminalReply::AskStatus(s) if s == "declined" => {
            Answer::ask_status(id, AskStatus::Declined)
        }
        TerminalReply::AskStatus(_) => Answer::ask_status(id, AskStatus::Cancelled),
        TerminalReply::Cancel => return Err(Stop::Cancel),
    };
    a.meta = meta("terminal");
    Ok(a)
}
