//! A full eval of the bundled `cot` strategy over a 5-case dataset with scripted
//! answers, storage, comparison and the HTML report in headless Chromium.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use alc_core::{Answer, EngineConfig, PendingQuery, QueryRequest};
use alc_engine::{Engine, HostServices, PackageRoots};
use alc_eval::compare::{self, CompareOptions};
use alc_eval::dataset::{self, Scenario};
use alc_eval::report::{self, Report, ReportMeta};
use alc_eval::runner::{self, Answerer, CaseResult, EvalPlan, FnAnswerer};
use alc_eval::store::EvalStore;
use alc_eval::{grader, stats};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn py(code: &str) -> Vec<f64> {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .output()
        .expect("python3 is available");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

const DATASET: &str = r#"{"id":"add","input":"What is 2+2?","expected":"4"}
{"id":"mul","input":"What is 10*3?","expected":"30"}
{"id":"sub","input":"What is 7-5?","expected":"2"}
{"id":"div","input":"What is 9/3?","expected":"3"}
{"id":"sum","input":"What is 6+7?","expected":"13"}
"#;

/// Scripted answers: the model gets `6+7` wrong.
fn answer_for(prompt: &str) -> Option<&'static str> {
    [
        ("2+2", "1. Two plus two.\nANSWER: 4"),
        ("10*3", "1. Ten times three.\nANSWER: 30"),
        ("7-5", "1. Seven minus five.\nANSWER: 2"),
        ("9/3", "1. Nine over three.\nANSWER: 3"),
        ("6+7", "1. Six plus seven.\nANSWER: 12"),
    ]
    .iter()
    .find(|(k, _)| prompt.contains(k))
    .map(|(_, v)| *v)
}

fn prompt_of(q: &PendingQuery) -> &str {
    match &q.request {
        QueryRequest::Llm { query } => &query.prompt,
        QueryRequest::Human { question } => &question.question,
    }
}

fn scripted() -> Arc<dyn Answerer> {
    Arc::new(FnAnswerer::new(
        "scripted:test",
        |q: &PendingQuery| match answer_for(prompt_of(q)) {
            Some(t) => Answer::text(Some(q.id.clone()), t),
            None => Answer::error(Some(q.id.clone()), "scripted_no_match", "no rule"),
        },
    ))
}

fn engine() -> Engine {
    let roots = PackageRoots::new(vec![("repo".into(), repo().join("packages"))]);
    Engine::start_blocking(
        EngineConfig::default(),
        HostServices {
            modules: Arc::new(roots),
            ..HostServices::default()
        },
    )
    .expect("engine starts")
}

fn scenario(text: &str, graders: Option<Value>) -> Scenario {
    let ds = dataset::parse_jsonl(text, false).unwrap();
    Scenario {
        name: "five".into(),
        cases: ds.cases,
        graders: match graders {
            Some(g) => grader::parse_graders(&g).unwrap(),
            None => vec![grader::GraderSpec::exact()],
        },
        pass_threshold: 1.0,
        output_field: None,
        skipped: vec![],
    }
}

fn run_eval(
    strategy: &str,
    scenario: Scenario,
    answerer: Arc<dyn Answerer>,
    judge: Arc<dyn Answerer>,
    repeats: u32,
) -> Report {
    let engine = engine();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let hash = scenario.content_hash();
    let name = scenario.name.clone();
    let plan = Arc::new(EvalPlan {
        strategy: strategy.into(),
        strategy_opts: serde_json::Map::new(),
        scenario,
        repeats,
        concurrency: 3,
        model: None,
        judge_model: None,
        case_timeout_ms: Some(30_000),
    });
    let started = alc_eval::now_ms();
    let results = rt.block_on(runner::run_all(
        &engine,
        plan,
        answerer.clone(),
        judge,
        None,
    ));
    engine.shutdown_now(alc_engine::ShutdownMode::Cancel);
    report::build(
        ReportMeta {
            strategy: strategy.into(),
            scenario: name,
            scenario_hash: hash,
            answerer: answerer.name(),
            model: None,
            repeats,
            pass_threshold: 1.0,
            strategy_opts: json!({}),
            graders: json!([]),
            started_at: started,
            finished_at: alc_eval::now_ms(),
            warnings: vec![],
        },
        results,
    )
}

