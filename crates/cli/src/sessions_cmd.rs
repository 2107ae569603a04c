//! `alc sessions list|show|resume|cancel|prune` (interfaces.md §4.2, §9.2–§9.3): the
//! durable sessions of `<home>/alc.db`, across every process.
//!
//! `list` and `prune` read the journal directly; `show`, `resume` and `cancel` start an
//! engine on it (`show` never takes the session: it reads the journal through
//! `Engine::state`). `resume` feeds answers if given, then drives the session with the
//! shared code of `alc run`; a session hosted by another live process is `busy` (exit 5).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use alc_config::{LoadOptions, Settings};
use alc_core::{
    Answer, AnswerMeta, Answers, AskStatus, CancelAck, CancelCode, CancelError, CancelReason,
    Journal, JournalRecord, QueryId, QueryRequest, RecordBody, ResumeError, RowFilter, SessionId,
    SessionRow, SessionStatus, SnapshotOptions, StateError, TokenSource, TokenUsage,
};
use alc_mcp::wire as payload;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::progress::Progress;
use crate::run::{self, exit, Global, Host};

/// Arguments of `alc sessions`.
#[derive(Args, Debug)]
pub struct SessionsArgs {
    /// Home directory (beats `ALC_HOME`).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: SessionsCommand,
}

/// The `alc sessions` subcommands.
#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// List the sessions of the journal (all processes), newest first.
    List(ListArgs),
    /// Show a session's snapshot, optionally its transcript.
    Show(ShowArgs),
    /// Feed answers (if given), then continue the session with an answerer.
    Resume(ResumeArgs),
    /// Cancel a session.
    Cancel(CancelArgs),
    /// Delete terminal sessions older than a cut-off.
    Prune(PruneArgs),
}

