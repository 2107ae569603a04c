//! Eval and scenario tools (interfaces.md §2.12, §8) over the `alc-eval` crate.
//!
//! `alc_eval` runs every case × repeat as a session of the server's engine, answered by
//! the `provider` or `scripted` answerer (host-answered evals, where every query would
//! surface as a pause, are not offered yet). The read tools and the scenario tools are
//! plain functions of the package environment, run off the async threads.

use std::path::Path;
use std::sync::{Arc, Mutex};

use alc_core::PendingQuery;
use alc_eval::compare::{self, CompareOptions};
use alc_eval::dataset::{self, Scenario};
use alc_eval::report::Report;
use alc_eval::runner::{self, Answered, Answerer, BoxFuture};
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
    /// Wraps a parsed session answerer; `host` → `invalid_params` (not offered for evals).
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
                    "`answerer`: alc_eval runs with `provider` or scripted answers (`script` or `scripted:<path>`); host-answered evals are not supported yet",
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

fn store(env: &PkgEnv) -> Result<EvalStore, ToolError> {
    EvalStore::open_home(&env.home).map_err(eval_error)
}

/// Saves a finished report; returns its id.
pub fn save(env: &PkgEnv, rep: &mut Report) -> Result<String, ToolError> {
    let finished = rep.finished_at;
    store(env)?.save(rep, finished).map_err(eval_error)
}

/// `stats` of a completed eval (§2.1 shape: `auto` + `custom`).
pub fn stats_of(rep: &Report) -> Value {
    json!({
        "auto": {
            "elapsed_ms": (rep.finished_at - rep.started_at).max(0),
            "llm_calls": rep.usage.llm_calls,
            "tokens": rep.usage.tokens,
            "cost_usd": rep.usage.cost_usd,
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
    let id = a.req_str("eval_id")?;
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
