//! Evaluation of reasoning strategies (interfaces.md §8).
//!
//! - [`dataset`]: JSONL datasets, `*.eval.toml` suites, simple-form Lua scenarios.
//! - [`grader`]: `exact`, `contains`, `regex`, `numeric`, `llm_judge`.
//! - [`runner`]: runs every case × repeat as its own engine session, up to a
//!   concurrency limit, answered by an [`runner::Answerer`].
//! - [`stats`]: Wilson, seeded bootstrap, Welch t, McNemar, percentiles.
//! - [`report`]: the report document, terminal table and self-contained HTML.
//! - [`store`]: `eval_runs` / `eval_cases` tables in `<home>/alc.db`.
//! - [`compare`]: Welch, bootstrap and paired comparison of two stored evals.
//! - [`scenarios`]: installed scenarios in `<home>/scenarios` (lookup, list, install).
//!
//! - [`durable`]: durable runs (the run and each case's session recorded before work
//!   starts; an interrupted eval is resumed from the journal).
//! - [`cache`]: the content-addressed response cache of provider answers.

#![warn(missing_docs)]

pub mod cache;
pub mod compare;
pub mod dataset;
pub mod durable;
pub mod grader;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod stats;
pub mod store;

/// An eval error: a stable code (§2.2 style), a one-line message and an optional hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// `invalid_params`, `not_found`, `eval_not_found`, `scenario_not_found`, `io_error`,
    /// `provider_error`, `busy`, `internal`.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl EvalError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        EvalError {
            code,
            message: message.into(),
            hint: None,
        }
    }

    /// Bad input (dataset, grader, option).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid_params", message)
    }

    /// A missing file.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new("not_found", message)
    }

    /// A missing eval id.
    pub fn eval_not_found(id: &str) -> Self {
        Self::new("eval_not_found", format!("no eval with id '{id}'"))
            .with_hint("list stored evals with `alc eval history`")
    }

    /// A missing installed scenario.
    pub fn scenario_not_found(name: &str, dir: &std::path::Path) -> Self {
        Self::new(
            "scenario_not_found",
            format!("scenario '{name}' not found in {}", dir.display()),
        )
    }

    /// Storage or file I/O.
    pub fn io(message: impl Into<String>) -> Self {
        Self::new("io_error", message)
    }

    /// Provider configuration or call failure.
    pub fn provider(message: impl Into<String>) -> Self {
        Self::new("provider_error", message)
    }

    /// Another live process owns the object.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new("busy", message)
    }

    /// A bug.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message.
    pub fn prefix(mut self, p: &str) -> Self {
        self.message = format!("{p}{}", self.message);
        self
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
