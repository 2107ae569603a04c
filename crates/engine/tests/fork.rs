//! `alc.fork` (engine.md §8.2, §10 items 8 and 18; lua-api.md §2.1, conformance 40, 69–73, 78).

mod common;

use std::sync::Arc;

use alc_core::{Answer, EngineConfig, PendingQuery, QueryOrigin};
use alc_engine::{Engine, PackageRoots};
use common::*;
use serde_json::json;

/// A strategy package `name` whose `run(ctx)` is `body`.
fn strat(mods: PackageRoots, name: &str, body: &str) -> PackageRoots {
    mods.with_memory_file(
        name,
        "init.lua",
        &format!("local M = {{}}\nfunction M.run(ctx)\n{body}\nend\nreturn M\n"),
    )
}

fn packages() -> PackageRoots {
    let m = PackageRoots::default();
    let m = strat(
        m,
        "s_a",
        "local a = alc.llm('a1 ' .. ctx.task)\nlocal b = alc.llm('a2 ' .. a)\nreturn {a = a, b = b}",
    );
    let m = strat(
        m,
        "s_b",
        "local a = alc.llm('b1 ' .. ctx.task)\nlocal b = alc.llm('b2 ' .. a)\nreturn a .. '+' .. b",
    );
    let m = strat(m, "s_one", "return alc.llm('one')");
    let m = strat(m, "s_err", "error('boom')");
    let m = strat(m, "s_nested", "return alc.fork({'s_one'}, {})");
    let m = strat(
        m,
        "s_print",
        "print('c')\nalc.stats.record('x', 1)\nlocal before = alc.stats.llm_calls()\nalc.llm('p')\nreturn {before = before, after = alc.stats.llm_calls()}",
    );
    let m = strat(
        m,
        "s_state",
        "alc.state.set('k', ctx.v)\nlocal got = alc.llm('s ' .. ctx.v)\nreturn {mine = alc.state.get('k'), got = got}",
    );
    strat(m, "s_pure", "return {n = ctx.n, t = type(ctx.f)}")
}

fn eng() -> Engine {
    engine_with(2, Arc::new(packages()))
}

fn ids(pauses: &[Vec<PendingQuery>]) -> Vec<Vec<String>> {
    pauses
        .iter()
        .map(|p| p.iter().map(|q| q.id.as_str().to_string()).collect())
        .collect()
}

/// Answers each query with `R:<prompt>`.
async fn run_echo(
    e: &Engine,
    code: &str,
    ctx: serde_json::Value,
) -> (alc_core::Terminal, Vec<Vec<PendingQuery>>) {
    let id = e.spawn(code_spec(code, ctx)).await.expect("spawn");
    drive(e, &id, |q| {
        Answer::text(None, format!("R:{}", prompt_of(q)))
    })
    .await
}

#[tokio::test]
async fn item69_two_children_two_calls_each() {
    let e = eng();
    let mut first: Option<Vec<Vec<String>>> = None;
    for _ in 0..10 {
        let (t, pauses) = run_echo(
            &e,
            "return alc.fork({'s_a', 's_b'}, {task = 'T'})",
            json!({}),
        )
        .await;
        let got = ids(&pauses);
        assert_eq!(got, vec![vec!["f-0-0", "f-1-0"], vec!["f-0-1", "f-1-1"]]);
        assert_eq!(
            pauses[0][1].origin,
            QueryOrigin::Child {
                index: 1,
                strategy: "s_b".into()
            }
        );
        assert_eq!(prompt_of(&pauses[0][0]), "a1 T");
        assert_eq!(prompt_of(&pauses[1][1]), "b2 R:b1 T");
        assert_eq!(
            completed(&t),
            json!([
                {"strategy": "s_a", "ok": true, "result": {"a": "R:a1 T", "b": "R:a2 R:a1 T"}},
                {"strategy": "s_b", "ok": true, "result": "R:b1 T+R:b2 R:b1 T"},
            ])
        );
        if let Some(f) = &first {
            assert_eq!(f, &got);
        }
        first = Some(got);
    }
}

