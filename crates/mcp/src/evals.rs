//! Eval and scenario tools (interfaces.md §2.12, §8) over the `alc-eval` crate.
//!
//! `alc_eval` runs every case × repeat as a session of the server's engine, answered by
//! the `provider` or `scripted` answerer (host-answered evals, where every query would
//! surface as a pause, are not offered yet). The read tools and the scenario tools are
//! plain functions of the package environment, run off the async threads.
//!
//! Evals are durable ([`alc_eval::durable`]): the run and each case's session are recorded
//! in `<home>/alc.db` before work starts, so an eval cut short by a crash or a restart is
//! finished with `alc_eval {strategy, resume: "<eval_id>"}` — finished cases are kept,
//! interrupted sessions replay from the journal, untouched cases run. Provider answers go
//! through the response cache ([`alc_eval::cache`]); `resample: true` asks the provider
//! again (refreshing the cache) and `cache: false` bypasses it.

use std::path::Path;
use std::sync::{Arc, Mutex};

use alc_core::{Journal, LlmQuery, PendingQuery};
use alc_engine::Engine;
use alc_eval::cache::EvalCache;
use alc_eval::compare::{self, CompareOptions};
use alc_eval::dataset::{self, Scenario};
use alc_eval::durable::{DurableRun, RunRecord};
use alc_eval::report::Report;
use alc_eval::runner::{self, Answered, Answerer, BoxFuture, RunOptions};
use alc_eval::store::EvalStore;
use alc_eval::{grader, scenarios, EvalError};
use alc_pkg::PkgEnv;
use serde_json::{json, Value};

use crate::args::{Args, ToolError, ToolResult};
use crate::auto::{self, AnswererKind, Listener, SessionAnswerer};
use crate::scripted::ScriptedAnswerer;

/// An [`EvalError`] as a request error (§2.2): codes pass through, a missing file is
/// `scenario_not_found`, a provider failure `provider_unavailable`.
pub fn eval_error(e: EvalError) -> ToolError {
    let code = match e.code {
        "not_found" => "scenario_not_found",
        "provider_error" => "provider_unavailable",
        c => c,
    };
    let mut msg = e.message;
    if let Some(h) = e.hint {
        if !h.contains("--") && !h.contains("`alc ") {
            msg = format!("{msg} ({h})");
        }
    }
    ToolError::new(code, msg)
}

/// An optional finite number argument.
pub fn f64_arg(a: &Args<'_>, name: &str) -> Result<Option<f64>, ToolError> {
    match a.decoded(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| ToolError::invalid(format!("`{name}` must be a number"))),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| ToolError::invalid(format!("`{name}` must be a number"))),
        Some(_) => Err(ToolError::invalid(format!("`{name}` must be a number"))),
    }
}

/// The answerer of eval sessions and judges: the server's `provider` or `scripted`.
pub struct EvalAnswerer {
    name: String,
    kind: EvalKind,
}

enum EvalKind {
    Provider(runner::ProviderAnswerer),
    Scripted(Arc<Mutex<ScriptedAnswerer>>),
}

impl EvalAnswerer {
    /// Wraps a parsed session answerer; `host` → `invalid_params` (host-answered evals
    /// surface their queries as pauses instead, see [`HostEval`]).
    pub fn new(a: &SessionAnswerer, client: Option<alc_llm::Client>) -> Result<Self, ToolError> {
        let kind = match (&a.kind, client) {
            (AnswererKind::Scripted(s), _) => EvalKind::Scripted(s.clone()),
            (AnswererKind::Provider, Some(c)) => EvalKind::Provider(runner::ProviderAnswerer::new(c)),
            (AnswererKind::Provider, None) => {
                return Err(ToolError::new(
                    "provider_unavailable",
                    "no LLM provider is configured",
                ))
            }
            (AnswererKind::Host, _) => {
                return Err(ToolError::invalid(
                    "`judge_answerer` must be `provider` or scripted (`scripted:<path>`); host answers are for the strategy's queries",
                ))
            }
            (AnswererKind::Sampling(_), _) => {
                return Err(ToolError::invalid(
                    "the `sampling` answerer is not available for evals; use `provider` or scripted rules",
                ))
            }
        };
        Ok(EvalAnswerer {
            name: a.name.clone(),
            kind,
        })
    }
}

