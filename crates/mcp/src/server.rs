//! The rmcp server handler and the tool implementations (interfaces.md §2.4–§2.10, §3).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use alc_core::EngineConfig;
use alc_core::{
    Answer, AnswerMeta, Answers, AskStatus, CancelAck, CancelCode, CancelReason, EventBody,
    ObserveItem, Outcome, Phase, Program, QueryId, QueryRequest, ResumeAck, ResumeError, SessionId,
    SessionSpec, Snapshot, SnapshotOptions, SpawnError, TokenSource, TokenUsage, UntilPause,
    WaitError,
};
use alc_core::{Journal, RowFilter, SessionRow};
use alc_engine::{Engine, ListFilter, PackageRoots};
use alc_pkg::PkgEnv;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CancelledNotificationParam,
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, InitializeRequestParams, InitializeResult,
    ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, Prompt, PromptArgument,
    PromptMessage, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Reference, RequestId, ResourceContents, ResourceTemplate, Role,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt};
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::watch;

use crate::args::{self, preview, Args, ToolError, ToolResult};
use crate::auto::{self, AnswererKind, Listener, SessionAnswerer};
use crate::evals;
use crate::mrtr::{self, RequestState, Sealer};
use crate::packages;
use crate::resources::{self, ResourceUri};
use crate::sampling;
use crate::schema;
use crate::scripted::ScriptedAnswerer;
use crate::transcripts::{self, Transcripts};
use crate::wire;

/// The product version reported as `serverInfo.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Server instructions (≤ 1500 characters, §3.2).
const INSTRUCTIONS: &str = "algocline runs LLM reasoning strategies written in Lua. \
Start with alc_run (inline Lua `code`) or alc_advice (an installed `strategy` package plus `task`). \
When a result has status `needs_response`, answer every pending query yourself as the LLM: \
a single query carries `query_id` and `prompt` (plus optional `system`, `max_tokens`); a batch lists `queries[].id`. \
Send the answers with alc_continue {session_id, round, query_id, response} or {session_id, round, responses:[{query_id, response}]}. \
A query with `kind: \"human\"` is a question for the user: ask the user and pass their reply (or `ask_status`), never answer it yourself. \
Repeat until the status is `completed`, `error` or `cancelled`. \
alc_continue with only session_id re-fetches the current payload. \
Use alc_status and alc_sessions to inspect sessions and alc_cancel to stop one. \
With answerer `provider` (or inline `script` rules) the server answers LLM queries itself and the call returns at the end; \
alc_continue {session_id, answerer: \"provider\"} hands a paused session over. \
Packages: alc_pkg_list, alc_pkg_install, alc_init; transcripts: alc_log_view, alc_stats, alc_note; \
evals: alc_eval (provider or `script` answers), alc_eval_history, alc_eval_compare, alc_scenario_list.";

/// Server settings not taken from the environment.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Engine configuration (`[engine]`, `[limits]`, ... of config.toml).
    pub engine_config: EngineConfig,
    /// `mcp.call_wait_ms`: default `wait_ms` of the execution tools (0 = no limit).
    pub call_wait_ms: u64,
    /// Package environment (`None` → `PkgEnv::from_env(None, None)`).
    pub pkg_env: Option<PkgEnv>,
    /// Provider client (`None` → built from the process environment on first use).
    pub llm: Option<alc_llm::Client>,
    /// Answerer used when a call names none (`host`).
    pub default_answerer: String,
    /// What finished sessions' transcripts keep (`[log] transcripts`, `ALC_LOG_LEVEL=off`).
    pub transcripts: transcripts::TranscriptMode,
    /// `mcp.mrtr = "auto"`: calls without an answerer from 2026-07-28 clients that declare
    /// `sampling` are answered through Multi Round-Trip results (§3.8).
    pub mrtr_auto: bool,
    /// `mcp.sampling` is not `"off"`: the `sampling` answerer may be asked for (§3.9).
    pub sampling_enabled: bool,
    /// `[sandbox] trusted` of the user's `config.toml`: sessions run in trusted mode.
    pub trusted: bool,
    /// Process variables `os.getenv` may return (`[sandbox] env_allow`, already filtered).
    pub env_allow: std::collections::BTreeMap<String, String>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            engine_config: EngineConfig::default(),
            call_wait_ms: 0,
            pkg_env: None,
            llm: None,
            default_answerer: "host".into(),
            transcripts: transcripts::TranscriptMode::Full,
            mrtr_auto: false,
            sampling_enabled: true,
            trusted: false,
            env_allow: Default::default(),
        }
    }
}

/// The resolved home (`ALC_HOME`, else `~/.algocline`) and its source label.
pub fn home_dir() -> (PathBuf, &'static str) {
    if let Some(h) = std::env::var_os("ALC_HOME").filter(|h| !h.is_empty()) {
        return (PathBuf::from(h), "ALC_HOME");
    }
    let base = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    (base.join(".algocline"), "default")
}

fn search_paths() -> Vec<(String, PathBuf)> {
    let mut roots = Vec::new();
    if let Ok(paths) = std::env::var("ALC_PACKAGES_PATH") {
        for p in std::env::split_paths(&paths) {
            if !p.as_os_str().is_empty() {
                roots.push(("ALC_PACKAGES_PATH".to_string(), p));
            }
        }
    }
    roots.push(("default".to_string(), home_dir().0.join("packages")));
    roots
}

/// Package roots: `ALC_PACKAGES_PATH` entries, then `<home>/packages`.
pub fn package_roots() -> PackageRoots {
    PackageRoots::new(search_paths())
}

/// The MCP server: tools over one engine.
#[derive(Clone)]
pub struct AlcServer {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    options: ServeOptions,
    pkg_env: PkgEnv,
    /// The provider client, built on first use when not given.
    llm: OnceLock<Result<alc_llm::Client, String>>,
    /// In-flight execution calls: request id → the session they drive.
    inflight: Mutex<HashMap<RequestId, SessionId>>,
    /// Answerer of each session started or switched by this server (absent = host).
    answerers: Mutex<HashMap<SessionId, SessionAnswerer>>,
    /// Background drivers of sessions with a non-host answerer.
    drivers: Mutex<HashMap<SessionId, Driver>>,
    /// The transcript database, opened on first use.
    transcripts: OnceLock<Result<Arc<Transcripts>, String>>,
    /// The session journal shared with the engine (listing of every process's sessions).
    journal: OnceLock<Arc<dyn Journal>>,
    /// Seals MRTR request states with `<home>/secret.key`, loaded on first use.
    sealer: OnceLock<Result<Sealer, String>>,
    /// Concurrency limit of sampling requests when no provider client could be built.
    sampling_limit: Arc<tokio::sync::Semaphore>,
}

/// What the client of one request declared (§3.1, §3.8, §3.9).
#[derive(Clone)]
struct Conn {
    /// The request is served under 2026-07-28 (per-request `_meta`).
    modern: bool,
    /// The client declared `sampling` (in the request's `_meta`, or at `initialize`).
    sampling: bool,
    /// The connection, for server-to-client requests (legacy revisions only).
    peer: Peer<RoleServer>,
}

impl Conn {
    fn of(ctx: &RequestContext<RoleServer>) -> Conn {
        let modern = ctx
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        let sampling = ctx
            .client_capabilities()
            .is_some_and(|c| c.sampling.is_some());
        Conn {
            modern,
            sampling,
            peer: ctx.peer.clone(),
        }
    }

    /// MRTR can be used: 2026-07-28 and the client declared `sampling`.
    fn mrtr_capable(&self) -> bool {
        self.modern && self.sampling
    }
}

/// Tools whose pauses may be answered through MRTR (they start or continue a session).
const MRTR_TOOLS: &[&str] = &["alc_run", "alc_advice", "alc_continue"];

/// Result `_meta` naming the session of an MRTR result (§3.8).
fn session_meta(id: &SessionId) -> rmcp::model::MetaObject {
    let mut m = Map::new();
    m.insert(mrtr::SESSION_META_KEY.into(), json!(id.as_str()));
    rmcp::model::MetaObject(m)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a session's background driver is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DriverState {
    /// Answering queries / waiting for the session.
    Working,
    /// Paused on questions only the caller can answer.
    NeedsCaller,
    /// The session ended (or vanished).
    Done,
}

struct Driver {
    state: watch::Receiver<DriverState>,
    listener: Listener,
}

/// Serves `server` on a reader/writer pair (newline-delimited JSON-RPC) until the peer
/// closes the connection. A connection that ends before `initialize` is not an error.
pub async fn serve_io<R, W>(server: AlcServer, read: R, write: W) -> Result<(), String>
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    match server.serve((read, write)).await {
        Ok(running) => {
            running.waiting().await.map_err(|e| e.to_string())?;
            Ok(())
        }
        Err(e) => {
            eprintln!("alc serve: connection ended before initialization: {e}");
            Ok(())
        }
    }
}

fn far_future() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

fn phase_status(p: Phase) -> &'static str {
    p.wire_name()
}

fn legacy_state(p: Phase) -> &'static str {
    match p {
        Phase::Paused => "paused",
        p if p.is_terminal() => "terminal",
        _ => "running",
    }
}

fn outcome_status(p: Phase) -> &'static str {
    match p {
        Phase::Failed => "error",
        p => p.as_str(),
    }
}

fn parse_session(id: &str) -> Result<SessionId, ToolError> {
    SessionId::parse(id).map_err(|_| {
        ToolError::new("session_not_found", format!("session not found: {id}")).with_session(id)
    })
}

fn not_found(id: &SessionId) -> ToolError {
    ToolError::new("session_not_found", format!("session not found: {id}"))
        .with_session(id.as_str())
}

fn resume_error(id: &SessionId, e: ResumeError) -> ToolError {
    let sid = id.as_str();
    let (code, msg): (&'static str, String) = match &e {
        ResumeError::NotFound { .. } => ("session_not_found", format!("session not found: {id}")),
        ResumeError::Busy { .. } => ("busy", e.to_string()),
        ResumeError::NotPaused { phase } => (
            "not_paused",
            format!("session is {}, not paused", phase.wire_name()),
        ),
        ResumeError::StaleRound { given, current } => (
            "stale_round",
            format!("stale round: given {given}, current round is {current}"),
        ),
        ResumeError::EmptyAnswers => (
            "invalid_params",
            "`responses` must hold at least one answer".into(),
        ),
        ResumeError::AmbiguousTarget { unanswered } => (
            "ambiguous_query",
            format!("{unanswered} queries are pending; specify query_id"),
        ),
        ResumeError::UnknownQuery { query_id } => (
            "unknown_query",
            format!("unknown query: {query_id} is not pending in the current round"),
        ),
        ResumeError::ConflictingAnswer { query_id } => (
            "already_answered",
            format!("{query_id} was already answered differently in this round"),
        ),
        ResumeError::InvalidAnswer { .. } => ("invalid_params", e.to_string()),
        ResumeError::Journal { .. } => ("io_error", e.to_string()),
        ResumeError::ShuttingDown => ("internal", e.to_string()),
    };
    ToolError::new(code, msg).with_session(sid)
}

fn wait_error(id: &SessionId, e: WaitError) -> ToolError {
    match e {
        WaitError::NotFound { .. } => not_found(id),
        other => ToolError::new("internal", other.to_string()).with_session(id.as_str()),
    }
}

/// How `pending` entries of `alc_status` are shown (§2.7).
#[derive(Clone, Debug)]
struct PendingFilter {
    max_tokens: bool,
    system: bool,
    grounded: bool,
    underspecified: bool,
    prompt: PromptMode,
}

#[derive(Clone, Debug)]
enum PromptMode {
    Off,
    Preview(usize),
    Full,
}

