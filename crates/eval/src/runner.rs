//! Runs an eval: every case × repeat is one engine session of the strategy package,
//! up to `concurrency` at once; pauses are answered by an [`Answerer`]; outputs are
//! graded, `llm_judge` verdicts asked of the judge answerer with `role: "grader"`.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_core::{
    digest_request, Answer, Answers, CancelCode, CancelReason, LlmQuery, Outcome, PendingQuery,
    Program, QueryId, QueryOrigin, QueryRequest, SessionSpec, UntilPause,
};
use alc_engine::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::dataset::{Case, Scenario};
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
#[derive(Debug, Clone)]
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

struct SessionOutcome {
    value: Result<Value, String>,
    llm_calls: u64,
    tokens: u64,
    cost: Option<f64>,
    session_id: Option<String>,
}

async fn run_session(
    engine: &Engine,
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    answerer: &dyn Answerer,
) -> SessionOutcome {
    let mut spec = SessionSpec::new(Program::Package {
        name: plan.strategy.clone(),
        entry: "run".into(),
    });
    spec.ctx = case_ctx(&plan.strategy_opts, case);
    spec.human_channel = answerer.human_channel();
    spec.labels.insert("kind".into(), "eval".into());
    spec.labels.insert("strategy".into(), plan.strategy.clone());
    spec.labels.insert("case_id".into(), case.id.clone());
    spec.labels.insert("repeat".into(), repeat.to_string());
    spec.limits.deadline_ms = plan.case_timeout_ms;
    let mut out = SessionOutcome {
        value: Err(String::new()),
        llm_calls: 0,
        tokens: 0,
        cost: None,
        session_id: None,
    };
    let id = match engine.spawn_now(spec) {
        Ok(id) => id,
        Err(e) => {
            out.value = Err(format!("cannot start the session: {e}"));
            return out;
        }
    };
    out.session_id = Some(id.to_string());
    loop {
        let until = match engine.run_until_pause(&id, Duration::from_secs(3600)).await {
            Ok(u) => u,
            Err(e) => {
                out.value = Err(format!("engine error: {e}"));
                return out;
            }
        };
        match until {
            UntilPause::Running { .. } => continue,
            UntilPause::Terminal { terminal } => {
                out.llm_calls = terminal.metrics.llm_calls;
                out.tokens = terminal.metrics.total_tokens.tokens;
                out.value = match terminal.outcome {
                    Outcome::Completed { value } => Ok(value),
                    Outcome::Failed { kind, message, .. } => {
                        Err(format!("strategy failed ({kind:?}): {message}"))
                    }
                    Outcome::Cancelled { reason, .. } => Err(format!(
                        "session cancelled: {}",
                        reason
                            .detail
                            .unwrap_or_else(|| format!("{:?}", reason.code))
                    )),
                };
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
                let answered = answerer.answer(&open, plan.model.as_deref()).await;
                let mut answers = Vec::with_capacity(answered.len());
                for a in answered {
                    add_cost(&mut out.cost, a.cost_usd);
                    answers.push(a.answer);
                }
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

async fn judge(
    spec: &GraderSpec,
    case: &Case,
    output: &str,
    answerer: &dyn Answerer,
    judge_model: Option<&str>,
    cost: &mut Option<f64>,
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
    let answered = answerer.answer(std::slice::from_ref(&pending), model).await;
    let (score, detail) = match answered.into_iter().next() {
        Some(a) => {
            add_cost(cost, a.cost_usd);
            match (a.answer.text, a.answer.error) {
                (Some(text), None) => grader::parse_verdict(&text, *scale),
                (_, Some(err)) => (0.0, Some(format!("judge call failed: {err:?}"))),
                (None, None) => (0.0, Some("judge gave no text".into())),
            }
        }
        None => (0.0, Some("judge gave no answer".into())),
    };
    Grade {
        kind: "llm_judge".into(),
        score,
        detail,
        weight: spec.weight,
    }
}

/// Runs one case × repeat.
pub async fn run_case(
    engine: &Engine,
    plan: &EvalPlan,
    case: &Case,
    repeat: u32,
    answerer: &dyn Answerer,
    judge_answerer: &dyn Answerer,
) -> CaseResult {
    let started = Instant::now();
    let s = run_session(engine, plan, case, repeat, answerer).await;
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
            for g in graders {
                let grade = if g.is_judge() {
                    judge(
                        g,
                        case,
                        &out,
                        judge_answerer,
                        plan.judge_model.as_deref().or(plan.model.as_deref()),
                        &mut cost,
                    )
                    .await
                } else {
                    grader::grade(g, &out, &case.expected)
                };
                result.grades.push(grade);
            }
            result.cost_usd = cost;
            result.score = grader::combine(&result.grades);
            result.passed = result.score >= plan.scenario.pass_threshold - 1e-12;
            result.output = Some(out);
        }
    }
    result.elapsed_ms = started.elapsed().as_millis() as u64;
    result
}

/// Progress callback: (cases done, total).
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Runs every case × repeat, up to `plan.concurrency` at once; results in dataset
/// order, repeats together.
pub async fn run_all(
    engine: &Engine,
    plan: Arc<EvalPlan>,
    answerer: Arc<dyn Answerer>,
    judge_answerer: Arc<dyn Answerer>,
    progress: Option<Progress>,
) -> Vec<CaseResult> {
    let total = plan.scenario.cases.len() * plan.repeats.max(1) as usize;
    let sem = Arc::new(tokio::sync::Semaphore::new(plan.concurrency.max(1)));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    let mut order = 0usize;
    for (ci, _) in plan.scenario.cases.iter().enumerate() {
        for r in 0..plan.repeats.max(1) {
            let (engine, plan, answerer, judge_answerer, sem, done, progress) = (
                engine.clone(),
                plan.clone(),
                answerer.clone(),
                judge_answerer.clone(),
                sem.clone(),
                done.clone(),
                progress.clone(),
            );
            let slot = order;
            order += 1;
            set.spawn(async move {
                let _permit = sem.acquire_owned().await.expect("semaphore open");
                let case = &plan.scenario.cases[ci];
                let res = run_case(
                    &engine,
                    &plan,
                    case,
                    r,
                    answerer.as_ref(),
                    judge_answerer.as_ref(),
                )
                .await;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                if let Some(p) = &progress {
                    p(n, total);
                }
                (slot, res)
            });
        }
    }
    let mut out: Vec<Option<CaseResult>> = vec![None; order];
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((slot, res)) => out[slot] = Some(res),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    out.into_iter().flatten().collect()
}
