//! `alc eval run | history | show | compare` (interfaces.md §4.2, §8).
//!
//! `run` prints the report JSON on stdout; `history`, `show` and `compare` print
//! tables (or JSON with `--json`); `show --html FILE` writes a self-contained HTML
//! report. Exit codes: 2 usage / bad dataset, 4 not found, 6 provider, 7 storage,
//! 8 `--min-pass-rate` not reached.
//!
//! Durable resume of an interrupted eval is not available yet (it needs the engine
//! journal); an interrupted eval stores nothing.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use alc_config::{LoadOptions, Settings};
use alc_core::{Answer, PendingQuery};
use alc_engine::{Engine, HostServices};
use alc_eval::compare::{self, CompareOptions};
use alc_eval::dataset::{self, Scenario};
use alc_eval::grader;
use alc_eval::report::{self, ReportMeta};
use alc_eval::runner::{self, Answerer, BoxFuture, EvalPlan};
use alc_eval::store::EvalStore;
use alc_eval::EvalError;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::answer::scripted::ScriptedAnswerer;
use crate::run::{exit, Global};

/// Exit code: `--min-pass-rate` not reached (§4.3).
const EXIT_TESTS_FAILED: u8 = 8;

/// `alc eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Home directory (beats `ALC_HOME`).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: EvalSub,
}

/// Subcommands of `alc eval`.
#[derive(Subcommand, Debug)]
pub enum EvalSub {
    /// Run a strategy over a dataset, suite or scenario; prints the report JSON.
    Run(Box<RunEvalArgs>),
    /// List stored evals, newest first.
    History(HistoryArgs),
    /// Show a stored eval as a table, or write an HTML report.
    Show(ShowArgs),
    /// Compare two stored evals (Welch, bootstrap, paired, McNemar).
    Compare(CompareArgs),
}

/// `alc eval run`.
#[derive(Args, Debug)]
pub struct RunEvalArgs {
    /// Strategy package.
    #[arg(long)]
    pub strategy: String,
    /// A JSONL dataset (graded with `exact` unless --graders is given).
    #[arg(long, value_name = "FILE")]
    pub dataset: Option<PathBuf>,
    /// A suite file (`*.eval.toml`).
    #[arg(long, value_name = "FILE")]
    pub suite: Option<PathBuf>,
    /// A Lua scenario (simple form), or a name under `<home>/scenarios`.
    #[arg(long, value_name = "FILE|NAME")]
    pub scenario: Option<String>,
    /// Strategy options (JSON object) merged into every case's ctx.
    #[arg(long, value_name = "JSON")]
    pub strategy_opts: Option<String>,
    /// Graders (JSON array) replacing the scenario's.
    #[arg(long, value_name = "JSON")]
    pub graders: Option<String>,
    /// Dot path of the output in the strategy's result.
    #[arg(long, value_name = "PATH")]
    pub output_field: Option<String>,
    /// Pass threshold of the case score (default: the suite's, else 1.0).
    #[arg(long, value_name = "X")]
    pub pass_threshold: Option<f64>,
    /// Runs per case.
    #[arg(long, default_value_t = 1)]
    pub repeats: u32,
    /// Only the first N cases.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Cases running at once (default: the provider concurrency limit).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// `provider` or `scripted:FILE`.
    #[arg(long)]
    pub answerer: Option<String>,
    /// Model selector.
    #[arg(long)]
    pub model: Option<String>,
    /// Model selector for `llm_judge` graders.
    #[arg(long)]
    pub judge_model: Option<String>,
    /// Exit 8 when the pass rate is below X (0..1).
    #[arg(long, value_name = "X")]
    pub min_pass_rate: Option<f64>,
    /// Skip malformed dataset lines (reported on stderr) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Per-case deadline in seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

/// `alc eval history`.
#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Only this strategy.
    #[arg(long)]
    pub strategy: Option<String>,
    /// Only this scenario.
    #[arg(long)]
    pub scenario: Option<String>,
    /// At most N rows.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Print `{"evals":[…]}` JSON.
    #[arg(long)]
    pub json: bool,
}

/// `alc eval show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Eval id.
    pub id: String,
    /// Write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Print the stored document as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `alc eval compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Eval id A.
    pub a: String,
    /// Eval id B.
    pub b: String,
    /// Significance level.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 10_000)]
    pub resamples: usize,
    /// PRNG seed of the bootstrap.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print the comparison JSON.
    #[arg(long)]
    pub json: bool,
}

