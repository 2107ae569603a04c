//! Host-yield protocol and yield-through: `lua-api.md` §1.7 and checklist items 29–40,
//! 58–63, 74–76 of §4; `engine.md` §4 and regression items 13–15 of §10.
//!
//! Every session runs inline code with seed 42, a manual clock frozen at 1700000000 s and
//! the engine `default_budget` disabled (unless a test says otherwise); the n-th query is
//! answered `A<n>`.

mod common;

use alc_core::{Answer, Answers, EngineConfig, LlmQuery, PendingQuery, QueryRequest, UntilPause};
use alc_engine::{Engine, PackageRoots};
use common::*;
use serde_json::json;

fn llm(q: &PendingQuery) -> &LlmQuery {
    match &q.request {
        QueryRequest::Llm { query } => query,
        other => panic!("expected an llm query, got {other:?}"),
    }
}

/// Runs `code`; asserts it completed and returns its value and the pauses.
async fn ok(e: &Engine, code: &str) -> (serde_json::Value, Vec<Vec<PendingQuery>>) {
    let (t, pauses) = run_code(e, code).await;
    (completed(&t), pauses)
}

const NY_LLM: &str = "not_yieldable: alc.llm cannot pause here (inside a C callback such as a table.sort comparator or string.gsub function, a __gc finalizer, an xpcall message handler, or a module's top level during require)";

// ---- item 29 -------------------------------------------------------------------------------

#[tokio::test]
async fn item29_pcall_and_xpcall_pass_host_yields() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local ok1, a = pcall(alc.llm, "p")
        local ok2, b = xpcall(function() return alc.llm("p") end, function(e) return e end)
        return {ok1, a, ok2, b}
        "##,
    )
    .await;
    assert_eq!(v, json!([true, "A1", true, "A2"]));
    assert_eq!(pauses.len(), 2);
    assert_eq!(pauses[0].len(), 1);
}

// ---- item 30 -------------------------------------------------------------------------------

#[tokio::test]
async fn item30_coroutine_yield_then_host_yield() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"
            local inner
            local co = coroutine.create(function()
              coroutine.yield(1)
              inner = alc.llm("p")
              return "end"
            end)
            local r1 = {coroutine.resume(co)}
            local r2 = {coroutine.resume(co)}
            local r3 = {coroutine.resume(co)}
            return {r1 = r1, r2 = r2, r3 = r3, inner = inner, status = coroutine.status(co)}
            "##,
            json!({}),
        ))
        .await
        .unwrap();
    let (t, pauses) = drive(&e, &id, |_| Answer::text(None, "A1")).await;
    assert_eq!(
        completed(&t),
        json!({
            "r1": [true, 1],
            "r2": [true, "end"],
            "r3": [false, "cannot resume dead coroutine"],
            "inner": "A1",
            "status": "dead"
        })
    );
    assert_eq!(pauses.len(), 1);
    assert_eq!(llm(&pauses[0][0]).prompt, "p");
}

// ---- item 31 -------------------------------------------------------------------------------

#[tokio::test]
async fn item31_wrap_generator_with_host_yields() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local out = {}
        for v in coroutine.wrap(function()
          for i = 1, 2 do coroutine.yield(alc.llm("p" .. i)) end
        end) do out[#out + 1] = v end
        return out
        "##,
    )
    .await;
    assert_eq!(v, json!(["A1", "A2"]));
    assert_eq!(pauses.len(), 2);
    assert_eq!(llm(&pauses[0][0]).prompt, "p1");
    assert_eq!(llm(&pauses[1][0]).prompt, "p2");
}

// ---- item 32 -------------------------------------------------------------------------------

#[tokio::test]
async fn item32_batch_three_coroutines_deep() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local got
        local c3 = coroutine.create(function()
          got = alc.llm_batch({{prompt = "x"}, {prompt = "y"}})
          coroutine.yield("c3")
          return "c3-done"
        end)
        local c2 = coroutine.create(function()
          local a = {coroutine.resume(c3)}
          coroutine.yield(a[2])
          return select(2, coroutine.resume(c3))
        end)
        local c1 = coroutine.wrap(function()
          local a = {coroutine.resume(c2)}
          coroutine.yield(a[2])
          local b = {coroutine.resume(c2)}
          return b[2]
        end)
        local first = c1()
        local second = c1()
        return {first = first, second = second, got = got}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!({"first": "c3", "second": "c3-done", "got": ["A1", "A2"]})
    );
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].len(), 2);
    assert_eq!(llm(&pauses[0][0]).prompt, "x");
    assert_eq!(llm(&pauses[0][1]).prompt, "y");
}