impl Answerer for EvalAnswerer {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn cache_route(&self, query: &LlmQuery, model: Option<&str>) -> Option<(String, String)> {
        match &self.kind {
            EvalKind::Provider(p) => p.cache_route(query, model),
            EvalKind::Scripted(_) => None,
        }
    }

    fn human_channel(&self) -> bool {
        match &self.kind {
            EvalKind::Provider(_) => false,
            EvalKind::Scripted(s) => s.lock().map(|s| s.has_human_rules()).unwrap_or(false),
        }
    }

    fn answer<'a>(
        &'a self,
        queries: &'a [PendingQuery],
        model: Option<&'a str>,
    ) -> BoxFuture<'a, Vec<Answered>> {
        match &self.kind {
            EvalKind::Provider(p) => p.answer(queries, model),
            EvalKind::Scripted(s) => {
                let quiet: Listener = Arc::new(Mutex::new(None));
                let out = auto::scripted_answers(s, queries, &quiet)
                    .into_iter()
                    .map(Answered::from)
                    .collect();
                Box::pin(async move { out })
            }
        }
    }
}

/// The scenario of an `alc_eval` call: exactly one of `scenario` (inline Lua),
/// `scenario_file`, `scenario_name` or `dataset` (array of cases), then the call's
/// `graders`, `pass_threshold`, `output_field` and `limit`.
pub fn load_scenario(a: &Args<'_>, env: &PkgEnv) -> Result<Scenario, ToolError> {
    let given: Vec<&str> = ["scenario", "scenario_file", "scenario_name", "dataset"]
        .into_iter()
        .filter(|k| a.has(k))
        .collect();
    if given.len() != 1 {
        return Err(ToolError::invalid(format!(
            "pass exactly one of `scenario`, `scenario_file`, `scenario_name` or `dataset`{}",
            if given.is_empty() {
                String::new()
            } else {
                format!(" (got {})", given.join(", "))
            }
        )));
    }
    let mut s = match given[0] {
        "scenario" => {
            dataset::parse_lua_scenario(a.req_str("scenario")?, "inline").map_err(eval_error)?
        }
        "scenario_file" => {
            let p = a.req_str("scenario_file")?;
            let path = Path::new(p);
            if !path.is_file() {
                return Err(ToolError::new(
                    "scenario_not_found",
                    format!("`scenario_file`: {p}: no such file"),
                ));
            }
            dataset::load_any(path, false).map_err(eval_error)?
        }
        "scenario_name" => scenarios::load(&env.scenarios_dir(), a.req_str("scenario_name")?)
            .map_err(eval_error)?,
        _ => {
            let items = match a.decoded("dataset") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(ToolError::invalid(
                        "`dataset` must be an array of case objects",
                    ))
                }
            };
            Scenario {
                name: "inline".into(),
                cases: dataset::cases_from_values(&items)
                    .map_err(|e| eval_error(e.prefix("`dataset`: ")))?,
                graders: vec![grader::GraderSpec::exact()],
                pass_threshold: 1.0,
                output_field: None,
                skipped: Vec::new(),
            }
        }
    };
    if let Some(g) = a.decoded("graders") {
        s.graders = grader::parse_graders(&g).map_err(|e| eval_error(e.prefix("`graders`: ")))?;
    }
    if let Some(t) = f64_arg(a, "pass_threshold")? {
        if !(0.0..=1.0).contains(&t) {
            return Err(ToolError::invalid(
                "`pass_threshold` must be between 0 and 1",
            ));
        }
        s.pass_threshold = t;
    }
    if let Some(f) = a.str("output_field")? {
        s.output_field = Some(f.to_string());
    }
    if let Some(n) = a.u64("limit")? {
        s.cases.truncate(n as usize);
    }
    if s.cases.is_empty() {
        return Err(ToolError::invalid("the scenario has no cases"));
    }
    Ok(s)
}