fn fail(e: &EvalError) -> u8 {
    eprintln!("error: {}", e.message);
    if let Some(h) = &e.hint {
        eprintln!("hint: {h}");
    }
    match e.code {
        "invalid_params" => exit::USAGE,
        "not_found" | "eval_not_found" => exit::NOT_FOUND,
        "io_error" => exit::IO,
        "provider_error" => exit::PROVIDER,
        _ => exit::INTERNAL,
    }
}

fn usage(msg: impl std::fmt::Display, hint: Option<&str>) -> u8 {
    eprintln!("error: {msg}");
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
    exit::USAGE
}

/// Runs `alc eval …` and returns the exit code.
pub fn run(args: EvalArgs, global: &Global) -> u8 {
    let settings = match Settings::load(&LoadOptions {
        home: args.home.clone().or_else(|| global.home.clone()),
        project_root: None,
        cwd: None,
    }) {
        Ok(s) => s,
        Err(e) => return usage(e, None),
    };
    match args.command {
        EvalSub::Run(a) => run_eval(*a, &settings, global.quiet),
        EvalSub::History(a) => history(a, &settings),
        EvalSub::Show(a) => show(a, &settings),
        EvalSub::Compare(a) => compare_cmd(a, &settings),
    }
}

fn open_store(settings: &Settings) -> Result<EvalStore, EvalError> {
    EvalStore::open_home(&settings.home)
}

/// The scripted answerer (interfaces §1.1) behind the eval `Answerer` trait.
struct Scripted {
    name: String,
    inner: Mutex<ScriptedAnswerer>,
    human: bool,
}

impl Scripted {
    fn answer_one(&self, q: &PendingQuery) -> Answer {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answer_pending(q)
    }
}

impl Answerer for Scripted {
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
    ) -> BoxFuture<'a, Vec<runner::Answered>> {
        let out = queries.iter().map(|q| self.answer_one(q).into()).collect();
        Box::pin(async move { out })
    }
}