// ---- item 33 -------------------------------------------------------------------------------

#[tokio::test]
async fn item33_isyieldable_and_running() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local top = coroutine.isyieldable()
        local th, ismain = coroutine.running()
        local inner
        local co = coroutine.create(function()
          local me, m = coroutine.running()
          inner = {coroutine.isyieldable(), m, coroutine.status(me)}
        end)
        coroutine.resume(co)
        return {top = top, thread = type(th), ismain = ismain,
                status = coroutine.status(th), inner = inner}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!({"top": true, "thread": "thread", "ismain": false, "status": "running",
               "inner": [true, false, "running"]})
    );
    assert!(pauses.is_empty());
}

// ---- items 34, 35 and regression 13 --------------------------------------------------------

/// Runs `body` (which must leave the caught error in `err`) and checks that it is the
/// `not_yieldable` error of `fname` and that nothing was published.
async fn assert_not_yieldable(body: &str, fname: &str) {
    let e = eng();
    let code = format!(
        "local err\n{body}\nreturn {{err = err, calls = alc.stats.llm_calls(), after = alc.llm('after')}}"
    );
    let (t, pauses) = run_code(&e, &code).await;
    let v = completed(&t);
    let expected = NY_LLM.replace("alc.llm", fname);
    assert_eq!(v["err"], json!(expected), "{body}");
    assert_eq!(v["calls"], json!(0), "{body}");
    // Only the final `alc.llm('after')` was published: the chain stack was left clean.
    assert_eq!(v["after"], json!("A1"), "{body}");
    assert_eq!(pauses.len(), 1, "{body}");
    assert_eq!(llm(&pauses[0][0]).prompt, "after", "{body}");
    assert_eq!(t.metrics.llm_calls, 1);
    assert_eq!(t.metrics.pauses, 1);
}

#[tokio::test]
async fn item34_sort_comparator_is_not_yieldable() {
    assert_not_yieldable(
        r##"local ok, e = pcall(table.sort, {3, 1, 2}, function(a, b) alc.llm("x"); return a < b end)
           assert(ok == false); err = e"##,
        "alc.llm",
    )
    .await;
}

#[tokio::test]
async fn item35_gsub_and_tostring_are_not_yieldable() {
    assert_not_yieldable(
        r##"local ok, e = pcall(string.gsub, "ab", "%w", function(c) return alc.llm(c) end)
           assert(ok == false); err = e"##,
        "alc.llm",
    )
    .await;
    assert_not_yieldable(
        r##"local ok, e = pcall(tostring, setmetatable({}, {__tostring = function() return alc.llm("x") end}))
           assert(ok == false); err = e"##,
        "alc.llm",
    )
    .await;
    // Also `__lt` invoked by `table.sort`, and `load` reader functions.
    assert_not_yieldable(
        r##"local mt = {__lt = function(a, b) alc.llm("x"); return a.v < b.v end}
           local ok, e = pcall(table.sort, {setmetatable({v = 2}, mt), setmetatable({v = 1}, mt)})
           assert(ok == false); err = e"##,
        "alc.llm",
    )
    .await;
    assert_not_yieldable(
        r##"local done = false
           local f, e = load(function()
             if done then return nil end
             done = true
             local ok, m = pcall(alc.llm, "x"); err = m; return "return 1"
           end)
           assert(f and f() == 1, e)"##,
        "alc.llm",
    )
    .await;
}

#[tokio::test]
async fn batch_and_ask_in_sort_comparator_are_not_yieldable() {
    assert_not_yieldable(
        r##"local ok, e = pcall(table.sort, {3, 1, 2}, function(a, b) alc.llm_batch({{prompt = "x"}}); return a < b end)
           assert(ok == false); err = e"##,
        "alc.llm_batch",
    )
    .await;
}

