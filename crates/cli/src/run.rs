//! `alc run`: drive one session to its end with an answerer.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alc_core::{
    Answer, AnswerMeta, Answers, AskStatus, CancelCode, CancelReason, EngineConfig, EventBody,
    ObserveItem, Outcome, PendingQuery, Program, QueryRequest, SessionId, SessionSpec, Snapshot,
    TokenSource, TokenUsage, UntilPause,
};
use alc_engine::{Engine, HostServices, PackageRoots};
use clap::Args;
use serde_json::Value;

use crate::answer::scripted::{QueryKind, ScriptedAnswerer, ScriptedQuery, ScriptedReply};
use crate::answer::terminal::{HumanPrompt, LlmPrompt, TerminalAnswerer, TerminalReply};
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
    /// File or package not found.
    pub const NOT_FOUND: u8 = 4;
    /// Provider error.
    pub const PROVIDER: u8 = 6;
    /// Storage or I/O error.
    pub const IO: u8 = 7;
    /// Session cancelled.
    pub const CANCELLED: u8 = 9;
    /// Internal error.
    pub const INTERNAL: u8 = 70;
}

/// Arguments of `alc run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A `.lua` file, `-` for stdin, or the name of an installed package.
    pub target: String,
    /// Sets `ctx.task`.
    #[arg(long)]
    pub task: Option<String>,
    /// The session context: a JSON object, or `@FILE` holding one.
    #[arg(long)]
    pub ctx: Option<String>,
    /// Who answers: `scripted:FILE`, `terminal` or `host`.
    #[arg(long)]
    pub answerer: Option<String>,
    /// Wall-clock deadline for the whole session, in seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Fixed seed for `math.random` (default: random).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Do not print progress notices on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

