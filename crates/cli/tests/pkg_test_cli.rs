//! `alc pkg test` as a subprocess, and every bundled strategy package run end to end
//! with `alc run <name> --answerer scripted:FILE` (library packages, which have no
//! `run`, are only tested through their specs).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn alc() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alc"));
    c.env_remove("ALC_ANSWERER");
    c.env_remove("ALC_PACKAGES_PATH");
    c.env("ALC_HOME", tmp_dir("home"));
    c.stdin(Stdio::null());
    c
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("alc-pkg-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn packages() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../packages")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `(passed, failed)` from the summary line, which must be the last line of stdout.
fn summary(stdout: &str) -> (usize, usize) {
    let last = stdout.trim_end().lines().last().unwrap_or("");
    let parts: Vec<&str> = last.split(' ').collect();
    assert!(
        parts.len() == 4 && parts[1] == "passed," && parts[3] == "failed",
        "summary line `N passed, N failed`, got {last:?}"
    );
    (parts[0].parse().unwrap(), parts[2].parse().unwrap())
}

fn write_package(root: &Path, name: &str, init: &str, specs: &[(&str, &str)]) {
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("spec")).unwrap();
    std::fs::write(dir.join("init.lua"), init).unwrap();
    for (file, body) in specs {
        std::fs::write(dir.join("spec").join(file), body).unwrap();
    }
}

const FIXTURE_INIT: &str = r#"local M = { meta = { name = "NAME", version = "0.1.0", description = "fixture", category = "test" } }
function M.run(ctx) ctx.result = alc.llm("real call: " .. tostring(ctx.task)); return ctx end
return M
"#;

