//! `alc eval` as a subprocess: run (report JSON, exit codes), history, show (table,
//! HTML), compare, and the error messages of bad inputs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alc-eval-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn alc(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_alc"))
        .env_remove("ALC_ANSWERER")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env("ALC_HOME", home)
        .env("ALC_PACKAGES_PATH", repo().join("packages"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("alc runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn one_json(o: &Output) -> serde_json::Value {
    let text = String::from_utf8(o.stdout.clone()).unwrap();
    assert_eq!(
        text.trim_end().lines().count(),
        1,
        "one line on stdout: {text:?}"
    );
    serde_json::from_str(text.trim_end()).expect("stdout is one JSON document")
}

const DATASET: &str = r#"{"id":"add","input":"What is 2+2?","expected":"4"}
{"id":"mul","input":"What is 10*3?","expected":"30"}
{"id":"sub","input":"What is 7-5?","expected":"2"}
{"id":"div","input":"What is 9/3?","expected":"3"}
{"id":"sum","input":"What is 6+7?","expected":"13"}
"#;

const ANSWERS: &str = r#"{"match":"2+2","response":"1. Two plus two.\nANSWER: 4"}
{"match":"10*3","response":"1. Ten times three.\nANSWER: 30"}
{"match":"7-5","response":"1. Seven minus five.\nANSWER: 2"}
{"match":"9/3","response":"1. Nine over three.\nANSWER: 3"}
{"match":"6+7","response":"1. Six plus seven.\nANSWER: 12"}
"#;

struct Fixture {
    home: PathBuf,
    dataset: String,
    answerer: String,
}

fn fixture(name: &str) -> Fixture {
    let dir = tmp_dir(name);
    let home = dir.join("home");
    let _ = std::fs::remove_dir_all(&home);
    std::fs::write(dir.join("five.jsonl"), DATASET).unwrap();
    std::fs::write(dir.join("answers.jsonl"), ANSWERS).unwrap();
    Fixture {
        home,
        dataset: dir.join("five.jsonl").display().to_string(),
        answerer: format!("scripted:{}", dir.join("answers.jsonl").display()),
    }
}

fn wilson(k: f64, n: f64) -> (f64, f64) {
    let z: f64 = 1.959_963_984_540_054;
    let p = k / n;
    let c = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let h = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (c - h, c + h)
}

#[test]
fn eval_run_show_history_compare() {
    let f = fixture("full");
    let out = alc(
        &f.home,
        &[
            "eval",
            "run",
            "--strategy",
            "cot",
            "--dataset",
            &f.dataset,
            "--answerer",
            &f.answerer,
            "--concurrency",
            "2",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let rep = one_json(&out);
    let agg = &rep["aggregated"];
    assert_eq!(agg["total"], 5);
    assert_eq!(agg["passed"], 4);
    assert_eq!(agg["failed"], 1);
    assert_eq!(agg["errored"], 0);
    assert_eq!(agg["pass_rate"], 0.8);
    let (lo, hi) = wilson(4.0, 5.0);
    assert!((agg["pass_rate_ci_95"][0].as_f64().unwrap() - lo).abs() < 1e-12);
    assert!((agg["pass_rate_ci_95"][1].as_f64().unwrap() - hi).abs() < 1e-12);
    assert_eq!(agg["scores"]["mean"], 0.8);
    assert_eq!(rep["scenario"], "five");
    assert_eq!(rep["usage"]["llm_calls"], 5);
    let id_a = rep["eval_id"].as_str().unwrap().to_string();
    assert!(id_a.starts_with("cot_"), "{id_a}");

    // Same dataset again, every answer right (the last rule fixed).
    let fixed = tmp_dir("full").join("fixed.jsonl");
    std::fs::write(&fixed, ANSWERS.replace("ANSWER: 12", "ANSWER: 13")).unwrap();
    let out = alc(
        &f.home,
        &[
            "eval",
            "run",
            "--strategy",
            "cot",
            "--dataset",
            &f.dataset,
            "--answerer",
            &format!("scripted:{}", fixed.display()),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let id_b = one_json(&out)["eval_id"].as_str().unwrap().to_string();
    assert_ne!(id_a, id_b);

    let out = alc(&f.home, &["eval", "history", "--json"]);
    let h = one_json(&out);
    assert_eq!(h["evals"][0]["eval_id"], id_b.as_str(), "newest first");
    assert_eq!(h["evals"][1]["eval_id"], id_a.as_str());

    let out = alc(&f.home, &["eval", "show", &id_a]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("pass rate  80.0% (4/5)"), "{table}");
    assert!(table.contains("sum") && table.contains("FAIL"), "{table}");

    let html = tmp_dir("full").join("report.html");
    let out = alc(
        &f.home,
        &["eval", "show", &id_a, "--html", html.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && page.contains("80.0% (4/5)"));

    let out = alc(&f.home, &["eval", "compare", &id_b, &id_a, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let c = one_json(&out);
    let cmp = &c["result"]["comparison"];
    assert!((cmp["delta_mean"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    assert_eq!(cmp["paired"]["wins"], 1);
    assert_eq!(cmp["paired"]["ties"], 4);
    assert_eq!(cmp["winner"], "none");
    assert!(cmp["summary"]
        .as_str()
        .unwrap()
        .contains("n = 5 cases vs 5 cases"));

    let out = alc(&f.home, &["eval", "compare", &id_b, &id_a]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("No significant difference"));

    let out = alc(&f.home, &["eval", "show", "cot_1"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("no eval with id 'cot_1'"));
}

#[test]
fn min_pass_rate_exits_8() {
    let f = fixture("minpass");
    let args = [
        "eval",
        "run",
        "--strategy",
        "cot",
        "--dataset",
        &f.dataset,
        "--answerer",
        &f.answerer,
    ];
    let mut strict = args.to_vec();
    strict.extend(["--min-pass-rate", "0.9"]);
    let out = alc(&f.home, &strict);
    assert_eq!(out.status.code(), Some(8), "stderr: {}", stderr(&out));
    assert_eq!(
        one_json(&out)["aggregated"]["pass_rate"],
        0.8,
        "the report is still printed"
    );
    assert!(stderr(&out).contains("below --min-pass-rate"));
    let mut lenient = args.to_vec();
    lenient.extend(["--min-pass-rate", "0.8"]);
    assert_eq!(alc(&f.home, &lenient).status.code(), Some(0));
}

#[test]
fn bad_inputs_give_clear_messages() {
    let f = fixture("bad");
    let dir = tmp_dir("bad");
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, format!("{DATASET}not json\n{{\"expected\":\"1\"}}\n")).unwrap();
    let base = |ds: &str| -> Vec<String> {
        [
            "eval",
            "run",
            "--strategy",
            "cot",
            "--dataset",
            ds,
            "--answerer",
            &f.answerer,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        alc(&f.home, &refs)
    };
    let out = run(base(bad.to_str().unwrap()));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("line 6: invalid JSON") && err.contains("line 7: missing `input`"),
        "{err}"
    );
    assert!(err.contains("--skip-bad"), "{err}");

    let mut skip = base(bad.to_str().unwrap());
    skip.push("--skip-bad".into());
    let out = run(skip);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("skipped dataset line 6"));
    assert_eq!(one_json(&out)["aggregated"]["total"], 5);

    let mut graders = base(&f.dataset);
    graders.extend(["--graders".into(), r#"[{"type":"bleu"}]"#.into()]);
    let out = run(graders);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown grader 'bleu'"),
        "{}",
        stderr(&out)
    );

    let out = run(base("/nonexistent/x.jsonl"));
    assert_eq!(out.status.code(), Some(4));

    let mut unknown = base(&f.dataset);
    unknown[3] = "no_such_strategy".into();
    let out = run(unknown);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("no_such_strategy"));

    // Two evals over different datasets: compare says there is nothing to pair.
    let other = dir.join("other.jsonl");
    std::fs::write(&other, "{\"id\":\"x1\",\"input\":\"What is 2+2?\",\"expected\":\"4\"}\n{\"id\":\"x2\",\"input\":\"What is 7-5?\",\"expected\":\"2\"}\n").unwrap();
    let a = one_json(&run(base(&f.dataset)))["eval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = one_json(&run(base(other.to_str().unwrap())))["eval_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = alc(&f.home, &["eval", "compare", &a, &b]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no cases in common"),
        "{}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("No shared cases"));
}

#[test]
fn lua_scenario_runs_without_evalframe() {
    let f = fixture("lua");
    let scen = tmp_dir("lua").join("tiny.lua");
    std::fs::write(&scen, "return { cases = { {input = 'What is 2+2?', expected = '4'}, {input = 'What is 9/3?', expected = '3'} }, graders = {'exact_match'} }").unwrap();
    let out = alc(
        &f.home,
        &[
            "eval",
            "run",
            "--strategy",
            "cot",
            "--scenario",
            scen.to_str().unwrap(),
            "--answerer",
            &f.answerer,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rep = one_json(&out);
    assert_eq!(rep["aggregated"]["pass_rate"], 1.0);
    assert_eq!(rep["scenario"], "tiny");
}
