//! `alc` text helpers, `alc.math`, `alc.env` and the `alc` key set (lua-api.md §2.3, §2.7,
//! §2.10; checklist items 79–89, 118–121, 125, 131, 134).
mod common;
use common::*;
use serde_json::json;

/// Prelude of every script: `N(x)` maps `nil` to `json_null`, `E(f, ...)` returns the
/// error of a call that must fail.
const PRE: &str = r#"
local function N(x) if x == nil then return alc.json_null end return x end
local function E(f, ...)
  local ok, e = pcall(f, ...)
  assert(not ok, "call was expected to fail")
  assert(type(e) == "string", "error is not a string")
  return e
end
"#;

async fn val(code: &str) -> serde_json::Value {
    let e = engine();
    let (t, pauses) = run_code(&e, &format!("{PRE}\n{code}")).await;
    assert!(pauses.is_empty(), "no pause expected");
    completed(&t)
}

async fn val_ctx(code: &str, ctx: serde_json::Value) -> serde_json::Value {
    let e = engine();
    let (t, _) = run_code_ctx(&e, &format!("{PRE}\n{code}"), ctx).await;
    completed(&t)
}

#[tokio::test]
async fn item079_081_chunk_lines() {
    let v = val(r#"return {
        alc.chunk("a\nb\nc", {size=2}),
        alc.chunk("a\nb\nc\nd\ne", {size=3, overlap=1}),
        alc.chunk("a\nb\nc", {size=2, overlap=5}),
        alc.chunk("a\r\nb\r\nc", {size=2}),
        alc.chunk("a\nb\n", {size=1}),
        alc.chunk("a\n\nb", {size=1}),
    }"#)
    .await;
    assert_eq!(
        v,
        json!([
            ["a\nb", "c"],
            ["a\nb\nc", "c\nd\ne"],
            ["a\nb", "b\nc"],
            ["a\nb", "c"],
            ["a", "b"],
            ["a", "", "b"]
        ])
    );
}

#[tokio::test]
async fn item080_chunk_chars() {
    let v = val(r#"return {
        alc.chunk("abcdef", {mode="chars", size=4, overlap=2}),
        alc.chunk("あいうえお", {mode="chars", size=2}),
    }"#)
    .await;
    assert_eq!(v, json!([["abcd", "cdef"], ["あい", "うえ", "お"]]));
}

#[tokio::test]
async fn item082_chunk_empty_and_errors() {
    let v = val(r#"return {
        alc.json_encode(alc.chunk("")),
        alc.json_encode(alc.chunk("a", {size=0})),
        E(alc.chunk, "a", {mode="words"}),
        E(alc.chunk, "a", {size=-1}),
        E(alc.chunk, "a", {overlap=1.5}),
        E(alc.chunk, {}),
    }"#)
    .await;
    assert_eq!(
        v,
        json!([
            "[]",
            "[]",
            "alc.chunk: opts.mode must be \"lines\" or \"chars\"",
            "alc.chunk: opts.size must be a non-negative integer",
            "alc.chunk: opts.overlap must be a non-negative integer",
            "alc.chunk: bad argument #1 'text' (string expected, got table)"
        ])
    );
}

#[tokio::test]
async fn item083_084_match_enum() {
    let v = val(r#"return {
        N(alc.match_enum("Verdict: BLOCKED. Fix the issues.", {"PASS","BLOCKED"})),
        N(alc.match_enum("Initially BLOCKED, but after review: PASS", {"PASS","BLOCKED"})),
        N(alc.match_enum("PASS or PASSED", {"PASSED","PASS"})),
        N(alc.match_enum("BLOKED", {"PASS","BLOCKED"})),
        N(alc.match_enum("The weather is nice today", {"PASS","BLOCKED"})),
        N(alc.match_enum("anything", {"", "X"})),
        N(alc.match_enum("anything", {})),
    }"#)
    .await;
    assert_eq!(
        v,
        json!(["BLOCKED", "PASS", "PASSED", "BLOCKED", null, null, null])
    );
}