#[tokio::test]
async fn reg13_no_pause_in_c_callbacks() {
    let e = eng_with(
        base_config(),
        PackageRoots::default().with_memory_file("pk", "init.lua", "return {v = alc.llm('m')}"),
    );
    for code in [
        "table.sort({3, 1, 2}, function(a, b) alc.llm('x'); return a < b end)",
        "string.gsub('ab', '%w', function(c) return alc.llm(c) end)",
        "require('pk')",
    ] {
        let (t, pauses) = run_code(&e, code).await;
        let (kind, message) = failed(&t);
        assert_eq!(kind, "lua_error", "{code}");
        assert_eq!(message, NY_LLM, "{code}");
        assert!(pauses.is_empty(), "{code}");
        assert_eq!(t.metrics.pauses, 0, "{code}");
        assert_eq!(t.metrics.llm_calls, 0, "{code}");
    }
}

// ---- item 36 -------------------------------------------------------------------------------

#[tokio::test]
async fn item36_module_body_is_not_yieldable_and_not_cached() {
    let e = eng_with(
        base_config(),
        PackageRoots::default().with_memory_file("pk", "init.lua", "return {v = alc.llm('m')}"),
    );
    let (v, pauses) = ok(
        &e,
        r##"
        local ok, err = pcall(require, "pk")
        local cached = package.loaded.pk
        local ok2, err2 = pcall(require, "pk")
        return {ok = ok, err = err, cached = cached == nil, ok2 = ok2, same = err2 == err,
                after = alc.llm("after")}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!({"ok": false, "err": NY_LLM, "cached": true, "ok2": false, "same": true,
               "after": "A1"})
    );
    assert_eq!(pauses.len(), 1);
    assert_eq!(llm(&pauses[0][0]).prompt, "after");
}

#[tokio::test]
async fn module_function_called_after_require_can_yield() {
    let e = eng_with(
        base_config(),
        PackageRoots::default().with_memory_file(
            "pk",
            "init.lua",
            "local M = {}\nfunction M.run(ctx) ctx.result = alc.llm(ctx.task) return ctx end\nreturn M",
        ),
    );
    let (v, pauses) = ok(
        &e,
        "local pk = require('pk'); return pk.run({task = 'T'}).result",
    )
    .await;
    assert_eq!(v, json!("A1"));
    assert_eq!(llm(&pauses[0][0]).prompt, "T");
}

// ---- item 37 -------------------------------------------------------------------------------

#[tokio::test]
async fn item37_coroutine_resumed_from_comparator() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local seen = {}
        table.sort({3, 1, 2}, function(a, b)
          local co = coroutine.wrap(function()
            local ok, err = pcall(alc.llm, "x")
            seen[#seen + 1] = {ok, err, coroutine.isyieldable()}
            coroutine.yield("y")
            return "z"
          end)
          assert(co() == "y")
          assert(co() == "z")
          return a < b
        end)
        return {first = seen[1], n = #seen > 0, calls = alc.stats.llm_calls()}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!({"first": [false, NY_LLM, true], "n": true, "calls": 0})
    );
    assert!(pauses.is_empty());
}

#[tokio::test]
async fn coroutine_error_inside_comparator_leaves_chain_clean() {
    // Failing resumes inside a non-yieldable context must not leave the chain stack
    // blocked (`engine.md` §13 note 3).
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local errs = {}
        table.sort({2, 1}, function(a, b)
          errs[1] = select(2, pcall(coroutine.resume, nil))
          errs[2] = select(2, pcall(coroutine.wrap(function() error("inner") end)))
          errs[3] = select(2, pcall(coroutine.resume, coroutine.create(function() error({}) end)))
          return a < b
        end)
        return {errs[1] ~= nil, errs[2], alc.llm("after")}
        "##,
    )
    .await;
    assert_eq!(v, json!([true, "session:5: inner", "A1"]));
    assert_eq!(pauses.len(), 1);
}

// ---- item 38 -------------------------------------------------------------------------------

