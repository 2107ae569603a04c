//! An idle engine wakes nobody (Linux procfs): after 100 ms with no step running, the
//! watchdog sleeps until a step starts, and a step started then is still watched (its CPU
//! limit ends it).
//!
//! One test function only: it reads the switch count of the process's one `alc-watchdog`
//! thread, and libtest runs the tests of one binary on parallel threads.

mod common;

use std::time::{Duration, Instant};

use alc_core::UntilPause;
use common::*;

/// Voluntary context switches of the thread named `name` (exactly one must exist).
fn switches_of(name: &str) -> u64 {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("procfs") {
        let dir = entry.expect("task entry").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let status = std::fs::read_to_string(dir.join("status")).expect("task status");
        let n = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .expect("switch count")
            .trim()
            .parse::<u64>()
            .expect("a number");
        found.push(n);
    }
    assert_eq!(found.len(), 1, "threads named {name}: {found:?}");
    found[0]
}

#[test]
fn an_idle_watchdog_sleeps_and_the_next_step_wakes_it() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = engine();
    rt.block_on(async {
        let (t, _) = run_code(&e, "return 1").await;
        assert_eq!(completed(&t), serde_json::json!(1));

        for round in 0..2 {
            // Past the 100 ms of empty polls, the watchdog sleeps: wait until it has been
            // still for 200 ms (however long a loaded machine makes its polls), then over
            // a whole second it wakes at most once, where polling every 5 ms would be
            // about 200 times.
            let settling = Instant::now();
            loop {
                let before = switches_of("alc-watchdog");
                tokio::time::sleep(Duration::from_millis(200)).await;
                if switches_of("alc-watchdog") == before {
                    break;
                }
                assert!(
                    settling.elapsed() < HANG,
                    "round {round}: the idle watchdog never fell asleep"
                );
            }
            let before = switches_of("alc-watchdog");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let woke = switches_of("alc-watchdog") - before;
            assert!(
                woke <= 1,
                "round {round}: the idle watchdog woke {woke} times in 1 s"
            );

            // A lone step started now is still watched: only the watchdog ends a CPU
            // limit, so without the wake-up this would spin until the hang detector.
            let mut spec = code_spec("while true do end", serde_json::json!({}));
            spec.limits.cpu_ms = Some(50);
            let id = e.spawn(spec).await.unwrap();
            let t = match e.run_until_pause(&id, HANG).await.unwrap() {
                UntilPause::Terminal { terminal } => terminal,
                other => panic!("round {round}: the spinning step was not stopped: {other:?}"),
            };
            assert_eq!(failed(&t).0, "timeout", "round {round}");
        }
    });
}