enum Answerer {
    Scripted(ScriptedAnswerer),
    Terminal(Box<TerminalAnswerer<std::io::StdinLock<'static>, std::io::Stderr>>),
    Host,
}

fn usage_error(msg: impl std::fmt::Display, hint: Option<&str>) -> u8 {
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

fn package_roots() -> PackageRoots {
    let mut roots = Vec::new();
    if let Ok(paths) = std::env::var("ALC_PACKAGES_PATH") {
        for p in std::env::split_paths(&paths) {
            if !p.as_os_str().is_empty() {
                roots.push(("ALC_PACKAGES_PATH".to_string(), p));
            }
        }
    }
    let home = std::env::var_os("ALC_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".algocline")));
    if let Some(home) = home {
        roots.push(("global".to_string(), home.join("packages")));
    }
    PackageRoots::new(roots)
}

fn program_for(target: &str) -> Result<Program, (u8, String)> {
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

/// Runs `alc run` and returns the exit code.
pub fn run(args: RunArgs, quiet: bool) -> u8 {
    let program = match program_for(&args.target) {
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
    let answerer_name = args
        .answerer
        .clone()
        .or_else(|| std::env::var("ALC_ANSWERER").ok());
    let mut answerer = match answerer_name.as_deref() {
        Some(a) if a.starts_with("scripted:") => {
            let path = &a["scripted:".len()..];
            match ScriptedAnswerer::from_file(std::path::Path::new(path)) {
                Ok(s) => Answerer::Scripted(s),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::USAGE;
                }
            }
        }
        Some("terminal") => {
            if !std::io::stdin().is_terminal() {
                return usage_error(
                    "--answerer terminal needs stdin to be a terminal",
                    Some("use --answerer scripted:FILE for non-interactive runs"),
                );
            }
            Answerer::Terminal(Box::new(TerminalAnswerer::new(
                std::io::stdin().lock(),
                std::io::stderr(),
            )))
        }
        Some("host") => Answerer::Host,
        Some(other) => {
            return usage_error(
                format!("unknown answerer '{other}'"),
                Some("use scripted:FILE, terminal or host"),
            )
        }
        None if std::io::stdin().is_terminal() => Answerer::Terminal(Box::new(
            TerminalAnswerer::new(std::io::stdin().lock(), std::io::stderr()),
        )),
        None => {
            return usage_error(
                "no answerer: stdin is not a terminal and no --answerer was given",
                Some("pass --answerer scripted:FILE, --answerer terminal or --answerer host"),
            )
        }
    };

    let human_channel = match &answerer {
        Answerer::Scripted(s) => s.has_human_rules(),
        Answerer::Terminal(_) | Answerer::Host => true,
    };
    let mut spec = SessionSpec::new(program);
    spec.ctx = Value::Object(ctx);
    spec.seed = args.seed;
    spec.human_channel = human_channel;
    spec.labels.insert("kind".into(), "run".into());
    if let Some(t) = args.timeout {
        if t.is_nan() || t <= 0.0 {
            return usage_error("--timeout must be a positive number of seconds", None);
        }
        spec.limits.deadline_ms = Some((t * 1000.0) as u64);
    }

    let services = HostServices {
        modules: Arc::new(package_roots()),
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
            return exit::INTERNAL;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let id = match engine.spawn_now(spec) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let code = rt.block_on(drive(
        &engine,
        &id,
        &mut answerer,
        quiet || args.no_progress,
    ));
    engine.shutdown_now(alc_engine::ShutdownMode::Cancel);
    code
}

/// Prints the session's log lines on stderr as they arrive.
async fn print_logs(engine: Engine, id: SessionId) {
    let Ok(mut stream) = engine.observe(&id, 0) else {
        return;
    };
    while let Some(item) = stream.next().await {
        if let ObserveItem::Event { event } = item {
            if let EventBody::Log { entry } = event.body {
                eprintln!("lua: {}", entry.message);
            }
        }
    }
}

async fn drive(engine: &Engine, id: &SessionId, answerer: &mut Answerer, quiet: bool) -> u8 {
    let logs = (!quiet).then(|| tokio::spawn(print_logs(engine.clone(), id.clone())));
    let code = loop {
        let until = match engine.run_until_pause(id, Duration::from_secs(3600)).await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("error: {e}");
                break exit::INTERNAL;
            }
        };
        match until {
            UntilPause::Running { .. } => continue,
            UntilPause::Terminal { terminal } => {
                println!("{}", payload::terminal(&terminal));
                break match &terminal.outcome {
                    Outcome::Completed { .. } => exit::OK,
                    Outcome::Cancelled { .. } => exit::CANCELLED,
                    Outcome::Failed { kind, code, .. } => {
                        match payload::failure_code(*kind, code.as_deref()).as_str() {
                            "provider_error" => exit::PROVIDER,
                            "io_error" => exit::IO,
                            "internal" => exit::INTERNAL,
                            _ => exit::FAILED,
                        }
                    }
                };
            }
            UntilPause::Paused { snapshot } => {
                if matches!(answerer, Answerer::Host) {
                    println!("{}", payload::pause(&snapshot));
                    break exit::PAUSED;
                }
                match answer_pause(answerer, &snapshot) {
                    Ok(answers) => {
                        if let Err(e) = engine.resume(id, answers).await {
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
                        eprintln!("error: {e}");
                        break exit::IO;
                    }
                }
            }
        }
    };
    if let Some(task) = logs {
        // The stream ends after the terminal event; a paused exit stops it here.
        let _ = tokio::time::timeout(Duration::from_millis(200), task).await;
    }
    code
}

enum Stop {
    Cancel,
    Io(std::io::Error),
}

fn answer_pause(answerer: &mut Answerer, snapshot: &Snapshot) -> Result<Answers, Stop> {
    let pending = snapshot
        .pending
        .as_ref()
        .expect("a paused snapshot carries its pending batch");
    let open: Vec<&PendingQuery> = pending
        .queries
        .iter()
        .filter(|q| !pending.answered.contains(&q.id))
        .collect();
    let mut answers = Vec::with_capacity(open.len());
    for q in open {
        answers.push(answer_one(answerer, q, pending.round, pending.issued_at)?);
    }
    Ok(Answers {
        round: Some(pending.round),
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
    let id = Some(q.id.clone());
    match answerer {
        Answerer::Scripted(s) => {
            let (kind, prompt, system) = match &q.request {
                QueryRequest::Llm { query } => (
                    QueryKind::Llm,
                    query.prompt.as_str(),
                    query.system.as_deref(),
                ),
                QueryRequest::Human { question } => {
                    (QueryKind::Human, question.question.as_str(), None)
                }
            };
            let reply = s.answer(&ScriptedQuery {
                kind,
                query_id: q.id.as_str(),
                prompt,
                system,
            });
            let mut a = match reply {
                ScriptedReply::Text { text, usage } => {
                    let mut a = Answer::text(id, text);
                    a.usage = usage.map(|(p, c)| TokenUsage {
                        prompt_tokens: Some(p),
                        completion_tokens: Some(c),
                        cached_tokens: None,
                        reasoning_tokens: None,
                        source: TokenSource::Provided,
                    });
                    a
                }
                ScriptedReply::AskStatus(s) => {
                    let status = if s == "declined" {
                        AskStatus::Declined
                    } else {
                        AskStatus::Cancelled
                    };
                    Answer::ask_status(id, status)
                }
                ScriptedReply::NoMatch { message } => {
                    Answer::error(id, "scripted_no_match", message)
                }
            };
            a.meta = meta("scripted");
            Ok(a)
        }
        Answerer::Terminal(t) => {
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
        Answerer::Host => unreachable!("host pauses are printed, not answered"),
    }
}
