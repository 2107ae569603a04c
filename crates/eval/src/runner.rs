//! Runs an eval: every case × repeat is one engine session of the strategy package,
//! up to `concurrency` at once; pauses are answered by an [`Answerer`]; outputs are
//! graded, `llm_judge` verdicts asked of the judge answerer with `role: "grader"`.
//!
//! [`run_all_with`] adds durability (a [`DurableRun`] records each slot's session before
//! any of its queries is answered, and its result when graded; on a resume, finished
//! slots are kept and interrupted sessions continue from their journal) and the response
//! cache ([`crate::cache`]).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_core::{
    digest_request, Answer, Answers, CancelCode, CancelReason, LlmQuery, Outcome, PendingQuery,
    Program, QueryId, QueryOrigin, QueryRequest, SessionId, SessionSpec, SnapshotOptions, Terminal,
    UntilPause,
};
use alc_engine::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cache::{cache_key, material, EvalCache, Occurrences};
use crate::dataset::{Case, Scenario};
use crate::durable::DurableRun;
use crate::grader::{self, Grade, GraderKind, GraderSpec};
use crate::EvalError;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One answer plus what it cost.
#[derive(Debug, Clone)]
pub struct Answered {
    /// The answer for the engine.
    pub answer: Answer,
    /// Cost in USD when known.
    pub cost_usd: Option<f64>,
}

impl From<Answer> for Answered {
    fn from(answer: Answer) -> Self {
        Answered {
            answer,
            cost_usd: None,
        }
    }
}

/// Who answers the queries of eval sessions and judges.
pub trait Answerer: Send + Sync {
    /// Name recorded with the eval (`provider`, `scripted:FILE`, …).
    fn name(&self) -> String;
    /// Whether `alc.ask` reaches someone (default: no).
    fn human_channel(&self) -> bool {
        false
    }
    /// Answers `queries` (in order), using `model` as the run's model selector.
    fn answer<'a>(
        &'a self,
        queries: &'a [PendingQuery],
        model: Option<&'a str>,
    ) -> BoxFuture<'a, Vec<Answered>>;
    /// Where `query` would be answered, as `(provider, model)`, when this answerer's answers
    /// may be kept in the response cache ([`crate::cache`]); `None` (the default) is never
    /// cached.
    fn cache_route(&self, _query: &LlmQuery, _model: Option<&str>) -> Option<(String, String)> {
        None
    }
}

/// An answerer from a synchronous function of one query (scripted rules, tests).
pub struct FnAnswerer<F> {
    name: String,
    human: bool,
    f: F,
}

impl<F> FnAnswerer<F>
where
    F: Fn(&PendingQuery) -> Answer + Send + Sync,
{
    /// Wraps `f` under `name`.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        FnAnswerer {
            name: name.into(),
            human: false,
            f,
        }
    }

    /// Declares that the function can answer human questions.
    pub fn with_human_channel(mut self, yes: bool) -> Self {
        self.human = yes;
        self
    }
}

impl<F> Answerer for FnAnswerer<F>
where
    F: Fn(&PendingQuery) -> Answer + Send + Sync,
{
    fn name(&self) -> String {
        self.name.clone()
    }

    fn human_channel(&self) -> bool {
        self.human
    }

    fn answer<'a>(
        &'a self,
        queries: &'a [PendingQuery],
        _model: Option<&'a str>,
    ) -> BoxFuture<'a, Vec<Answered>> {
        let out = queries.iter().map(|q| (self.f)(q).into()).collect();
        Box::pin(async move { out })
    }
}

/// The provider answerer: `alc_llm::Client` (§7).
pub struct ProviderAnswerer {
    client: alc_llm::Client,
}

impl ProviderAnswerer {
    /// Wraps a client.
    pub fn new(client: alc_llm::Client) -> Self {
        ProviderAnswerer { client }
    }

    /// Builds a client from the environment and `<home>/config.toml`; no provider
    /// configured → `provider_error`.
    pub fn from_home(home: &Path) -> Result<Self, EvalError> {
        let path = home.join("config.toml");
        let file: alc_llm::ProvidersFile = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| EvalError::invalid(format!("{}: {e}", path.display())))?,
            Err(_) => alc_llm::ProvidersFile::default(),
        };
        let providers = alc_llm::Providers::from_process_env(file);
        providers
            .check_available()
            .map_err(|e| EvalError::provider(e.to_string()))?;
        let client =
            alc_llm::Client::new(providers).map_err(|e| EvalError::provider(e.to_string()))?;
        Ok(ProviderAnswerer { client })
    }
}