/// `alc sessions list`.
#[derive(Args, Debug)]
pub struct ListArgs {
    /// `active`, `paused`, `running`, `resumable`, `completed`, `failed`, `cancelled` or `all`.
    #[arg(long, value_name = "S", default_value = "all")]
    pub status: String,
    /// Only sessions of this strategy (package).
    #[arg(long, value_name = "NAME")]
    pub strategy: Option<String>,
    /// At most this many sessions (1–1000).
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub limit: usize,
    /// Print the `alc_sessions` JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `alc sessions show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The session id.
    pub id: String,
    /// Include the exchanges (questions and answers).
    #[arg(long)]
    pub transcript: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `alc sessions resume`.
#[derive(Args, Debug)]
pub struct ResumeArgs {
    /// The session id.
    pub id: String,
    /// Who answers from here: `host`, `provider`, `terminal` or `scripted:FILE`
    /// (default: the recorded one).
    #[arg(long)]
    pub answerer: Option<String>,
    /// Model selector for the provider answerer.
    #[arg(long)]
    pub model: Option<String>,
    /// Answer text for the open query (or `--query-id`).
    #[arg(long, conflicts_with = "responses")]
    pub response: Option<String>,
    /// The query `--response` answers.
    #[arg(long, value_name = "Q", requires = "response")]
    pub query_id: Option<String>,
    /// The `alc_continue` `responses` array (JSON): `[{query_id, response | ask_status}]`.
    #[arg(long, value_name = "JSON")]
    pub responses: Option<String>,
    /// The round being answered (checked against the current one).
    #[arg(long, value_name = "N")]
    pub round: Option<u64>,
    /// Do not show progress on stderr.
    #[arg(long)]
    pub no_progress: bool,
}

/// `alc sessions cancel`.
#[derive(Args, Debug)]
pub struct CancelArgs {
    /// The session id.
    pub id: String,
    /// Recorded as the cancel reason's detail.
    #[arg(long)]
    pub reason: Option<String>,
}

/// `alc sessions prune`.
#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Cut-off age in days (default: `[session] transcript_retention_days`).
    #[arg(long, value_name = "DAYS")]
    pub older_than: Option<f64>,
    /// Only print what would be deleted.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `alc sessions …` and returns the exit code.
pub fn run(args: SessionsArgs, global: &Global) -> u8 {
    let settings = match Settings::load(&LoadOptions {
        home: args.home.clone().or_else(|| global.home.clone()),
        project_root: None,
        cwd: None,
    }) {
        Ok(s) => s,
        Err(e) => return run::usage_error(e, None),
    };
    if !global.quiet {
        for w in &settings.warnings {
            eprintln!("warning: {w}");
        }
    }
    match args.command {
        SessionsCommand::List(a) => list(a, &settings),
        SessionsCommand::Show(a) => show(a, &settings, global),
        SessionsCommand::Resume(a) => resume(a, &settings, global),
        SessionsCommand::Cancel(a) => cancel(a, &settings, global),
        SessionsCommand::Prune(a) => prune(a, &settings),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn parse_id(id: &str) -> Result<SessionId, u8> {
    SessionId::parse(id).map_err(|_| {
        eprintln!("error: session not found: {id}");
        exit::NOT_FOUND
    })
}

fn not_found(id: &str) -> u8 {
    eprintln!("error: session not found: {id}");
    exit::NOT_FOUND
}

fn busy(id: &str) -> u8 {
    eprintln!("error: session busy: {id} is hosted by another live process");
    eprintln!("hint: wait for that process to finish, or stop it and resume here");
    exit::BUSY
}

fn print_json(v: &Value) {
    run::emit(v);
}

// ---------------------------------------------------------------------------------------
// list

fn status_matches(filter: &str, status: &str) -> bool {
    match filter {
        "all" => true,
        "active" => status == "running" || status == "paused",
        f => f == status,
    }
}

const STATUSES: &[&str] = &[
    "active",
    "paused",
    "running",
    "resumable",
    "completed",
    "failed",
    "cancelled",
    "all",
];

fn list(a: ListArgs, settings: &Settings) -> u8 {
    if !STATUSES.contains(&a.status.as_str()) {
        return run::usage_error(
            format!("--status: unknown value '{}'", a.status),
            Some("use active, paused, running, resumable, completed, failed, cancelled or all"),
        );
    }
    if a.limit == 0 || a.limit > 1000 {
        return run::usage_error("--limit must be between 1 and 1000", None);
    }
    let journal = match run::open_journal(settings) {
        Ok(j) => j,
        Err(code) => return code,
    };
    // Leases of dead processes are void: their sessions are resumable.
    let _ = journal.void_dead_leases();
    let rows = match journal.open_sessions(&RowFilter::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot read the session database: {e}");
            return exit::IO;
        }
    };
    let mut rows: Vec<SessionRow> = rows
        .into_iter()
        .filter(|r| status_matches(&a.status, payload::row_status(r)))
        .filter(|r| {
            a.strategy
                .as_deref()
                .is_none_or(|s| r.labels.get("strategy").map(String::as_str) == Some(s))
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse((r.updated_at, r.created_at)));
    let total = rows.len();
    let page: Vec<Value> = rows
        .iter()
        .take(a.limit)
        .map(|r| payload::row_entry(r, Some(&journal)))
        .collect();
    let has_more = page.len() < total;
    if a.json {
        print_json(&json!({"sessions": page, "total": total, "has_more": has_more}));
        return exit::OK;
    }
    let now = now_ms();
    let mut out = String::new();
    out.push_str(&format!(
        "{:<34}  {:<9}  {:<5}  {:<16}  {:>5}  {:>5}  {:>8}  {}\n",
        "SESSION", "STATUS", "KIND", "STRATEGY", "ROUND", "CALLS", "UPDATED", "TASK"
    ));
    for e in &page {
        let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
        out.push_str(&format!(
            "{:<34}  {:<9}  {:<5}  {:<16}  {:>5}  {:>5}  {:>8}  {}\n",
            s("session_id"),
            s("status"),
            s("kind"),
            s("strategy"),
            e["round"],
            e["llm_calls"],
            age(now - e["updated_at"].as_i64().unwrap_or(now)),
            s("task_hint").replace('\n', " "),
        ));
    }
    if has_more {
        out.push_str(&format!("({} of {total} shown)\n", page.len()));
    }
    print!("{out}");
    exit::OK
}

fn age(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86400),
    }
}

// ---------------------------------------------------------------------------------------
// show

/// The exchanges of a session from its `pause` and `answer` records, in order.
fn transcript(records: &[JournalRecord]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    // (round, query id) → index in `out`.
    let mut index: BTreeMap<(u64, String), usize> = BTreeMap::new();
    for r in records {
        match &r.body {
            RecordBody::Pause { round, queries } => {
                for q in queries.iter() {
                    let mut m = Map::new();
                    m.insert("round".into(), json!(round));
                    m.insert("query_id".into(), json!(q.id.as_str()));
                    match &q.request {
                        QueryRequest::Llm { query } => {
                            m.insert("kind".into(), json!("llm"));
                            m.insert("prompt".into(), json!(query.prompt));
                            m.insert("system".into(), json!(query.system));
                            m.insert("max_tokens".into(), json!(query.max_tokens));
                            m.insert("model".into(), json!(query.model));
                        }
                        QueryRequest::Human { question } => {
                            m.insert("kind".into(), json!("human"));
                            m.insert("question".into(), json!(question.question));
                        }
                    }
                    m.insert("asked_at".into(), json!(r.at));
                    m.insert("answered_at".into(), Value::Null);
                    index.insert((*round, q.id.as_str().to_string()), out.len());
                    out.push(Value::Object(m));
                }
            }
            RecordBody::Answer { round, answer } => {
                let at = match &answer.query_id {
                    Some(q) => index.get(&(*round, q.as_str().to_string())).copied(),
                    // An id-less answer goes to the round's only open query.
                    None => index
                        .iter()
                        .filter(|((rd, _), i)| rd == round && out[**i]["answered_at"].is_null())
                        .map(|(_, i)| *i)
                        .next(),
                };
                let Some(i) = at else { continue };
                let e = &mut out[i];
                e["response"] = json!(answer.text);
                if let Some(s) = &answer.ask_status {
                    e["ask_status"] = json!(s);
                }
                if let Some(err) = &answer.error {
                    e["error"] = json!(err);
                }
                e["answered_by"] = json!(answer.meta.answerer);
                e["usage"] = json!(answer.usage);
                if let Some(p) = &answer.meta.provider {
                    e["provider"] = json!(p);
                }
                if let Some(s) = &answer.meta.stop_reason {
                    e["stop_reason"] = json!(s);
                }
                if let Some(n) = answer.meta.attempts {
                    e["attempts"] = json!(n);
                }
                if let Some(ms) = answer.meta.latency_ms {
                    e["latency_ms"] = json!(ms);
                }
                e["answered_at"] = json!(r.at);
            }
            _ => {}
        }
    }
    out
}

fn show(a: ShowArgs, settings: &Settings, global: &Global) -> u8 {
    let id = match parse_id(&a.id) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let progress = Progress::new(true, true, 0);
    let host = match Host::start(
        settings,
        alc_pkg::Resolver::new(settings.pkg_env()),
        &progress,
        global.quiet,
    ) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let code = show_with(&a, &id, &host, settings.transcript_mode() != "full");
    host.finish();
    code
}

/// `redact_finished`: `[log] transcripts` is `metadata` or `off`, so a finished
/// session's exchanges show sizes and digests instead of text, as `alc_log_view` does.
fn show_with(a: &ShowArgs, id: &SessionId, host: &Host, redact_finished: bool) -> u8 {
    let snap = match host.engine.state(id, &SnapshotOptions::default()) {
        Ok(s) => s,
        Err(StateError::NotFound { .. }) => return not_found(id.as_str()),
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let journal = &host.journal;
    let row = match journal.session(id) {
        Ok(Some(r)) => r,
        Ok(None) => return not_found(id.as_str()),
        Err(e) => {
            eprintln!("error: cannot read the session database: {e}");
            return exit::IO;
        }
    };
    let records = if a.transcript {
        match journal.read(id, 1) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: cannot read the session database: {e}");
                return exit::IO;
            }
        }
    } else {
        Vec::new()
    };
    let status = payload::row_status(&row);
    let mut doc = match serde_json::to_value(&snap) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    doc.insert("status".into(), json!(status));
    doc.insert("resumable".into(), json!(status == "resumable"));
    doc.insert("current".into(), payload::current(&snap));
    let mut exchanges = a.transcript.then(|| transcript(&records));
    if redact_finished && snap.phase.is_terminal() {
        for e in exchanges.iter_mut().flatten() {
            if let Value::Object(m) = e {
                alc_mcp::transcripts::redact_exchange(m);
            }
        }
    }
    if let Some(x) = &exchanges {
        doc.insert("exchanges".into(), json!(x));
    }
    if a.json {
        print_json(&Value::Object(doc));
        return exit::OK;
    }
    let mut out = String::new();
    out.push_str(&format!("session   {}\n", id.as_str()));
    out.push_str(&format!("status    {status}\n"));
    for k in ["kind", "strategy", "answerer", "task_hint"] {
        if let Some(v) = snap.labels.get(k) {
            out.push_str(&format!("{k:<9} {v}\n"));
        }
    }
    out.push_str(&format!("round     {}\n", snap.round));
    out.push_str(&format!("llm_calls {}\n", snap.metrics.llm_calls));
    match &snap.outcome {
        Some(o) => out.push_str(&format!(
            "outcome   {}\n",
            serde_json::to_string(o).unwrap_or_default()
        )),
        None => {
            if let Some(p) = &snap.pending {
                let open: Vec<&str> = p
                    .queries
                    .iter()
                    .filter(|q| !p.answered.contains(&q.id))
                    .map(|q| q.id.as_str())
                    .collect();
                out.push_str(&format!("pending   {}\n", open.join(", ")));
            }
        }
    }
    for e in exchanges.iter().flatten() {
        let usage = &e["usage"];
        let tokens = match (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64(),
        ) {
            (Some(p), Some(c)) => format!("{} tokens", p + c),
            _ => "- tokens".into(),
        };
        let latency = match (e["asked_at"].as_i64(), e["answered_at"].as_i64()) {
            (Some(a), Some(b)) => format!("{:.1} s", (b - a) as f64 / 1000.0),
            _ => "unanswered".into(),
        };
        out.push_str(&format!(
            "\n--- round {} {} ({}) answered by {} · {tokens} · {latency}\n",
            e["round"],
            e["query_id"].as_str().unwrap_or("?"),
            e["kind"].as_str().unwrap_or("llm"),
            e["answered_by"].as_str().unwrap_or("-"),
        ));
        if let Some(s) = e["system"].as_str() {
            out.push_str(&format!("system: {s}\n"));
        }
        let redacted = e["prompt_chars"]
            .as_u64()
            .or(e["question_chars"].as_u64())
            .map(|n| format!("[{n} bytes, not kept]"));
        let asked = e["prompt"]
            .as_str()
            .or(e["question"].as_str())
            .map(str::to_string)
            .or(redacted)
            .unwrap_or_default();
        out.push_str(&format!("> {}\n", asked.replace('\n', "\n> ")));
        match (e["response"].as_str(), e["ask_status"].as_str()) {
            (Some(r), _) => out.push_str(&format!("{r}\n")),
            (None, Some(s)) => out.push_str(&format!("[{s}]\n")),
            _ => {
                if let Some(n) = e["response_chars"].as_u64() {
                    out.push_str(&format!("[{n} bytes, not kept]\n"));
                }
            }
        }
    }
    print!("{out}");
    exit::OK
}