fn load_scenario(a: &RunEvalArgs, settings: &Settings) -> Result<Scenario, EvalError> {
    let given = [a.dataset.is_some(), a.suite.is_some(), a.scenario.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if given != 1 {
        return Err(EvalError::invalid(
            "give exactly one of --dataset FILE.jsonl, --suite FILE.eval.toml or --scenario FILE.lua",
        ));
    }
    if let Some(p) = &a.dataset {
        return dataset::load_dataset(p, a.skip_bad);
    }
    if let Some(p) = &a.suite {
        return dataset::load_suite(p, a.skip_bad);
    }
    let s = a.scenario.as_deref().unwrap_or_default();
    let path = Path::new(s);
    if path.is_file() || s.contains('/') || s.ends_with(".lua") {
        return dataset::load_any(path, a.skip_bad);
    }
    if !alc_engine::valid_package_name(s) {
        return Err(EvalError::invalid(format!("invalid scenario name '{s}'")));
    }
    let dir = settings.home.join("scenarios");
    for ext in ["lua", "jsonl", "eval.toml"] {
        let p = dir.join(format!("{s}.{ext}"));
        if p.is_file() {
            return dataset::load_any(&p, a.skip_bad);
        }
    }
    Err(EvalError::not_found(format!(
        "scenario '{s}' not found in {}",
        dir.display()
    )))
}

fn run_eval(a: RunEvalArgs, settings: &Settings, quiet: bool) -> u8 {
    if a.repeats == 0 {
        return usage("--repeats must be at least 1", None);
    }
    if a.concurrency == Some(0) {
        return usage("--concurrency must be at least 1", None);
    }
    if let Some(x) = a.min_pass_rate {
        if !(0.0..=1.0).contains(&x) {
            return usage("--min-pass-rate must be between 0 and 1", None);
        }
    }
    if !alc_engine::valid_package_name(&a.strategy) {
        return usage(format!("invalid strategy name '{}'", a.strategy), None);
    }
    let resolver = alc_pkg::Resolver::new(settings.pkg_env());
    if resolver.bindings(&a.strategy).is_empty() {
        eprintln!("error: strategy package '{}' not found", a.strategy);
        eprintln!("hint: list packages with `alc pkg list`");
        return exit::NOT_FOUND;
    }
    let mut scenario = match load_scenario(&a, settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    for bad in &scenario.skipped {
        eprintln!("warning: skipped dataset {bad}");
    }
    if let Some(g) = &a.graders {
        let v: Value = match serde_json::from_str(g) {
            Ok(v) => v,
            Err(e) => return usage(format!("--graders is not valid JSON: {e}"), None),
        };
        match grader::parse_graders(&v) {
            Ok(gs) => scenario.graders = gs,
            Err(e) => return fail(&e),
        }
    }
    if let Some(f) = &a.output_field {
        scenario.output_field = Some(f.clone());
    }
    if let Some(t) = a.pass_threshold {
        scenario.pass_threshold = t;
    }
    if let Some(n) = a.limit {
        scenario.cases.truncate(n);
    }
    if scenario.cases.is_empty() {
        return usage("the scenario has no cases", None);
    }
    let strategy_opts = match a
        .strategy_opts
        .as_deref()
        .map(serde_json::from_str::<Value>)
    {
        None => serde_json::Map::new(),
        Some(Ok(Value::Object(m))) => m,
        Some(Ok(_)) => return usage("--strategy-opts must be a JSON object", None),
        Some(Err(e)) => return usage(format!("--strategy-opts is not valid JSON: {e}"), None),
    };

    let choice = match settings.answerer(a.answerer.as_deref()) {
        Some(s) => s.value,
        None if settings.provider_configured() => "provider".into(),
        None => return usage(
            "no answerer: no LLM provider is configured and no --answerer was given",
            Some(
                "pass --answerer provider (with a provider configured) or --answerer scripted:FILE",
            ),
        ),
    };
    let mut providers = settings.providers();
    let default_concurrency = providers.settings.max_concurrency.max(1);
    let answerer: Arc<dyn Answerer> = if let Some(path) = choice.strip_prefix("scripted:") {
        match ScriptedAnswerer::from_file(Path::new(path)) {
            Ok(s) => {
                let human = s.has_human_rules();
                Arc::new(Scripted {
                    name: choice.clone(),
                    inner: Mutex::new(s),
                    human,
                })
            }
            Err(e) => return usage(e, None),
        }
    } else if choice == "provider" {
        if !quiet {
            for w in providers.warnings() {
                eprintln!("warning: {w}");
            }
        }
        if let Err(e) = providers.check_available() {
            eprintln!("error: {e}");
            return exit::PROVIDER;
        }
        if let Some(n) = a.concurrency {
            providers.settings.max_concurrency = providers.settings.max_concurrency.max(n);
        }
        match alc_llm::Client::new(providers) {
            Ok(c) => Arc::new(runner::ProviderAnswerer::new(c)),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::PROVIDER;
            }
        }
    } else {
        return usage(
            format!("answerer '{choice}' is not supported by `alc eval run`"),
            Some("use --answerer provider or --answerer scripted:FILE"),
        );
    };

    let model = settings.run_model(a.model.as_deref());
    let graders_json = serde_json::to_value(&scenario.graders).unwrap_or(Value::Null);
    let scenario_hash = scenario.content_hash();
    let scenario_name = scenario.name.clone();
    let pass_threshold = scenario.pass_threshold;
    let warnings: Vec<String> = scenario
        .skipped
        .iter()
        .map(|b| format!("skipped dataset {b}"))
        .collect();
    let plan = Arc::new(EvalPlan {
        strategy: a.strategy.clone(),
        strategy_opts: strategy_opts.clone(),
        scenario,
        repeats: a.repeats,
        concurrency: a.concurrency.unwrap_or(default_concurrency),
        model: model.clone(),
        judge_model: a.judge_model.clone(),
        case_timeout_ms: a
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| (t * 1000.0) as u64),
    });

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    let services = HostServices {
        modules: Arc::new(resolver),
        env_allow: Arc::new(settings.env_allow()),
        ..HostServices::default()
    };
    let engine = match Engine::start_blocking(settings.engine_config(), services) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INTERNAL;
        }
    };
    let progress: Option<runner::Progress> =
        (!quiet && std::io::stderr().is_terminal()).then(|| {
            Arc::new(|done: usize, total: usize| {
                eprint!("\reval: {done}/{total} cases done");
                if done == total {
                    eprintln!();
                }
            }) as runner::Progress
        });
    let started_at = alc_eval::now_ms();
    let results = rt.block_on(runner::run_all(
        &engine,
        plan.clone(),
        answerer.clone(),
        answerer.clone(),
        progress,
    ));
    engine.shutdown_now(alc_engine::ShutdownMode::Cancel);
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    let finished_at = alc_eval::now_ms();

    let mut rep = report::build(
        ReportMeta {
            strategy: a.strategy.clone(),
            scenario: scenario_name,
            scenario_hash,
            answerer: answerer.name(),
            model,
            repeats: a.repeats,
            pass_threshold,
            strategy_opts: Value::Object(strategy_opts),
            graders: graders_json,
            started_at,
            finished_at,
            warnings,
        },
        results,
    );
    let mut store = match open_store(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if let Err(e) = store.save(&mut rep, finished_at) {
        return fail(&e);
    }
    if !quiet {
        if rep.aggregated.errored > 0 {
            let first = rep
                .cases
                .iter()
                .find_map(|c| c.error.as_deref())
                .unwrap_or("");
            eprintln!(
                "warning: {} of {} cases errored (first: {first})",
                rep.aggregated.errored, rep.aggregated.total
            );
        }
        eprintln!("{} [{}]", rep.summary, rep.eval_id);
    }
    match serde_json::to_string(&rep) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("error: cannot encode the report: {e}");
            return exit::INTERNAL;
        }
    }
    if let Some(min) = a.min_pass_rate {
        if rep.aggregated.pass_rate < min {
            eprintln!(
                "error: pass rate {:.1}% is below --min-pass-rate {:.1}%",
                rep.aggregated.pass_rate * 100.0,
                min * 100.0
            );
            return EXIT_TESTS_FAILED;
        }
    }
    exit::OK
}