impl Answerer for ProviderAnswerer {
    fn name(&self) -> String {
        "provider".into()
    }

    fn cache_route(&self, query: &LlmQuery, model: Option<&str>) -> Option<(String, String)> {
        self.client
            .providers()
            .route(query.model.as_deref(), model)
            .ok()
            .map(|r| (r.provider, r.model))
    }

    fn answer<'a>(
        &'a self,
        queries: &'a [PendingQuery],
        model: Option<&'a str>,
    ) -> BoxFuture<'a, Vec<Answered>> {
        Box::pin(async move {
            self.client
                .answer_batch_detailed(queries, model)
                .await
                .into_iter()
                .map(|item| Answered {
                    cost_usd: item.outcome.as_ref().ok().and_then(|c| c.cost_usd),
                    answer: item.answer,
                })
                .collect()
        })
    }
}

/// Everything an eval run needs besides the engine and answerers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalPlan {
    /// Strategy package name.
    pub strategy: String,
    /// Options merged under each case's input into `ctx`.
    pub strategy_opts: Map<String, Value>,
    /// Cases and grading settings.
    pub scenario: Scenario,
    /// Repeats per case (≥ 1).
    pub repeats: u32,
    /// Cases running at once (≥ 1).
    pub concurrency: usize,
    /// Model selector for the answerer.
    pub model: Option<String>,
    /// Model selector for judges (default: `model`).
    pub judge_model: Option<String>,
    /// Per-session deadline in ms.
    pub case_timeout_ms: Option<u64>,
}

/// The result of one case × repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case id.
    pub case_id: String,
    /// 0-based repeat.
    pub repeat: u32,
    /// Weighted grader score in [0, 1] (0 when errored).
    pub score: f64,
    /// score ≥ pass threshold.
    pub passed: bool,
    /// The strategy failed (or the session could not run).
    #[serde(default)]
    pub errored: bool,
    /// The graded output text.
    pub output: Option<String>,
    /// Grader outcomes.
    pub grades: Vec<Grade>,
    /// Failure message when errored.
    #[serde(default)]
    pub error: Option<String>,
    /// The case input.
    #[serde(default)]
    pub input: Value,
    /// The expected value.
    #[serde(default)]
    pub expected: Value,
    /// Case tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// LLM queries of the strategy session.
    pub llm_calls: u64,
    /// Prompt + completion tokens of the strategy session.
    #[serde(default)]
    pub tokens: u64,
    /// Cost in USD when the answerer knew prices (strategy + judges).
    #[serde(default)]
    pub cost_usd: Option<f64>,
    /// Wall time of the case in ms.
    pub elapsed_ms: u64,
    /// Session that ran the strategy.
    #[serde(default)]
    pub session_id: Option<String>,
    /// Answers (strategy and judges) served from the response cache.
    #[serde(default)]
    pub cache_hits: u64,
}

/// The output of the strategy: `output_field` (a dot path into the returned value) or
/// by default `result` when the value is a table holding one, and then its `answer`
/// when that is a table holding one (the bundled strategies' `{answer, …}` shape).
pub fn extract_output(value: &Value, output_field: Option<&str>) -> Value {
    if let Some(path) = output_field.filter(|p| !p.is_empty()) {
        let mut cur = value;
        for part in path.split('.') {
            cur = match cur {
                Value::Object(m) => m.get(part).unwrap_or(&Value::Null),
                Value::Array(a) => part
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get(i))
                    .unwrap_or(&Value::Null),
                _ => &Value::Null,
            };
        }
        return cur.clone();
    }
    let mut cur = value;
    if let Some(r) = cur.get("result") {
        cur = r;
        if let Some(a) = cur.get("answer") {
            cur = a;
        }
    }
    cur.clone()
}

fn output_text(v: &Value) -> String {
    grader::value_text(v)
}

fn case_ctx(opts: &Map<String, Value>, case: &Case) -> Value {
    let mut ctx = opts.clone();
    match &case.input {
        Value::String(s) => {
            ctx.insert("task".into(), Value::String(s.clone()));
        }
        Value::Object(m) => {
            for (k, v) in m {
                ctx.insert(k.clone(), v.clone());
            }
        }
        _ => {}
    }
    Value::Object(ctx)
}