// ---------------------------------------------------------------------------------------
// resume

fn host_meta() -> AnswerMeta {
    AnswerMeta {
        answerer: Some("host".into()),
        ..AnswerMeta::default()
    }
}

fn query_id(s: &str) -> Result<QueryId, String> {
    QueryId::parse(s).ok_or_else(|| format!("not a query id: {s}"))
}

/// The answers given on the command line, if any.
fn given_answers(a: &ResumeArgs) -> Result<Option<Vec<Answer>>, String> {
    if let Some(text) = &a.response {
        let qid = a.query_id.as_deref().map(query_id).transpose()?;
        let mut ans = Answer::text(qid, text.clone());
        ans.meta = host_meta();
        return Ok(Some(vec![ans]));
    }
    let Some(raw) = &a.responses else {
        return Ok(None);
    };
    let v: Value =
        serde_json::from_str(raw).map_err(|e| format!("--responses is not valid JSON: {e}"))?;
    let Value::Array(items) = v else {
        return Err("--responses must be a JSON array".into());
    };
    if items.is_empty() {
        return Err("--responses must not be empty".into());
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(m) = item else {
            return Err(format!(
                "--responses[{i}] must be an object {{query_id, response}}"
            ));
        };
        let qid = match m.get("query_id") {
            Some(Value::String(s)) => query_id(s)?,
            _ => return Err(format!("--responses[{i}].query_id is required")),
        };
        let mut ans = match (m.get("ask_status"), m.get("response")) {
            (Some(Value::String(s)), None) => {
                let status = match s.as_str() {
                    "declined" => AskStatus::Declined,
                    "cancelled" => AskStatus::Cancelled,
                    other => {
                        return Err(format!(
                            "--responses[{i}].ask_status: '{other}' (declined or cancelled)"
                        ))
                    }
                };
                Answer::ask_status(Some(qid), status)
            }
            (None, Some(Value::String(s))) => Answer::text(Some(qid), s.clone()),
            (None, Some(v)) if !v.is_null() => Answer::text(Some(qid), v.to_string()),
            _ => {
                return Err(format!(
                    "--responses[{i}] needs exactly one of response and ask_status"
                ))
            }
        };
        if let Some(Value::Object(u)) = m.get("usage") {
            ans.usage = Some(TokenUsage {
                prompt_tokens: u.get("prompt_tokens").and_then(Value::as_u64),
                completion_tokens: u.get("completion_tokens").and_then(Value::as_u64),
                cached_tokens: None,
                reasoning_tokens: None,
                source: TokenSource::Provided,
            });
        }
        ans.meta = host_meta();
        out.push(ans);
    }
    Ok(Some(out))
}