fn preview_chars() -> usize {
    std::env::var("ALC_PROMPT_PREVIEW_CHARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn parse_pending_filter(v: Option<Value>) -> Result<Option<PendingFilter>, ToolError> {
    let Some(v) = v else { return Ok(None) };
    match v {
        Value::String(s) => match s.as_str() {
            "meta" => Ok(Some(PendingFilter {
                max_tokens: true,
                system: true,
                grounded: true,
                underspecified: true,
                prompt: PromptMode::Off,
            })),
            "preview" => Ok(Some(PendingFilter {
                max_tokens: true,
                system: false,
                grounded: false,
                underspecified: false,
                prompt: PromptMode::Preview(preview_chars()),
            })),
            "full" => Ok(Some(PendingFilter {
                max_tokens: true,
                system: true,
                grounded: true,
                underspecified: true,
                prompt: PromptMode::Full,
            })),
            other => Err(ToolError::invalid(format!(
                "`pending_filter`: unknown preset '{other}' (use meta, preview, full or an object)"
            ))),
        },
        Value::Object(m) => {
            let flag = |k: &str| -> Result<bool, ToolError> {
                match m.get(k) {
                    None | Some(Value::Null) => Ok(false),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(ToolError::invalid(format!(
                        "`pending_filter.{k}` must be a boolean"
                    ))),
                }
            };
            let prompt = match m.get("prompt") {
                None | Some(Value::Null) => PromptMode::Off,
                Some(Value::Object(p)) => match p.get("mode").and_then(Value::as_str) {
                    Some("off") => PromptMode::Off,
                    Some("full") => PromptMode::Full,
                    Some("preview") => {
                        let n = match p.get("chars") {
                            None | Some(Value::Null) => preview_chars(),
                            Some(c) => c.as_u64().ok_or_else(|| {
                                ToolError::invalid(
                                    "`pending_filter.prompt.chars` must be a non-negative integer",
                                )
                            })? as usize,
                        };
                        PromptMode::Preview(n)
                    }
                    _ => {
                        return Err(ToolError::invalid(
                            "`pending_filter.prompt.mode` must be off, preview or full",
                        ))
                    }
                },
                Some(_) => {
                    return Err(ToolError::invalid(
                        "`pending_filter.prompt` must be an object {\"mode\": ...}",
                    ))
                }
            };
            let _ = flag("query_id")?;
            Ok(Some(PendingFilter {
                max_tokens: flag("max_tokens")?,
                system: flag("system")?,
                grounded: flag("grounded")?,
                underspecified: flag("underspecified")?,
                prompt,
            }))
        }
        _ => Err(ToolError::invalid(
            "`pending_filter` must be a preset string or an object",
        )),
    }
}

fn pending_entries(s: &Snapshot, f: &PendingFilter) -> Vec<Value> {
    let Some(p) = &s.pending else {
        return Vec::new();
    };
    p.queries
        .iter()
        .filter(|q| !p.answered.contains(&q.id))
        .map(|q| {
            let mut m = Map::new();
            m.insert("query_id".into(), json!(q.id.as_str()));
            match &q.request {
                QueryRequest::Llm { query } => {
                    if f.max_tokens {
                        m.insert("max_tokens".into(), json!(query.max_tokens));
                    }
                    if f.system {
                        m.insert("system".into(), json!(query.system));
                    }
                    if f.grounded && query.grounded {
                        m.insert("grounded".into(), json!(true));
                    }
                    if f.underspecified && query.underspecified {
                        m.insert("underspecified".into(), json!(true));
                    }
                    match f.prompt {
                        PromptMode::Off => {}
                        PromptMode::Preview(n) => {
                            m.insert("prompt_preview".into(), json!(preview(&query.prompt, n)));
                        }
                        PromptMode::Full => {
                            m.insert("prompt".into(), json!(query.prompt));
                        }
                    }
                }
                QueryRequest::Human { question } => {
                    m.insert("kind".into(), json!("human"));
                    match f.prompt {
                        PromptMode::Off => {}
                        PromptMode::Preview(n) => {
                            m.insert(
                                "question_preview".into(),
                                json!(preview(&question.question, n)),
                            );
                        }
                        PromptMode::Full => {
                            m.insert("question".into(), json!(question.question));
                        }
                    }
                    if !matches!(f.prompt, PromptMode::Off) {
                        if !question.choices.is_empty() {
                            m.insert("choices".into(), json!(question.choices));
                        }
                        if let Some(sc) = &question.schema {
                            m.insert("schema".into(), sc.clone());
                        }
                        if let Some(d) = &question.default {
                            m.insert("default".into(), d.clone());
                        }
                        if let Some(t) = question.timeout_ms {
                            m.insert("expires_at".into(), json!(p.issued_at + t as i64));
                        }
                    }
                }
            }
            Value::Object(m)
        })
        .collect()
}

fn open_ids(s: &Snapshot) -> Vec<String> {
    s.pending
        .as_ref()
        .map(|p| {
            p.queries
                .iter()
                .filter(|q| !p.answered.contains(&q.id))
                .map(|q| q.id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn status_entry(s: &Snapshot, filter: Option<&PendingFilter>) -> Value {
    let mut m = Map::new();
    m.insert("session_id".into(), json!(s.session_id.as_str()));
    m.insert(
        "kind".into(),
        json!(s.labels.get("kind").map(String::as_str).unwrap_or("run")),
    );
    if let Some(st) = s.labels.get("strategy") {
        m.insert("strategy".into(), json!(st));
    }
    m.insert("state".into(), json!(legacy_state(s.phase)));
    m.insert("phase".into(), json!(phase_status(s.phase)));
    m.insert("round".into(), json!(s.round));
    m.insert(
        "answerer".into(),
        json!(s
            .labels
            .get("answerer")
            .map(String::as_str)
            .unwrap_or("host")),
    );
    m.insert("started_at".into(), json!(s.created_at));
    m.insert("last_activity_at".into(), json!(s.last_activity_at));
    let mt = &s.metrics;
    let mut metrics = json!({
        "elapsed_ms": mt.elapsed_ms,
        "llm_calls": mt.llm_calls,
        "rounds": mt.rounds,
        "tokens": {
            "prompt_total": mt.prompt_tokens.tokens,
            "response_total": mt.response_tokens.tokens,
            "total": mt.total_tokens.tokens,
        },
        "recent_logs": mt.recent_logs,
    });
    if let Some(p) = &mt.progress {
        metrics["progress"] = json!(p);
    }
    let lim = &s.budget.limits;
    if lim.max_llm_calls.is_some() || lim.max_tokens.is_some() || lim.max_elapsed_ms.is_some() {
        let r = &s.budget.remaining;
        metrics["budget_remaining"] = json!({
            "llm_calls": r.llm_calls, "elapsed_ms": r.elapsed_ms, "tokens": r.tokens,
        });
    }
    m.insert("metrics".into(), metrics);
    if s.phase == Phase::Paused {
        m.insert("pending_queries".into(), json!(open_ids(s).len()));
    }
    if let Some(f) = filter {
        m.insert("pending".into(), Value::Array(pending_entries(s, f)));
    }
    if let Some(h) = &s.history {
        let tail: Vec<&alc_core::Exchange> = h.iter().rev().take(10).rev().collect();
        m.insert("conversation_history".into(), json!(tail));
    }
    Value::Object(m)
}

fn task_hint(s: &Snapshot) -> Value {
    if let Some(h) = s.labels.get("task_hint") {
        return json!(h);
    }
    let first = s.pending.as_ref().and_then(|p| p.queries.first());
    json!(first.map(|q| args::task_hint(q.request.text())))
}

fn session_entry(s: &Snapshot) -> Value {
    let mut v = json!({
        "session_id": s.session_id.as_str(),
        "kind": s.labels.get("kind").map(String::as_str).unwrap_or("run"),
        "strategy": s.labels.get("strategy"),
        "status": phase_status(s.phase),
        "round": s.round,
        "answerer": s.labels.get("answerer").map(String::as_str).unwrap_or("host"),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "llm_calls": s.metrics.llm_calls,
        "task_hint": task_hint(s),
        "owner": "this_process",
        "resumable": false,
    });
    if let Some(Outcome::Cancelled { reason, .. }) = &s.outcome {
        v["reason"] = json!(reason);
    }
    v
}

/// One entry of an `alc_sessions` listing before rendering.
enum Listed {
    /// Hosted by this process.
    Hosted(Box<Snapshot>),
    /// Only in the journal (another process, or nobody).
    Row(Box<SessionRow>),
}

impl Listed {
    fn labels(&self) -> &std::collections::BTreeMap<String, String> {
        match self {
            Listed::Hosted(s) => &s.labels,
            Listed::Row(r) => &r.labels,
        }
    }

    fn status(&self) -> &'static str {
        match self {
            Listed::Hosted(s) => phase_status(s.phase),
            Listed::Row(r) => wire::row_status(r),
        }
    }

    fn updated_at(&self) -> i64 {
        match self {
            Listed::Hosted(s) => s.updated_at,
            Listed::Row(r) => r.updated_at,
        }
    }

    fn created_at(&self) -> i64 {
        match self {
            Listed::Hosted(s) => s.created_at,
            Listed::Row(r) => r.created_at,
        }
    }
}

fn status_matches(filter: &str, status: &str) -> bool {
    match filter {
        "all" => true,
        "active" => status == "running" || status == "paused",
        f => f == status,
    }
}

fn usage_of(v: Option<&Value>) -> Result<Option<TokenUsage>, ToolError> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let v = match v {
        Value::String(s) => serde_json::from_str::<Value>(s)
            .map_err(|_| ToolError::invalid("`usage` must be an object"))?,
        v => v.clone(),
    };
    let Value::Object(m) = v else {
        return Err(ToolError::invalid("`usage` must be an object"));
    };
    let num = |k: &str| -> Result<Option<u64>, ToolError> {
        match m.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| ToolError::invalid(format!("`usage.{k}` must be an integer"))),
        }
    };
    Ok(Some(TokenUsage {
        prompt_tokens: num("prompt_tokens")?,
        completion_tokens: num("completion_tokens")?,
        cached_tokens: None,
        reasoning_tokens: None,
        source: TokenSource::Provided,
    }))
}

fn response_text(v: &Value, field: &str) -> Result<String, ToolError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Object(_) => Ok(v.to_string()),
        _ => Err(ToolError::invalid(format!(
            "`{field}` must be a string (or an object for a schema question)"
        ))),
    }
}

fn ask_status_of(v: Option<&Value>, field: &str) -> Result<Option<AskStatus>, ToolError> {
    match v.filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(Value::String(s)) if s == "declined" => Ok(Some(AskStatus::Declined)),
        Some(Value::String(s)) if s == "cancelled" => Ok(Some(AskStatus::Cancelled)),
        Some(_) => Err(ToolError::invalid(format!(
            "`{field}` must be \"declined\" or \"cancelled\""
        ))),
    }
}

fn query_id_of(v: Option<&Value>, field: &str) -> Result<Option<QueryId>, ToolError> {
    match v.filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(Value::String(s)) => QueryId::parse(s).map(Some).ok_or_else(|| {
            ToolError::new(
                "unknown_query",
                format!("unknown query: {s} is not pending in the current round"),
            )
        }),
        Some(_) => Err(ToolError::invalid(format!("`{field}` must be a string"))),
    }
}