fn add_cost(total: &mut Option<f64>, c: Option<f64>) {
    if let Some(c) = c {
        *total = Some(total.unwrap_or(0.0) + c);
    }
}

/// Fills `out` from the session's end.
fn set_terminal(out: &mut SessionOutcome, terminal: &Terminal) {
    out.llm_calls = terminal.metrics.llm_calls;
    out.tokens = terminal.metrics.total_tokens.tokens;
    out.value = match &terminal.outcome {
        Outcome::Completed { value } => Ok(value.clone()),
        Outcome::Failed { kind, message, .. } => {
            Err(format!("strategy failed ({kind:?}): {message}"))
        }
        Outcome::Cancelled { reason, .. } => {
            out.interrupted = reason.code == CancelCode::Shutdown;
            Err(format!(
                "session cancelled: {}",
                reason
                    .detail
                    .clone()
                    .unwrap_or_else(|| format!("{:?}", reason.code))
            ))
        }
    };
}

struct SessionOutcome {
    value: Result<Value, String>,
    llm_calls: u64,
    tokens: u64,
    cost: Option<f64>,
    cache_hits: u64,
    session_id: Option<String>,
    /// The engine stopped under the session (the process is shutting down): nothing about
    /// it may be recorded as a result.
    interrupted: bool,
}

/// How one case × repeat slot runs: its index, the session of an interrupted earlier
/// attempt, the durable record and the response cache.
#[derive(Clone, Copy, Default)]
struct SlotCtx<'a> {
    slot: usize,
    resume: Option<&'a str>,
    durable: Option<&'a DurableRun>,
    cache: Option<&'a Arc<EvalCache>>,
}

/// The session of one case × repeat: `require(strategy).run(ctx)` with the case's `ctx`,
/// labelled `kind = eval`, `strategy`, `case_id`, `repeat`.
pub fn case_spec(plan: &EvalPlan, case: &Case, repeat: u32, human_channel: bool) -> SessionSpec {
    let mut spec = SessionSpec::new(Program::Package {
        name: plan.strategy.clone(),
        entry: "run".into(),
    });
    spec.ctx = case_ctx(&plan.strategy_opts, case);
    spec.human_channel = human_channel;
    spec.labels.insert("kind".into(), "eval".into());
    spec.labels.insert("strategy".into(), plan.strategy.clone());
    spec.labels.insert("case_id".into(), case.id.clone());
    spec.labels.insert("repeat".into(), repeat.to_string());
    spec.limits.deadline_ms = plan.case_timeout_ms;
    spec
}

/// True for a session cancelled because its engine shut down.
pub fn cancelled_by_shutdown(outcome: Option<&Outcome>) -> bool {
    matches!(outcome, Some(Outcome::Cancelled { reason, .. }) if reason.code == CancelCode::Shutdown)
}

/// The session of the slot: the interrupted one when the journal still has it (the engine
/// adopts and replays it on first use), else a new one, recorded before any of its queries
/// is answered. Returns the id and whether it was resumed.
fn slot_session(
    engine: &Engine,
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    answerer: &dyn Answerer,
    ctx: SlotCtx<'_>,
) -> Result<(SessionId, bool), String> {
    if let Some(sid) = ctx.resume {
        if let Ok(id) = SessionId::parse(sid) {
            if let Ok(snap) = engine.state(&id, &SnapshotOptions::default()) {
                // A session the shutdown of an earlier process cancelled cannot continue;
                // the slot starts again.
                if !cancelled_by_shutdown(snap.outcome.as_ref()) {
                    return Ok((id, true));
                }
            }
        }
    }
    let mut spec = case_spec(plan, case, repeat, answerer.human_channel());
    if let Some(d) = ctx.durable {
        spec.labels
            .insert("eval_id".into(), d.eval_id().to_string());
    }
    let id = engine
        .spawn_now(spec)
        .map_err(|e| format!("cannot start the session: {e}"))?;
    if let Some(d) = ctx.durable {
        if let Err(e) = d.record_session(ctx.slot, id.as_str()) {
            let _ = engine.cancel_now(
                &id,
                CancelReason {
                    code: CancelCode::User,
                    detail: Some("the eval could not record the session".into()),
                },
            );
            return Err(format!("cannot record the session: {}", e.message));
        }
    }
    Ok((id, false))
}

