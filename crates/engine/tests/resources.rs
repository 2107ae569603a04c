//! Resource return (engine.md §12.3, §10 item 3; Linux procfs): after sessions are
//! cancelled, finish, expire or are retained and dropped, the process has exactly the
//! threads and file descriptors it had after the engine started, the VM-bytes gauge is
//! 0 and the table empties after retention.
//!
//! One test function only: thread counts are process-wide, and libtest runs the tests of
//! one binary on parallel threads.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_core::{
    CancelAck, CancelCode, CancelReason, EngineConfig, Outcome, Phase, SessionId, UntilPause,
};
use alc_engine::{Engine, PackageRoots};
use common::*;

fn count_dir(path: &str) -> usize {
    std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .count()
}

fn threads() -> usize {
    count_dir("/proc/self/task")
}

fn fds() -> usize {
    count_dir("/proc/self/fd")
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|v| v.parse().unwrap_or(0)))
        })
        .unwrap_or(0)
}

async fn until_empty(e: &Engine, what: &str) {
    let start = Instant::now();
    while e.stats().sessions > 0 {
        assert!(
            start.elapsed() < HANG,
            "{what}: {} sessions still hosted",
            e.stats().sessions
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn check_baseline(e: &Engine, what: &str, base_threads: usize, base_fds: usize) {
    // A session cancelled while queued is terminal at once; its stale queue entry is
    // dropped when a worker next pops it. Give the workers that moment (hang detector).
    let start = Instant::now();
    while (e.stats().queued > 0 || e.stats().vm_bytes > 0) && start.elapsed() < HANG {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(threads(), base_threads, "{what}: thread count");
    assert_eq!(fds(), base_fds, "{what}: open descriptors");
    assert_eq!(e.stats().vm_bytes, 0, "{what}: VM bytes");
    assert_eq!(e.stats().queued, 0, "{what}: run queue");
}

async fn spawn_all(
    e: &Engine,
    code: &str,
    n: usize,
    tweak: impl Fn(&mut alc_core::SessionSpec),
) -> Vec<SessionId> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let mut spec = code_spec(code, serde_json::json!({}));
        tweak(&mut spec);
        ids.push(e.spawn(spec).await.expect("spawn"));
    }
    ids
}

#[test]
fn resources_return_to_baseline() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = EngineConfig {
        workers: 2,
        retain_terminal_ms: 200,
        ..EngineConfig::default()
    };
    let e = engine_config(config, Arc::new(PackageRoots::default()));
    rt.block_on(async {
        // Warm up once (lazy statics, allocator arenas) before taking the baseline.
        let warm = e.spawn(code_spec("return 1", serde_json::json!({}))).await.unwrap();
        e.wait(&warm).await.unwrap();
        until_empty(&e, "warm-up").await;
        let base_threads = threads();
        let base_fds = fds();
        let base_rss = rss_kib();

        // 1. N paused, then cancelled.
        const N: usize = 1000;
        let ids = spawn_all(&e, "return alc.llm('hi')", N, |_| {}).await;
        for id in &ids {
            match tokio::time::timeout(HANG, e.run_until_pause(id, HANG)).await.unwrap().unwrap() {
                UntilPause::Paused { .. } => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(e.stats().vm_bytes > 0, "parked VMs are counted");
        assert_eq!(e.stats().sessions, N);
        let paused_rss = rss_kib();
        assert_eq!(threads(), base_threads, "paused sessions hold no thread");
        assert_eq!(fds(), base_fds, "paused sessions hold no descriptor");
        for id in &ids {
            assert_eq!(
                e.cancel(id, CancelReason::new(CancelCode::User)).await.unwrap(),
                CancelAck::Cancelled
            );
        }
        assert_eq!(e.stats().vm_bytes, 0, "cancel drops the VM at once");
        for id in &ids {
            match e.wait(id).await {
                Ok(t) => assert!(matches!(
                    t.outcome,
                    Outcome::Cancelled {
                        phase_before: Phase::Paused,
                        ..
                    }
                )),
                // Retention is short here: the earliest may already have left the table.
                Err(alc_core::WaitError::NotFound { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        check_baseline(&e, "paused+cancelled", base_threads, base_fds);
        until_empty(&e, "paused+cancelled").await;

        // 2. N spinning, then cancelled.
        let ids = spawn_all(&e, "local n = 0 while true do n = n + 1 end", 50, |_| {}).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        for id in &ids {
            let ack = e.cancel(id, CancelReason::new(CancelCode::User)).await.unwrap();
            assert!(matches!(ack, CancelAck::Cancelled | CancelAck::Requested), "{ack:?}");
        }
        for id in &ids {
            match tokio::time::timeout(HANG, e.wait(id)).await.unwrap() {
                Ok(t) => assert!(matches!(t.outcome, Outcome::Cancelled { .. }), "{:?}", t.outcome),
                Err(alc_core::WaitError::NotFound { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        check_baseline(&e, "spinning+cancelled", base_threads, base_fds);
        until_empty(&e, "spinning+cancelled").await;

        // 3. N finished, then retention-expired.
        let ids = spawn_all(&e, "local t = {} for i = 1, 100 do t[i] = i end return #t", 300, |_| {}).await;
        for id in &ids {
            match e.wait(id).await {
                Ok(t) => assert_eq!(completed(&t), serde_json::json!(100)),
                Err(alc_core::WaitError::NotFound { .. }) => {} // already retired
                Err(other) => panic!("{other:?}"),
            }
        }
        until_empty(&e, "finished+retired").await;
        check_baseline(&e, "finished+retired", base_threads, base_fds);

        // 4. N idle-expired (in-memory journal: Cancelled{expired}), then retired.
        let ids = spawn_all(&e, "return alc.llm('idle')", 300, |s| {
            s.limits.idle_ttl_ms = Some(100)
        })
        .await;
        for id in &ids {
            match e.wait(id).await {
                Ok(t) => match t.outcome {
                    Outcome::Cancelled { reason, .. } => assert_eq!(reason.code, CancelCode::Expired),
                    other => panic!("{other:?}"),
                },
                Err(alc_core::WaitError::NotFound { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        until_empty(&e, "idle-expired").await;
        check_baseline(&e, "idle-expired", base_threads, base_fds);

        eprintln!(
            "resources: RSS baseline {base_rss} KiB, with {N} paused {paused_rss} KiB, at the end {} KiB (reported, not asserted)",
            rss_kib()
        );
    });
    e.shutdown_now(alc_engine::ShutdownMode::Cancel);
}