#[tokio::test]
async fn reg_fork_batching() {
    let e = eng();
    for _ in 0..100 {
        let (t, pauses) = run_echo(&e, "return alc.fork({'s_one', 's_one'}, {})", json!({})).await;
        assert_eq!(ids(&pauses), vec![vec!["f-0-0", "f-1-0"]]);
        assert_eq!(
            completed(&t),
            json!([
                {"strategy": "s_one", "ok": true, "result": "R:one"},
                {"strategy": "s_one", "ok": true, "result": "R:one"},
            ])
        );
    }
    let (t, pauses) = run_echo(
        &e,
        "return alc.fork({'s_a', 's_one'}, {task = 'T'})",
        json!({}),
    )
    .await;
    assert_eq!(ids(&pauses), vec![vec!["f-0-0", "f-1-0"], vec!["f-0-1"]]);
    completed(&t);
    // A fork inside a child.
    let (t, pauses) = run_echo(&e, "return alc.fork({'s_nested'}, {})", json!({})).await;
    assert!(pauses.is_empty());
    let v = completed(&t);
    assert_eq!(v[0]["ok"], json!(false));
    assert!(v[0]["error"]
        .as_str()
        .unwrap()
        .contains("alc.fork: nested fork is not supported"));
}

#[tokio::test]
async fn item70_child_failure() {
    let e = eng();
    for opts in ["nil", "{}", "{on_error = 'fail'}", "{on_error = 'skip'}"] {
        let (t, pauses) = run_echo(
            &e,
            &format!("return alc.fork({{'s_one', 's_err'}}, {{}}, {opts})"),
            json!({}),
        )
        .await;
        assert_eq!(ids(&pauses), vec![vec!["f-0-0"]]);
        let v = completed(&t);
        assert_eq!(
            v[0],
            json!({"strategy": "s_one", "ok": true, "result": "R:one"})
        );
        assert_eq!(v[1]["strategy"], json!("s_err"));
        assert_eq!(v[1]["ok"], json!(false));
        let err = v[1]["error"].as_str().unwrap();
        assert!(err.contains("boom"), "{err}");
        assert!(!err.contains("stack traceback"), "{err}");
    }
    // Abort: the failure drops the waiting sibling; nothing is published.
    let (t, pauses) = run_echo(
        &e,
        "local ok, err = pcall(alc.fork, {'s_one', 's_err'}, {}, {on_error = 'abort'})\nreturn {ok, err}",
        json!({}),
    )
    .await;
    assert!(pauses.is_empty());
    let v = completed(&t);
    assert_eq!(v[0], json!(false));
    let err = v[1].as_str().unwrap();
    assert!(
        err.starts_with("alc.fork: strategy 's_err' failed: "),
        "{err}"
    );
    assert!(err.contains("boom"));
    // Uncaught, the session fails with that message.
    let (t, _) = run_echo(
        &e,
        "return alc.fork({'s_err', 's_one'}, {}, {on_error = 'abort'})",
        json!({}),
    )
    .await;
    let (_, msg) = failed(&t);
    assert!(msg.contains("alc.fork: strategy 's_err' failed: "), "{msg}");
}

#[tokio::test]
async fn item71_validation() {
    let e = eng();
    let (t, pauses) = run_echo(
        &e,
        r#"
        local function err(...) local ok, e = pcall(alc.fork, ...) return e end
        return {
          err({"../x"}, {}),
          err({}, {}),
          err(nil, {}),
          err({"s_a"}, {f = print}),
          err({"s_a"}, "x"),
          err({"a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"}, {}),
        }
        "#,
        json!({}),
    )
    .await;
    assert!(pauses.is_empty());
    let v = completed(&t);
    assert_eq!(v[0], json!("alc.fork: invalid strategy name '../x'"));
    assert_eq!(
        v[1],
        json!("alc.fork: strategies must be a non-empty array")
    );
    assert_eq!(
        v[2],
        json!("alc.fork: strategies must be a non-empty array")
    );
    assert_eq!(
        v[3],
        json!("alc.fork: ctx: cannot encode value of type 'function' at $.f")
    );
    assert_eq!(v[4], json!("alc.fork: ctx must be a table"));
    assert!(v[5].as_str().unwrap().starts_with("alc.fork: at most 16"));
}

#[tokio::test]
async fn item40_fork_yieldability() {
    let e = eng();
    let (t, pauses) = run_echo(
        &e,
        r#"
        local ok, r = pcall(alc.fork, {"s_one"}, {})
        local e2
        table.sort({1, 2, 3}, function(a, b)
          if not e2 then local _, m = pcall(alc.fork, {"s_one"}, {}) e2 = m end
          return a < b
        end)
        return {ok, r[1].result, e2}
        "#,
        json!({}),
    )
    .await;
    assert_eq!(ids(&pauses), vec![vec!["f-0-0"]]);
    let v = completed(&t);
    assert_eq!(v[0], json!(true));
    assert_eq!(v[1], json!("R:one"));
    assert!(v[2]
        .as_str()
        .unwrap()
        .starts_with("not_yieldable: alc.fork"));
}