#[test]
fn cot_over_five_cases_with_scripted_answers() {
    let r = run_eval("cot", scenario(DATASET, None), scripted(), scripted(), 1);
    let a = &r.aggregated;
    assert_eq!(
        (a.total, a.passed, a.failed, a.errored),
        (5, 4, 1, 0),
        "{:#?}",
        r.cases
    );
    assert_eq!(a.pass_rate, 0.8);
    let w = py("import math
from statistics import NormalDist
z=NormalDist().inv_cdf(0.975); k=4; n=5; p=k/n
c=(p+z*z/(2*n))/(1+z*z/n); h=z/(1+z*z/n)*math.sqrt(p*(1-p)/n+z*z/(4*n*n))
import statistics as s
print(c-h, c+h, s.stdev([1,1,1,1,0]))");
    assert!(
        (a.pass_rate_ci_95[0] - w[0]).abs() < 1e-12,
        "{:?} vs {w:?}",
        a.pass_rate_ci_95
    );
    assert!((a.pass_rate_ci_95[1] - w[1]).abs() < 1e-12);
    assert_eq!(a.scores.mean, 0.8);
    assert!((a.scores.std - w[2]).abs() < 1e-12);
    assert_eq!(a.scores.n, 5);
    assert_eq!(r.usage.llm_calls, 5);
    // Results come back in dataset order, the output is cot's `result.answer`.
    let ids: Vec<&str> = r.cases.iter().map(|c| c.case_id.as_str()).collect();
    assert_eq!(ids, ["add", "mul", "sub", "div", "sum"]);
    assert_eq!(r.cases[0].output.as_deref(), Some("4"));
    assert_eq!(r.cases[4].output.as_deref(), Some("12"));
    assert!(!r.cases[4].passed);
    assert!(r
        .cases
        .iter()
        .all(|c| c.session_id.is_some() && c.llm_calls == 1));
    assert_eq!(
        r.summary,
        "cot on five: 4/5 passed (80.0%), mean score 0.800"
    );
}

#[test]
fn failing_cases_count_as_errored_and_the_eval_continues() {
    let text = format!(
        "{DATASET}{{\"id\":\"odd\",\"input\":\"Unscripted question\",\"expected\":\"1\"}}\n"
    );
    let r = run_eval("cot", scenario(&text, None), scripted(), scripted(), 1);
    let a = &r.aggregated;
    assert_eq!((a.total, a.passed, a.failed, a.errored), (6, 4, 1, 1));
    let odd = r.cases.iter().find(|c| c.case_id == "odd").unwrap();
    assert!(odd.errored && odd.score == 0.0 && !odd.passed);
    assert!(
        odd.error.as_deref().unwrap().contains("no rule"),
        "{:?}",
        odd.error
    );
    assert!(r.summary.contains("1 errored"));
}

#[test]
fn llm_judge_asks_with_role_grader_and_repeats_run() {
    let roles: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let seen = roles.clone();
    let judge: Arc<dyn Answerer> = Arc::new(FnAnswerer::new("judge", move |q: &PendingQuery| {
        let QueryRequest::Llm { query } = &q.request else {
            unreachable!()
        };
        seen.lock().unwrap().push(query.role.clone());
        let verdict = if query.prompt.contains("Output to grade:\n12") {
            "NO"
        } else {
            "YES"
        };
        Answer::text(Some(q.id.clone()), verdict)
    }));
    let sc = scenario(
        DATASET,
        Some(json!([{"type":"numeric"},{"type":"llm_judge","rubric":"Correct number."}])),
    );
    let r = run_eval("cot", sc, scripted(), judge, 2);
    assert_eq!(r.aggregated.total, 10);
    assert_eq!(r.aggregated.passed, 8);
    let roles = roles.lock().unwrap();
    assert_eq!(roles.len(), 10);
    assert!(roles.iter().all(|r| r.as_deref() == Some("grader")));
    assert_eq!(r.cases[1].repeat, 1);
    assert_eq!(r.cases[0].grades.len(), 2);
}

fn case(id: &str, score: f64) -> CaseResult {
    CaseResult {
        case_id: id.into(),
        repeat: 0,
        score,
        passed: score >= 1.0,
        errored: false,
        output: Some(format!("{score}")),
        grades: vec![],
        error: None,
        input: json!(id),
        expected: json!("1"),
        tags: vec![],
        llm_calls: 1,
        tokens: 100,
        cost_usd: Some(0.001),
        elapsed_ms: 10,
        session_id: None,
        cache_hits: 0,
    }
}

fn synthetic(strategy: &str, scores: &[f64], prefix: &str) -> Report {
    let cases: Vec<CaseResult> = scores
        .iter()
        .enumerate()
        .map(|(i, s)| case(&format!("{prefix}{i}"), *s))
        .collect();
    report::build(
        ReportMeta {
            strategy: strategy.into(),
            scenario: "synthetic".into(),
            scenario_hash: prefix.into(),
            answerer: "scripted".into(),
            model: None,
            repeats: 1,
            pass_threshold: 1.0,
            strategy_opts: json!({}),
            graders: json!([]),
            started_at: 0,
            finished_at: 1,
            warnings: vec![],
        },
        cases,
    )
}

#[test]
fn storage_ids_are_unique_within_one_millisecond() {
    let home = tempfile::tempdir().unwrap();
    let mut store = EvalStore::open_home(home.path()).unwrap();
    let mut a = synthetic("cot", &[1.0, 0.0], "c");
    let mut b = synthetic("cot", &[1.0, 1.0], "c");
    let mut c = synthetic("sc", &[0.5], "c");
    let ms = 1_795_686_100_123;
    assert_eq!(store.save(&mut a, ms).unwrap(), "cot_1795686100123");
    assert_eq!(store.save(&mut b, ms).unwrap(), "cot_1795686100124");
    assert_eq!(store.save(&mut c, ms).unwrap(), "sc_1795686100123");
    // A second connection sees the same table (ids persist across processes).
    let store2 = EvalStore::open(&home.path().join("alc.db")).unwrap();
    assert_eq!(store2.get("cot_1795686100124").unwrap(), b);
    let e = store2.get("nope_1").unwrap_err();
    assert_eq!(e.code, "eval_not_found");
    let h = store2.history(Some("cot"), None, 20).unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["eval_id"], "cot_1795686100124", "newest first");
    assert_eq!(h[0]["pass_rate"], 1.0);
    assert_eq!(h[1]["total_cases"], 2);
    assert_eq!(store2.history(None, None, 20).unwrap().len(), 3);
}