fn make_answer(
    query_id: Option<QueryId>,
    response: Option<&Value>,
    ask: Option<AskStatus>,
    usage: Option<TokenUsage>,
    field: &str,
) -> Result<Answer, ToolError> {
    let mut a = match (response.filter(|v| !v.is_null()), ask) {
        (Some(_), Some(_)) => {
            return Err(ToolError::invalid(format!(
                "`{field}` and `ask_status` are mutually exclusive"
            )))
        }
        (Some(r), None) => {
            let mut a = Answer::text(query_id, response_text(r, field)?);
            a.usage = usage;
            a
        }
        (None, Some(s)) => Answer::ask_status(query_id, s),
        (None, None) => {
            return Err(ToolError::invalid(format!(
                "each answer needs `{field}` or `ask_status`"
            )))
        }
    };
    a.meta = AnswerMeta {
        answerer: Some("host".into()),
        ..AnswerMeta::default()
    };
    Ok(a)
}

/// A progress reporter bound to one in-flight request (§3.4).
struct Progress {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    extra: UnboundedSender<String>,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(
        engine: Engine,
        peer: Peer<RoleServer>,
        token: ProgressToken,
        id: SessionId,
        from_seq: u64,
        first: Option<String>,
    ) -> Progress {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (extra, extra_rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(progress_loop(
            engine, peer, token, id, from_seq, first, rx, extra_rx,
        ));
        Progress {
            stop: Some(tx),
            extra,
            task,
        }
    }

    /// A sender for messages that are never coalesced (answered calls, retries).
    fn sender(&self) -> UnboundedSender<String> {
        self.extra.clone()
    }

    /// Stops reporting; every notification is sent before this returns.
    async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn progress_message(item: &ObserveItem) -> Option<String> {
    let ObserveItem::Event { event } = item else {
        return None;
    };
    let EventBody::Progress { progress } = &event.body else {
        return None;
    };
    Some(if progress.total > 0 {
        format!(
            "step {}/{}: {}",
            progress.step, progress.total, progress.message
        )
    } else {
        format!("step {}: {}", progress.step, progress.message)
    })
}

/// Sends notifications at most every 100 ms: `alc.progress` reports are coalesced (the
/// latest wins); per-call messages are queued and all delivered, the backlog flushed
/// before the response.
#[allow(clippy::too_many_arguments)]
async fn progress_loop(
    engine: Engine,
    peer: Peer<RoleServer>,
    token: ProgressToken,
    id: SessionId,
    from_seq: u64,
    first: Option<String>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    mut extra: UnboundedReceiver<String>,
) {
    const MIN_GAP: Duration = Duration::from_millis(100);
    let mut counter = 0u64;
    let mut last = tokio::time::Instant::now() - MIN_GAP;
    let send = |counter: &mut u64, msg: String| {
        *counter += 1;
        let p = ProgressNotificationParam::new(token.clone(), *counter as f64).with_message(msg);
        let peer = peer.clone();
        async move {
            let _ = peer.notify_progress(p).await;
        }
    };
    if let Some(m) = first {
        send(&mut counter, m).await;
        last = tokio::time::Instant::now();
    }
    let mut stream = engine.observe(&id, from_seq).ok();
    let mut queue: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut pending: Option<String> = None;
    let mut ended = stream.is_none();
    let mut extra_open = true;
    loop {
        let flush_at = last + MIN_GAP;
        let due = !queue.is_empty() || pending.is_some();
        if due && tokio::time::Instant::now() >= flush_at {
            let msg = queue.pop_front().or_else(|| pending.take());
            if let Some(msg) = msg {
                send(&mut counter, msg).await;
                last = tokio::time::Instant::now();
            }
            continue;
        }
        tokio::select! {
            _ = &mut stop => break,
            item = async { stream.as_mut().expect("checked").next().await }, if !ended => {
                match item {
                    None => ended = true,
                    Some(item) => {
                        if let Some(msg) = progress_message(&item) {
                            pending = Some(msg);
                        }
                    }
                }
            }
            msg = extra.recv(), if extra_open => {
                match msg {
                    Some(m) => queue.push_back(m),
                    None => extra_open = false,
                }
            }
            _ = tokio::time::sleep_until(flush_at), if due => {}
        }
    }
    // Drain what is already buffered and send it before the response.
    if let (Some(s), false) = (stream.as_mut(), ended) {
        while let Ok(Some(item)) = tokio::time::timeout(Duration::ZERO, s.next()).await {
            if let Some(msg) = progress_message(&item) {
                pending = Some(msg);
            }
        }
    }
    while let Ok(m) = extra.try_recv() {
        queue.push_back(m);
    }
    for msg in queue.into_iter().chain(pending) {
        send(&mut counter, msg).await;
    }
}

impl AlcServer {
    /// A server over `engine`.
    pub fn new(engine: Engine, options: ServeOptions) -> AlcServer {
        let pkg_env = options
            .pkg_env
            .clone()
            .or_else(|| PkgEnv::from_env(None, None).ok())
            .unwrap_or_else(|| PkgEnv::new(home_dir().0));
        let llm = OnceLock::new();
        if let Some(c) = &options.llm {
            let _ = llm.set(Ok(c.clone()));
        }
        AlcServer {
            inner: Arc::new(Inner {
                engine,
                options,
                pkg_env,
                llm,
                inflight: Mutex::new(HashMap::new()),
                answerers: Mutex::new(HashMap::new()),
                drivers: Mutex::new(HashMap::new()),
                transcripts: OnceLock::new(),
                journal: OnceLock::new(),
                sealer: OnceLock::new(),
                sampling_limit: Arc::new(tokio::sync::Semaphore::new(8)),
            }),
        }
    }

    fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Sets the session journal the engine writes (`<home>/alc.db`): `alc_sessions` then
    /// lists the sessions of every process, with `resumable` ones (§2.9). Only the first
    /// call has an effect.
    pub fn set_journal(&self, journal: Arc<dyn Journal>) {
        let _ = self.inner.journal.set(journal);
    }

    /// The package environment of this server.
    pub fn pkg_env(&self) -> &PkgEnv {
        &self.inner.pkg_env
    }

    fn wait_of(&self, given: Option<u64>) -> Duration {
        match given.unwrap_or(self.inner.options.call_wait_ms) {
            0 => far_future(),
            ms => Duration::from_millis(ms),
        }
    }

    fn llm_client(&self) -> Result<&alc_llm::Client, String> {
        self.inner
            .llm
            .get_or_init(|| {
                alc_llm::Client::new(alc_llm::Providers::from_process_env(
                    alc_llm::ProvidersFile::default(),
                ))
                .map_err(|e| e.message)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The provider client, or `provider_unavailable` when nothing is configured.
    fn provider(&self) -> Result<alc_llm::Client, ToolError> {
        let client = self
            .llm_client()
            .map_err(|m| ToolError::new("provider_unavailable", m))?;
        client
            .providers()
            .check_available()
            .map_err(|e| ToolError::new("provider_unavailable", e.message.clone()))?;
        Ok(client.clone())
    }

    /// Builds the answerer named by `answerer` / `script` / `model` (§1, §2.3).
    ///
    /// `conn` is the calling client (`None` for `alc_eval`, which offers neither `mrtr`
    /// nor `sampling`).
    fn parse_answerer(
        &self,
        name: Option<&str>,
        script: Option<Value>,
        model: Option<&str>,
        conn: Option<&Conn>,
    ) -> Result<SessionAnswerer, ToolError> {
        let model = model.map(str::to_string);
        if let Some(script) = script {
            if name.is_some_and(|n| n != "scripted") {
                return Err(ToolError::invalid(
                    "`script` implies `answerer: \"scripted\"`; do not combine it with another answerer",
                ));
            }
            let s = auto::parse_inline_script(&script)?;
            return Ok(SessionAnswerer {
                name: "scripted".into(),
                kind: AnswererKind::Scripted(Arc::new(Mutex::new(s))),
                model,
            });
        }
        let name = name.unwrap_or("host");
        let kind = match name {
            "host" => AnswererKind::Host,
            "provider" => {
                self.provider()?;
                AnswererKind::Provider
            }
            "scripted" => {
                return Err(ToolError::invalid(
                    "`answerer: \"scripted\"` needs the inline `script` argument (or use `scripted:<path>`)",
                ))
            }
            n if n.starts_with("scripted:") => {
                let path = &n["scripted:".len()..];
                let s = ScriptedAnswerer::from_file(std::path::Path::new(path))
                    .map_err(|e| ToolError::invalid(format!("`answerer`: {e}")))?;
                AnswererKind::Scripted(Arc::new(Mutex::new(s)))
            }
            "mrtr" => {
                let conn = conn.ok_or_else(|| {
                    ToolError::invalid(
                        "`answerer`: 'mrtr' is available for alc_run, alc_advice and alc_continue only",
                    )
                })?;
                if !conn.mrtr_capable() {
                    return Err(ToolError::new(
                        "capability_missing",
                        if conn.modern {
                            "answerer 'mrtr' needs a client that declares the `sampling` capability in the request's _meta"
                        } else {
                            "answerer 'mrtr' needs a 2026-07-28 client (per-request _meta) that declares `sampling`; this request was served under an older revision"
                        },
                    ));
                }
                // The caller answers, by retrying the call (§3.8).
                AnswererKind::Host
            }
            "sampling" => {
                if !self.inner.options.sampling_enabled {
                    return Err(ToolError::invalid(
                        "`answerer`: 'sampling' is disabled by the server configuration (mcp.sampling = \"off\")",
                    ));
                }
                let conn = conn.ok_or_else(|| {
                    ToolError::invalid(
                        "`answerer`: 'sampling' is available for alc_run, alc_advice and alc_continue only",
                    )
                })?;
                if conn.modern {
                    return Err(ToolError::new(
                        "capability_missing",
                        "answerer 'sampling' needs a 2025-11-25 connection; under 2026-07-28 use answerer 'mrtr'",
                    ));
                }
                if !conn.sampling {
                    return Err(ToolError::new(
                        "capability_missing",
                        "answerer 'sampling' needs a client that declared the `sampling` capability at initialize",
                    ));
                }
                AnswererKind::Sampling(conn.peer.clone())
            }
            "terminal" => {
                return Err(ToolError::invalid(
                    "`answerer`: 'terminal' is only available on the CLI",
                ))
            }
            other => {
                return Err(ToolError::invalid(format!(
                    "`answerer`: unknown answerer '{other}' (host, provider, scripted:<path>, or `script`)"
                )))
            }
        };
        Ok(SessionAnswerer {
            name: name.to_string(),
            kind,
            model,
        })
    }

    fn answerer_of(&self, id: &SessionId) -> SessionAnswerer {
        self.inner
            .answerers
            .lock()
            .expect("answerers lock")
            .get(id)
            .cloned()
            .unwrap_or_else(SessionAnswerer::host)
    }

    fn set_answerer(&self, id: &SessionId, a: SessionAnswerer) {
        let mut map = self.inner.answerers.lock().expect("answerers lock");
        if a.is_host() {
            map.remove(id);
        } else {
            map.insert(id.clone(), a);
        }
    }

    /// The answerer label of a session as shown by listings.
    fn answerer_label(&self, s: &Snapshot) -> Option<String> {
        self.inner
            .answerers
            .lock()
            .expect("answerers lock")
            .get(&s.session_id)
            .map(|a| a.name.clone())
    }

    /// Waits for the next pause or the end, reporting progress, honouring cancellation.
    /// Sessions with a non-host answerer are answered by a background driver until they
    /// end or a human question needs the caller (§1.2); the call waits for that or for
    /// `wait` (then `running`), while the session keeps going.
    async fn drive(
        &self,
        id: &SessionId,
        wait: Duration,
        ctx: &RequestContext<RoleServer>,
        from_seq: u64,
        started: bool,
    ) -> ToolResult {
        let progress = ctx.meta.get_progress_token().map(|token| {
            Progress::start(
                self.engine().clone(),
                ctx.peer.clone(),
                token,
                id.clone(),
                from_seq,
                started.then(|| format!("session {id} started")),
            )
        });
        self.inner
            .inflight
            .lock()
            .expect("inflight lock")
            .insert(ctx.id.clone(), id.clone());
        let deadline = tokio::time::Instant::now() + wait;
        let auto = !self.answerer_of(id).is_host();
        let result = if auto {
            let sender = progress.as_ref().map(Progress::sender);
            let (mut rx, listener) = self.ensure_driver(id);
            if let Some(tx) = &sender {
                *listener.lock().expect("listener lock") = Some(tx.clone());
            }
            let r = tokio::select! {
                _ = rx.wait_for(|s| *s != DriverState::Working) => Some(false),
                _ = tokio::time::sleep_until(deadline) => Some(true),
                _ = ctx.ct.cancelled() => None,
            };
            {
                let mut l = listener.lock().expect("listener lock");
                let ours = match (l.as_ref(), &sender) {
                    (Some(cur), Some(tx)) => cur.same_channel(tx),
                    _ => false,
                };
                if ours {
                    *l = None;
                }
            }
            r.map(|timed_out| {
                let snap = self
                    .engine()
                    .state(id, &SnapshotOptions::default())
                    .map_err(|_| not_found(id))?;
                Ok(if timed_out && !snap.phase.is_terminal() {
                    wire::running(&snap)
                } else {
                    wire::current(&snap)
                })
            })
        } else {
            tokio::select! {
                r = self.engine().run_until_pause(id, wait) => Some(match r.map_err(|e| wait_error(id, e)) {
                    Ok(UntilPause::Paused { snapshot }) => Ok(wire::pause(&snapshot)),
                    Ok(UntilPause::Terminal { terminal }) => Ok(wire::terminal(&terminal)),
                    Ok(UntilPause::Running { snapshot }) => Ok(wire::running(&snapshot)),
                    Err(e) => Err(e),
                }),
                _ = ctx.ct.cancelled() => None,
            }
        };
        self.inner
            .inflight
            .lock()
            .expect("inflight lock")
            .remove(&ctx.id);
        if let Some(p) = progress {
            p.finish().await;
        }
        let Some(result) = result else {
            // Give `on_cancelled` (which knows the reason) the chance to cancel first.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = self
                .engine()
                .cancel_now(id, CancelReason::new(CancelCode::ClientCancelled));
            return Err(
                ToolError::new("cancelled", "the request was cancelled").with_session(id.as_str())
            );
        };
        result
    }

    /// The driver of a non-host session: the running one, or a new one.
    fn ensure_driver(&self, id: &SessionId) -> (watch::Receiver<DriverState>, Listener) {
        let mut drivers = self.inner.drivers.lock().expect("drivers lock");
        if let Some(d) = drivers.get(id) {
            if *d.state.borrow() == DriverState::Working {
                return (d.state.clone(), d.listener.clone());
            }
        }
        let (tx, rx) = watch::channel(DriverState::Working);
        let listener: Listener = Arc::new(Mutex::new(None));
        drivers.insert(
            id.clone(),
            Driver {
                state: rx.clone(),
                listener: listener.clone(),
            },
        );
        let this = self.clone();
        let sid = id.clone();
        let l = listener.clone();
        tokio::spawn(async move {
            let end = this.drive_task(&sid, &l).await;
            let mut drivers = this.inner.drivers.lock().expect("drivers lock");
            if drivers
                .get(&sid)
                .is_some_and(|d| d.state.same_channel(&tx.subscribe()))
            {
                drivers.remove(&sid);
            }
            let _ = tx.send(end);
        });
        (rx, listener)
    }

    /// A working driver's state, if the session has one.
    fn working_driver(&self, id: &SessionId) -> Option<watch::Receiver<DriverState>> {
        let drivers = self.inner.drivers.lock().expect("drivers lock");
        drivers
            .get(id)
            .filter(|d| *d.state.borrow() == DriverState::Working)
            .map(|d| d.state.clone())
    }

    /// Answers the session's pauses with its answerer until it ends or needs the caller.
    async fn drive_task(&self, id: &SessionId, listener: &Listener) -> DriverState {
        loop {
            let until = match self.engine().run_until_pause(id, far_future()).await {
                Ok(u) => u,
                Err(_) => return DriverState::Done,
            };
            let snapshot = match until {
                UntilPause::Running { .. } => continue,
                UntilPause::Terminal { .. } => return DriverState::Done,
                UntilPause::Paused { snapshot } => snapshot,
            };
            let answerer = self.answerer_of(id);
            let open = auto::open_queries(&snapshot);
            let answers = match &answerer.kind {
                AnswererKind::Host => return DriverState::NeedsCaller,
                AnswererKind::Provider => {
                    if !open
                        .iter()
                        .any(|q| matches!(q.request, QueryRequest::Llm { .. }))
                    {
                        Vec::new()
                    } else {
                        let Ok(client) = self.provider() else {
                            return DriverState::NeedsCaller;
                        };
                        let l = listener.clone();
                        let client = client.with_retry_hook(Arc::new(move |ev| {
                            if let Some(tx) = l.lock().expect("listener lock").as_ref() {
                                let _ = tx.send(ev.progress_message());
                            }
                        }));
                        let work = auto::provider_answers(
                            client,
                            &open,
                            answerer.model.as_deref(),
                            listener,
                        );
                        tokio::select! {
                            a = work => a,
                            // Cancelled meanwhile: in-flight requests are dropped.
                            _ = self.engine().wait(id) => return DriverState::Done,
                        }
                    }
                }
                AnswererKind::Scripted(s) => auto::scripted_answers(s, &open, listener),
                AnswererKind::Sampling(peer) => {
                    let work = sampling::answers(
                        peer,
                        &open,
                        answerer.model.as_deref(),
                        self.sampling_limit(),
                        listener,
                    );
                    tokio::select! {
                        a = work => a,
                        // Cancelled meanwhile: outstanding requests are dropped.
                        _ = self.engine().wait(id) => return DriverState::Done,
                    }
                }
            };
            if answers.is_empty() {
                // Only questions for a person remain: the caller answers them.
                return DriverState::NeedsCaller;
            }
            let round = snapshot.pending.as_ref().map(|p| p.round);
            let ack = self.engine().resume_now(id, Answers { round, answers });
            match ack {
                Ok(ResumeAck::Continued { .. }) => continue,
                Ok(ResumeAck::Accepted { .. }) => {
                    let paused = self
                        .engine()
                        .state(id, &SnapshotOptions::default())
                        .map(|s| s.phase == Phase::Paused)
                        .unwrap_or(false);
                    if paused {
                        return DriverState::NeedsCaller;
                    }
                }
                // The session moved on meanwhile (cancelled, question timed out): look again.
                Err(ResumeError::NotPaused { .. }) | Err(ResumeError::StaleRound { .. }) => {}
                Err(_) => return DriverState::NeedsCaller,
            }
        }
    }

    /// The process-wide limit of simultaneous LLM requests, shared with the provider
    /// client (§7.7), for sampling requests (§3.9).
    fn sampling_limit(&self) -> Arc<tokio::sync::Semaphore> {
        match self.llm_client() {
            Ok(c) => c.semaphore().clone(),
            Err(_) => self.inner.sampling_limit.clone(),
        }
    }

    /// `mcp.mrtr = "auto"` applies to a call that names no answerer from this client.
    fn auto_mrtr(&self, conn: &Conn) -> bool {
        self.inner.options.mrtr_auto && conn.mrtr_capable()
    }

    /// Whether the pauses this call returns are mapped to `input_required` (§3.8): the
    /// call names `answerer: "mrtr"`, or names none (and no `script`) under
    /// `mcp.mrtr = "auto"` when it starts a session.
    fn mrtr_selected(&self, tool: &str, args: &Map<String, Value>, conn: &Conn) -> bool {
        if !MRTR_TOOLS.contains(&tool) {
            return false;
        }
        match args.get("answerer").filter(|v| !v.is_null()) {
            Some(v) => v.as_str() == Some("mrtr"),
            None => {
                tool != "alc_continue"
                    && args.get("script").is_none_or(Value::is_null)
                    && self.auto_mrtr(conn)
            }
        }
    }

    /// The request-state sealer over `<home>/secret.key` (created on first use).
    fn sealer(&self) -> Result<&Sealer, ToolError> {
        self.inner
            .sealer
            .get_or_init(|| mrtr::load_or_create_key(&self.pkg_env().home).map(Sealer::new))
            .as_ref()
            .map_err(|e| ToolError::new("io_error", format!("MRTR request state key: {e}")))
    }

    /// Maps the result of an MRTR call (§3.8): a session paused on LLM queries only
    /// becomes `input_required` with one `sampling/createMessage` request per open query
    /// and a sealed `requestState`; anything else (a pause holding a human question, the
    /// end, `running`, an error) is a `complete` result with the classic payload.
    fn mrtr_response(
        &self,
        tool: &str,
        args: &Map<String, Value>,
        result: Result<Value, ToolError>,
    ) -> CallToolResponse {
        let payload = match result {
            Ok(v) => v,
            Err(e) => return CallToolResult::structured_error(e.to_value()).into(),
        };
        let session = payload["session_id"]
            .as_str()
            .and_then(|s| SessionId::parse(s).ok());
        let complete = |payload: Value| -> CallToolResponse {
            let mut out = CallToolResult::structured(payload);
            if let Some(id) = &session {
                out.meta = Some(session_meta(id));
            }
            out.into()
        };
        let Some(id) = session.clone() else {
            return complete(payload);
        };
        if !matches!(
            payload["status"].as_str(),
            Some("needs_response" | "accepted")
        ) {
            return complete(payload);
        }
        let Ok(snap) = self.engine().state(&id, &SnapshotOptions::default()) else {
            return complete(payload);
        };
        let (Phase::Paused, Some(pending)) = (snap.phase, snap.pending.as_ref()) else {
            return complete(payload);
        };
        let open = auto::open_queries(&snap);
        let model = snap.labels.get("model").map(String::as_str);
        let mut requests = rmcp::model::InputRequests::new();
        for q in &open {
            let QueryRequest::Llm { query } = &q.request else {
                // A question for a person is never mapped (§1.2): classic payload.
                return complete(wire::current(&snap));
            };
            let request = json!({
                "method": "sampling/createMessage",
                "params": mrtr::create_message_params(query, model),
            });
            match serde_json::from_value(request) {
                Ok(r) => {
                    requests.insert(q.id.to_string(), r);
                }
                Err(e) => {
                    let e = ToolError::new(
                        "internal",
                        format!("cannot map {} to a sampling request: {e}", q.id),
                    )
                    .with_session(id.as_str());
                    return CallToolResult::structured_error(e.to_value()).into();
                }
            }
        }
        if requests.is_empty() {
            return complete(payload);
        }
        let sealer = match self.sealer() {
            Ok(s) => s,
            Err(e) => {
                return CallToolResult::structured_error(e.with_session(id.as_str()).to_value())
                    .into()
            }
        };
        let state = sealer.seal(&RequestState {
            session_id: id.to_string(),
            round: pending.round,
            tool: tool.to_string(),
            args_digest: mrtr::arguments_digest(args),
            expires_at: now_ms() + mrtr::STATE_TTL_MS,
        });
        let mut r = rmcp::model::InputRequiredResult::new(Some(requests), Some(state));
        r.meta = Some(session_meta(&id));
        r.into()
    }

    /// A retry of an MRTR call carrying `inputResponses` and `requestState` (§3.8): the
    /// state is verified (seal, expiry, tool, argument digest) before anything is applied;
    /// the text of each `CreateMessageResult` answers the query of its key in the sealed
    /// round; the session is then driven as by `alc_continue`. No session is started.
    async fn mrtr_retry(
        &self,
        tool: &str,
        args: &Map<String, Value>,
        responses: Option<rmcp::model::InputResponses>,
        state: Option<String>,
        ctx: &RequestContext<RoleServer>,
    ) -> ToolResult {
        if !MRTR_TOOLS.contains(&tool) {
            return Err(ToolError::invalid(format!(
                "`requestState` / `inputResponses` do not apply to {tool}"
            )));
        }
        let Some(state) = state else {
            return Err(ToolError::invalid(
                "`inputResponses` needs the `requestState` of the input_required result it answers",
            ));
        };
        if !Conn::of(ctx).mrtr_capable() {
            return Err(ToolError::new(
                "capability_missing",
                "an MRTR retry needs a 2026-07-28 request whose _meta declares `sampling`",
            ));
        }
        let st = self
            .sealer()?
            .open_for(&state, now_ms(), tool, args)
            .map_err(|e| ToolError::invalid(e.to_string()))?;
        let id = SessionId::parse(&st.session_id)
            .map_err(|_| ToolError::invalid(mrtr::StateError::Tampered.to_string()))?;
        let sid = id.as_str().to_string();
        let a = Args::new(args);
        let wait = self.wait_of(a.u64("wait_ms").map_err(|e| e.with_session(&sid))?);
        let before = self
            .engine()
            .state(&id, &SnapshotOptions::default())
            .map_err(|_| not_found(&id))?;
        let responses = responses.unwrap_or_default();
        if responses.is_empty() {
            // Nothing answered: the current payload (re-fetch).
            if before.phase.is_terminal() || before.phase == Phase::Paused {
                return Ok(wire::current(&before));
            }
            return self
                .drive(&id, wait, ctx, before.last_event_seq + 1, false)
                .await;
        }
        let queries: HashMap<String, &QueryRequest> = before
            .pending
            .as_ref()
            .filter(|p| p.round == st.round)
            .map(|p| {
                p.queries
                    .iter()
                    .map(|q| (q.id.to_string(), &q.request))
                    .collect()
            })
            .unwrap_or_default();
        let mut answers = Vec::with_capacity(responses.len());
        for (key, result) in &responses {
            let qid = QueryId::parse(key).ok_or_else(|| {
                ToolError::new(
                    "unknown_query",
                    format!("`inputResponses`: unknown key {key:?}"),
                )
                .with_session(&sid)
            })?;
            let (text, model) = mrtr::result_text(result).map_err(|e| {
                ToolError::invalid(format!("`inputResponses.{key}` {e}")).with_session(&sid)
            })?;
            let mut answer = Answer::text(Some(qid), text.clone());
            if let Some(QueryRequest::Llm { query }) = queries.get(key) {
                answer.usage = Some(alc_llm::adapter::estimate_usage(query, &text));
            }
            answer.meta = AnswerMeta {
                answerer: Some("mrtr".into()),
                model,
                ..AnswerMeta::default()
            };
            answers.push(answer);
        }
        let ack = self
            .engine()
            .resume_now(
                &id,
                Answers {
                    round: Some(st.round),
                    answers,
                },
            )
            .map_err(|e| resume_error(&id, e))?;
        match ack {
            ResumeAck::Accepted { .. } => {
                let snap = self
                    .engine()
                    .state(&id, &SnapshotOptions::default())
                    .map_err(|_| not_found(&id))?;
                Ok(wire::current(&snap))
            }
            ResumeAck::Continued { .. } => {
                self.drive(&id, wait, ctx, before.last_event_seq + 1, false)
                    .await
            }
        }
    }

    /// The transcript database (`<home>/alc.db`).
    fn transcripts(&self) -> Result<Arc<Transcripts>, ToolError> {
        self.inner
            .transcripts
            .get_or_init(|| {
                Transcripts::open(&self.pkg_env().home.join("alc.db"))
                    .map(|t| Arc::new(t.with_mode(self.inner.options.transcripts)))
            })
            .clone()
            .map_err(|e| ToolError::new("io_error", format!("transcript database: {e}")))
    }

    /// Uses `transcripts`, kept in its own mode (opened on the journal's connection by
    /// `Transcripts::record_journal`, say), instead of opening `<home>/alc.db` at the first
    /// transcript access. Only has an effect before that.
    pub fn set_transcripts(&self, transcripts: Result<Transcripts, String>) {
        let _ = self.inner.transcripts.set(transcripts.map(Arc::new));
    }

    async fn alc_log_view(&self, a: Args<'_>) -> ToolResult {
        let t = self.transcripts()?;
        let max_chars = a.u64("max_chars")?.unwrap_or(100_000);
        let limit = a.u64("limit")?.unwrap_or(50);
        if let Some(sid) = a.str("session_id")? {
            let id = parse_session(sid)?;
            return t
                .detail(id.as_str(), max_chars)
                .map_err(|e| e.with_session(sid))?
                .ok_or_else(|| not_found(&id));
        }
        t.list(limit)
    }

    async fn alc_stats(&self, a: Args<'_>) -> ToolResult {
        let t = self.transcripts()?;
        let strategy = a.str("strategy")?;
        let since = a.u64("days")?.map(|d| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            now - (d as i64).saturating_mul(86_400_000)
        });
        t.stats(strategy, since)
    }

    async fn alc_note(&self, a: Args<'_>) -> ToolResult {
        let t = self.transcripts()?;
        let sid = a.req_str("session_id")?;
        let id = parse_session(sid)?;
        let content = a.req_str("content").map_err(|e| e.with_session(sid))?;
        let title = a.str("title")?;
        if !t.has_session(id.as_str())? {
            return Err(not_found(&id));
        }
        let n = t
            .add_note(id.as_str(), title, content)
            .map_err(|e| e.with_session(sid))?;
        Ok(json!({"session_id": id.as_str(), "notes_count": n}))
    }

    /// Writes what the session holds back for its running step (`Engine::ensure_written`)
    /// before a reply lets the caller act on it.
    fn ensure_written(&self, id: &SessionId) -> Result<(), ToolError> {
        self.engine()
            .ensure_written(id)
            .map_err(|e| ToolError::new("internal", e.to_string()).with_session(id.as_str()))
    }

    fn spawn(&self, spec: SessionSpec) -> Result<SessionId, ToolError> {
        self.spawn_mode(spec, false)
    }

    /// `spawn`; with `with_first_step`, the session's `spawned` record goes to the journal
    /// with its first step's records (`Engine::spawn_now_with_first_step`): for a call
    /// that replies only after the first pause or the end, and lets the id out no earlier.
    fn spawn_mode(&self, spec: SessionSpec, with_first_step: bool) -> Result<SessionId, ToolError> {
        let engine = self.engine();
        let spawned = if with_first_step {
            engine.spawn_now_with_first_step(spec)
        } else {
            engine.spawn_now(spec)
        };
        spawned.map_err(|e| match e {
            SpawnError::InvalidSpec { message } => ToolError::invalid(message),
            other => ToolError::new("internal", other.to_string()),
        })
    }

    /// The project root of a call (`project_root`, validated), if given.
    fn project_arg(&self, a: &Args<'_>) -> Result<Option<PathBuf>, ToolError> {
        match a.str("project_root")? {
            None => Ok(None),
            Some(p) => alc_pkg::env::discover_project_root(Some(std::path::Path::new(p)), None)
                .map_err(packages::pkg_error),
        }
    }

    fn exec_spec(
        &self,
        a: &Args<'_>,
        program: Program,
        ctx: Map<String, Value>,
        kind: &str,
        conn: &Conn,
    ) -> Result<(SessionSpec, SessionAnswerer), ToolError> {
        let env_answerer = std::env::var("ALC_ANSWERER")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let project = self.project_arg(a)?;
        // `[run] answerer` / `[run] model` of the call's project (else the server's).
        let run = packages::run_defaults(
            project
                .as_deref()
                .or(self.pkg_env().project_root.as_deref()),
        );
        let default = env_answerer
            .or(run.answerer)
            .unwrap_or_else(|| self.inner.options.default_answerer.clone());
        let given = a.str("answerer")?;
        let script = a.decoded("script");
        let name = match (given, &script) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) if self.auto_mrtr(conn) => Some("mrtr"),
            (None, None) => Some(default.as_str()),
        };
        let model = a.str("model")?.map(str::to_string).or(run.model);
        let answerer = self.parse_answerer(name, script, model.as_deref(), Some(conn))?;
        let timeout_ms = a.u64("timeout_ms")?;
        let mut spec = SessionSpec::new(program);
        if let Some(root) = &project {
            spec.resolver = format!("{}{}", packages::PROJECT_PREFIX, root.display());
        }
        if let Some(Value::String(t)) = ctx.get("task") {
            spec.labels.insert("task_hint".into(), args::task_hint(t));
        }
        spec.ctx = Value::Object(ctx);
        spec.labels.insert("kind".into(), kind.into());
        spec.labels.insert("answerer".into(), answerer.name.clone());
        if let Some(m) = &answerer.model {
            spec.labels.insert("model".into(), m.clone());
        }
        spec.human_channel = answerer.human_channel();
        if let Some(t) = timeout_ms.filter(|t| *t > 0) {
            spec.limits.deadline_ms = Some(t);
        }
        Ok((spec, answerer))
    }

    async fn start_session(
        &self,
        spec: SessionSpec,
        answerer: SessionAnswerer,
        wait: Duration,
        ctx: &RequestContext<RoleServer>,
    ) -> ToolResult {
        let lib_path_warnings = packages::lib_path_warnings(self.pkg_env(), &spec.resolver);
        // Progress notifications name the session while the call runs, so with a progress
        // token the session is written before it starts.
        let with_first_step = ctx.meta.get_progress_token().is_none();
        let id = self.spawn_mode(spec, with_first_step)?;
        self.set_answerer(&id, answerer);
        let out = self.drive(&id, wait, ctx, 0, true).await;
        // The id leaves with this reply (a `running` one included): the session is in
        // the journal by then.
        self.ensure_written(&id)?;
        let mut out = out?;
        packages::add_lib_path_warnings(&mut out, lib_path_warnings);
        Ok(out)
    }

    async fn alc_run(&self, a: Args<'_>, ctx: &RequestContext<RoleServer>) -> ToolResult {
        let code = a.str("code")?;
        let code_file = a.str("code_file")?;
        let source = match (code, code_file) {
            (Some(_), Some(_)) => {
                return Err(ToolError::invalid(
                    "`code` and `code_file` are mutually exclusive; pass exactly one",
                ))
            }
            (None, None) => {
                return Err(ToolError::invalid(
                    "one of `code` or `code_file` is required; pass exactly one",
                ))
            }
            (Some(c), None) => c.to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| ToolError::invalid(format!("`code_file`: cannot read {path}: {e}")))?,
        };
        let ctx_obj = a.object("ctx")?.unwrap_or_default();
        let _ = a.bool("host_mode")?;
        let wait = self.wait_of(a.u64("wait_ms")?);
        let program = Program::Code {
            source,
            name: Some("session".into()),
        };
        let (spec, answerer) = self.exec_spec(&a, program, ctx_obj, "run", &Conn::of(ctx))?;
        self.start_session(spec, answerer, wait, ctx).await
    }

    async fn alc_advice(&self, a: Args<'_>, ctx: &RequestContext<RoleServer>) -> ToolResult {
        let strategy = a.req_str("strategy")?;
        if !alc_engine::valid_package_name(strategy) {
            return Err(ToolError::invalid(format!(
                "`strategy` must be a package name matching ^[A-Za-z_][A-Za-z0-9_-]{{0,63}}$, got {strategy:?}"
            )));
        }
        let task = a.str("task")?;
        let mut ctx_obj = a.object("opts")?.unwrap_or_default();
        if let Some(t) = task {
            ctx_obj.insert("task".into(), json!(t));
        }
        let wait = self.wait_of(a.u64("wait_ms")?);
        let project = self.project_arg(&a)?;
        let env = match project {
            Some(root) => self.pkg_env().clone().with_project_root(Some(root)),
            None => self.pkg_env().clone(),
        };
        if alc_pkg::Resolver::new(env.clone())
            .locate(strategy)
            .is_none()
        {
            return Err(packages::advice_not_found(&env, strategy));
        }
        let program = Program::Package {
            name: strategy.to_string(),
            entry: "run".into(),
        };
        let (mut spec, answerer) =
            self.exec_spec(&a, program, ctx_obj, "advice", &Conn::of(ctx))?;
        spec.labels.insert("strategy".into(), strategy.to_string());
        self.start_session(spec, answerer, wait, ctx).await
    }

    /// `alc_eval` (§2.12, §8.5): every case × repeat runs as a durable session of this
    /// engine, answered by the provider or scripted answerer; one progress notification per
    /// finished case; the report is stored in `<home>/alc.db`. `resume` finishes an
    /// unfinished eval (see `evals`), `resample` / `cache` control the response cache.
    async fn alc_eval(&self, a: Args<'_>, ctx: &RequestContext<RoleServer>) -> ToolResult {
        let strategy = a.req_str("strategy")?;
        if !alc_engine::valid_package_name(strategy) {
            return Err(ToolError::invalid(format!(
                "`strategy` must be a package name matching ^[A-Za-z_][A-Za-z0-9_-]{{0,63}}$, got {strategy:?}"
            )));
        }
        let env = self.pkg_env().clone();
        if alc_pkg::Resolver::new(env.clone())
            .locate(strategy)
            .is_none()
        {
            return Err(packages::advice_not_found(&env, strategy));
        }
        let run_args = evals::RunArgs::parse(&a)?;
        let resumed = match &run_args.resume {
            Some(id) => Some(evals::resume_run(&env, id, strategy).await?),
            None => None,
        };
        let concurrency = a.u64("concurrency")?;
        if concurrency == Some(0) {
            return Err(ToolError::invalid("`concurrency` must be at least 1"));
        }
        // The answerer: `answerer` / `script`, else (resume) the recorded one, else
        // `ALC_ANSWERER`, the project's `[run] answerer`, the server's default; the host
        // default becomes `provider` when one is configured.
        let run_defaults = packages::run_defaults(self.pkg_env().project_root.as_deref());
        let given = a.str("answerer")?;
        let script = a.decoded("script");
        let default = std::env::var("ALC_ANSWERER")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .or(run_defaults.answerer)
            .unwrap_or_else(|| self.inner.options.default_answerer.clone());
        let recorded = resumed.as_ref().map(|r| r.record().answerer.clone());
        let name: Option<String> = match (given, &script) {
            (Some(n), _) => Some(n.to_string()),
            (None, Some(_)) => None,
            (None, None) if recorded.is_some() => recorded,
            (None, None) if default == "host" && self.provider().is_ok() => Some("provider".into()),
            (None, None) => Some(default),
        };
        let model = match &resumed {
            Some(r) => r.record().plan.model.clone(),
            None => a.str("model")?.map(str::to_string).or(run_defaults.model),
        };
        let session_answerer =
            self.parse_answerer(name.as_deref(), script, model.as_deref(), None)?;
        let client_for = |sa: &SessionAnswerer| -> Result<Option<alc_llm::Client>, ToolError> {
            match sa.kind {
                AnswererKind::Provider => self.provider().map(Some),
                _ => Ok(None),
            }
        };
        // Host answers: the cases' queries come back as pauses (`eval_host_step`).
        let answerer: Option<Arc<dyn alc_eval::runner::Answerer>> = match session_answerer.kind {
            AnswererKind::Host => None,
            _ => Some(Arc::new(evals::EvalAnswerer::new(
                &session_answerer,
                client_for(&session_answerer)?,
            )?)),
        };
        let judge_model = match &resumed {
            Some(r) => r.record().plan.judge_model.clone(),
            None => a.str("judge_model")?.map(str::to_string),
        };
        let judge: Option<Arc<dyn alc_eval::runner::Answerer>> = match a.str("judge_answerer")? {
            None => answerer.clone(),
            Some(n) => {
                let ja = self
                    .parse_answerer(Some(n), None, judge_model.as_deref(), None)
                    .map_err(|e| {
                        ToolError::new(e.code, e.message.replace("`answerer`", "`judge_answerer`"))
                    })?;
                Some(Arc::new(evals::EvalAnswerer::new(&ja, client_for(&ja)?)?))
            }
        };
        let mut warnings: Vec<String> = Vec::new();
        if a.has("auto_card") {
            let _ = a.bool("auto_card")?;
            warnings
                .push("`auto_card` is accepted but has no effect (cards are not shipped)".into());
        }
        let run = match resumed {
            Some(mut run) => {
                if let Some(c) = concurrency {
                    run.set_concurrency(c as usize);
                }
                run
            }
            None => {
                let scenario = evals::load_scenario(&a, &env)?;
                let repeats = a.u64("repeats")?.unwrap_or(1);
                if repeats == 0 || repeats > 1000 {
                    return Err(ToolError::invalid("`repeats` must be between 1 and 1000"));
                }
                let strategy_opts = a.object("strategy_opts")?.unwrap_or_default();
                let default_concurrency = self
                    .provider()
                    .map(|c| c.providers().settings.max_concurrency)
                    .unwrap_or(4)
                    .max(1);
                let record = alc_eval::durable::RunRecord {
                    scenario_hash: scenario.content_hash(),
                    plan: alc_eval::runner::EvalPlan {
                        strategy: strategy.to_string(),
                        strategy_opts,
                        scenario,
                        repeats: repeats as u32,
                        concurrency: concurrency.map_or(default_concurrency, |c| c as usize),
                        model: session_answerer.model.clone(),
                        judge_model,
                        case_timeout_ms: a.u64("timeout_ms")?.filter(|t| *t > 0),
                    },
                    answerer: session_answerer.name.clone(),
                    judge_answerer: a.str("judge_answerer")?.map(str::to_string),
                    warnings: warnings.clone(),
                    started_at: alc_eval::now_ms(),
                };
                evals::begin_run(&env, record, &mut warnings).await?
            }
        };
        let lib_path_warnings = packages::lib_path_warnings(self.pkg_env(), "");
        let Some(answerer) = answerer else {
            let host_eval = evals::HostEval::new(run, judge, warnings.clone())?;
            let wait = self.wait_of(a.u64("wait_ms")?);
            let mut out = self.eval_host_step(host_eval, None, wait, ctx).await?;
            if !warnings.is_empty() && out.get("warnings").is_none() {
                out["warnings"] = json!(warnings);
            }
            packages::add_lib_path_warnings(&mut out, lib_path_warnings);
            return Ok(out);
        };
        let judge = judge.unwrap_or_else(|| answerer.clone());

        // One notification per finished case: progress = finished cases, total = cases.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
        let notifier = ctx.meta.get_progress_token().map(|token| {
            let peer = ctx.peer.clone();
            let callback: alc_eval::runner::Progress = Arc::new(move |done, total| {
                let _ = tx.send((done, total));
            });
            let task = tokio::spawn(async move {
                while let Some((done, total)) = rx.recv().await {
                    let p = ProgressNotificationParam::new(token.clone(), done as f64)
                        .with_total(total as f64)
                        .with_message(format!("eval: {done}/{total} cases done"));
                    let _ = peer.notify_progress(p).await;
                }
            });
            (callback, task)
        });
        let (callback, task) = match notifier {
            Some((c, t)) => (Some(c), Some(t)),
            None => (None, None),
        };
        let out = evals::execute(
            self.engine(),
            &env,
            self.inner.journal.get().cloned(),
            run,
            answerer,
            judge,
            callback,
            &run_args,
            warnings,
            ctx.ct.cancelled(),
        )
        .await;
        if let Some(t) = task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), t).await;
        }
        let mut out = out?;
        packages::add_lib_path_warnings(&mut out, lib_path_warnings);
        Ok(out)
    }

    /// Runs the next case of a host-answered eval until its first pause (a case that ends
    /// without pausing is graded at once), or completes the eval when every case has a
    /// result. `last` is the case session that just ended.
    async fn eval_host_step(
        &self,
        host_eval: Arc<evals::HostEval>,
        mut last: Option<SessionId>,
        wait: Duration,
        ctx: &RequestContext<RoleServer>,
    ) -> ToolResult {
        loop {
            let (slot, id, fresh) = match host_eval.next(self.engine()) {
                evals::NextCase::Done => return host_eval.complete(last.as_ref()).await,
                evals::NextCase::Continue { slot, session_id } => (slot, session_id, false),
                evals::NextCase::Start { slot, spec } => (slot, self.spawn(*spec)?, true),
            };
            host_eval.started(slot, &id, fresh)?;
            if fresh {
                self.set_answerer(&id, SessionAnswerer::host());
            }
            let mut payload = self.drive(&id, wait, ctx, 0, fresh).await?;
            if evals::is_terminal_payload(&payload) {
                host_eval.case_ended(self.engine(), &id).await?;
                last = Some(id);
                continue;
            }
            host_eval.annotate(&mut payload);
            return Ok(payload);
        }
    }

    /// `alc_continue`, then, when the answered session is the case of a host-answered eval
    /// and has ended, the eval's next case (or the completed eval).
    async fn alc_continue_eval(&self, a: Args<'_>, ctx: &RequestContext<RoleServer>) -> ToolResult {
        let host_eval = a
            .str("session_id")
            .ok()
            .flatten()
            .and_then(evals::host_eval_of);
        let wait = self.wait_of(a.u64("wait_ms").ok().flatten());
        let out = self.alc_continue(a, ctx).await?;
        let Some(host_eval) = host_eval else {
            return Ok(out);
        };
        let id = match out["session_id"].as_str().map(SessionId::parse) {
            Some(Ok(id)) => id,
            _ => return Ok(out),
        };
        if evals::is_terminal_payload(&out) {
            if host_eval.case_ended(self.engine(), &id).await? {
                return self.eval_host_step(host_eval, Some(id), wait, ctx).await;
            }
            return Ok(out);
        }
        let mut out = out;
        if out["status"] == "needs_response" {
            host_eval.annotate(&mut out);
        }
        Ok(out)
    }

    async fn alc_continue(&self, a: Args<'_>, ctx: &RequestContext<RoleServer>) -> ToolResult {
        let sid = a.req_str("session_id")?;
        let id = parse_session(sid)?;
        let round = a.u64("round")?;
        let wait = self.wait_of(a.u64("wait_ms")?);
        let switch = a.str("answerer")?;
        let script = a.decoded("script");
        if switch.is_some() || script.is_some() {
            let new = self
                .parse_answerer(switch, script, a.str("model")?, Some(&Conn::of(ctx)))
                .map_err(|e| e.with_session(sid))?;
            let snap = self
                .engine()
                .state(&id, &SnapshotOptions::default())
                .map_err(|_| not_found(&id))?;
            if !snap.phase.is_terminal() {
                let mut new = new;
                if new.model.is_none() {
                    new.model = self.answerer_of(&id).model;
                }
                // The journal keeps the answerer the session started with; the
                // transcript's row names the current one.
                if let Ok(t) = self.transcripts() {
                    t.set_answerer(id.as_str(), &new.name)
                        .map_err(|e| e.with_session(sid))?;
                }
                self.set_answerer(&id, new);
            }
        }
        let usage = usage_of(a.decoded("usage").as_ref())?;
        let answers: Vec<Answer> = if let Some(rs) = a.decoded("responses") {
            let Value::Array(items) = rs else {
                return Err(ToolError::invalid("`responses` must be an array").with_session(sid));
            };
            if items.is_empty() {
                return Err(ToolError::invalid("`responses` must not be empty").with_session(sid));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Value::Object(m) = item else {
                    return Err(ToolError::invalid(format!(
                        "`responses[{i}]` must be an object {{query_id, response}}"
                    ))
                    .with_session(sid));
                };
                let qid = query_id_of(m.get("query_id"), "responses[].query_id")
                    .map_err(|e| e.with_session(sid))?
                    .ok_or_else(|| {
                        ToolError::invalid(format!("`responses[{i}].query_id` is required"))
                            .with_session(sid)
                    })?;
                let ask = ask_status_of(m.get("ask_status"), "responses[].ask_status")?;
                let u = usage_of(m.get("usage"))?;
                out.push(
                    make_answer(Some(qid), m.get("response"), ask, u, "response")
                        .map_err(|e| e.with_session(sid))?,
                );
            }
            out
        } else if a.has("response") || a.has("ask_status") {
            let qid = query_id_of(a.decoded("query_id").as_ref(), "query_id")
                .map_err(|e| e.with_session(sid))?;
            let ask = ask_status_of(a.decoded("ask_status").as_ref(), "ask_status")?;
            let response = a.decoded("response");
            vec![make_answer(qid, response.as_ref(), ask, usage, "response")
                .map_err(|e| e.with_session(sid))?]
        } else {
            // Mode 4: re-fetch.
            let snap = self
                .engine()
                .state(&id, &SnapshotOptions::default())
                .map_err(|_| not_found(&id))?;
            let auto = !self.answerer_of(&id).is_host();
            if snap.phase.is_terminal() || (snap.phase == Phase::Paused && !auto) {
                return Ok(wire::current(&snap));
            }
            return self
                .drive(&id, wait, ctx, snap.last_event_seq + 1, false)
                .await;
        };
        let before = self.engine().state(&id, &SnapshotOptions::default()).ok();
        // A completed round replies after the step it starts, so its answers go to the
        // journal with that step's records (`ensure_written` below covers early replies).
        let ack = self
            .engine()
            .resume_now_with_next_step(&id, Answers { round, answers })
            .map_err(|e| resume_error(&id, e))?;
        let out = match ack {
            ResumeAck::Accepted { round, remaining } => {
                let snap = self
                    .engine()
                    .state(&id, &SnapshotOptions::default())
                    .map_err(|_| not_found(&id))?;
                Ok(json!({
                    "status": "accepted", "session_id": id.as_str(), "round": round,
                    "remaining": remaining, "pending": open_ids(&snap),
                }))
            }
            ResumeAck::Continued { .. } => {
                // Observe from before the answers were applied, so nothing the resumed
                // script reports is missed.
                let from = before.as_ref().map_or(0, |s| s.last_event_seq + 1);
                let out = self.drive(&id, wait, ctx, from, false).await;
                self.ensure_written(&id)?;
                out
            }
        };
        out
    }

    async fn alc_status(&self, a: Args<'_>) -> ToolResult {
        let filter = parse_pending_filter(a.decoded("pending_filter"))?;
        let include_history = a.bool("include_history")?.unwrap_or(false);
        let wait_ms = a.u64("wait_ms")?;
        let opts = SnapshotOptions {
            include_history,
            ..SnapshotOptions::default()
        };
        if let Some(sid) = a.str("session_id")? {
            let id = parse_session(sid)?;
            if let Some(ms) = wait_ms.filter(|ms| *ms > 0) {
                let limit = Duration::from_millis(ms);
                if let Some(mut rx) = self.working_driver(&id) {
                    let _ =
                        tokio::time::timeout(limit, rx.wait_for(|s| *s != DriverState::Working))
                            .await;
                } else {
                    let _ = self.engine().run_until_pause(&id, limit).await;
                }
            }
            let snap = self
                .engine()
                .state(&id, &opts)
                .map_err(|_| not_found(&id))?;
            return Ok(self.relabel(status_entry(&snap, filter.as_ref()), &snap));
        }
        if wait_ms.is_some() {
            return Err(ToolError::invalid("`wait_ms` needs `session_id`"));
        }
        let list = self.engine().list(&ListFilter {
            phases: vec![Phase::Queued, Phase::Running, Phase::Paused],
            limit: usize::MAX,
            ..ListFilter::default()
        });
        let sessions: Vec<Value> = list
            .iter()
            .map(|s| {
                let entry = if include_history {
                    let full = self.engine().state(&s.session_id, &opts).ok();
                    status_entry(full.as_ref().unwrap_or(s), filter.as_ref())
                } else {
                    status_entry(s, filter.as_ref())
                };
                self.relabel(entry, s)
            })
            .collect();
        Ok(json!({"active_sessions": sessions.len(), "sessions": sessions}))
    }

    async fn alc_cancel(&self, a: Args<'_>) -> ToolResult {
        let sid = a.req_str("session_id")?;
        let id = parse_session(sid)?;
        let reason = CancelReason {
            code: CancelCode::User,
            detail: a.str("reason")?.map(str::to_string),
        };
        let ack = self
            .engine()
            .cancel_now(&id, reason)
            .map_err(|_| not_found(&id))?;
        match ack {
            CancelAck::AlreadyTerminal { phase } => Ok(json!({
                "status": outcome_status(phase), "session_id": id.as_str(), "already_terminal": true,
            })),
            CancelAck::Cancelled | CancelAck::Requested => {
                let waited =
                    tokio::time::timeout(Duration::from_secs(2), self.engine().wait(&id)).await;
                match waited {
                    Ok(Ok(t)) => Ok(wire::terminal(&t)),
                    Ok(Err(e)) => Err(wait_error(&id, e)),
                    Err(_) => {
                        let snap = self
                            .engine()
                            .state(&id, &SnapshotOptions::default())
                            .map_err(|_| not_found(&id))?;
                        Ok(json!({
                            "status": "cancel_requested", "session_id": id.as_str(),
                            "previous_phase": snap.phase.wire_name(),
                        }))
                    }
                }
            }
        }
    }

    async fn alc_sessions(&self, a: Args<'_>) -> ToolResult {
        let status = a.str("status")?.unwrap_or("all");
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
        if !STATUSES.contains(&status) {
            return Err(ToolError::invalid(format!(
                "`status`: unknown value '{status}' (active, paused, running, resumable, completed, failed, cancelled, all)"
            )));
        }
        let strategy = a.str("strategy")?;
        let kind = a.str("kind")?;
        let since = a.u64("since")?;
        let limit = a.u64("limit")?.unwrap_or(50);
        if limit == 0 || limit > 1000 {
            return Err(ToolError::invalid("`limit` must be between 1 and 1000"));
        }
        let offset = a.u64("offset")?.unwrap_or(0) as usize;
        // Sessions hosted here, then the journal rows of every other process.
        let hosted = self.engine().list(&ListFilter {
            limit: usize::MAX,
            ..ListFilter::default()
        });
        let hosted_ids: HashSet<SessionId> = hosted.iter().map(|s| s.session_id.clone()).collect();
        let mut all: Vec<Listed> = hosted
            .into_iter()
            .map(|s| Listed::Hosted(Box::new(s)))
            .collect();
        if let Some(j) = self.inner.journal.get() {
            // Leases of dead processes are void: their sessions are resumable.
            let _ = j.void_dead_leases();
            let rows = j
                .open_sessions(&RowFilter::default())
                .map_err(|e| ToolError::new("io_error", format!("session journal: {e}")))?;
            all.extend(
                rows.into_iter()
                    .filter(|r| !hosted_ids.contains(&r.session_id))
                    .map(|r| Listed::Row(Box::new(r))),
            );
        }
        all.retain(|l| {
            let labels = l.labels();
            status_matches(status, l.status())
                && strategy.is_none_or(|st| labels.get("strategy").map(String::as_str) == Some(st))
                && kind.is_none_or(|k| labels.get("kind").map(String::as_str).unwrap_or("run") == k)
                && since.is_none_or(|t| l.updated_at() >= t as i64)
        });
        all.sort_by_key(|l| std::cmp::Reverse((l.updated_at(), l.created_at())));
        let total = all.len();
        let page: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit as usize)
            .map(|l| match l {
                Listed::Hosted(s) => self.relabel(session_entry(s), s),
                Listed::Row(r) => wire::row_entry(r, self.inner.journal.get().map(|j| j.as_ref())),
            })
            .collect();
        let has_more = offset + page.len() < total;
        Ok(json!({"sessions": page, "total": total, "has_more": has_more}))
    }

    /// Shows the session's current answerer (after an `alc_continue` switch).
    fn relabel(&self, mut entry: Value, s: &Snapshot) -> Value {
        if let Some(name) = self.answerer_label(s) {
            entry["answerer"] = json!(name);
        }
        entry
    }

    /// The resolved `init.lua` of a package (any source of the chain).
    fn package_source(&self, name: &str) -> Option<String> {
        let env = self.pkg_env();
        let b = alc_pkg::Resolver::new(env.clone()).locate(name)?;
        match b.dir {
            Some(dir) => std::fs::read_to_string(dir.join("init.lua")).ok(),
            None => env
                .bundled
                .file(name, "init.lua")
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        }
    }

    fn alc_info(&self) -> ToolResult {
        let (env_home, env_source) = home_dir();
        let home = self.pkg_env().home.clone();
        let source = if home == env_home {
            env_source
        } else {
            "--home"
        };
        let abs = |p: PathBuf| -> String {
            std::path::absolute(&p)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        };
        let home_s = abs(home.clone());
        let search = packages::info_search_paths(self.pkg_env());
        let providers: Vec<Value> = match self.llm_client() {
            Ok(c) => c
                .providers()
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "kind": p.kind,
                        "base_url": p.base_url,
                        "model": p.model,
                        "api_key": if p.api_key.is_some() { "set" } else { "missing" },
                    })
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let default_answerer = std::env::var("ALC_ANSWERER")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| self.inner.options.default_answerer.clone());
        let versions: Vec<String> = self
            .supported_protocol_versions()
            .iter()
            .rev()
            .map(|v| v.to_string())
            .collect();
        let mut answerers = vec!["host", "provider", "scripted", "mrtr"];
        if self.inner.options.sampling_enabled {
            answerers.push("sampling");
        }
        Ok(json!({
            "name": "algocline",
            "version": VERSION,
            "compat_version": "0.38.1",
            "protocol_versions": versions,
            "home": {"path": home_s, "source": source},
            "database": abs(home.join("alc.db")),
            "config_files": [],
            "log_dir": {"resolved": abs(home.join("logs")), "source": "default"},
            "log_enabled": false,
            "tracing": "stderr",
            "search_paths": search,
            "packages_dir": abs(home.join("packages")),
            "project_root": self.pkg_env().project_root.as_ref().map(|p| p.display().to_string()),
            "bundled_packages": self.pkg_env().bundled.names(),
            "default_answerer": default_answerer,
            "answerers": answerers,
            "providers": providers,
        }))
    }

    /// Runs a package operation off the async threads (it may run `git`).
    async fn pkg_op(
        &self,
        args: &Map<String, Value>,
        op: fn(&PkgEnv, &Args<'_>) -> ToolResult,
    ) -> ToolResult {
        let env = self.pkg_env().clone();
        let args = args.clone();
        tokio::task::spawn_blocking(move || op(&env, &Args::new(&args)))
            .await
            .map_err(|e| ToolError::new("internal", format!("package operation failed: {e}")))?
    }

    async fn dispatch(
        &self,
        name: &str,
        args: &Map<String, Value>,
        ctx: &RequestContext<RoleServer>,
    ) -> ToolResult {
        let started = std::time::Instant::now();
        let a = Args::new(args);
        let result = match name {
            "alc_run" => self.alc_run(a, ctx).await,
            "alc_advice" => self.alc_advice(a, ctx).await,
            "alc_continue" => self.alc_continue_eval(a, ctx).await,
            "alc_status" => self.alc_status(a).await,
            "alc_cancel" => self.alc_cancel(a).await,
            "alc_sessions" => self.alc_sessions(a).await,
            "alc_info" => self.alc_info(),
            "alc_log_view" => self.alc_log_view(a).await,
            "alc_stats" => self.alc_stats(a).await,
            "alc_note" => self.alc_note(a).await,
            "alc_pkg_list" => self.pkg_op(args, packages::pkg_list).await,
            "alc_pkg_install" => self.pkg_op(args, packages::pkg_install).await,
            "alc_pkg_remove" => self.pkg_op(args, packages::pkg_remove).await,
            "alc_pkg_link" => self.pkg_op(args, packages::pkg_link).await,
            "alc_pkg_unlink" => self.pkg_op(args, packages::pkg_unlink).await,
            "alc_init" => self.pkg_op(args, packages::init).await,
            "alc_eval" => self.alc_eval(a, ctx).await,
            "alc_eval_history" => self.pkg_op(args, evals::history).await,
            "alc_eval_detail" => self.pkg_op(args, evals::detail).await,
            "alc_eval_compare" => self.pkg_op(args, evals::compare).await,
            "alc_scenario_list" => self.pkg_op(args, evals::scenario_list).await,
            "alc_scenario_show" => self.pkg_op(args, evals::scenario_show).await,
            "alc_scenario_install" => self.pkg_op(args, evals::scenario_install).await,
            _ => unreachable!("checked by call_tool"),
        };
        crate::diag::ToolCall::of(name, args, &result, started.elapsed()).log_after_reply();
        result
    }
}

