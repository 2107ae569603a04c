//! `alc eval run | resume | history | show | compare` (interfaces.md §4.2, §8).
//!
//! `run` and `resume` print the report JSON on stdout; `history`, `show` and `compare`
//! print tables (or JSON with `--json`); `show --html FILE` writes a self-contained HTML
//! report. Exit codes: 2 usage / bad dataset, 4 not found, 5 the eval is being run by
//! another live process, 6 provider, 7 storage, 8 `--min-pass-rate` not reached.
//!
//! Evals are durable: the run is recorded in `<home>/alc.db` before any case starts,
//! every case runs as a journaled session whose id is recorded before its first answer,
//! and results are recorded as cases finish. An interrupted or killed eval is finished
//! with `alc eval resume ID` (finished cases are kept, interrupted sessions replay from
//! the journal, untouched cases run); `alc eval resume` alone lists unfinished evals, and
//! `alc eval run --resume` continues the newest unfinished run of the same plan.
//! Provider answers go through the response cache (`alc_eval::cache`) unless
//! `--no-cache`; `--resample` asks the provider again and refreshes the cache.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use alc_config::{LoadOptions, Settings};
use alc_core::{Answer, PendingQuery};
use alc_eval::cache::EvalCache;
use alc_eval::compare::{self, CompareOptions};
use alc_eval::dataset::{self, Scenario};
use alc_eval::durable::{self, DurableRun, RunRecord};
use alc_eval::grader;
use alc_eval::report;
use alc_eval::runner::{self, Answerer, BoxFuture, EvalPlan, RunOptions};
use alc_eval::store::EvalStore;
use alc_eval::EvalError;
use clap::{Args, Subcommand};
use serde_json::Value;

use crate::answer::scripted::ScriptedAnswerer;
use crate::progress::Progress;
use crate::run::{exit, Global, Host};

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
    /// Finish an interrupted eval (without ID: list the unfinished ones).
    Resume(ResumeEvalArgs),
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
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Continue the newest unfinished eval of the same plan instead of starting a new one.
    #[arg(long)]
    pub resume: bool,
}

/// Response cache flags of `alc eval run` and `alc eval resume`.
#[derive(Args, Debug, Clone, Copy)]
pub struct CacheArgs {
    /// Ask the provider again instead of reading cached answers (the cache is refreshed).
    #[arg(long)]
    pub resample: bool,
    /// Neither read nor write the response cache.
    #[arg(long, conflicts_with = "resample")]
    pub no_cache: bool,
}