#[tokio::test]
async fn item085_match_bool() {
    let v = val(r#"
        local cases = {"Approved. The plan looks good.", "rejected: missing tests",
          "I need more information", "No issues found. Approved.", "Not ok", "yes\nno",
          "no_issues", "The process failed gracefully", "We need to bypass the filter", ""}
        local out = {}
        for i, c in ipairs(cases) do out[i] = N(alc.match_bool(c)) end
        return out"#)
    .await;
    assert_eq!(
        v,
        json!([true, false, null, true, true, false, false, null, null, null])
    );
}

#[tokio::test]
async fn item086_parse_score() {
    let v = val(r#"return {
        alc.parse_score("score 0"), alc.parse_score("99/100"), alc.parse_score("7.9"),
        alc.parse_score("none"), alc.parse_score("none", 3), alc.parse_score(nil),
        math.type(alc.parse_score("8")),
    }"#)
    .await;
    assert_eq!(v, json!([1, 10, 7, 5, 3, 5, "integer"]));
}

#[tokio::test]
async fn item087_parse_number() {
    let v = val(r#"return {
        N(alc.parse_number("Found 3 subtasks")), N(alc.parse_number("Score: 7.5/10")),
        N(alc.parse_number("Temperature: -5 degrees")), N(alc.parse_number("1.2.3")),
        N(alc.parse_number("-.5")), N(alc.parse_number("Created 3 subtasks", "(%d+)%s+subtask")),
        N(alc.parse_number(42)), N(alc.parse_number("none")), math.type(alc.parse_number("3.")),
    }"#)
    .await;
    assert_eq!(v, json!([3, 7.5, -5, 1.2, 5, 3, null, null, "float"]));
}

#[tokio::test]
async fn item088_json_extract() {
    let v = val(r#"return {
        N(alc.json_extract('{"a": 1}')),
        N(alc.json_extract('Here:\n```json\n{"f": [1, 2]}\n```\nDone')),
        N(alc.json_extract('The answer is {"b": 3} as shown.')),
        N(alc.json_extract('Result: [1, 2, 3].')),
        N(alc.json_extract('text {not json} then {"real": true} end')),
        N(alc.json_extract('"just a string"')), N(alc.json_extract(42)), N(alc.json_extract("")),
    }"#)
    .await;
    assert_eq!(
        v,
        json!([{"a": 1}, {"f": [1, 2]}, {"b": 3}, [1, 2, 3], {"real": true}, null, null, null])
    );
}

#[tokio::test]
async fn item089_fingerprint() {
    let v = val(r#"return {
        alc.fingerprint("hello"), alc.fingerprint(""), alc.fingerprint("  Fix  the\tLogin   Bug"),
        alc.fingerprint("fix the login bug"), alc.fingerprint(42) == alc.fingerprint("42"),
    }"#)
    .await;
    assert_eq!(
        v,
        json!(["0f923099", "00001505", "70af5a24", "70af5a24", true])
    );
}

#[tokio::test]
async fn item118_rng_float_parity() {
    let v = val(r#"
        local r = alc.math.rng_create(42)
        local a = alc.math.rng_float(r)
        math.random(); math.random(1, 10)
        local b = alc.math.rng_float(r)
        math.randomseed(3)
        local c = alc.math.rng_float(r)
        return {a, b, c, alc.math.rng_float(alc.math.rng_create(0)),
          alc.math.rng_float(alc.math.rng_create(7)), tostring(r)}"#)
    .await;
    assert_eq!(
        v,
        json!([
            0.5265574090027738,
            0.5427252099031439,
            0.6364650991438949,
            0.7311134158637046,
            0.030317360865101395,
            "alc.math.rng"
        ])
    );
}

#[tokio::test]
async fn item119_rng_int() {
    let v = val(r#"
        local r = alc.math.rng_create(42)
        local out = {}
        for i = 1, 5 do out[i] = alc.math.rng_int(r, 1, 6) end
        out[6] = E(alc.math.rng_int, r, 5, 1)
        out[7] = E(alc.math.rng_create, -1)
        return out"#)
    .await;
    assert_eq!(
        v,
        json!([
            4,
            4,
            4,
            3,
            1,
            "alc.math.rng_int: min (5) must be <= max (1)",
            "alc.math.rng_create: seed must be a non-negative integer, got -1"
        ])
    );
}

#[tokio::test]
async fn item120_statistics() {
    let v = val(r#"
        local m = alc.math
        return {
          m.median({3, 1, 2}), math.type(m.median({3, 1, 2})), m.median({1, 2, 3, 4}),
          m.percentile({1, 2, 3, 4}, 25), m.percentile({1}, 90),
          E(m.percentile, {1, 2}, 101), E(m.median, {}), E(m.mean, {1, 0/0}),
          m.mean({1, 2, 3, 4}), m.variance({1, 2, 3, 4}), m.stddev({1, 2, 3, 4}), m.variance({5}),
        }"#)
    .await;
    let a = v.as_array().unwrap();
    assert_eq!(a[0], json!(2.0));
    assert_eq!(a[1], json!("float"));
    assert_eq!(a[2], json!(2.5));
    assert_eq!(a[3], json!(1.75));
    assert_eq!(a[4], json!(1.0));
    assert_eq!(
        a[5],
        json!("alc.math.percentile: p must be in [0, 100], got 101")
    );
    assert_eq!(a[6], json!("alc.math.median: expected non-empty array"));
    assert_eq!(
        a[7],
        json!("alc.math.mean: element at index 2 is NaN or infinite")
    );
    assert_eq!(a[8], json!(2.5));
    assert!((a[9].as_f64().unwrap() - 1.6666666666666667).abs() < 1e-12);
    assert!((a[10].as_f64().unwrap() - 1.2909944487358056).abs() < 1e-12);
    assert_eq!(a[11], json!(0.0));
}

#[tokio::test]
async fn item121_wilson_ci() {
    let v = val(r#"
        local m = alc.math
        local w = m.wilson_ci(8, 10, 0.95)
        return { w.lower, w.upper, w.center, m.wilson_ci(0, 10, 0.95).lower,
          m.wilson_ci(10, 10, 0.95).upper, E(m.wilson_ci, 1, 0, 0.95),
          E(m.wilson_ci, 1, 2, 1.5) }"#)
    .await;
    let a = v.as_array().unwrap();
    let close = |i: usize, x: f64| assert!((a[i].as_f64().unwrap() - x).abs() < 1e-12, "{i}");
    close(0, 0.49016247153664183);
    close(1, 0.9433178485456247);
    close(2, 0.7167401600411333);
    assert_eq!(a[3], json!(0.0));
    assert_eq!(a[4], json!(1.0));
    assert_eq!(a[5], json!("alc.math.wilson_ci: total must be > 0"));
    assert_eq!(
        a[6],
        json!("alc.math.wilson_ci: confidence must be in [0, 1], got 1.5")
    );
}

#[tokio::test]
async fn item125_env() {
    let v = val_ctx(
        r#"
        local u = alc.env:use{"FOO", "NOPE"}
        return { alc.env.FOO, N(alc.env.MISSING),
          E(function() alc.env.FOO = "x" end), alc.env:get("MISSING", "fb"),
          alc.env:get("FOO"), u, type(alc.env), tostring(alc.env), alc.env.FOO }"#,
        json!({"env": {"inject": {"FOO": "bar"}}}),
    )
    .await;
    assert_eq!(
        v,
        json!([
            "bar",
            null,
            "alc.env is readonly",
            "fb",
            "bar",
            {"FOO": "bar"},
            "userdata",
            "alc.env",
            "bar"
        ])
    );
}

#[tokio::test]
async fn item131_error_shapes() {
    let v = val(r#"
        local ok, e = pcall(alc.json_decode, "{")
        local _, e2 = pcall(alc.llm_batch, {})
        local _, e3 = pcall(alc.chunk, "a", {mode = 1})
        local _, e4 = pcall(alc.math.median, {})
        return { type(e), e:find("stack traceback", 1, true) == nil,
          e:match("^alc%.json_decode: ") ~= nil, e2:match("^alc%.llm_batch: ") ~= nil,
          type(e3), e3:match("^alc%.chunk: ") ~= nil, e4:match("^alc%.math%.median: ") ~= nil }"#)
    .await;
    assert_eq!(v, json!(["string", true, true, true, "string", true, true]));
}

/// Item 134 for the members of §2 other than the tables `fork`, `state` and `card`, whose
/// key sets `tests/card.rs::item134_key_sets` checks: each is present with the right type
/// and nothing unlisted exists.
#[tokio::test]
async fn item134_key_set() {
    let v = val(r#"
        local funcs = {"llm", "llm_batch", "ask", "json_encode", "json_decode", "array", "object",
          "chunk", "match_enum", "match_bool", "parse_score", "parse_number", "json_extract",
          "fingerprint", "log", "progress", "time", "budget_remaining", "budget_check", "cache",
          "cache_info", "cache_clear", "map", "reduce", "filter", "vote", "ground", "specify",
          "llm_safe", "llm_json", "tuning", "parallel", "pipe", "eval"}
        local values = {"json_null", "env", "stats", "math"}
        local elsewhere = {fork = true, state = true, card = true}
        local listed, bad = {}, {}
        for _, k in ipairs(funcs) do
          listed[k] = true
          if type(alc[k]) ~= "function" then bad[#bad + 1] = k end
        end
        for _, k in ipairs(values) do
          listed[k] = true
          if alc[k] == nil then bad[#bad + 1] = k end
        end
        for k in pairs(alc) do
          if not listed[k] and not elsewhere[k] then bad[#bad + 1] = "extra:" .. tostring(k) end
        end
        local mk = {}
        for k, f in pairs(alc.math) do
          if type(f) == "function" then mk[#mk + 1] = k end
        end
        table.sort(mk)
        alc.llm = nil
        return {#bad == 0 and "ok" or table.concat(bad, ","), mk}"#)
    .await;
    assert_eq!(
        v,
        json!([
            "ok",
            [
                "mean",
                "median",
                "percentile",
                "rng_create",
                "rng_float",
                "rng_int",
                "stddev",
                "variance",
                "wilson_ci"
            ]
        ])
    );
    // Another session still has its own `alc.llm`.
    let v = val("return type(alc.llm)").await;
    assert_eq!(v, json!("function"));
}
