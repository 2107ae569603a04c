//! Layer-1 combinators, `pipe` and `eval` (lua-api.md §2.11–§2.13; checklist items 64,
//! 90–102, 132).
mod common;
use std::sync::Arc;

use alc_core::{PendingQuery, QueryRequest, Terminal};
use alc_engine::PackageRoots;
use common::*;
use serde_json::json;

const PRE: &str = r#"
local function N(x) if x == nil then return alc.json_null end return x end
local function E(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "call was expected to fail")
  return e
end
"#;

async fn run(code: &str) -> (Terminal, Vec<Vec<PendingQuery>>) {
    let e = engine();
    run_code(&e, &format!("{PRE}\n{code}")).await
}

async fn val(code: &str) -> serde_json::Value {
    completed(&run(code).await.0)
}

/// `(level, source, message)` of every log entry at `warn`.
fn warns(t: &Terminal) -> Vec<(String, String)> {
    t.metrics
        .recent_logs
        .iter()
        .filter(|l| l.level == "warn")
        .map(|l| (l.source.clone(), l.message.clone()))
        .collect()
}

fn llm(q: &PendingQuery) -> &alc_core::LlmQuery {
    match &q.request {
        QueryRequest::Llm { query } => query,
        other => panic!("expected an llm query, got {other:?}"),
    }
}