/// `alc eval resume`.
#[derive(Args, Debug)]
pub struct ResumeEvalArgs {
    /// Eval id of an unfinished eval; without it, the unfinished evals are listed.
    pub id: Option<String>,
    /// Answerer for the rest of the eval (default: the recorded one).
    #[arg(long)]
    pub answerer: Option<String>,
    /// Cases running at once (default: as recorded).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Exit 8 when the pass rate is below X (0..1).
    #[arg(long, value_name = "X")]
    pub min_pass_rate: Option<f64>,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// List as `{"unfinished":[…]}` JSON.
    #[arg(long)]
    pub json: bool,
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
        "busy" => exit::BUSY,
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
        EvalSub::Run(a) => run_eval(*a, &settings, global),
        EvalSub::Resume(a) => resume_eval(a, &settings, global),
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

/// Builds the answerer named `choice` (`provider` or `scripted:FILE`); errors are printed
/// and the exit code returned.
fn make_answerer(
    choice: &str,
    settings: &Settings,
    concurrency: Option<usize>,
    quiet: bool,
) -> Result<Arc<dyn Answerer>, u8> {
    if let Some(path) = choice.strip_prefix("scripted:") {
        return match ScriptedAnswerer::from_file(Path::new(path)) {
            Ok(s) => {
                let human = s.has_human_rules();
                Ok(Arc::new(Scripted {
                    name: choice.to_string(),
                    inner: Mutex::new(s),
                    human,
                }))
            }
            Err(e) => Err(usage(e, None)),
        };
    }
    if choice == "provider" {
        let mut providers = settings.providers();
        if !quiet {
            for w in providers.warnings() {
                eprintln!("warning: {w}");
            }
        }
        if let Err(e) = providers.check_available() {
            eprintln!("error: {e}");
            return Err(exit::PROVIDER);
        }
        if let Some(n) = concurrency {
            providers.settings.max_concurrency = providers.settings.max_concurrency.max(n);
        }
        return match alc_llm::Client::new(providers) {
            Ok(c) => Ok(Arc::new(runner::ProviderAnswerer::new(c))),
            Err(e) => {
                eprintln!("error: {e}");
                Err(exit::PROVIDER)
            }
        };
    }
    Err(usage(
        format!("answerer '{choice}' is not supported by `alc eval run`"),
        Some("use --answerer provider or --answerer scripted:FILE"),
    ))
}

fn check_min_pass_rate(x: Option<f64>) -> Result<(), u8> {
    match x {
        Some(x) if !(0.0..=1.0).contains(&x) => {
            Err(usage("--min-pass-rate must be between 0 and 1", None))
        }
        _ => Ok(()),
    }
}

fn run_eval(a: RunEvalArgs, settings: &Settings, global: &Global) -> u8 {
    let quiet = global.quiet;
    if a.repeats == 0 {
        return usage("--repeats must be at least 1", None);
    }
    if a.concurrency == Some(0) {
        return usage("--concurrency must be at least 1", None);
    }
    if let Err(code) = check_min_pass_rate(a.min_pass_rate) {
        return code;
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
    let default_concurrency = settings.providers().settings.max_concurrency.max(1);
    let answerer = match make_answerer(&choice, settings, a.concurrency, quiet) {
        Ok(x) => x,
        Err(code) => return code,
    };

    let warnings: Vec<String> = scenario
        .skipped
        .iter()
        .map(|b| format!("skipped dataset {b}"))
        .collect();
    let scenario_hash = scenario.content_hash();
    let record = RunRecord {
        plan: EvalPlan {
            strategy: a.strategy.clone(),
            strategy_opts,
            scenario,
            repeats: a.repeats,
            concurrency: a.concurrency.unwrap_or(default_concurrency),
            model: settings.run_model(a.model.as_deref()),
            judge_model: a.judge_model.clone(),
            case_timeout_ms: a
                .timeout
                .filter(|t| t.is_finite() && *t > 0.0)
                .map(|t| (t * 1000.0) as u64),
        },
        answerer: answerer.name(),
        judge_answerer: None,
        scenario_hash,
        warnings,
        started_at: alc_eval::now_ms(),
    };
    let store = match open_store(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // An unfinished run of the same plan: continue it with --resume, else point at it.
    let same = store
        .unfinished(Some(&record.plan_hash()))
        .unwrap_or_default();
    if let Some(u) = same.first() {
        if a.resume {
            let mut run = match DurableRun::resume(store, &u.eval_id) {
                Ok(r) => r,
                Err(e) => return fail(&e),
            };
            if let Some(n) = a.concurrency {
                run.set_concurrency(n);
            }
            return execute(
                run,
                answerer.clone(),
                answerer,
                settings,
                global,
                a.cache,
                a.min_pass_rate,
            );
        }
        if !quiet {
            eprintln!(
                "warning: eval {} of the same plan is unfinished ({}/{} cases done)",
                u.eval_id, u.done, u.total
            );
            eprintln!(
                "hint: `alc eval resume {}` finishes it; this run starts a new eval",
                u.eval_id
            );
        }
    } else if a.resume && !quiet {
        eprintln!("note: no unfinished eval of this plan; starting a new one");
    }
    let run = match DurableRun::begin(store, record) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    execute(
        run,
        answerer.clone(),
        answerer,
        settings,
        global,
        a.cache,
        a.min_pass_rate,
    )
}

fn resume_eval(a: ResumeEvalArgs, settings: &Settings, global: &Global) -> u8 {
    if a.concurrency == Some(0) {
        return usage("--concurrency must be at least 1", None);
    }
    if let Err(code) = check_min_pass_rate(a.min_pass_rate) {
        return code;
    }
    let store = match open_store(settings) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let Some(id) = a.id.as_deref() else {
        return list_unfinished(&store, a.json);
    };
    let mut run = match DurableRun::resume(store, id) {
        Ok(r) => r,
        Err(e) if e.code == "eval_not_found" => {
            return fail(&e.with_hint("`alc eval resume` lists the unfinished evals"))
        }
        Err(e) => return fail(&e),
    };
    if let Some(n) = a.concurrency {
        run.set_concurrency(n);
    }
    let choice = a
        .answerer
        .clone()
        .unwrap_or_else(|| run.record().answerer.clone());
    let answerer = match make_answerer(&choice, settings, a.concurrency, global.quiet) {
        Ok(x) => x,
        Err(code) => {
            run.release();
            return code;
        }
    };
    execute(
        run,
        answerer.clone(),
        answerer,
        settings,
        global,
        a.cache,
        a.min_pass_rate,
    )
}

fn list_unfinished(store: &EvalStore, json: bool) -> u8 {
    let rows = match store.unfinished(None) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let now = alc_eval::now_ms();
    let running = |u: &alc_eval::store::Unfinished| {
        u.owner.as_ref().is_some_and(|(host, pid)| {
            now - u.updated_at <= alc_eval::store::EVAL_OWNER_TTL_MS
                && (*host != alc_store::current_host() || alc_store::pid_alive(*pid))
        })
    };
    if json {
        let items: Vec<Value> = rows
            .iter()
            .map(|u| {
                serde_json::json!({
                    "eval_id": u.eval_id,
                    "strategy": u.strategy,
                    "scenario": u.scenario,
                    "total": u.total,
                    "done": u.done,
                    "interrupted": u.started,
                    "started_at": u.started_at,
                    "updated_at": u.updated_at,
                    "running": running(u),
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "unfinished": items }));
        return exit::OK;
    }
    if rows.is_empty() {
        println!("no unfinished evals");
        return exit::OK;
    }
    println!(
        "{:<32}  {:<16}  {:<16}  {:>11}  state",
        "eval_id", "strategy", "scenario", "done/total"
    );
    for u in &rows {
        println!(
            "{:<32}  {:<16}  {:<16}  {:>11}  {}",
            u.eval_id,
            u.strategy,
            u.scenario,
            format!("{}/{}", u.done, u.total),
            if running(u) { "running" } else { "resumable" }
        );
    }
    exit::OK
}

/// Runs (or finishes) a durable eval on a journaled engine and prints its report.
fn execute(
    run: DurableRun,
    answerer: Arc<dyn Answerer>,
    judge: Arc<dyn Answerer>,
    settings: &Settings,
    global: &Global,
    cache: CacheArgs,
    min_pass_rate: Option<f64>,
) -> u8 {
    let quiet = global.quiet;
    let progress = Progress::new(true, true, 0);
    let host = match Host::start(
        settings,
        alc_pkg::Resolver::new(settings.pkg_env()),
        &progress,
        quiet,
    ) {
        Ok(h) => h,
        Err(code) => {
            run.release();
            return code;
        }
    };
    let code = execute_on(
        &host,
        run,
        answerer,
        judge,
        settings,
        global,
        cache,
        min_pass_rate,
    );
    host.finish();
    code
}

#[allow(clippy::too_many_arguments)]
fn execute_on(
    host: &Host,
    run: DurableRun,
    answerer: Arc<dyn Answerer>,
    judge: Arc<dyn Answerer>,
    settings: &Settings,
    global: &Global,
    cache: CacheArgs,
    min_pass_rate: Option<f64>,
) -> u8 {
    let quiet = global.quiet;
    let cache = if cache.no_cache {
        None
    } else {
        match EvalCache::open_home(&settings.home, !cache.resample) {
            Ok(c) => Some(Arc::new(c.with_journal(Arc::new(host.journal.clone())))),
            Err(e) => {
                run.release();
                return fail(&e);
            }
        }
    };
    let run = Arc::new(run);
    let total = run.total();
    if !quiet {
        let (done, interrupted) = (run.done_before(), run.interrupted_before());
        if done + interrupted > 0 {
            eprintln!(
                "eval {}: resuming ({done} of {total} cases done, {interrupted} continue from the journal)",
                run.eval_id()
            );
        } else {
            eprintln!(
                "eval {}: {total} cases (if interrupted: `alc eval resume {}`)",
                run.eval_id(),
                run.eval_id()
            );
        }
    }
    let progress: Option<runner::Progress> =
        (!quiet && std::io::stderr().is_terminal()).then(|| {
            Arc::new(|done: usize, total: usize| {
                eprint!("\reval: {done}/{total} cases done");
                if done == total {
                    eprintln!();
                }
            }) as runner::Progress
        });
    let plan = Arc::new(run.record().plan.clone());
    let opts = RunOptions {
        durable: Some(run.clone()),
        cache: cache.clone(),
    };
    let results = host.rt.block_on(async {
        let heartbeat = durable::spawn_heartbeat(run.clone());
        let results =
            runner::run_all_with(&host.engine, plan, answerer, judge, progress, opts).await;
        heartbeat.abort();
        results
    });
    for e in run.errors() {
        eprintln!("warning: eval progress not recorded: {e}");
    }
    if let Some(e) = cache.as_ref().and_then(|c| c.write_error()) {
        eprintln!("warning: {e}");
    }
    if results.len() < total {
        run.release();
        eprintln!(
            "error: eval {} stopped with {} of {total} cases done",
            run.eval_id(),
            results.len()
        );
        eprintln!("hint: `alc eval resume {}` finishes it", run.eval_id());
        return exit::INTERNAL;
    }
    let rep = match run.finish(results, alc_eval::now_ms()) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
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
    match serde_json::to_value(&rep) {
        Ok(doc) => crate::run::emit(&doc),
        Err(e) => {
            eprintln!("error: cannot encode the report: {e}");
            return exit::INTERNAL;
        }
    }
    if let Some(min) = min_pass_rate {
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