#[tokio::test]
async fn item38_index_metamethod_can_yield() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local t = setmetatable({}, {__index = function(t, k) return alc.llm(k) end})
        local c = setmetatable({}, {__call = function(self, p) return alc.llm(p) end,
                                    __add = function(a, b) return alc.llm("add") end})
        local results = {}
        local it = setmetatable({}, {__pairs = function(t)
          return function(_, k) if k == nil then return 1, alc.llm("pairs") end end, t, nil
        end})
        for k, v in pairs(it) do results[#results + 1] = v end
        return {t.q, c("call"), c + 1, results[1]}
        "##,
    )
    .await;
    assert_eq!(v, json!(["A2", "A3", "A4", "A1"]));
    let prompts: Vec<String> = pauses.iter().map(|p| llm(&p[0]).prompt.clone()).collect();
    assert_eq!(prompts, ["pairs", "q", "call", "add"]);
}

// ---- item 39 -------------------------------------------------------------------------------

#[tokio::test]
async fn item39_top_level_yield() {
    let e = eng();
    let (v, pauses) = ok(&e, "return {pcall(coroutine.yield, 1)}").await;
    assert_eq!(
        v,
        json!([false, "attempt to yield from outside a coroutine"])
    );
    assert!(pauses.is_empty());

    let (t, _) = run_code(&e, "coroutine.yield(1)").await;
    assert_eq!(
        failed(&t),
        (
            "lua_error".to_string(),
            "attempt to yield from outside a coroutine".to_string()
        )
    );
}

// ---- item 40 (ask part; fork is not built yet) --------------------------------------------

#[tokio::test]
async fn item40_ask_in_pcall_and_in_comparator() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"
            local ok, v, status = pcall(alc.ask, "Proceed?")
            local ok2, err = pcall(table.sort, {2, 1}, function(a, b) alc.ask("q"); return a < b end)
            return {ok, v, status, ok2, err}
            "##,
            json!({}),
        ))
        .await
        .unwrap();
    let (t, pauses) = drive(&e, &id, |_| Answer::text(None, "yes")).await;
    assert_eq!(
        completed(&t),
        json!([
            true,
            "yes",
            "accepted",
            false,
            NY_LLM.replace("alc.llm", "alc.ask")
        ])
    );
    assert_eq!(pauses.len(), 1);
    assert_eq!(prompt_of(&pauses[0][0]), "Proceed?");
}

// ---- xpcall message handlers --------------------------------------------------------------

#[tokio::test]
async fn xpcall_handler_is_not_yieldable() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local seen
        local ok, err = xpcall(function() error("boom", 0) end, function(m)
          local ok, e = pcall(alc.llm, "x")
          seen = e
          return m .. "!"
        end)
        return {ok, err, seen, alc.stats.llm_calls()}
        "##,
    )
    .await;
    assert_eq!(v, json!([false, "boom!", NY_LLM, 0]));
    assert!(pauses.is_empty());
}

// ---- regression 14 ------------------------------------------------------------------------

#[tokio::test]
async fn reg14_user_coroutine_gets_answer_three_deep() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local log = {}
        local function add(v) log[#log + 1] = v end
        local w1 = coroutine.wrap(function()
          local w2 = coroutine.wrap(function()
            local w3 = coroutine.wrap(function()
              coroutine.yield("w3a")
              local a = alc.llm("deep")
              coroutine.yield(a)
              return "w3end"
            end)
            add(w3())
            coroutine.yield("w2a")
            add(w3())
            add(w3())
            return "w2end"
          end)
          add(w2())
          coroutine.yield("w1a", "extra", nil)
          add(w2())
          return "w1end"
        end)
        local r = {select("#", w1()), w1()}
        return {log = log, r = r}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!({"log": ["w3a", "w2a", "A1", "w3end", "w2end"], "r": [3, "w1end"]})
    );
    assert_eq!(pauses.len(), 1);
    assert_eq!(llm(&pauses[0][0]).prompt, "deep");
}

#[tokio::test]
async fn preempted_generators_lose_no_items() {
    // Long CPU bursts inside nested coroutines are preempted by the hook; the preemption
    // is invisible and no item is lost or duplicated (`engine.md` §13 note 2).
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local gen = coroutine.wrap(function()
          local inner = coroutine.wrap(function()
            for i = 1, 200000 do coroutine.yield(i) end
            coroutine.yield(alc.llm("mid"))
            return nil
          end)
          while true do
            local v = inner()
            if v == nil then return nil end
            coroutine.yield(v)
          end
        end)
        local n, sum, last = 0, 0, nil
        for v in gen do
          if type(v) == "number" then n = n + 1; sum = sum + v else last = v end
        end
        return {n, sum, last}
        "##,
    )
    .await;
    assert_eq!(v, json!([200000, 20000100000i64, "A1"]));
    assert_eq!(pauses.len(), 1);
}