fn legacy_structured(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|v| v.as_str() <= ProtocolVersion::V_2025_03_26.as_str())
}

/// Protocol revisions served, oldest first (§3.1). `initialize` also accepts the older
/// handshake revisions of [`OLDER_HANDSHAKE_VERSIONS`].
const SUPPORTED_VERSIONS: &[ProtocolVersion] =
    &[ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28];

/// Handshake revisions answered with the same version although not listed as supported:
/// 2025-06-18, and 2025-03-26 (without structured output).
const OLDER_HANDSHAKE_VERSIONS: &[ProtocolVersion] =
    &[ProtocolVersion::V_2025_06_18, ProtocolVersion::V_2025_03_26];

/// The legacy revision's answer to an `initialize` naming a revision this server does not
/// speak: `-32602` "Unsupported protocol version" with the supported and requested ones.
fn unsupported_handshake(requested: &ProtocolVersion) -> McpError {
    let mut supported: Vec<String> = SUPPORTED_VERSIONS
        .iter()
        .rev()
        .chain(OLDER_HANDSHAKE_VERSIONS)
        .map(|v| v.to_string())
        .collect();
    supported.dedup();
    McpError::new(
        rmcp::model::ErrorCode::INVALID_PARAMS,
        "Unsupported protocol version",
        Some(json!({"supported": supported, "requested": requested})),
    )
}