#[tokio::test]
async fn item72_state_namespace() {
    let e = eng();
    let (t, pauses) = run_echo(
        &e,
        r#"
        local r = alc.fork({"s_state"}, {v = "child"})
        return {r[1].result.mine, alc.state.get("k", "none")}
        "#,
        json!({"_ns": "n"}),
    )
    .await;
    assert_eq!(ids(&pauses), vec![vec!["f-0-0"]]);
    assert_eq!(completed(&t), json!(["child", "none"]));
}

/// engine.md §10 item 18: concurrent sessions' children never share a namespace.
#[tokio::test]
async fn reg_fork_state_isolated() {
    let e = eng();
    let code = "local r = alc.fork({'s_state'}, {v = ctx.v})\nreturn r[1].result.mine";
    let a = e.spawn(code_spec(code, json!({"v": "A"}))).await.unwrap();
    let b = e.spawn(code_spec(code, json!({"v": "B"}))).await.unwrap();
    // Both children have written before either reads back.
    let pa = e.run_until_pause(&a, HANG).await.unwrap();
    let pb = e.run_until_pause(&b, HANG).await.unwrap();
    assert!(matches!(pa, alc_core::UntilPause::Paused { .. }));
    assert!(matches!(pb, alc_core::UntilPause::Paused { .. }));
    let echo = |q: &PendingQuery| Answer::text(None, format!("R:{}", prompt_of(q)));
    let (ta, _) = drive(&e, &a, echo).await;
    let (tb, _) = drive(&e, &b, echo).await;
    assert_eq!(completed(&ta), json!("A"));
    assert_eq!(completed(&tb), json!("B"));
}

#[tokio::test]
async fn item73_output_and_stats() {
    let e = eng();
    let (t, pauses) = run_echo(
        &e,
        "local first = alc.llm('main')\nlocal r = alc.fork({'s_print'}, {})\nreturn {r[1].result, alc.stats.llm_calls()}",
        json!({}),
    )
    .await;
    assert_eq!(ids(&pauses), vec![vec!["q-0"], vec!["f-0-0"]]);
    let v = completed(&t);
    assert_eq!(v, json!([{"before": 1, "after": 2}, 2]));
    let logs: Vec<(String, String)> = t
        .metrics
        .recent_logs
        .iter()
        .map(|l| (l.source.clone(), l.message.clone()))
        .collect();
    assert!(
        logs.contains(&("fork[0].alc.lua.print".into(), "c".into())),
        "{logs:?}"
    );
    assert_eq!(t.metrics.custom.get("fork[0].x"), Some(&json!(1)));
    assert!(!t.metrics.custom.contains_key("x"));
}

#[tokio::test]
async fn item78_shared_budget() {
    let e = eng();
    let (t, pauses) = run_echo(
        &e,
        "return alc.fork({'s_a', 's_b'}, {task = 'T'})",
        json!({"budget": {"max_llm_calls": 3}}),
    )
    .await;
    assert_eq!(ids(&pauses), vec![vec!["f-0-0", "f-1-0"], vec!["f-0-1"]]);
    let v = completed(&t);
    assert_eq!(v[0]["ok"], json!(true));
    assert_eq!(v[1]["ok"], json!(false));
    let err = v[1]["error"].as_str().unwrap();
    assert!(err.contains("budget_exceeded"), "{err}");
}

#[tokio::test]
async fn fork_ctx_is_a_copy_and_children_are_cancellable() {
    let e = eng();
    let (t, _) = run_echo(
        &e,
        "local c = {n = 1}\nlocal r = alc.fork({'s_pure'}, c)\nreturn {r[1].result.n, c.n}",
        json!({}),
    )
    .await;
    assert_eq!(completed(&t), json!([1, 1]));

    // A spinning child is stopped by the session's cancel.
    let mods = strat(PackageRoots::default(), "spin", "while true do end");
    let e = engine_config(
        EngineConfig {
            workers: 2,
            ..EngineConfig::default()
        },
        Arc::new(mods),
    );
    let id = e
        .spawn(code_spec("return alc.fork({'spin'}, {})", json!({})))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    e.cancel(&id, alc_core::CancelReason::new(alc_core::CancelCode::User))
        .await
        .unwrap();
    let t = tokio::time::timeout(HANG, e.wait(&id))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(t.outcome, alc_core::Outcome::Cancelled { .. }),
        "{:?}",
        t.outcome
    );
}