// ---- regression 15 ------------------------------------------------------------------------

#[tokio::test]
async fn reg15_error_names_user_chunk() {
    let e = eng();
    let (t, _) = run_code(&e, "local x = 1\nlocal y = 2\nerror(\"boom\")\n").await;
    match &t.outcome {
        alc_core::Outcome::Failed {
            message, traceback, ..
        } => {
            assert_eq!(message, "session:3: boom");
            let tb = traceback.as_deref().expect("a traceback");
            assert!(tb.starts_with("stack traceback:"), "{tb}");
            assert!(tb.contains("session:3:"), "{tb}");
            assert!(!tb.contains("boom"), "{tb}");
            assert!(!tb.contains("alc sandbox"), "{tb}");
            assert!(!tb.contains(".rs"), "{tb}");
            assert!(!tb.contains(env!("CARGO_MANIFEST_DIR")), "{tb}");
            assert!(!tb.contains("raw_"), "{tb}");
        }
        other => panic!("expected failure, got {other:?}"),
    }
    // An error raised by an `alc.*` function: no engine frame or internal name shows.
    let (t, _) = run_code(
        &e,
        "local function f()\n  local v = alc.llm({})\n  return v\nend\nf()",
    )
    .await;
    match &t.outcome {
        alc_core::Outcome::Failed {
            message, traceback, ..
        } => {
            assert_eq!(
                message,
                "alc.llm: bad argument #1 'prompt' (string expected, got table)"
            );
            let tb = traceback.as_deref().expect("a traceback");
            assert_eq!(
                tb,
                "stack traceback:\n\tsession:2: in function 'f'\n\tsession:5: in main chunk"
            );
        }
        other => panic!("expected failure, got {other:?}"),
    }
}

// ---- answer errors ------------------------------------------------------------------------

#[tokio::test]
async fn answer_errors_raise_catchable_strings() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"
            local ok, err = pcall(alc.llm, "p")
            local ok2, err2 = pcall(alc.llm_batch, {{prompt = "a"}, {prompt = "b"}, {prompt = "c"}})
            return {ok, err, type(err), ok2, err2}
            "##,
            json!({}),
        ))
        .await
        .unwrap();
    let (t, _) = drive(&e, &id, |q| {
        let p = prompt_of(q);
        if p == "p" || p == "b" {
            Answer::error(
                None,
                "provider_error",
                format!("provider_error[http]: failed {p}"),
            )
        } else {
            Answer::text(None, "ok")
        }
    })
    .await;
    assert_eq!(
        completed(&t),
        json!([
            false,
            "provider_error[http]: failed p",
            "string",
            false,
            "provider_error[http]: failed b"
        ])
    );
}

// ---- item 58 -------------------------------------------------------------------------------

#[tokio::test]
async fn item58_llm_publishes_one_default_query() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"local a = alc.llm("p"); return {a, select("#", alc.llm("p"))}"##,
    )
    .await;
    assert_eq!(v, json!(["A1", 1]));
    assert_eq!(pauses.len(), 2);
    let q = llm(&pauses[0][0]);
    assert_eq!(q, &LlmQuery::new("p"));
    assert_eq!(q.max_tokens, 1024);
    let wire = serde_json::to_value(q).unwrap();
    assert_eq!(
        wire,
        json!({"prompt": "p", "system": null, "max_tokens": 1024})
    );
}

// ---- item 59 -------------------------------------------------------------------------------

#[tokio::test]
async fn item59_llm_options_published() {
    let e = eng();
    let (_, pauses) = ok(
        &e,
        r##"
        alc.llm("p", {system = "S", max_tokens = 7, temperature = 0.2, model = "m",
                      role = "grader", grounded = true})
        alc.llm("p", {foo = 1})
        "##,
    )
    .await;
    let wire = serde_json::to_value(llm(&pauses[0][0])).unwrap();
    assert_eq!(
        wire,
        json!({"prompt": "p", "system": "S", "max_tokens": 7, "temperature": 0.2,
               "model": "m", "role": "grader", "grounded": true})
    );
    let wire = serde_json::to_value(llm(&pauses[1][0])).unwrap();
    assert_eq!(
        wire,
        json!({"prompt": "p", "system": null, "max_tokens": 1024})
    );
}