/// Answers the open queries of one pause. Cacheable queries (the answerer names a
/// provider route) are looked up first; the misses are asked one request each, and every
/// answer is stored as soon as it arrives, so an interruption loses none of them. Other
/// queries are answered together, in order.
async fn answer_round(
    answerer: &Arc<dyn Answerer>,
    model: Option<&str>,
    open: &[PendingQuery],
    cache: Option<&Arc<EvalCache>>,
    occ: &mut Occurrences,
    cost: &mut Option<f64>,
    hits: &mut u64,
) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = vec![None; open.len()];
    let mut batch: Vec<usize> = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    for (i, q) in open.iter().enumerate() {
        let routed = match (&q.request, cache) {
            (QueryRequest::Llm { query }, Some(c)) => {
                answerer.cache_route(query, model).map(|(p, m)| {
                    let mat = material(&p, &m, query);
                    let key = cache_key(&mat, occ.next(&mat));
                    (c.clone(), p, m, key)
                })
            }
            _ => None,
        };
        let Some((cache, provider, m, key)) = routed else {
            batch.push(i);
            continue;
        };
        if let Some(a) = cache.lookup(&key, q) {
            *hits += 1;
            answers[i] = Some(a);
            continue;
        }
        let (answerer, q, model) = (answerer.clone(), q.clone(), model.map(str::to_string));
        set.spawn(async move {
            let got = answerer
                .answer(std::slice::from_ref(&q), model.as_deref())
                .await
                .into_iter()
                .next();
            if let Some(a) = &got {
                let _ = cache.store(&key, &provider, &m, &a.answer);
            }
            (i, got)
        });
    }
    if !batch.is_empty() {
        let qs: Vec<PendingQuery> = batch.iter().map(|&i| open[i].clone()).collect();
        let got = answerer.answer(&qs, model).await;
        for (&i, a) in batch.iter().zip(got) {
            add_cost(cost, a.cost_usd);
            answers[i] = Some(a.answer);
        }
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, Some(a))) => {
                add_cost(cost, a.cost_usd);
                answers[i] = Some(a.answer);
            }
            Ok((_, None)) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    answers.into_iter().flatten().collect()
}