#[test]
fn compare_reproduces_welch_and_is_deterministic() {
    let sa = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.5, 1.0];
    let sb = [0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 1.0];
    let mut a = synthetic("sc", &sa, "k");
    a.eval_id = "sc_1".into();
    let mut b = synthetic("cot", &sb, "k");
    b.eval_id = "cot_2".into();
    let res = compare::compare(&a, &b, CompareOptions::default());
    let v = py(&format!(
        "import statistics as s, math
a={sa:?}; b={sb:?}
ma,mb=s.mean(a),s.mean(b); va,vb=s.variance(a)/len(a),s.variance(b)/len(b)
t=(ma-mb)/math.sqrt(va+vb); df=(va+vb)**2/(va*va/(len(a)-1)+vb*vb/(len(b)-1))
pdf=lambda x: math.exp(math.lgamma((df+1)/2)-math.lgamma(df/2))/math.sqrt(df*math.pi)*(1+x*x/df)**(-(df+1)/2)
N=200000; h=abs(t)/N
acc=pdf(0)+pdf(abs(t))+sum((4 if i%2 else 2)*pdf(i*h) for i in range(1,N))
print(t, df, 1-2*acc*h/3, ma-mb)"
    ));
    let w = &res["comparison"]["welch_t"];
    assert!((w["t_stat"].as_f64().unwrap() - v[0]).abs() < 1e-6);
    assert!((w["df"].as_f64().unwrap() - v[1]).abs() < 1e-6);
    assert!((w["p_value"].as_f64().unwrap() - v[2]).abs() < 1e-6);
    assert!((res["comparison"]["delta_mean"].as_f64().unwrap() - v[3]).abs() < 1e-12);
    // Same seed → same intervals; paired on the 8 shared ids.
    assert_eq!(res, compare::compare(&a, &b, CompareOptions::default()));
    let p = &res["comparison"]["paired"];
    assert_eq!(p["n"], 8);
    assert_eq!(
        (p["wins"].as_u64(), p["losses"].as_u64(), p["ties"].as_u64()),
        (Some(3), Some(0), Some(5))
    );
    assert_eq!(p["mcnemar"]["a_only_passed"], 3);
    assert_eq!(p["mcnemar"]["method"], "exact");
    assert!((p["mcnemar"]["p_value"].as_f64().unwrap() - 0.25).abs() < 1e-12);
    let summary = res["comparison"]["summary"].as_str().unwrap();
    assert!(summary.contains("n = 8 cases vs 10 cases"), "{summary}");
    assert!(summary.contains("8 shared cases"), "{summary}");
    let other = compare::compare(
        &a,
        &b,
        CompareOptions {
            seed: 7,
            ..Default::default()
        },
    );
    assert_ne!(
        res["comparison"]["bootstrap"],
        other["comparison"]["bootstrap"]
    );
    let t_ci = res["a"]["ci_95"].as_array().unwrap();
    assert!(t_ci[0].as_f64().unwrap() < stats::mean(&sa));
}