/// The durability and cache arguments of `alc_eval`.
#[derive(Debug, Clone, Default)]
pub struct RunArgs {
    /// `resume`: the unfinished eval to finish.
    pub resume: Option<String>,
    /// `resample`: ask the provider again instead of reading cached answers.
    pub resample: bool,
    /// `cache` (default true): use the response cache at all.
    pub cache: bool,
}

impl RunArgs {
    /// Reads `resume`, `resample` and `cache`.
    pub fn parse(a: &Args<'_>) -> Result<RunArgs, ToolError> {
        let cache = a.bool("cache")?.unwrap_or(true);
        let resample = a.bool("resample")?.unwrap_or(false);
        if resample && !cache {
            return Err(ToolError::invalid(
                "`resample: true` refreshes the cache; it cannot be combined with `cache: false`",
            ));
        }
        Ok(RunArgs {
            resume: a.str("resume")?.map(str::to_string),
            resample,
            cache,
        })
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::new("internal", format!("eval storage failed: {e}")))?
}

/// Takes over the unfinished eval `eval_id`, which must be an eval of `strategy`.
pub async fn resume_run(
    env: &PkgEnv,
    eval_id: &str,
    strategy: &str,
) -> Result<DurableRun, ToolError> {
    let (env, id) = (env.clone(), eval_id.to_string());
    let run = blocking(move || DurableRun::resume(store(&env)?, &id).map_err(eval_error)).await?;
    if run.record().plan.strategy != strategy {
        run.release();
        return Err(ToolError::invalid(format!(
            "`resume`: eval {eval_id} runs strategy '{}', not '{strategy}'",
            run.record().plan.strategy
        )));
    }
    Ok(run)
}

/// Records a new durable eval before any case runs. An unfinished eval of the same plan is
/// named in `warnings` (with how to finish it).
pub async fn begin_run(
    env: &PkgEnv,
    record: RunRecord,
    warnings: &mut Vec<String>,
) -> Result<DurableRun, ToolError> {
    let env = env.clone();
    let (run, same) = blocking(move || {
        let st = store(&env)?;
        let same = st
            .unfinished(Some(&record.plan_hash()))
            .map_err(eval_error)?;
        Ok((DurableRun::begin(st, record).map_err(eval_error)?, same))
    })
    .await?;
    if let Some(u) = same.first() {
        warnings.push(format!(
            "eval {} of the same plan is unfinished ({}/{} cases done); pass `resume: \"{}\"` to finish it instead of starting a new eval",
            u.eval_id, u.done, u.total, u.eval_id
        ));
    }
    Ok(run)
}

