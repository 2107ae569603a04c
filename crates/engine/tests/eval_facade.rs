//! `alc.eval` (lua-api.md §2.13; checklist item 102): argument errors, the missing
//! `evalframe` package, scenario resolution through `require`, graders, the strategy run on
//! every case inside the session, and `auto_card`.
//!
//! `evalframe` itself is an external package; these tests install a small stand-in written
//! for them (`FAKE_EVALFRAME`) with the part of its public API the facade uses: `suite`,
//! `case`, `bind`, `graders`, `providers` and the report's `to_table`.
mod common;
use common::*;

use std::sync::Arc;

use alc_core::{BudgetLimits, EngineConfig};
use alc_engine::{CardStore, Engine, HostServices, ManualClock, MemoryCardStore, PackageRoots};
use serde_json::json;

/// A stand-in for `evalframe`: exact-match and contains graders, cases and bindings marked
/// by metatables, a suite that calls its provider per case and aggregates pass rates.
const FAKE_EVALFRAME: &str = r#"
local std = require("evalframe.std")
local M = {}
local CASE, BIND = {}, {}
M.case = setmetatable({ is_case = function(v) return getmetatable(v) == CASE end }, {
  __call = function(_, spec)
    local c = { input = spec.input, expected = spec.expected, tags = spec.tags or {} }
    return setmetatable(c, CASE)
  end,
})
M.bind = setmetatable({ is_binding = function(v) return getmetatable(v) == BIND end }, {
  __call = function(_, list) return setmetatable({ grader = list[1] }, BIND) end,
})
M.graders = {
  exact_match = { name = "exact_match", check = function(text, case) return text == case.expected end },
  contains = { name = "contains", check = function(text, case)
    return text:find(case.expected, 1, true) ~= nil end },
}
M.providers = {}
function M.suite(name)
  return function(spec)
    return { run = function()
      local results, passed, sum = {}, 0, 0
      for i, c in ipairs(spec.cases) do
        local resp = spec.provider(c.input)
        local ok = true
        for _, b in ipairs(spec) do ok = ok and b.grader.check(resp.text, c) end
        if ok then passed = passed + 1; sum = sum + 1 end
        results[i] = { input = c.input, text = resp.text, passed = ok, score = ok and 1 or 0 }
      end
      local n = #results
      local agg = { total = n, passed = passed, pass_rate = passed / n,
        scores = { mean = sum / n } }
      return { to_table = function()
        return { name = name, results = results, aggregated = agg, t = std.time() > 0,
          json = std.json.encode({ 1 }) }
      end }
    end }
  end
end
return M
"#;

/// A strategy asking the model once per case.
const ASK: &str = r#"
return { run = function(ctx) ctx.result = alc.llm("Q: " .. ctx.task .. (ctx.suffix or "")) return ctx end }
"#;

fn config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        default_budget: BudgetLimits::default(),
        ..EngineConfig::default()
    }
}

fn eng(roots: PackageRoots, cards: Arc<dyn CardStore>) -> Engine {
    let services = HostServices {
        modules: Arc::new(roots),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        cards,
        ..HostServices::default()
    };
    Engine::start_blocking(config(), services).expect("engine starts")
}

fn with_evalframe() -> PackageRoots {
    PackageRoots::default()
        .with_memory_file("evalframe", "init.lua", FAKE_EVALFRAME)
        .with_memory_file("ask", "init.lua", ASK)
        .with_memory_file(
            "scenarios",
            "arith.lua",
            r#"return { name = "arith", cases = { { input = "1+1", expected = "A1" } } }"#,
        )
        .with_memory_file("scenarios", "bad.lua", "return 42")
}

const ERR: &str = r#"
local function E(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "call was expected to fail")
  return e
end
"#;