fn resume(a: ResumeArgs, settings: &Settings, global: &Global) -> u8 {
    let id = match parse_id(&a.id) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let answers = match given_answers(&a) {
        Ok(x) => x,
        Err(msg) => return run::usage_error(msg, None),
    };
    let quiet = global.quiet;
    let progress = Progress::new(quiet, a.no_progress, global.verbose);
    let host = match Host::start(
        settings,
        alc_pkg::Resolver::new(settings.pkg_env()),
        &progress,
        quiet,
    ) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let code = resume_with(&a, &id, answers, settings, &host, &progress, quiet);
    host.finish();
    code
}

fn resume_with(
    a: &ResumeArgs,
    id: &SessionId,
    answers: Option<Vec<Answer>>,
    settings: &Settings,
    host: &Host,
    progress: &Progress,
    quiet: bool,
) -> u8 {
    let engine = &host.engine;
    let snap = match engine.state(id, &SnapshotOptions::default()) {
        Ok(s) => s,
        Err(StateError::NotFound { .. }) => {
            progress.finish();
            return not_found(id.as_str());
        }
        Err(e) => {
            progress.finish();
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let choice = a
        .answerer
        .clone()
        .unwrap_or_else(|| run::recorded_answerer(&snap.labels));
    let model = a
        .model
        .clone()
        .or_else(|| snap.labels.get("model").cloned());
    let mut answerer =
        match run::make_answerer(&choice, settings, model.as_deref(), None, progress, quiet) {
            Ok(x) => x,
            Err(code) => {
                progress.finish();
                return code;
            }
        };
    match answers {
        Some(answers) => {
            let given = Answers {
                round: a.round,
                answers,
            };
            match engine.resume_now(id, given) {
                Ok(_) => {}
                Err(ResumeError::NotFound { .. }) => {
                    progress.finish();
                    return not_found(id.as_str());
                }
                Err(ResumeError::Busy { .. }) => {
                    progress.finish();
                    return busy(id.as_str());
                }
                Err(ResumeError::NotPaused { phase }) => {
                    progress.finish();
                    eprintln!(
                        "error: session {} is not paused (phase {phase})",
                        id.as_str()
                    );
                    if phase.is_terminal() {
                        eprintln!(
                            "hint: `alc sessions show {}` prints its outcome",
                            id.as_str()
                        );
                    }
                    return exit::BUSY;
                }
                Err(ResumeError::Journal { message }) => {
                    progress.finish();
                    eprintln!("error: journal: {message}");
                    return exit::IO;
                }
                Err(e) => {
                    progress.finish();
                    eprintln!("error: answer refused: {e}");
                    return exit::USAGE;
                }
            }
        }
        None => {
            // Host the session here (replaying it) before driving, so its output is seen.
            match engine.adopt_now(id, BTreeMap::new()) {
                Ok(_) | Err(alc_core::AdoptError::AlreadyTerminal { .. }) => {}
                Err(alc_core::AdoptError::NotFound { .. }) => {
                    progress.finish();
                    return not_found(id.as_str());
                }
                Err(alc_core::AdoptError::Busy { .. }) => {
                    progress.finish();
                    return busy(id.as_str());
                }
                Err(e) => {
                    progress.finish();
                    eprintln!("error: {e}");
                    return exit::IO;
                }
            }
        }
    }
    host.rt
        .block_on(run::drive(engine, id, &mut answerer, quiet, progress))
}

// ---------------------------------------------------------------------------------------
// cancel

fn cancel(a: CancelArgs, settings: &Settings, global: &Global) -> u8 {
    let id = match parse_id(&a.id) {
        Ok(id) => id,
        Err(code) => return code,
    };
    let progress = Progress::new(true, true, 0);
    let host = match Host::start(
        settings,
        alc_pkg::Resolver::new(settings.pkg_env()),
        &progress,
        global.quiet,
    ) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let reason = CancelReason {
        code: CancelCode::User,
        detail: a.reason.clone(),
    };
    let code = match host.engine.cancel_now(&id, reason) {
        Ok(CancelAck::AlreadyTerminal { phase }) => {
            let status = match phase {
                alc_core::Phase::Failed => "error",
                p => p.as_str(),
            };
            print_json(&json!({
                "status": status, "session_id": id.as_str(), "already_terminal": true,
            }));
            exit::OK
        }
        Ok(CancelAck::Cancelled | CancelAck::Requested) => {
            let waited = host.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), host.engine.wait(&id)).await
            });
            match waited {
                Ok(Ok(t)) => {
                    print_json(&payload::terminal(&t));
                    exit::OK
                }
                Ok(Err(e)) => {
                    eprintln!("error: {e}");
                    exit::INTERNAL
                }
                Err(_) => {
                    print_json(&json!({
                        "status": "cancel_requested", "session_id": id.as_str(),
                    }));
                    exit::OK
                }
            }
        }
        Err(CancelError::NotFound { .. }) => not_found(id.as_str()),
        Err(CancelError::Busy { .. }) => busy(id.as_str()),
        Err(e) => {
            eprintln!("error: {e}");
            exit::IO
        }
    };
    host.finish();
    code
}