/// Runs (or finishes) a durable eval on `engine` with the response cache of the home, and
/// stores its report. Returns the completed payload, or a `cancelled` request error when
/// `cancelled` fires first (the eval then stays resumable).
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    engine: &Engine,
    env: &PkgEnv,
    journal: Option<Arc<dyn Journal>>,
    run: DurableRun,
    answerer: Arc<dyn Answerer>,
    judge: Arc<dyn Answerer>,
    progress: Option<runner::Progress>,
    opts: &RunArgs,
    mut warnings: Vec<String>,
    cancelled: impl std::future::Future<Output = ()>,
) -> ToolResult {
    let cache = if opts.cache {
        let (home, read) = (env.home.clone(), !opts.resample);
        let c = blocking(move || EvalCache::open_home(&home, read).map_err(eval_error)).await?;
        Some(Arc::new(match journal {
            Some(j) => c.with_journal(j),
            None => c,
        }))
    } else {
        None
    };
    let run = Arc::new(run);
    let total = run.total();
    let plan = Arc::new(run.record().plan.clone());
    let heartbeat = alc_eval::durable::spawn_heartbeat(run.clone());
    let work = runner::run_all_with(
        engine,
        plan,
        answerer,
        judge,
        progress,
        RunOptions {
            durable: Some(run.clone()),
            cache: cache.clone(),
        },
    );
    let results = tokio::select! {
        r = work => r,
        _ = cancelled => {
            heartbeat.abort();
            run.release();
            return Err(ToolError::new(
                "cancelled",
                format!("the request was cancelled; `resume: \"{}\"` finishes the eval", run.eval_id()),
            ));
        }
    };
    heartbeat.abort();
    warnings.extend(
        run.errors()
            .into_iter()
            .map(|e| format!("eval progress not recorded: {e}")),
    );
    if let Some(e) = cache.as_ref().and_then(|c| c.write_error()) {
        warnings.push(e);
    }
    if results.len() < total {
        run.release();
        return Err(ToolError::new(
            "internal",
            format!(
                "eval {} stopped with {} of {total} cases done; `resume: \"{}\"` finishes it",
                run.eval_id(),
                results.len(),
                run.eval_id()
            ),
        ));
    }
    let finisher = run.clone();
    let rep = blocking(move || {
        finisher
            .finish(results, alc_eval::now_ms())
            .map_err(eval_error)
    })
    .await?;
    let mut out = json!({
        "status": "completed",
        "eval_id": rep.eval_id,
        "stats": stats_of(&rep),
        "result": rep,
    });
    if !warnings.is_empty() {
        out["warnings"] = json!(warnings);
    }
    Ok(out)
}

fn store(env: &PkgEnv) -> Result<EvalStore, ToolError> {
    EvalStore::open_home(&env.home).map_err(eval_error)
}

/// `stats` of a completed eval (§2.1 shape: `auto` + `custom`).
pub fn stats_of(rep: &Report) -> Value {
    json!({
        "auto": {
            "elapsed_ms": (rep.finished_at - rep.started_at).max(0),
            "llm_calls": rep.usage.llm_calls,
            "tokens": rep.usage.tokens,
            "cost_usd": rep.usage.cost_usd,
            "cache_hits": rep.usage.cache_hits,
            "cases": rep.aggregated.total,
        },
        "custom": {},
    })
}

/// `alc_eval_history`.
pub fn history(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let limit = a.u64("limit")?.unwrap_or(20).clamp(1, 1000) as usize;
    let rows = store(env)?
        .history(a.str("strategy")?, a.str("scenario")?, limit)
        .map_err(eval_error)?;
    Ok(json!({ "evals": rows }))
}

/// `alc_eval_detail`.
pub fn detail(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    detail_of(env, a.req_str("eval_id")?)
}

/// The `alc_eval_detail` payload of eval `id` (also `alc://eval/{id}`).
pub fn detail_of(env: &PkgEnv, id: &str) -> ToolResult {
    let st = store(env)?;
    let rep = st.get(id).map_err(eval_error)?;
    let meta = st.meta(id).map_err(eval_error)?;
    Ok(json!({
        "eval_id": rep.eval_id,
        "meta": meta,
        "status": rep.status,
        "stats": stats_of(&rep),
        "result": rep,
    }))
}

/// `alc_eval_compare`.
pub fn compare(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let ida = a.req_str("eval_id_a")?;
    let idb = a.req_str("eval_id_b")?;
    let alpha = f64_arg(a, "alpha")?.unwrap_or(0.05);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(ToolError::invalid("`alpha` must be between 0 and 1"));
    }
    let resamples = a.u64("resamples")?.unwrap_or(10_000);
    if resamples == 0 || resamples > 1_000_000 {
        return Err(ToolError::invalid(
            "`resamples` must be between 1 and 1000000",
        ));
    }
    let seed = a.u64("seed")?.unwrap_or(42);
    let st = store(env)?;
    let ra = st.get(ida).map_err(eval_error)?;
    let rb = st.get(idb).map_err(eval_error)?;
    let result = compare::compare(
        &ra,
        &rb,
        CompareOptions {
            alpha,
            resamples: resamples as usize,
            seed,
        },
    );
    Ok(json!({"status": "completed", "result": result}))
}