// ---- item 60 -------------------------------------------------------------------------------

#[tokio::test]
async fn item60_prompt_coercion_and_errors() {
    let e = eng();
    let (t, pauses) = run_code(
        &e,
        r##"
        alc.llm(42)
        local ok, err = pcall(alc.llm, {})
        alc.llm("p", {system = {}})
        return {ok, err}
        "##,
    )
    .await;
    assert_eq!(
        completed(&t),
        json!([
            false,
            "alc.llm: bad argument #1 'prompt' (string expected, got table)"
        ])
    );
    assert_eq!(llm(&pauses[0][0]).prompt, "42");
    assert_eq!(pauses.len(), 2);
    assert_eq!(llm(&pauses[1][0]).system, None);
    let warns: Vec<_> = t
        .metrics
        .recent_logs
        .iter()
        .filter(|l| l.level == "warn")
        .collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
}

// ---- item 61 -------------------------------------------------------------------------------

#[tokio::test]
async fn item61_option_fallbacks_and_size_cap() {
    let e = eng();
    let (t, pauses) = run_code(
        &e,
        r##"
        alc.llm("a", {max_tokens = 2.5})
        alc.llm("b", {max_tokens = -1})
        alc.llm("c", {temperature = 3})
        local ok, err = pcall(alc.llm, string.rep("x", 1048576), {system = "s"})
        return {ok, err}
        "##,
    )
    .await;
    assert_eq!(
        completed(&t),
        json!([
            false,
            "invalid_request: prompt and system exceed 1048576 bytes"
        ])
    );
    assert_eq!(pauses.len(), 3);
    assert_eq!(llm(&pauses[0][0]).max_tokens, 2);
    assert_eq!(llm(&pauses[1][0]).max_tokens, 1024);
    assert_eq!(llm(&pauses[2][0]).temperature, None);
    let warns: Vec<String> = t
        .metrics
        .recent_logs
        .iter()
        .filter(|l| l.level == "warn")
        .map(|l| l.message.clone())
        .collect();
    assert_eq!(warns.len(), 2, "{warns:?}");
    assert_eq!(t.metrics.llm_calls, 3);
}

// ---- item 62 -------------------------------------------------------------------------------

#[tokio::test]
async fn item62_batch_answers_in_input_order() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"
            local r = alc.llm_batch({
              {prompt = "x1", system = "s1", max_tokens = 11, temperature = 0.1},
              {prompt = "x2", system = "s2", max_tokens = 12, temperature = 0.2},
              {prompt = "x3", system = "s3", max_tokens = 13, temperature = 0.3},
            })
            return {r = r, enc = alc.json_encode(r), n = select("#", r)}
            "##,
            json!({}),
        ))
        .await
        .unwrap();
    let until = e.run_until_pause(&id, HANG).await.unwrap();
    let UntilPause::Paused { snapshot } = until else {
        panic!("expected a pause, got {until:?}")
    };
    let batch = snapshot.pending.unwrap();
    assert_eq!(batch.queries.len(), 3);
    for (i, q) in batch.queries.iter().enumerate() {
        let q = llm(q);
        assert_eq!(q.prompt, format!("x{}", i + 1));
        assert_eq!(q.system.as_deref(), Some(format!("s{}", i + 1).as_str()));
        assert_eq!(q.max_tokens, 11 + i as u32);
        assert_eq!(q.temperature, Some([0.1, 0.2, 0.3][i]));
    }
    let answers: Vec<Answer> = batch
        .queries
        .iter()
        .rev()
        .enumerate()
        .map(|(i, q)| Answer::text(Some(q.id.clone()), format!("r{}", 3 - i)))
        .collect();
    e.resume(
        &id,
        Answers {
            round: Some(batch.round),
            answers,
        },
    )
    .await
    .unwrap();
    let (t, _) = drive(&e, &id, |_| panic!("no second pause")).await;
    assert_eq!(
        completed(&t),
        json!({"r": ["r1", "r2", "r3"], "enc": "[\"r1\",\"r2\",\"r3\"]", "n": 1})
    );
}

// ---- item 63 -------------------------------------------------------------------------------