#[test]
fn compare_without_shared_cases_says_so() {
    let mut a = synthetic("sc", &[1.0, 0.0, 1.0], "x");
    a.eval_id = "sc_1".into();
    let mut b = synthetic("cot", &[1.0, 1.0], "y");
    b.eval_id = "cot_2".into();
    let res = compare::compare(&a, &b, CompareOptions::default());
    assert!(res["comparison"]["paired"].is_null());
    let w = res["warnings"][0].as_str().unwrap();
    assert!(w.contains("no cases in common"), "{w}");
    assert!(res["comparison"]["summary"]
        .as_str()
        .unwrap()
        .contains("No shared cases"));
    // One case on a side: Welch is not computed.
    let mut c = synthetic("pot", &[1.0], "x");
    c.eval_id = "pot_3".into();
    let res = compare::compare(&a, &c, CompareOptions::default());
    assert!(res["comparison"]["welch_t"].is_null());
    assert_eq!(res["comparison"]["reason"], "insufficient_samples");
    assert_eq!(res["comparison"]["winner"], "none");
}

#[test]
fn terminal_table_is_readable() {
    let mut r = synthetic("cot", &[1.0, 0.0, 1.0, 1.0], "t");
    r.eval_id = "cot_9".into();
    let t = report::terminal_table(&r);
    assert!(t.contains("pass rate  75.0% (3/4)"), "{t}");
    assert!(t.contains("mean score 0.750"), "{t}");
    assert!(
        t.contains("case") && t.contains("FAIL") && t.contains("t1"),
        "{t}"
    );
}

/// Renders the HTML report in headless Chromium and checks the numbers in the DOM.
#[test]
fn html_report_renders_in_headless_chromium() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "/usr/bin/chromium is missing: install it (apt-get install -y chromium; .ci/run does) to run the HTML render test"
    );
    let mut r = run_eval("cot", scenario(DATASET, None), scripted(), scripted(), 1);
    r.eval_id = "cot_42".into();
    let mut peer = synthetic("sc", &[1.0, 1.0, 0.0, 1.0, 1.0], "p");
    peer.eval_id = "sc_43".into();
    let html = report::html(&r, &[&peer]);
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<script"),
        "self-contained"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.html");
    std::fs::write(&file, &html).unwrap();
    let out = std::process::Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", file.display()))
        .env("HOME", dir.path())
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dom.contains("<svg"), "the chart is in the DOM");
    assert!(dom.contains("80.0% (4/5)"), "pass rate in the DOM: {dom}");
    assert!(dom.contains("0.800,"), "mean score in the DOM");
    assert!(
        dom.contains("sc_43") && dom.contains("<circle"),
        "per-strategy points"
    );
    assert!(
        dom.contains("<details>") && dom.contains("What is 6+7?"),
        "per-case drill-down"
    );
}