#[tokio::test]
async fn item064_ground_specify_and_late_lookup() {
    let (t, pauses) = run(r#"
        local a = alc.specify("p")
        local b = alc.ground("p", {max_tokens = 9})
        return {a, b}"#)
    .await;
    assert_eq!(completed(&t), json!(["A1", "A2"]));
    assert_eq!(pauses.len(), 2);
    let q1 = llm(&pauses[0][0]);
    assert!(q1.underspecified && !q1.grounded);
    let q2 = llm(&pauses[1][0]);
    assert!(q2.grounded && !q2.underspecified);
    assert_eq!(q2.max_tokens, 9);

    let (t, pauses) = run(r#"
        alc.llm = function(p, o) return "X" end
        local t, raw = alc.llm_json("j")
        return {alc.specify("p"), alc.ground("p"), alc.cache("p"), alc.llm_safe("p"), N(t), raw}"#)
    .await;
    assert_eq!(completed(&t), json!(["X", "X", "X", "X", null, "X"]));
    assert!(pauses.is_empty());
}

#[tokio::test]
async fn item090_map() {
    let v = val(r#"return {
        alc.map({1,2,3}, function(x, i) return x * 10 + i end),
        alc.json_encode(alc.map({}, function() end)),
        E(alc.map, nil, function() end),
        E(alc.map, {}, 5),
    }"#)
    .await;
    assert_eq!(
        v,
        json!([
            [11, 22, 33],
            "[]",
            "alc.map: bad argument #1 'items' (table expected, got nil)",
            "alc.map: bad argument #2 'fn' (function expected, got number)"
        ])
    );
}

#[tokio::test]
async fn item091_reduce_filter() {
    let v = val(r#"
        local add = function(a, b) return a + b end
        local seen = {}
        local r2 = alc.reduce({10,20,30}, function(a, b, i) seen[#seen + 1] = i; return a + b end)
        return { alc.reduce({1,2,3}, add, 0), r2, seen, N(alc.reduce({}, add)),
          alc.filter({5,3,8,1,9}, function(x) return x > 4 end) }"#)
    .await;
    assert_eq!(v, json!([6, 60, [2, 3], null, [5, 8, 9]]));
}

#[tokio::test]
async fn item092_vote() {
    let v = val(r#"return {
        alc.vote({"yes","yes","no","yes"}), alc.vote({"a","b","a","b"}).winner,
        alc.vote({1,1,2}).winner, alc.vote({}), alc.vote({" x ", "x", "y"}),
    }"#)
    .await;
    assert_eq!(
        v,
        json!([
            {"winner": "yes", "count": 3, "total": 4},
            "a",
            "1",
            {"count": 0, "total": 0},
            {"winner": "x", "count": 2, "total": 3}
        ])
    );
}

#[tokio::test]
async fn item093_094_tuning() {
    let (t, _) = run(r#"
        local r = alc.tuning({exponents={alpha=1, beta=1}, gates={1,2}, _schema={}},
          {exponents={alpha=2.5}, gates={9}, extra=1})
        return { r, alc.tuning({a=true}, {a=false}).a,
          alc.tuning({k=1}, {biz={k=2}, k=3}, {prefix="biz"}).k,
          alc.tuning({k=1}, {biz=5, k=3}, {prefix="biz"}),
          alc.tuning({k=1}, nil).k, alc.tuning(7, {}) }"#)
    .await;
    assert_eq!(
        completed(&t),
        json!([{"exponents": {"alpha": 2.5, "beta": 1}, "gates": [9]}, false, 2, {"k": 1}, 1, 7])
    );
    let w = warns(&t);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].0, "alc.tuning");
}

#[tokio::test]
async fn item095_parallel() {
    let (t, pauses) = run(r#"
        return alc.parallel({"a","b"}, function(x) return "P:" .. x end, {system="sys",
          max_tokens=5, temperature=0.5, post_fn = function(r, item, i) return i .. ":" .. r end})"#)
    .await;
    assert_eq!(completed(&t), json!(["1:A1", "2:A2"]));
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].len(), 2);
    for (q, p) in pauses[0].iter().zip(["P:a", "P:b"]) {
        let q = llm(q);
        assert_eq!(q.prompt, p);
        assert_eq!(q.system.as_deref(), Some("sys"));
        assert_eq!(q.max_tokens, 5);
        assert_eq!(q.temperature, Some(0.5));
    }
}

#[tokio::test]
async fn item096_parallel_errors() {
    let v = val(r#"return {
        E(alc.parallel, {}, function() end),
        E(alc.parallel, {"a"}, "x"),
        E(alc.parallel, {"a"}, function() return 42 end),
        E(alc.parallel, {"a"}, function() return {system = "s"} end),
    }"#)
    .await;
    assert_eq!(
        v,
        json!([
            "alc.parallel: items must be a non-empty array",
            "alc.parallel: prompt_fn must be a function",
            "alc.parallel: prompt_fn must return string or table, got number at index 1",
            "alc.parallel: prompt_fn returned table without .prompt at index 1"
        ])
    );
}

#[tokio::test]
async fn item097_cache() {
    let (t, pauses) = run(r#"
        local a = alc.cache("same")
        local b = alc.cache("same")
        local info = alc.cache_info()
        alc.cache_clear()
        local cleared = alc.cache_info()
        local c = alc.cache("p", {cache_skip = true})
        local d = alc.cache("p", {cache_skip = true})
        return {a, b, info, cleared, c, d, alc.cache_info().entries}"#)
    .await;
    assert_eq!(
        completed(&t),
        json!([
            "A1", "A1",
            {"entries": 1, "hits": 1, "misses": 1, "max_entries": 256},
            {"entries": 0, "hits": 0, "misses": 0, "max_entries": 256},
            "A2", "A3", 0
        ])
    );
    assert_eq!(pauses.len(), 3);

    let (t, pauses) = run(r#"return {alc.cache("same"), alc.cache("  SAME ")}"#).await;
    assert_eq!(completed(&t), json!(["A1", "A2"]));
    assert_eq!(pauses.len(), 2);
}

#[tokio::test]
async fn item098_llm_safe_budget() {
    let e = engine();
    let (t, pauses) = run_code_ctx(
        &e,
        r#"return alc.llm_safe("p", {}, "fallback")"#,
        json!({"budget": {"max_llm_calls": 0}}),
    )
    .await;
    assert_eq!(completed(&t), json!("fallback"));
    assert!(pauses.is_empty());
    let w = warns(&t);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].1.starts_with("alc.llm_safe: budget_exceeded"), "{w:?}");
}

#[tokio::test]
async fn item099_llm_json() {
    let e = engine();
    let id = e
        .spawn(code_spec(
            r#"local t, raw = alc.llm_json("give json"); return {t, raw}"#,
            json!({}),
        ))
        .await
        .unwrap();
    let mut n = 0;
    let (t, pauses) = drive(&e, &id, |_| {
        n += 1;
        alc_core::Answer::text(None, if n == 1 { "not json" } else { r#"{"x":1}"# })
    })
    .await;
    assert_eq!(completed(&t), json!([{"x": 1}, r#"{"x":1}"#]));
    assert_eq!(pauses.len(), 2);
    assert_eq!(warns(&t).len(), 1);
    let q2 = llm(&pauses[1][0]);
    assert!(q2.system.is_some());
    assert!(q2.prompt.contains("not json") && q2.prompt.contains("give json"));

    let (t, pauses) = run(r#"local t, raw = alc.llm_json("give json"); return {N(t), raw}"#).await;
    assert_eq!(completed(&t), json!([null, "A2"]));
    assert_eq!(pauses.len(), 2);
    assert_eq!(warns(&t).len(), 2);
}

fn pipe_engine() -> alc_engine::Engine {
    let mods = PackageRoots::default()
        .with_memory_file(
            "s_a",
            "init.lua",
            "return { run = function(c) c.result = {from = 'a', task = c.task}; return c end }",
        )
        .with_memory_file("s_norun", "init.lua", "return {}");
    engine_with(2, Arc::new(mods))
}

#[tokio::test]
async fn item100_pipe() {
    let e = pipe_engine();
    let (t, _) = run_code(
        &e,
        r#"
        local seen
        local r = alc.pipe({"s_a", function(c) seen = c.task; c.result = {x = c.task}; return c end},
          {task = "T"})
        local first = r.pipe_history[1].result
        return { seen == alc.json_encode(first), #r.pipe_history, r.pipe_history[1].strategy,
          r.pipe_history[2].strategy, r.result.x == seen }"#,
    )
    .await;
    assert_eq!(completed(&t), json!([true, 2, "s_a", "(inline-2)", true]));

    let (t, _) = run_code(
        &e,
        &format!(
            "{PRE}\nreturn {{ E(alc.pipe, {{}}, {{}}), E(alc.pipe, {{'s_a'}}, 5), \
             E(alc.pipe, {{'s_norun'}}, {{}}), E(alc.pipe, {{function() return 1 end}}, {{}}) }}"
        ),
    )
    .await;
    assert_eq!(
        completed(&t),
        json!([
            "alc.pipe: strategies must be a non-empty array",
            "alc.pipe: ctx must be a table",
            "alc.pipe: strategy 's_norun' has no run function",
            "alc.pipe: stage 1 ('(inline-1)') must return a table, got number"
        ])
    );
}

#[tokio::test]
async fn item101_pipe_on_error() {
    let code = |mode: &str| {
        format!(
            r#"
        local stages = {{
          function(c) c.result = c.task .. "1"; return c end,
          function(c) error("stage two broke", 0) end,
          function(c) c.result = c.task .. "2"; return c end,
        }}
        local ok, r = pcall(alc.pipe, stages, {{task = "a"}}, {mode})
        if not ok then return {{"error", r}} end
        local errs = 0
        for _, h in ipairs(r.pipe_history) do if h.error then errs = errs + 1 end end
        return {{r.result, errs, r.pipe_history[2].error, #r.pipe_history}}"#
        )
    };
    let (t, _) = run(&code(r#"{on_error = "skip"}"#)).await;
    assert_eq!(completed(&t), json!(["a12", 1, "stage two broke", 3]));
    assert_eq!(warns(&t).len(), 1);
    let (t, _) = run(&code(r#"{on_error = "continue"}"#)).await;
    assert_eq!(completed(&t), json!(["a12", 1, "stage two broke", 3]));
    let (t, _) = run(&code("nil")).await;
    assert_eq!(completed(&t), json!(["error", "stage two broke"]));
}

#[tokio::test]
async fn item102_eval_errors() {
    let v = val(r#"return {
        E(alc.eval, nil, "cot"), E(alc.eval, {cases = {}}, 123), E(alc.eval, {cases = {}}, "cot"),
    }"#)
    .await;
    assert_eq!(
        v,
        json!([
            "alc.eval: scenario is required",
            "alc.eval: strategy must be a string package name",
            "alc.eval: evalframe is not installed"
        ])
    );
}

#[tokio::test]
async fn item132_callback_error_identity() {
    let v = val(r#"
        local t = {}
        local ok, e = pcall(alc.map, {1}, function() error(t) end)
        local ok2, e2 = pcall(alc.parallel, {1}, function() error(t) end)
        return {ok, e == t, ok2, e2 == t}"#)
    .await;
    assert_eq!(v, json!([false, true, false, true]));
}

#[tokio::test]
async fn combinators_yield_through_callbacks() {
    let (t, pauses) = run(r#"
        local r = alc.map({"x", "y"}, function(s) return alc.llm(s) end)
        local f = alc.filter({"p"}, function(s) return alc.llm(s) == "A3" end)
        return {r, f}"#)
    .await;
    assert_eq!(completed(&t), json!([["A1", "A2"], ["p"]]));
    assert_eq!(pauses.len(), 3);
}