#[test]
fn bundled_specs_all_pass() {
    let out = alc()
        .args(["pkg", "test", packages().to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let (passed, failed) = summary(&stdout);
    assert_eq!(failed, 0, "{stdout}");
    assert!(passed >= 40, "at least 40 tests, got {passed}: {stdout}");
    assert!(stdout.contains("cot/spec/cot_spec.lua: "), "{stdout}");
}

#[test]
fn a_failing_spec_exits_8() {
    let root = tmp_dir("failing");
    write_package(
        &root,
        "fixture_fail",
        &FIXTURE_INIT.replace("NAME", "fixture_fail"),
        &[(
            "fixture_fail_spec.lua",
            r#"local m = require("fixture_fail")
describe("fixture", function()
  it("passes", function() expect(m.meta.name).to.equal("fixture_fail") end)
  it("fails on purpose", function() expect(1 + 1).to.equal(3) end)
end)
"#,
        )],
    );
    let out = alc()
        .args(["pkg", "test", root.join("fixture_fail").to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(8),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(summary(&stdout), (1, 1), "{stdout}");
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(stdout.contains("fixture > fails on purpose"), "{stdout}");
    assert!(
        stdout.contains("fixture_fail/spec/fixture_fail_spec.lua:4: expected 2 to equal 3"),
        "message names the spec line: {stdout}"
    );
}

#[test]
fn a_spec_that_calls_the_real_llm_is_cancelled_and_fails() {
    let root = tmp_dir("pausing");
    write_package(
        &root,
        "fixture_pause",
        &FIXTURE_INIT.replace("NAME", "fixture_pause"),
        &[
            (
                "a_spec.lua",
                r#"local m = require("fixture_pause")
describe("pause", function()
  it("runs first", function() expect(true).to.be.truthy() end)
  it("forgets to mock", function() m.run({ task = "x" }) end)
  it("never runs", function() end)
end)
"#,
            ),
            (
                "b_spec.lua",
                r#"describe("next file", function()
  it("still runs in a fresh VM", function()
    expect(package.loaded["fixture_pause"]).to_not.exist()
    expect(lust).to.be.a("table")
  end)
end)
"#,
            ),
        ],
    );
    let out = alc()
        .args(["pkg", "test", root.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(8),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(summary(&stdout), (2, 1), "{stdout}");
    assert!(stdout.contains("FAIL pause > forgets to mock"), "{stdout}");
    assert!(stdout.contains("paused on a real host call"), "{stdout}");
    assert!(stdout.contains("real call: x"), "{stdout}");
}

#[test]
fn matchers_filter_and_json() {
    let root = tmp_dir("matchers");
    write_package(
        &root,
        "fixture_matchers",
        "return { meta = { name = 'fixture_matchers', version = '0.1.0' } }\n",
        &[(
            "m_spec.lua",
            r#"local calls = {}
describe("matchers", function()
  lust.before(function(name) calls[#calls + 1] = "before " .. name end)
  lust.after(function(name) calls[#calls + 1] = "after " .. name end)
  it("equal is deep, be is raw", function()
    expect({ a = { 1, 2 } }).to.equal({ a = { 1, 2 } })
    expect({}).to_not.be({})
    expect(0.1 + 0.2).to.equal(0.3, 1e-9)
  end)
  it("exist, truthy, a, have, match", function()
    expect(0).to.exist()
    expect(nil).to_not.exist()
    expect(0).to.be.truthy()
    expect(false).to_not.be.truthy()
    expect("s").to.be.a("string")
    expect({ 1, { x = 2 } }).to.have({ x = 2 })
    expect("abc123").to.match("%d+$")
    print("silenced")
  end)
  it("fail and fail.with", function()
    expect(function() error("boom here") end).to.fail()
    expect(function() error("boom here") end).to.fail.with("boom")
    expect(function() end).to_not.fail()
    expect(function() expect(1).to.be(2) end).to.fail.with("expected 1 to be 2")
  end)
  it("hooks ran around each test", function()
    expect(calls[1]).to.equal("before equal is deep, be is raw")
    expect(calls[2]).to.equal("after equal is deep, be is raw")
    expect(calls[#calls]).to.equal("before hooks ran around each test")
  end)
  describe("nested", function()
    it("globals are lust's", function()
      expect(describe).to.be(lust.describe)
      expect(it).to.be(lust.it)
      expect(expect).to.be(lust.expect)
    end)
  end)
end)
"#,
        )],
    );
    let out = alc()
        .args(["pkg", "test", root.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert_eq!(v["passed"], 5, "{v}");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(
        v["files"][0]["tests"][4]["name"],
        "matchers > nested > globals are lust's"
    );

    let out = alc()
        .args([
            "pkg",
            "test",
            root.to_str().unwrap(),
            "--filter",
            "fail.with",
        ])
        .output()
        .unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert_eq!(summary(&stdout), (1, 0), "{stdout}");
}

#[test]
fn unknown_target_exits_4() {
    let out = alc()
        .args(["pkg", "test", "no_such_package_anywhere"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let (_, stderr) = text(&out);
    assert!(stderr.starts_with("error:"), "{stderr}");
}

/// One scripted answer that satisfies every bundled package's parsers: tagged lines
/// for answers, scores, verdicts, winners, actions and a tiny CALC program.
const UNIVERSAL_ANSWER: &str = "1. Consider the facts.\n2. Compute the value.\nCALC x = 6 * 7\nRESULT x\nSCORE: 9\nVERDICT: CORRECT\nWINNER: A\nBETTER: 1\nSOUND: YES\nAction: FINISH[42]\nNO ISSUES\ncorrect: PASS\ncomplete: PASS\nclear: PASS\nDONE\nANSWER: 42";

fn run_package(name: &str) -> serde_json::Value {
    let answers = tmp_dir("answers").join(format!("{name}.jsonl"));
    std::fs::write(
        &answers,
        format!("{}\n", serde_json::json!({ "default": UNIVERSAL_ANSWER })),
    )
    .unwrap();
    let out = alc()
        .env("ALC_PACKAGES_PATH", packages())
        .args([
            "run",
            name,
            "--task",
            "What is 6 times 7?",
            "--answerer",
            &format!("scripted:{}", answers.display()),
            "--quiet",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: stdout: {stdout}\nstderr: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert_eq!(v["status"], "completed", "{name}: {v}");
    let result = &v["result"]["result"];
    assert!(!result.is_null(), "{name}: result.result is null: {v}");
    assert!(
        !result["answer"].is_null(),
        "{name}: result.result.answer is null: {v}"
    );
    v
}

macro_rules! e2e {
    ($($name:ident),* $(,)?) => {
        const E2E_PACKAGES: &[&str] = &[$(stringify!($name)),*];
        mod e2e {
            $(
                #[test]
                fn $name() {
                    super::run_package(stringify!($name));
                }
            )*
        }
    };
}

e2e!(
    analogical,
    calibrate,
    cod,
    cot,
    cove,
    critic_loop,
    debate,
    decompose,
    distill,
    dmad,
    ensemble_vote,
    factscore,
    least_to_most,
    maieutic,
    mcts,
    mcts_lite,
    moa,
    panel,
    plan_solve,
    pot,
    rank,
    react_lite,
    reflect,
    rephrase_respond,
    rerank,
    sc,
    self_refine,
    socratic,
    sot,
    step_back,
    tot,
    triad,
    ucb,
    verify,
);

/// Whether a bundled package is a library: no `M.run`, `category = "library"` in its
/// meta (the two must agree). Libraries are `require`d by strategies, not run.
fn is_library(name: &str, init: &str) -> bool {
    let has_run = init.contains("function M.run(") || init.contains("M.run =");
    let library = init.contains("category = \"library\"");
    assert_eq!(
        has_run, !library,
        "{name}: a package without `M.run` must be `category = \"library\"`, and vice versa"
    );
    library
}

#[test]
fn every_bundled_package_has_an_end_to_end_test_and_a_spec() {
    let mut names: Vec<String> = std::fs::read_dir(packages())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("init.lua").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let readme = std::fs::read_to_string(packages().join("README.md")).unwrap();
    let mut runnable = Vec::new();
    for n in &names {
        let spec = packages()
            .join(n)
            .join("spec")
            .join(format!("{n}_spec.lua"));
        assert!(spec.is_file(), "{n} has spec/{n}_spec.lua");
        let init = std::fs::read_to_string(packages().join(n).join("init.lua")).unwrap();
        assert!(
            init.contains(&format!("name = \"{n}\"")),
            "{n}: meta.name equals the directory"
        );
        assert!(init.contains("version = \"0.1.0\""), "{n}: version");
        assert!(readme.contains(&format!("`{n}`")), "README lists {n}");
        if is_library(n, &init) {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{n}` |")))
                .unwrap_or_else(|| panic!("README has a table row for {n}"));
            assert!(
                row.contains("| library |"),
                "README marks {n} as a library: {row}"
            );
        } else {
            runnable.push(n.clone());
        }
    }
    let listed: Vec<String> = E2E_PACKAGES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        runnable, listed,
        "update the e2e! list (strategies, not libraries)"
    );
    assert!(runnable.len() >= 20, "{} strategies", runnable.len());
}

#[test]
fn package_runs_are_deterministic() {
    let a = run_package("mcts_lite");
    let b = run_package("mcts_lite");
    assert_eq!(a["result"]["result"], b["result"]["result"]);
}

/// `alc run NAME --ctx CTX` with every prompt answered by [`UNIVERSAL_ANSWER`]; the
/// session must complete. Returns `result.result`.
fn run_package_with_ctx(name: &str, ctx: serde_json::Value) -> serde_json::Value {
    let answers = tmp_dir("answers").join(format!("{name}-ctx.jsonl"));
    std::fs::write(
        &answers,
        format!("{}\n", serde_json::json!({ "default": UNIVERSAL_ANSWER })),
    )
    .unwrap();
    let out = alc()
        .env("ALC_PACKAGES_PATH", packages())
        .args([
            "run",
            name,
            "--ctx",
            &ctx.to_string(),
            "--answerer",
            &format!("scripted:{}", answers.display()),
            "--quiet",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name}: stdout: {stdout}\nstderr: {stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert_eq!(v["status"], "completed", "{name}: {v}");
    v["result"]["result"].clone()
}

/// Checks that `result` has each field with the given JSON type: `s` string, `n`
/// number, `b` boolean, `a` array, `o` object.
fn assert_fields(name: &str, result: &serde_json::Value, fields: &[(&str, char)]) {
    for (field, kind) in fields {
        let v = &result[*field];
        let ok = match kind {
            's' => v.is_string(),
            'n' => v.is_number(),
            'b' => v.is_boolean(),
            'a' => v.is_array(),
            'o' => v.is_object(),
            _ => unreachable!("kind {kind}"),
        };
        assert!(
            ok,
            "{name}: result.{field} should be of kind {kind}: {result}"
        );
    }
}

/// The result fields that callers of the reference packages of the same names read,
/// with their JSON types, from an end-to-end run with the default inputs.
#[test]
fn reference_result_fields_of_reasoning_packages() {
    let expect: &[(&str, &[(&str, char)])] = &[
        (
            "cot",
            &[("answer", 's'), ("chain", 'a'), ("conclusion", 's')],
        ),
        (
            "sc",
            &[
                ("answer", 's'),
                ("answer_norm", 's'),
                ("consensus", 's'),
                ("paths", 'a'),
                ("votes", 'a'),
                ("vote_counts", 'o'),
                ("n_sampled", 'n'),
                ("total_llm_calls", 'n'),
            ],
        ),
        (
            "reflect",
            &[
                ("answer", 's'),
                ("output", 's'),
                ("rounds", 'a'),
                ("total_rounds", 'n'),
                ("converged", 'b'),
            ],
        ),
        (
            "panel",
            &[("answer", 's'), ("arguments", 'a'), ("synthesis", 's')],
        ),
        (
            "tot",
            &[
                ("answer", 's'),
                ("conclusion", 's'),
                ("best_path", 'a'),
                ("best_score", 'n'),
                ("explored_paths", 'a'),
                ("tree_stats", 'o'),
            ],
        ),
        (
            "decompose",
            &[
                ("answer", 's'),
                ("subtasks", 'a'),
                ("subtask_results", 'a'),
                ("decomposition_raw", 's'),
            ],
        ),
        (
            "maieutic",
            &[
                ("answer", 's'),
                ("verdict", 's'),
                ("synthesis", 's'),
                ("tree", 'o'),
                ("evidence", 'o'),
                ("consistency", 'o'),
            ],
        ),
        (
            "step_back",
            &[
                ("answer", 's'),
                ("abstractions", 'a'),
                ("verification", 's'),
                ("verified", 'b'),
                ("revised", 'b'),
            ],
        ),
    ];
    for (name, fields) in expect {
        let v = run_package(name);
        assert_fields(name, &v["result"]["result"], fields);
    }
}

/// The reference packages' own input names, passed through `--ctx`, shape the run.
#[test]
fn reference_inputs_of_reasoning_packages() {
    use serde_json::json;
    let task = "What is 6 times 7?";

    let r = run_package_with_ctx("cot", json!({"task": task, "depth": 2, "iterative": true}));
    assert_eq!(r["chain"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["total_llm_calls"], 3, "{r}");

    let r = run_package_with_ctx("sc", json!({"task": task, "n": 3}));
    assert_eq!(r["n_sampled"], 3, "{r}");
    assert_eq!(r["vote_counts"]["42"], 3, "{r}");
    assert_eq!(r["answer"], "42", "{r}");

    let r = run_package_with_ctx(
        "reflect",
        json!({"task": task, "initial_draft": "draft", "max_rounds": 2, "stop_when": "no_issues"}),
    );
    // the scripted critique says NO ISSUES, so the first round converges on the given draft
    assert_eq!(r["output"], "draft", "{r}");
    assert_eq!(r["total_rounds"], 1, "{r}");
    assert_eq!(r["converged"], true, "{r}");

    let r = run_package_with_ctx(
        "panel",
        json!({"task": task, "roles": ["optimist", "skeptic"]}),
    );
    assert_eq!(r["arguments"][1]["role"], "skeptic", "{r}");
    assert_eq!(r["arguments"].as_array().unwrap().len(), 2, "{r}");

    let r = run_package_with_ctx(
        "tot",
        json!({"task": task, "breadth": 2, "depth": 2, "beam_width": 1}),
    );
    assert_eq!(
        r["tree_stats"],
        json!({"depth": 2, "breadth": 2, "beam_width": 1}),
        "{r}"
    );
    assert_eq!(r["explored_paths"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["best_path"].as_array().unwrap().len(), 2, "{r}");

    let r = run_package_with_ctx("decompose", json!({"task": task, "max_subtasks": 1}));
    assert_eq!(r["subtasks"], json!(["Consider the facts."]), "{r}");

    let r = run_package_with_ctx(
        "maieutic",
        json!({"proposition": "6 times 7 is 42.", "max_depth": 1}),
    );
    // the scripted judgement names no relation, so both explanations count as independent
    assert_eq!(
        r["consistency"],
        json!({"consistent": 0, "contradictory": 0, "independent": 2}),
        "{r}"
    );
    assert_eq!(r["tree"]["proposition"], "6 times 7 is 42.", "{r}");

    let r = run_package_with_ctx(
        "step_back",
        json!({"task": task, "abstraction_levels": 2, "domain_hint": "arithmetic"}),
    );
    assert_eq!(r["abstractions"].as_array().unwrap().len(), 2, "{r}");
    assert_eq!(r["abstractions"][1]["level"], 2, "{r}");

    // a budget smaller than the run trims it instead of failing it
    let r = run_package_with_ctx(
        "sc",
        json!({"task": task, "n": 5, "budget": {"max_llm_calls": 2}}),
    );
    assert_eq!(r["n_sampled"], 2, "{r}");
    assert_eq!(r["budget_limited"], true, "{r}");
}