async fn run_session(
    engine: &Engine,
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    answerer: &Arc<dyn Answerer>,
    ctx: SlotCtx<'_>,
) -> SessionOutcome {
    let mut out = SessionOutcome {
        value: Err(String::new()),
        llm_calls: 0,
        tokens: 0,
        cost: None,
        cache_hits: 0,
        session_id: None,
        interrupted: false,
    };
    let (id, resumed) = match slot_session(engine, plan, case, repeat, answerer.as_ref(), ctx) {
        Ok(x) => x,
        Err(e) => {
            out.value = Err(e);
            return out;
        }
    };
    out.session_id = Some(id.to_string());
    let mut occ: Option<Occurrences> = None;
    loop {
        let until = match engine.run_until_pause(&id, Duration::from_secs(3600)).await {
            Ok(u) => u,
            Err(e) => {
                out.interrupted = matches!(e, alc_core::WaitError::ShuttingDown);
                out.value = Err(format!("engine error: {e}"));
                return out;
            }
        };
        match until {
            UntilPause::Running { .. } => continue,
            UntilPause::Terminal { terminal } => {
                set_terminal(&mut out, &terminal);
                return out;
            }
            UntilPause::Paused { snapshot } => {
                let Some(pending) = snapshot.pending.as_ref() else {
                    continue;
                };
                let open: Vec<PendingQuery> = pending
                    .queries
                    .iter()
                    .filter(|q| !pending.answered.contains(&q.id))
                    .cloned()
                    .collect();
                // A resumed session's earlier rounds were answered by the journal (replay);
                // their identical requests still count for the cache's occurrence index.
                let occ = occ.get_or_insert_with(|| match (ctx.cache, resumed) {
                    (Some(c), true) => {
                        let route = |q: &LlmQuery| answerer.cache_route(q, plan.model.as_deref());
                        c.occurrences_before(&id, pending.round, &route)
                    }
                    _ => Occurrences::default(),
                });
                let answers = answer_round(
                    answerer,
                    plan.model.as_deref(),
                    &open,
                    ctx.cache,
                    occ,
                    &mut out.cost,
                    &mut out.cache_hits,
                )
                .await;
                let batch = Answers {
                    round: Some(pending.round),
                    answers,
                };
                if let Err(e) = engine.resume(&id, batch).await {
                    let _ = engine
                        .cancel(
                            &id,
                            CancelReason {
                                code: CancelCode::User,
                                detail: Some(format!("answer refused: {e}")),
                            },
                        )
                        .await;
                    out.value = Err(format!("answer refused: {e}"));
                    return out;
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn judge(
    spec: &GraderSpec,
    case: &Case,
    output: &str,
    answerer: &Arc<dyn Answerer>,
    judge_model: Option<&str>,
    cache: Option<&Arc<EvalCache>>,
    occ: &mut Occurrences,
    cost: &mut Option<f64>,
    hits: &mut u64,
) -> Grade {
    let GraderKind::LlmJudge {
        rubric,
        scale,
        model,
        max_tokens,
    } = &spec.kind
    else {
        return grader::grade(spec, output, &case.expected);
    };
    let mut q = LlmQuery::new(grader::judge_prompt(
        rubric,
        *scale,
        &case.input,
        &case.expected,
        output,
    ));
    q.max_tokens = *max_tokens;
    q.role = Some("grader".into());
    q.model = model.clone();
    let request = QueryRequest::Llm { query: q };
    let pending = PendingQuery {
        id: QueryId::main(0),
        origin: QueryOrigin::Main,
        digest: digest_request(&request),
        request,
    };
    let model = model.as_deref().or(judge_model);
    let answered = answer_round(
        answerer,
        model,
        std::slice::from_ref(&pending),
        cache,
        occ,
        cost,
        hits,
    )
    .await;
    let (score, detail) = match answered.into_iter().next() {
        Some(a) => match (a.text, a.error) {
            (Some(text), None) => grader::parse_verdict(&text, *scale),
            (_, Some(err)) => (0.0, Some(format!("judge call failed: {err:?}"))),
            (None, None) => (0.0, Some("judge gave no text".into())),
        },
        None => (0.0, Some("judge gave no answer".into())),
    };
    Grade {
        kind: "llm_judge".into(),
        score,
        detail,
        weight: spec.weight,
    }
}

/// Runs one case × repeat in a new session, without durability or cache.
pub async fn run_case(
    engine: &Engine,
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    answerer: &Arc<dyn Answerer>,
    judge_answerer: &Arc<dyn Answerer>,
) -> CaseResult {
    run_slot(
        engine,
        plan,
        case,
        repeat,
        answerer,
        judge_answerer,
        SlotCtx::default(),
    )
    .await
    .0
}

async fn run_slot(
    engine: &Engine,
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    answerer: &Arc<dyn Answerer>,
    judge_answerer: &Arc<dyn Answerer>,
    ctx: SlotCtx<'_>,
) -> (CaseResult, bool) {
    let started = Instant::now();
    let s = run_session(engine, plan, case, repeat, answerer, ctx).await;
    let interrupted = s.interrupted;
    let mut result = grade(plan, case, repeat, s, judge_answerer, ctx.cache).await;
    result.elapsed_ms = started.elapsed().as_millis() as u64;
    (result, interrupted)
}

/// Grades a case whose session (`session_id`) ended with `terminal`, asking `llm_judge`
/// graders of `judge_answerer` (through `cache` when given). `elapsed_ms` is left 0.
pub async fn grade_terminal(
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    session_id: &SessionId,
    terminal: &Terminal,
    judge_answerer: &Arc<dyn Answerer>,
    cache: Option<&Arc<EvalCache>>,
) -> CaseResult {
    let mut s = SessionOutcome {
        value: Err(String::new()),
        llm_calls: 0,
        tokens: 0,
        cost: None,
        cache_hits: 0,
        session_id: Some(session_id.to_string()),
        interrupted: false,
    };
    set_terminal(&mut s, terminal);
    grade(plan, case, repeat, s, judge_answerer, cache).await
}

async fn grade(
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    s: SessionOutcome,
    judge_answerer: &Arc<dyn Answerer>,
    cache: Option<&Arc<EvalCache>>,
) -> CaseResult {
    let mut result = CaseResult {
        case_id: case.id.clone(),
        repeat,
        score: 0.0,
        passed: false,
        errored: false,
        output: None,
        grades: Vec::new(),
        error: None,
        input: case.input.clone(),
        expected: case.expected.clone(),
        tags: case.tags.clone(),
        llm_calls: s.llm_calls,
        tokens: s.tokens,
        cost_usd: s.cost,
        elapsed_ms: 0,
        session_id: s.session_id,
        cache_hits: s.cache_hits,
    };
    match s.value {
        Err(e) => {
            result.errored = true;
            result.error = Some(e);
        }
        Ok(value) => {
            let out = output_text(&extract_output(
                &value,
                plan.scenario.output_field.as_deref(),
            ));
            let graders = case.graders.as_ref().unwrap_or(&plan.scenario.graders);
            let mut cost = result.cost_usd;
            let mut hits = result.cache_hits;
            let mut occ = Occurrences::default();
            for g in graders {
                let grade = if g.is_judge() {
                    judge(
                        g,
                        case,
                        &out,
                        judge_answerer,
                        plan.judge_model.as_deref().or(plan.model.as_deref()),
                        cache,
                        &mut occ,
                        &mut cost,
                        &mut hits,
                    )
                    .await
                } else {
                    grader::grade(g, &out, &case.expected)
                };
                result.grades.push(grade);
            }
            result.cost_usd = cost;
            result.cache_hits = hits;
            result.score = grader::combine(&result.grades);
            result.passed = result.score >= plan.scenario.pass_threshold - 1e-12;
            result.output = Some(out);
        }
    }
    result
}

/// Progress callback: (cases done, total).
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// What a run keeps beyond the process: the durable record of an eval (sessions and
/// results per slot; slots finished earlier are not run again) and the response cache.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// The durable record; `None` runs everything in memory.
    pub durable: Option<Arc<DurableRun>>,
    /// The response cache; `None` asks the answerer every time.
    pub cache: Option<Arc<EvalCache>>,
}

/// Runs every case × repeat, up to `plan.concurrency` at once; results in dataset
/// order, repeats together. Nothing is cached or recorded (see [`run_all_with`]).
pub async fn run_all(
    engine: &Engine,
    plan: Arc<EvalPlan>,
    answerer: Arc<dyn Answerer>,
    judge_answerer: Arc<dyn Answerer>,
    progress: Option<Progress>,
) -> Vec<CaseResult> {
    run_all_with(
        engine,
        plan,
        answerer,
        judge_answerer,
        progress,
        RunOptions::default(),
    )
    .await
}

/// [`run_all`] with a durable record and a response cache. Slot `i` is case
/// `i / repeats`, repeat `i % repeats`. With a durable record, slots that have a stored
/// result keep it, slots whose session was started continue that session (replayed from
/// the journal), and every new session and result is recorded as it happens. Slots cut
/// short by an engine shutdown are left out of the result (and unrecorded).
pub async fn run_all_with(
    engine: &Engine,
    plan: Arc<EvalPlan>,
    answerer: Arc<dyn Answerer>,
    judge_answerer: Arc<dyn Answerer>,
    progress: Option<Progress>,
    opts: RunOptions,
) -> Vec<CaseResult> {
    let repeats = plan.repeats.max(1);
    let total = plan.scenario.cases.len() * repeats as usize;
    let sem = Arc::new(tokio::sync::Semaphore::new(plan.concurrency.max(1)));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut out: Vec<Option<CaseResult>> = vec![None; total];
    let mut set = tokio::task::JoinSet::new();
    for (slot, kept) in out.iter_mut().enumerate() {
        let (ci, r) = (slot / repeats as usize, slot as u32 % repeats);
        let prior = opts.durable.as_ref().and_then(|d| d.prior(slot));
        if let Some(res) = prior.and_then(|p| p.result.clone()) {
            *kept = Some(res);
            done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            continue;
        }
        let resume = prior.and_then(|p| p.session_id.clone());
        let (engine, plan, answerer, judge_answerer, sem, done, progress, opts) = (
            engine.clone(),
            plan.clone(),
            answerer.clone(),
            judge_answerer.clone(),
            sem.clone(),
            done.clone(),
            progress.clone(),
            opts.clone(),
        );
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let case = &plan.scenario.cases[ci];
            let ctx = SlotCtx {
                slot,
                resume: resume.as_deref(),
                durable: opts.durable.as_deref(),
                cache: opts.cache.as_ref(),
            };
            let (res, interrupted) =
                run_slot(&engine, &plan, case, r, &answerer, &judge_answerer, ctx).await;
            if interrupted {
                // Left for a resume: the session stays open in the journal.
                return (slot, None);
            }
            if let Some(d) = &opts.durable {
                d.record_result(slot, &res);
            }
            let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if let Some(p) = &progress {
                p(n, total);
            }
            (slot, Some(res))
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((slot, res)) => out[slot] = res,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    out.into_iter().flatten().collect()
}