#[tokio::test]
async fn item102_argument_errors_and_missing_evalframe() {
    let e = eng(
        PackageRoots::default().with_memory_file("ask", "init.lua", ASK),
        Arc::new(MemoryCardStore::new()),
    );
    let (t, pauses) = run_code(
        &e,
        &format!(
            r#"{ERR}
        return {{ E(alc.eval, nil, "cot"), E(alc.eval, {{cases = {{}}}}, 123),
          E(alc.eval, {{cases = {{}}}}, "ask"), E(alc.eval, {{cases = {{}}}}, "ask", 5) }}"#
        ),
    )
    .await;
    assert!(pauses.is_empty());
    assert_eq!(
        completed(&t),
        json!([
            "alc.eval: scenario is required",
            "alc.eval: strategy must be a string package name",
            "alc.eval: evalframe is not installed",
            "alc.eval: bad argument #3 'opts' (table expected, got number)",
        ])
    );
}

#[tokio::test]
async fn eval_runs_the_strategy_on_each_case_and_grades_it() {
    let e = eng(with_evalframe(), Arc::new(MemoryCardStore::new()));
    let (t, pauses) = run_code(
        &e,
        r#"
        local r = alc.eval({ cases = { { input = "a", expected = "A1" }, { input = "b", expected = "x" } },
          graders = { "exact_match" } }, "ask", { strategy_opts = { suffix = "?" } })
        return { r.name, r.aggregated.pass_rate, r.results[1].text, r.results[2].passed, r.t, r.json,
          r.card_id == nil }"#,
    )
    .await;
    assert_eq!(
        completed(&t),
        json!(["ask:inline", 0.5, "A1", false, true, "[1]", true])
    );
    // One pause per case, each carrying the strategy's prompt with its options.
    let prompts: Vec<String> = pauses.iter().map(|p| prompt_of(&p[0])).collect();
    assert_eq!(prompts, vec!["Q: a?", "Q: b?"]);
}

#[tokio::test]
async fn eval_resolves_scenarios_through_require() {
    let e = eng(with_evalframe(), Arc::new(MemoryCardStore::new()));
    let (t, _) = run_code(
        &e,
        &format!(
            r#"{ERR}
        local r = alc.eval("arith", "ask")
        return {{ r.name, r.aggregated.passed,
          E(alc.eval, "nope", "ask"),
          E(alc.eval, "bad", "ask"),
          E(alc.eval, {{ cases = {{ {{ input = "x" }} }}, graders = {{ "fuzzy" }} }}, "ask"),
          E(alc.eval, {{ cases = {{ {{ expected = "x" }} }} }}, "ask") }}"#
        ),
    )
    .await;
    assert_eq!(
        completed(&t),
        json!([
            "ask:arith",
            1,
            "alc.eval: could not resolve scenario 'nope'",
            "alc.eval: scenario 'bad' resolved to number, expected table",
            "alc.eval: unknown grader 'fuzzy'",
            "alc.eval: case 1 must have an 'input' field",
        ])
    );
}

#[tokio::test]
async fn eval_auto_card_records_stats_and_samples() {
    let cards: Arc<dyn CardStore> = Arc::new(MemoryCardStore::new());
    let e = eng(with_evalframe(), cards.clone());
    let (t, _) = run_code(
        &e,
        r#"
        local r = alc.eval({ name = "two", cases = { { input = "a", expected = "A1" },
          { input = "b", expected = "A2" } }, graders = { "contains" } }, "ask",
          { auto_card = true, card_pkg = "evals" })
        local c = alc.card.get(r.card_id)
        local rows = alc.card.read_samples(r.card_id)
        return { r.card_id:match("^evals_model_20231114T221320_%x+$") ~= nil, c.pkg.name,
          c.scenario.name, c.stats.pass_rate, c.stats.n, c.stats.passed, c.stats.mean_score,
          #rows, rows[2].text }"#,
    )
    .await;
    assert_eq!(
        completed(&t),
        json!([true, "evals", "two", 1.0, 2, 2, 1.0, 2, "A2"])
    );
    assert_eq!(cards.list(Some("evals")).unwrap().len(), 1);
}