/// `alc_scenario_list`.
pub fn scenario_list(env: &PkgEnv, _a: &Args<'_>) -> ToolResult {
    Ok(scenarios::list(&env.scenarios_dir()))
}

/// The raw file of scenario `name` and its MIME type (`alc://scenarios/{name}`).
pub fn scenario_file(env: &PkgEnv, name: &str) -> Result<(String, &'static str), ToolError> {
    let (path, fmt) = scenarios::find(&env.scenarios_dir(), name).map_err(eval_error)?;
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ToolError::new("io_error", format!("cannot read {}: {e}", path.display())))?;
    let mime = match fmt {
        "lua" => "text/x-lua",
        "jsonl" => "application/x-ndjson",
        _ => "application/toml",
    };
    Ok((text, mime))
}

/// `alc_scenario_show`.
pub fn scenario_show(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    scenarios::show(&env.scenarios_dir(), a.req_str("name")?).map_err(eval_error)
}

fn looks_like_git(url: &str) -> bool {
    url.contains("://") || url.starts_with("git@") || url.ends_with(".git")
}

/// `alc_scenario_install`: a local directory, or a git URL cloned (shallow) first.
pub fn scenario_install(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let url = a.req_str("url")?;
    let force = a.bool("force")?.unwrap_or(false);
    let dest = env.scenarios_dir();
    let local = Path::new(url);
    let report = if local.is_dir() {
        scenarios::install_dir(local, &dest, force)
    } else if looks_like_git(url) && !url.starts_with('-') {
        let tmp = std::env::temp_dir().join(format!(
            "alc-scenarios-{}-{}",
            std::process::id(),
            alc_eval::now_ms()
        ));
        let out = std::process::Command::new("git")
            .args(["clone", "--quiet", "--depth", "1", "--", url])
            .arg(&tmp)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(std::process::Stdio::null())
            .output();
        let r = match out {
            Ok(o) if o.status.success() => scenarios::install_dir(&tmp, &dest, force),
            Ok(o) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(ToolError::new(
                    "git_error",
                    format!(
                        "git clone {url} failed: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                ));
            }
            Err(e) => return Err(ToolError::new("git_error", format!("cannot run git: {e}"))),
        };
        let _ = std::fs::remove_dir_all(&tmp);
        r
    } else {
        return Err(ToolError::new(
            "scenario_not_found",
            format!("`url`: {url} is neither a local directory nor a git URL"),
        ));
    };
    let r = report.map_err(eval_error)?;
    if r.installed.is_empty() && r.skipped.is_empty() {
        return Err(ToolError::invalid(format!(
            "nothing installed from {url}: {}",
            r.failures.join("; ")
        )));
    }
    Ok(r.to_json())
}

// ---------------------------------------------------------------------------------------
// Host-answered evals

/// A host-answered eval in progress: its cases run one at a time as host sessions of the
/// server's engine; each case's queries reach the caller as ordinary pauses, and the
/// `alc_continue` that ends a case session starts the next case (or completes the eval).
/// Durable like every eval: a restart loses only this in-memory driver, and `resume`
/// picks the eval up at its current case.
pub struct HostEval {
    run: Arc<DurableRun>,
    judge: Option<Arc<dyn Answerer>>,
    warnings: Vec<String>,
    state: Mutex<HostState>,
    heartbeat: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct HostState {
    results: Vec<Option<runner::CaseResult>>,
    /// The slot running now, its session and when this process started it.
    current: Option<(usize, alc_core::SessionId, std::time::Instant)>,
}

/// What a host-answered eval runs next.
pub enum NextCase {
    /// Continue the slot's session, started before a restart.
    Continue {
        /// Slot index.
        slot: usize,
        /// Its session.
        session_id: alc_core::SessionId,
    },
    /// Start a session for the slot.
    Start {
        /// Slot index.
        slot: usize,
        /// The case session.
        spec: Box<alc_core::SessionSpec>,
    },
    /// Every slot has a result.
    Done,
}

fn host_registry() -> &'static Mutex<std::collections::HashMap<String, Arc<HostEval>>> {
    static REGISTRY: std::sync::OnceLock<Mutex<std::collections::HashMap<String, Arc<HostEval>>>> =
        std::sync::OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The host-answered eval whose case runs in session `session_id`, if any.
pub fn host_eval_of(session_id: &str) -> Option<Arc<HostEval>> {
    host_registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(session_id)
        .cloned()
}

/// True for a payload of a session that ended (`completed`, `error`, `cancelled`).
pub fn is_terminal_payload(p: &Value) -> bool {
    matches!(
        p["status"].as_str(),
        Some("completed" | "error" | "cancelled")
    ) && p.get("eval_id").is_none()
}

impl HostEval {
    /// Wraps a durable run answered by the caller. `judge` answers `llm_judge` graders;
    /// without one, a plan with such graders → `invalid_params`.
    pub fn new(
        run: DurableRun,
        judge: Option<Arc<dyn Answerer>>,
        warnings: Vec<String>,
    ) -> Result<Arc<HostEval>, ToolError> {
        let plan = &run.record().plan;
        let judged = plan.scenario.graders.iter().any(|g| g.is_judge())
            || plan
                .scenario
                .cases
                .iter()
                .filter_map(|c| c.graders.as_ref())
                .flatten()
                .any(|g| g.is_judge());
        if judged && judge.is_none() {
            run.release();
            return Err(ToolError::invalid(
                "host-answered evals grade `llm_judge` with `judge_answerer` (`provider` or `scripted:<path>`); pass one",
            ));
        }
        let results = (0..run.total())
            .map(|i| run.prior(i).and_then(|p| p.result.clone()))
            .collect();
        let run = Arc::new(run);
        Ok(Arc::new(HostEval {
            heartbeat: Mutex::new(Some(alc_eval::durable::spawn_heartbeat(run.clone()))),
            run,
            judge,
            warnings,
            state: Mutex::new(HostState {
                results,
                current: None,
            }),
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The eval id.
    pub fn eval_id(&self) -> &str {
        self.run.eval_id()
    }

    /// The first slot without a result: its earlier session when `engine` still knows it,
    /// else a new case session.
    pub fn next(&self, engine: &Engine) -> NextCase {
        let st = self.state();
        let Some(slot) = st.results.iter().position(Option::is_none) else {
            return NextCase::Done;
        };
        if let Some((s, id, _)) = &st.current {
            if *s == slot {
                return NextCase::Continue {
                    slot,
                    session_id: id.clone(),
                };
            }
        }
        let known = self
            .run
            .prior(slot)
            .and_then(|p| p.session_id.as_deref())
            .and_then(|s| alc_core::SessionId::parse(s).ok())
            .filter(|id| {
                engine
                    .state(id, &alc_core::SnapshotOptions::default())
                    .is_ok_and(|snap| !runner::cancelled_by_shutdown(snap.outcome.as_ref()))
            });
        if let Some(session_id) = known {
            return NextCase::Continue { slot, session_id };
        }
        let plan = &self.run.record().plan;
        let repeats = plan.repeats.max(1) as usize;
        let case = &plan.scenario.cases[slot / repeats];
        let mut spec = runner::case_spec(plan, case, (slot % repeats) as u32, true);
        spec.labels
            .insert("eval_id".into(), self.eval_id().to_string());
        NextCase::Start {
            slot,
            spec: Box::new(spec),
        }
    }

    /// Marks `session_id` as the session of `slot` (recorded before its first answer when
    /// `fresh`), reachable through [`host_eval_of`].
    pub fn started(
        self: &Arc<Self>,
        slot: usize,
        session_id: &alc_core::SessionId,
        fresh: bool,
    ) -> Result<(), ToolError> {
        if fresh {
            self.run
                .record_session(slot, session_id.as_str())
                .map_err(eval_error)?;
        }
        let mut st = self.state();
        if st.current.as_ref().map(|c| &c.1) != Some(session_id) {
            st.current = Some((slot, session_id.clone(), std::time::Instant::now()));
        }
        host_registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(session_id.to_string(), self.clone());
        Ok(())
    }

    /// Grades the current case once its session `session_id` has ended and records the
    /// result. Returns false (nothing done) when `session_id` is not the current case.
    pub async fn case_ended(
        &self,
        engine: &Engine,
        session_id: &alc_core::SessionId,
    ) -> Result<bool, ToolError> {
        let (slot, started) = match &self.state().current {
            Some((slot, id, at)) if id == session_id => (*slot, *at),
            _ => return Ok(false),
        };
        let terminal = engine.wait(session_id).await.map_err(|e| {
            ToolError::new(
                "internal",
                format!("eval {}: case session {session_id}: {e}", self.eval_id()),
            )
        })?;
        let plan = &self.run.record().plan;
        let repeats = plan.repeats.max(1) as usize;
        let case = &plan.scenario.cases[slot / repeats];
        let judge: Arc<dyn Answerer> = match &self.judge {
            Some(j) => j.clone(),
            None => Arc::new(runner::FnAnswerer::new("none", |q: &PendingQuery| {
                alc_core::Answer::text(Some(q.id.clone()), "")
            })),
        };
        let mut result = runner::grade_terminal(
            plan,
            case,
            (slot % repeats) as u32,
            session_id,
            &terminal,
            &judge,
            None,
        )
        .await;
        result.elapsed_ms = started.elapsed().as_millis() as u64;
        let run = self.run.clone();
        let recorded = result.clone();
        blocking(move || {
            run.record_result(slot, &recorded);
            Ok(())
        })
        .await?;
        let mut st = self.state();
        st.results[slot] = Some(result);
        st.current = None;
        Ok(true)
    }

    /// Adds the eval's position to a case pause: `eval_id` and
    /// `eval: {case_id, repeat, case, cases}` (1-based `case` of `cases` slots).
    pub fn annotate(&self, payload: &mut Value) {
        let st = self.state();
        let Some((slot, _, _)) = &st.current else {
            return;
        };
        let plan = &self.run.record().plan;
        let repeats = plan.repeats.max(1) as usize;
        payload["eval_id"] = json!(self.eval_id());
        payload["eval"] = json!({
            "case_id": plan.scenario.cases[slot / repeats].id,
            "repeat": slot % repeats,
            "case": slot + 1,
            "cases": st.results.len(),
        });
    }

    /// Stores the report of the finished eval and returns the completed payload (with the
    /// last case's `session_id`).
    pub async fn complete(&self, last_session: Option<&alc_core::SessionId>) -> ToolResult {
        let results: Vec<runner::CaseResult> =
            self.state().results.iter().flatten().cloned().collect();
        let run = self.run.clone();
        let rep =
            blocking(move || run.finish(results, alc_eval::now_ms()).map_err(eval_error)).await?;
        host_registry()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, e| e.eval_id() != rep.eval_id);
        if let Some(h) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            h.abort();
        }
        let mut out = json!({
            "status": "completed",
            "eval_id": rep.eval_id,
            "stats": stats_of(&rep),
            "result": rep,
        });
        if let Some(id) = last_session {
            out["session_id"] = json!(id.to_string());
        }
        let mut warnings = self.warnings.clone();
        warnings.extend(
            self.run
                .errors()
                .into_iter()
                .map(|e| format!("eval progress not recorded: {e}")),
        );
        if !warnings.is_empty() {
            out["warnings"] = json!(warnings);
        }
        Ok(out)
    }
}