#[tokio::test]
async fn item63_batch_argument_errors() {
    let e = eng();
    let (v, pauses) = ok(
        &e,
        r##"
        local function err(...) local ok, e = pcall(alc.llm_batch, ...); assert(not ok); return e end
        local big = {}
        for i = 1, 257 do big[i] = {prompt = "p"} end
        return {err({}), err({{system = "s"}}), err({"p"}), err(big), alc.stats.llm_calls()}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            "alc.llm_batch: items must be a non-empty array",
            "alc.llm_batch: item 1: prompt is required",
            "alc.llm_batch: item 1: table expected, got string",
            "invalid_request: batch of 257 exceeds 256 items",
            0
        ])
    );
    assert!(pauses.is_empty());
}

// ---- item 74 -------------------------------------------------------------------------------

#[tokio::test]
async fn item74_budget_defaults() {
    let e = eng();
    let (v, _) = ok(
        &e,
        "return {alc.budget_remaining() == nil, alc.budget_check()}",
    )
    .await;
    assert_eq!(v, json!([true, true]));

    let (t, _) = run_code_ctx(
        &e,
        "return {alc.budget_remaining() == nil, alc.budget_check(), ctx.budget}",
        json!({"budget": 8}),
    )
    .await;
    assert_eq!(completed(&t), json!([true, true, 8]));

    let defaults = eng_with(
        EngineConfig {
            workers: 2,
            ..EngineConfig::default()
        },
        PackageRoots::default(),
    );
    let (v, _) = ok(&defaults, "return alc.budget_remaining()").await;
    assert_eq!(v, json!({"llm_calls": 10000}));
}

// ---- item 75 -------------------------------------------------------------------------------

#[tokio::test]
async fn item75_max_llm_calls() {
    let e = eng();
    let ctx = json!({"budget": {"max_llm_calls": 1}});
    let (t, pauses) = run_code_ctx(
        &e,
        r##"
        local before = alc.budget_remaining()
        alc.llm("p")
        local after = alc.budget_remaining()
        local ok, err = pcall(alc.llm, "q")
        return {before = before, after = after, ok = ok, err = err,
                match = err:match("^budget_exceeded") ~= nil, check = alc.budget_check()}
        "##,
        ctx.clone(),
    )
    .await;
    assert_eq!(
        completed(&t),
        json!({"before": {"llm_calls": 1}, "after": {"llm_calls": 0}, "ok": false,
               "err": "budget_exceeded: max_llm_calls (1) reached (1 used)", "match": true,
               "check": false})
    );
    assert_eq!(pauses.len(), 1);

    let (t, pauses) = run_code_ctx(&e, "alc.llm('p'); alc.llm('q')", ctx).await;
    assert_eq!(
        failed(&t),
        (
            "budget_exceeded".to_string(),
            "budget_exceeded: max_llm_calls (1) reached (1 used)".to_string()
        )
    );
    assert_eq!(pauses.len(), 1);
}

// ---- item 76 -------------------------------------------------------------------------------

#[tokio::test]
async fn item76_batch_over_budget_rejected_whole() {
    let e = eng();
    let (t, pauses) = run_code_ctx(
        &e,
        r##"
        local ok, err = pcall(alc.llm_batch, {{prompt = "a"}, {prompt = "b"}, {prompt = "c"}})
        return {ok, err, alc.stats.llm_calls()}
        "##,
        json!({"budget": {"max_llm_calls": 2}}),
    )
    .await;
    assert_eq!(
        completed(&t),
        json!([
            false,
            "budget_exceeded: max_llm_calls (2) would be exceeded by a batch of 3 (0 used)",
            0
        ])
    );
    assert!(pauses.is_empty());
}

// ---- yieldability is checked before the budget --------------------------------------------

#[tokio::test]
async fn not_yieldable_is_checked_before_budget() {
    let e = eng();
    let (t, pauses) = run_code_ctx(
        &e,
        r##"
        alc.llm("p")
        local ok, err = pcall(table.sort, {2, 1}, function(a, b) alc.llm("x"); return a < b end)
        return {ok, err}
        "##,
        json!({"budget": {"max_llm_calls": 1}}),
    )
    .await;
    assert_eq!(completed(&t), json!([false, NY_LLM]));
    assert_eq!(pauses.len(), 1);
}