impl ServerHandler for AlcServer {
    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Borrowed(SUPPORTED_VERSIONS)
    }

    /// The legacy handshake (§3.1): 2025-11-25, 2025-06-18 and 2025-03-26 are answered
    /// with the same version; 2026-07-28 (which has no handshake of its own) with
    /// 2025-11-25; anything else is refused.
    async fn initialize(
        &self,
        request: InitializeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        let requested = &request.protocol_version;
        let version = if SUPPORTED_VERSIONS.contains(requested)
            || OLDER_HANDSHAKE_VERSIONS.contains(requested)
        {
            if requested.has_initialize() {
                requested.clone()
            } else {
                ProtocolVersion::LATEST_WITH_INITIALIZE
            }
        } else {
            return Err(unsupported_handshake(requested));
        };
        ctx.peer.set_peer_info(request.clone());
        let mut info = self.get_info();
        // rmcp keeps this version when the requested one is not in
        // `supported_protocol_versions` (the older handshake revisions).
        info.protocol_version = version;
        Ok(info)
    }

    fn get_info(&self) -> ServerConfig {
        let mut caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions()
            .build();
        if let Some(tools) = caps.tools.as_mut() {
            tools.list_changed = Some(false);
        }
        if let Some(r) = caps.resources.as_mut() {
            r.subscribe = Some(false);
            r.list_changed = Some(false);
        }
        if let Some(p) = caps.prompts.as_mut() {
            p.list_changed = Some(false);
        }
        let mut info = ServerConfig::new(caps)
            .with_server_info(Implementation::new("algocline", VERSION))
            .with_instructions(INSTRUCTIONS);
        info.protocol_version = ProtocolVersion::V_2025_11_25;
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let mut tools = schema::tools();
        if legacy_structured(&ctx) {
            for t in &mut tools {
                t.output_schema = None;
            }
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let name = request.name.as_ref();
        if !schema::TOOL_NAMES.contains(&name) {
            return Err(McpError::invalid_params(
                format!("unknown tool: {name}"),
                None,
            ));
        }
        let args = request.arguments.clone().unwrap_or_default();
        // MRTR (§3.8): a sealed retry, or a call whose pauses are mapped.
        let response = if request.request_state.is_some() || request.input_responses.is_some() {
            let result = self
                .mrtr_retry(
                    name,
                    &args,
                    request.input_responses.clone(),
                    request.request_state.clone(),
                    &ctx,
                )
                .await;
            self.mrtr_response(name, &args, result)
        } else if self.mrtr_selected(name, &args, &Conn::of(&ctx)) {
            let result = self.dispatch(name, &args, &ctx).await;
            self.mrtr_response(name, &args, result)
        } else {
            let result = self.dispatch(name, &args, &ctx).await;
            match result {
                Ok(v) => CallToolResult::structured(v),
                Err(e) => CallToolResult::structured_error(e.to_value()),
            }
            .into()
        };
        Ok(match response {
            CallToolResponse::Complete(mut out) if legacy_structured(&ctx) => {
                out.structured_content = None;
                out.into()
            }
            other => other,
        })
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let types = rmcp::model::Resource::new(resources::TYPES_URI, "alc API types")
            .with_mime_type("text/x-lua")
            .with_description("LuaCATS definitions of the alc.* API for lua-language-server.");
        Ok(ListResourcesResult::with_all_items(vec![types]))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let templates = resources::TEMPLATES
            .iter()
            .map(|(uri, name, mime, desc)| {
                ResourceTemplate::new(*uri, *name)
                    .with_mime_type(*mime)
                    .with_description(*desc)
            })
            .collect();
        Ok(ListResourceTemplatesResult::with_all_items(templates))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let uri = request.uri.clone();
        let parsed = resources::parse(&uri).map_err(|m| McpError::invalid_params(m, None))?;
        let missing = || McpError::resource_not_found(format!("resource not found: {uri}"), None);
        let (text, mime) = match parsed.ok_or_else(missing)? {
            ResourceUri::Types => (alc_pkg::TYPES_STUB.to_string(), "text/x-lua"),
            ResourceUri::Scenario(name) => {
                evals::scenario_file(self.pkg_env(), &name).map_err(|_| missing())?
            }
            ResourceUri::Eval(id) => (
                evals::detail_of(self.pkg_env(), &id)
                    .map_err(|_| missing())?
                    .to_string(),
                "application/json",
            ),
            ResourceUri::PackageSource(name) => (
                self.package_source(&name).ok_or_else(missing)?,
                "text/x-lua",
            ),
            ResourceUri::PackageMeta(name) => {
                let src = self.package_source(&name).ok_or_else(missing)?;
                let meta = alc_pkg::meta::extract_meta(&src).unwrap_or_default();
                (Value::Object(meta).to_string(), "application/json")
            }
            ResourceUri::Logs(id, max_chars) => {
                let t = self
                    .transcripts()
                    .map_err(|e| McpError::internal_error(e.message, None))?;
                let d = t
                    .detail(id.as_str(), max_chars)
                    .map_err(|e| McpError::internal_error(e.message, None))?
                    .ok_or_else(missing)?;
                (d.to_string(), "application/json")
            }
            ResourceUri::Session(id) => {
                let snap = self
                    .engine()
                    .state(&id, &SnapshotOptions::default())
                    .map_err(|_| missing())?;
                let full = parse_pending_filter(Some(json!("full"))).ok().flatten();
                let entry = self.relabel(status_entry(&snap, full.as_ref()), &snap);
                (entry.to_string(), "application/json")
            }
        };
        Ok(
            ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type(mime)])
                .into(),
        )
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let prefix = request.argument.value.as_str();
        let mut values: Vec<String> = match (&request.r#ref, request.argument.name.as_str()) {
            (Reference::Resource(r), "name") if r.uri.starts_with("alc://packages/") => {
                packages::resolvable_names(self.pkg_env())
                    .into_iter()
                    .filter(|n| n.starts_with(prefix))
                    .collect()
            }
            (Reference::Resource(_), "session_id") => self
                .engine()
                .list(&ListFilter {
                    limit: usize::MAX,
                    ..ListFilter::default()
                })
                .into_iter()
                .map(|s| s.session_id.to_string())
                .filter(|id| id.starts_with(prefix))
                .collect(),
            _ => Vec::new(),
        };
        values.sort();
        let total = values.len();
        values.truncate(CompletionInfo::MAX_VALUES);
        let info = CompletionInfo::with_pagination(
            values,
            Some(total as u32),
            total > CompletionInfo::MAX_VALUES,
        )
        .map_err(|m| McpError::internal_error(m, None))?;
        Ok(CompleteResult::new(info))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            "advice",
            Some("Pick a suitable strategy with alc_pkg_list, run it with alc_advice, answer its pauses with alc_continue and summarise."),
            Some(vec![PromptArgument::new("task")
                .with_description("The task to solve.")
                .with_required(true)]),
        )]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        if request.name != "advice" {
            return Err(McpError::invalid_params(
                format!("unknown prompt: {}", request.name),
                None,
            ));
        }
        let task = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("task"))
            .and_then(Value::as_str)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                McpError::invalid_params("prompt `advice` needs the argument `task`", None)
            })?;
        let mut r = GetPromptResult::new(vec![PromptMessage::new_text(
            Role::User,
            resources::advice_prompt(task),
        )]);
        r.description = Some("Solve a task with an algocline strategy".into());
        Ok(r.into())
    }

    async fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        _ctx: NotificationContext<RoleServer>,
    ) {
        let Some(rid) = notification.request_id else {
            return;
        };
        let sid = self
            .inner
            .inflight
            .lock()
            .expect("inflight lock")
            .get(&rid)
            .cloned();
        if let Some(sid) = sid {
            let reason = CancelReason {
                code: CancelCode::ClientCancelled,
                detail: notification.reason,
            };
            let _ = self.engine().cancel_now(&sid, reason);
        }
    }
}
