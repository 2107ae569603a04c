//! Shared helpers of the engine's integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use alc_core::{
    Answer, Answers, BudgetLimits, EngineConfig, PendingQuery, Program, QueryRequest, SessionId,
    SessionSpec, Terminal, UntilPause,
};
use alc_engine::{Engine, HostServices, ManualClock, ModuleSource, PackageRoots};

/// Hang detector for waits in tests (never a performance assertion).
pub const HANG: Duration = Duration::from_secs(60);

/// An engine with `workers` threads and the given modules.
pub fn engine_with(workers: usize, modules: Arc<dyn ModuleSource>) -> Engine {
    let config = EngineConfig {
        workers,
        ..EngineConfig::default()
    };
    engine_config(config, modules)
}

/// An engine from a full configuration.
pub fn engine_config(config: EngineConfig, modules: Arc<dyn ModuleSource>) -> Engine {
    let services = HostServices {
        modules,
        ..HostServices::default()
    };
    Engine::start_blocking(config, services).expect("engine starts")
}

/// A two-worker engine without packages.
pub fn engine() -> Engine {
    engine_with(2, Arc::new(PackageRoots::default()))
}

/// An engine with `config`, the given packages and a clock frozen at 1700000000 s.
pub fn eng_with(config: EngineConfig, mods: PackageRoots) -> Engine {
    let services = HostServices {
        modules: Arc::new(mods),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..HostServices::default()
    };
    Engine::start_blocking(config, services).expect("engine starts")
}

/// Two workers and no default budget.
pub fn base_config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        default_budget: BudgetLimits::default(),
        ..EngineConfig::default()
    }
}

/// `eng_with(base_config())` without packages.
pub fn eng() -> Engine {
    eng_with(base_config(), PackageRoots::default())
}

/// A spec running inline `code` with `ctx`.
pub fn code_spec(code: &str, ctx: serde_json::Value) -> SessionSpec {
    let mut spec = SessionSpec::new(Program::Code {
        source: code.to_string(),
        name: None,
    });
    spec.ctx = ctx;
    spec.seed = Some(42);
    spec
}

/// The prompt (or question) of a query.
pub fn prompt_of(q: &PendingQuery) -> String {
    match &q.request {
        QueryRequest::Llm { query } => query.prompt.clone(),
        QueryRequest::Human { question } => question.question.clone(),
    }
}

/// Drives a session to its end, answering every query with `answer`; returns the
/// terminal record and every pause's queries in order.
pub async fn drive(
    engine: &Engine,
    id: &SessionId,
    mut answer: impl FnMut(&PendingQuery) -> Answer,
) -> (Terminal, Vec<Vec<PendingQuery>>) {
    let mut pauses = Vec::new();
    loop {
        let until = tokio::time::timeout(HANG, engine.run_until_pause(id, HANG))
            .await
            .expect("session made progress")
            .expect("session exists");
        match until {
            UntilPause::Terminal { terminal } => return (*terminal, pauses),
            UntilPause::Running { .. } => panic!("session hung while running"),
            UntilPause::Paused { snapshot } => {
                let batch = snapshot.pending.expect("paused snapshot has a batch");
                let answers: Vec<Answer> = batch
                    .queries
                    .iter()
                    .filter(|q| !batch.answered.contains(&q.id))
                    .map(|q| {
                        let mut a = answer(q);
                        a.query_id = Some(q.id.clone());
                        a
                    })
                    .collect();
                pauses.push(batch.queries.to_vec());
                engine
                    .resume(
                        id,
                        Answers {
                            round: Some(batch.round),
                            answers,
                        },
                    )
                    .await
                    .expect("answers accepted");
            }
        }
    }
}

/// Runs inline code to its end, answering the n-th query (1-based) with `A<n>`.
pub async fn run_code(engine: &Engine, code: &str) -> (Terminal, Vec<Vec<PendingQuery>>) {
    run_code_ctx(engine, code, serde_json::json!({})).await
}

/// As `run_code`, with a context.
pub async fn run_code_ctx(
    engine: &Engine,
    code: &str,
    ctx: serde_json::Value,
) -> (Terminal, Vec<Vec<PendingQuery>>) {
    let id = engine.spawn(code_spec(code, ctx)).await.expect("spawn");
    let mut n = 0;
    drive(engine, &id, |_| {
        n += 1;
        Answer::text(None, format!("A{n}"))
    })
    .await
}

/// The completed value of a terminal record, or a panic naming the outcome.
pub fn completed(t: &Terminal) -> serde_json::Value {
    match &t.outcome {
        alc_core::Outcome::Completed { value } => value.clone(),
        other => panic!("expected completion, got {other:?}"),
    }
}

/// `(kind wire code, message)` of a failed terminal record.
pub fn failed(t: &Terminal) -> (String, String) {
    match &t.outcome {
        alc_core::Outcome::Failed { kind, message, .. } => {
            (kind.wire_code().to_string(), message.clone())
        }
        other => panic!("expected failure, got {other:?}"),
    }
}