// ---------------------------------------------------------------------------------------
// prune

fn prune(a: PruneArgs, settings: &Settings) -> u8 {
    let days = a
        .older_than
        .unwrap_or(settings.retention().transcript_retention_days as f64);
    if !days.is_finite() || days < 0.0 {
        return run::usage_error("--older-than must be a non-negative number of days", None);
    }
    let journal = match run::open_journal(settings) {
        Ok(j) => j,
        Err(code) => return code,
    };
    let cutoff = now_ms() - (days * 86_400_000.0) as i64;
    if a.dry_run {
        let rows = match journal.open_sessions(&RowFilter {
            status: Some(SessionStatus::Terminal),
            updated_before: Some(cutoff),
            ..RowFilter::default()
        }) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: cannot read the session database: {e}");
                return exit::IO;
            }
        };
        let mut out = format!(
            "would delete {} terminal session{} older than {days} days\n",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        );
        for r in &rows {
            out.push_str(&format!(
                "{}  {}\n",
                r.session_id.as_str(),
                r.phase.wire_name()
            ));
        }
        print!("{out}");
        return exit::OK;
    }
    match journal.prune_terminal(cutoff) {
        Ok(n) => {
            println!(
                "deleted {n} terminal session{} older than {days} days",
                if n == 1 { "" } else { "s" }
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: cannot prune the session database: {e}");
            exit::IO
        }
    }
}