fn history(a: HistoryArgs, settings: &Settings) -> u8 {
    let store = match open_store(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let rows = match store.history(a.strategy.as_deref(), a.scenario.as_deref(), a.limit) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if a.json {
        println!("{}", serde_json::json!({ "evals": rows }));
        return exit::OK;
    }
    if rows.is_empty() {
        println!("no stored evals");
        return exit::OK;
    }
    println!(
        "{:<32}  {:<16}  {:<16}  {:>9}  {:>6}  {:>5}  status",
        "eval_id", "strategy", "scenario", "pass rate", "mean", "cases"
    );
    for r in rows {
        println!(
            "{:<32}  {:<16}  {:<16}  {:>8.1}%  {:>6.3}  {:>5}  {}",
            r["eval_id"].as_str().unwrap_or(""),
            r["strategy"].as_str().unwrap_or(""),
            r["scenario"].as_str().unwrap_or(""),
            r["pass_rate"].as_f64().unwrap_or(0.0) * 100.0,
            r["mean_score"].as_f64().unwrap_or(0.0),
            r["total_cases"].as_i64().unwrap_or(0),
            r["status"].as_str().unwrap_or("")
        );
    }
    exit::OK
}

fn show(a: ShowArgs, settings: &Settings) -> u8 {
    let store = match open_store(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let rep = match store.get(&a.id) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Some(path) = &a.html {
        let peers = store.peers(&rep, 8).unwrap_or_default();
        let refs: Vec<&report::Report> = peers.iter().collect();
        if let Err(e) = std::fs::write(path, report::html(&rep, &refs)) {
            eprintln!("error: cannot write {}: {e}", path.display());
            return exit::IO;
        }
        eprintln!("wrote {}", path.display());
        return exit::OK;
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "eval_id": rep.eval_id,
                "status": rep.status,
                "result": rep,
            })
        );
    } else {
        print!("{}", report::terminal_table(&rep));
    }
    exit::OK
}

fn compare_cmd(a: CompareArgs, settings: &Settings) -> u8 {
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        return usage("--alpha must be between 0 and 1", None);
    }
    if a.resamples == 0 {
        return usage("--resamples must be at least 1", None);
    }
    let store = match open_store(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let (ra, rb) = match (store.get(&a.a), store.get(&a.b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    let result = compare::compare(
        &ra,
        &rb,
        CompareOptions {
            alpha: a.alpha,
            resamples: a.resamples,
            seed: a.seed,
        },
    );
    if let Some(ws) = result["warnings"].as_array() {
        for w in ws {
            eprintln!("warning: {}", w.as_str().unwrap_or(""));
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::json!({"status": "completed", "result": result})
        );
    } else {
        print!("{}", compare::terminal(&result));
    }
    exit::OK
}
