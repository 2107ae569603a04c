//! Cancelling spinning sessions (engine.md §5.3, §10 item 4): the cancel takes effect
//! promptly whatever the loop hides behind, and the worker is free afterwards.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_core::{
    CancelAck, CancelCode, CancelReason, Outcome, Phase, SessionId, SnapshotOptions, Terminal,
};
use alc_engine::{Engine, PackageRoots};
use common::*;

/// Generous bound for "promptly" (the target is 10 ms in release; this is a debug build
/// on a shared machine).
const PROMPT: Duration = Duration::from_secs(2);

async fn until_running(e: &Engine, id: &SessionId) {
    let start = Instant::now();
    loop {
        let s = e.state(id, &SnapshotOptions::default()).expect("state");
        match s.phase {
            Phase::Running => return,
            Phase::Queued => {}
            other => panic!("session left the run queue as {other:?}: {:?}", s.outcome),
        }
        assert!(start.elapsed() < HANG, "session never ran");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn wait_terminal(e: &Engine, id: &SessionId) -> Terminal {
    tokio::time::timeout(HANG, e.wait(id))
        .await
        .expect("session ended before the hang detector")
        .expect("wait")
}

/// Spawns `code` on a one-worker engine, lets it spin, cancels it, and checks that it
/// ends `Cancelled` (from Running, with the reason given) promptly and that the worker
/// then runs a trivial session to completion.
async fn cancel_spinner(code: &str) {
    let e = engine_with(1, Arc::new(PackageRoots::default()));
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    until_running(&e, &id).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        e.state(&id, &SnapshotOptions::default()).unwrap().phase,
        Phase::Running,
        "{code}: still spinning before the cancel"
    );
    let reason = CancelReason {
        code: CancelCode::User,
        detail: Some("spin".into()),
    };
    let t0 = Instant::now();
    assert_eq!(
        e.cancel(&id, reason.clone()).await.unwrap(),
        CancelAck::Requested
    );
    let t = wait_terminal(&e, &id).await;
    let took = t0.elapsed();
    match &t.outcome {
        Outcome::Cancelled {
            reason: r,
            phase_before,
            ..
        } => {
            assert_eq!(r, &reason);
            assert_eq!(*phase_before, Phase::Running);
        }
        other => panic!("{code}: expected Cancelled, got {other:?}"),
    }
    assert!(took < PROMPT, "{code}: cancel took {took:?}");
    // The only worker is free again.
    let next = e
        .spawn(code_spec("return 'free'", serde_json::json!({})))
        .await
        .unwrap();
    let tn = tokio::time::timeout(PROMPT * 5, e.wait(&next))
        .await
        .unwrap_or_else(|_| panic!("{code}: the worker stayed busy after the cancel"))
        .unwrap();
    assert_eq!(completed(&tn), serde_json::json!("free"));
    assert_eq!(e.stats().vm_bytes, 0);
    assert_eq!(
        e.cancel(&id, CancelReason::new(CancelCode::Internal))
            .await
            .unwrap(),
        CancelAck::AlreadyTerminal {
            phase: Phase::Cancelled
        }
    );
}

#[tokio::test]
async fn reg_cancel_spinning_plain_loop() {
    cancel_spinner("while true do end").await;
}

#[tokio::test]
async fn reg_cancel_spinning_pcall_loop() {
    cancel_spinner("while true do pcall(function() while true do end end) end").await;
}

#[tokio::test]
async fn reg_cancel_spinning_pcall_error_loop() {
    // The abort must not be mistaken for the errors the loop keeps catching.
    cancel_spinner(
        "local n = 0 while true do local ok, e = pcall(error, 'x') if not ok then n = n + 1 end end",
    )
    .await;
}

#[tokio::test]
async fn reg_cancel_spinning_nested_pcall() {
    cancel_spinner("while true do pcall(pcall, pcall, function() while true do end end) end").await;
}

#[tokio::test]
async fn reg_cancel_spinning_coroutine_wrap() {
    cancel_spinner("local f = coroutine.wrap(function() while true do end end) f()").await;
}

#[tokio::test]
async fn reg_cancel_spinning_nested_wrap_with_pcall() {
    cancel_spinner(
        r#"
        while true do
          pcall(coroutine.wrap(function()
            local g = coroutine.wrap(function() while true do end end)
            pcall(g)
          end))
        end
        "#,
    )
    .await;
}

#[tokio::test]
async fn reg_cancel_spinning_resume_loop() {
    cancel_spinner(
        r#"
        while true do
          local co = coroutine.create(function() while true do coroutine.yield(1) end end)
          for i = 1, 100 do coroutine.resume(co) end
          coroutine.close(co)
        end
        "#,
    )
    .await;
}

#[tokio::test]
async fn reg_cancel_spinning_xpcall_handler() {
    cancel_spinner("xpcall(function() error('x') end, function(m) while true do end end)").await;
}

#[tokio::test]
async fn reg_cancel_spinning_xpcall_handler_loop() {
    cancel_spinner(
        "while true do xpcall(function() while true do end end, function(m) while true do end end) end",
    )
    .await;
}

#[tokio::test]
async fn reg_cancel_spinning_sort_comparator() {
    cancel_spinner("table.sort({3, 2, 1, 5, 4}, function(a, b) while true do end end)").await;
}

#[tokio::test]
async fn reg_cancel_spinning_sort_comparator_pcall() {
    cancel_spinner(
        "while true do pcall(table.sort, {3, 2, 1}, function(a, b) while true do end end) end",
    )
    .await;
}

#[tokio::test]
async fn reg_cancel_spinning_close_handler() {
    // A to-be-closed variable whose handler spins: unwinding after the abort must not
    // hang in it.
    cancel_spinner(
        r#"
        local t <close> = setmetatable({}, { __close = function() while true do end end })
        while true do end
        "#,
    )
    .await;
}

#[tokio::test]
async fn reg_cancel_spinning_close_handler_in_wrap() {
    cancel_spinner(
        r#"
        local f = coroutine.wrap(function()
          local t <close> = setmetatable({}, { __close = function() while true do end end })
          while true do end
        end)
        f()
        "#,
    )
    .await;
}

#[tokio::test]
async fn reg_cancel_spinning_gsub_callback() {
    cancel_spinner("string.gsub('abc', '%w', function(c) while true do end end)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_cancel_eight_spinners_on_two_workers() {
    let e = engine_with(2, Arc::new(PackageRoots::default()));
    let programs = [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "local f = coroutine.wrap(function() while true do end end) f()",
        "xpcall(function() error('x') end, function(m) while true do end end)",
        "table.sort({3, 2, 1}, function(a, b) while true do end end)",
        "local n = 0 while true do n = n + 1 end",
        "while true do coroutine.wrap(function() while true do end end)() end",
        "local t = {} while true do t[#t % 100 + 1] = {} end",
    ];
    let mut ids = Vec::new();
    for p in programs {
        ids.push(e.spawn(code_spec(p, serde_json::json!({}))).await.unwrap());
    }
    // Let them share the two workers for a while (slicing moves the preemptible ones).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for id in &ids {
        let s = e.state(id, &SnapshotOptions::default()).unwrap();
        assert!(
            matches!(s.phase, Phase::Running | Phase::Queued),
            "{:?}: {:?}",
            s.phase,
            s.outcome
        );
    }
    let t0 = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let ack = e
            .cancel(
                id,
                CancelReason {
                    code: CancelCode::User,
                    detail: Some(format!("spinner {i}")),
                },
            )
            .await
            .unwrap();
        assert!(
            matches!(ack, CancelAck::Requested | CancelAck::Cancelled),
            "{ack:?}"
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let t = wait_terminal(&e, id).await;
        match &t.outcome {
            Outcome::Cancelled { reason, .. } => {
                assert_eq!(
                    reason.detail.as_deref(),
                    Some(format!("spinner {i}").as_str())
                )
            }
            other => panic!("spinner {i}: {other:?}"),
        }
    }
    assert!(t0.elapsed() < PROMPT * 2, "took {:?}", t0.elapsed());
    // Both workers are free.
    let a = e
        .spawn(code_spec("return 1", serde_json::json!({})))
        .await
        .unwrap();
    let b = e
        .spawn(code_spec("return 2", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(
        completed(&wait_terminal(&e, &a).await),
        serde_json::json!(1)
    );
    assert_eq!(
        completed(&wait_terminal(&e, &b).await),
        serde_json::json!(2)
    );
    assert_eq!(e.stats().vm_bytes, 0);
    assert_eq!(e.stats().queued, 0);
}

#[tokio::test]
async fn reg_cancel_queued_behind_spinner_never_runs() {
    // A session cancelled while queued never runs, even though its stale queue entry is
    // still popped later.
    let e = engine_with(1, Arc::new(PackageRoots::default()));
    let spinner = e
        .spawn(code_spec(
            "table.sort({3, 2, 1}, function(a, b) while true do end end)",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    until_running(&e, &spinner).await;
    let victim = e
        .spawn(code_spec("return alc.llm('never')", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(
        e.cancel(&victim, CancelReason::new(CancelCode::User))
            .await
            .unwrap(),
        CancelAck::Cancelled
    );
    e.cancel(&spinner, CancelReason::new(CancelCode::User))
        .await
        .unwrap();
    wait_terminal(&e, &spinner).await;
    let after = e
        .spawn(code_spec("return 3", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(
        completed(&wait_terminal(&e, &after).await),
        serde_json::json!(3)
    );
    let s = e.state(&victim, &SnapshotOptions::default()).unwrap();
    assert_eq!(s.phase, Phase::Cancelled);
    assert_eq!(s.metrics.pauses, 0);
    assert_eq!(s.round, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_cancel_stops_spinners() {
    let e = engine_with(2, Arc::new(PackageRoots::default()));
    let a = e
        .spawn(code_spec("while true do end", serde_json::json!({})))
        .await
        .unwrap();
    let b = e
        .spawn(code_spec(
            "table.sort({3, 2, 1}, function(x, y) while true do end end)",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    until_running(&e, &a).await;
    until_running(&e, &b).await;
    let report = tokio::time::timeout(
        HANG,
        tokio::task::spawn_blocking({
            let e = e.clone();
            move || e.shutdown_now(alc_engine::ShutdownMode::Cancel)
        }),
    )
    .await
    .expect("shutdown(Cancel) returns")
    .unwrap();
    assert_eq!(report.cancelled, 2);
    assert_eq!(report.lost, 0);
    for id in [&a, &b] {
        let s = e.state(id, &SnapshotOptions::default()).unwrap();
        match s.outcome {
            Some(Outcome::Cancelled { reason, .. }) => {
                assert_eq!(reason.code, CancelCode::Shutdown)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drain_with_unparkable_spinner() {
    let e = engine_with(1, Arc::new(PackageRoots::default()));
    let b = e
        .spawn(code_spec(
            "table.sort({3, 2, 1}, function(x, y) while true do end end)",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    until_running(&e, &b).await;
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::task::spawn_blocking({
            let e = e.clone();
            move || e.shutdown_now(alc_engine::ShutdownMode::Drain)
        }),
    )
    .await
    .expect("shutdown(Drain) returns")
    .unwrap();
    let s = e.state(&b, &Default::default()).unwrap();
    match s.outcome {
        Some(alc_core::Outcome::Cancelled { reason, .. }) => {
            assert_eq!(reason.code, alc_core::CancelCode::Shutdown)
        }
        other => panic!("expected a shutdown cancel, got {other:?}"),
    }
}
