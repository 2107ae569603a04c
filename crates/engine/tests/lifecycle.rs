//! Lifecycle, resume validation, cancellation reasons, budget, visibility, retention,
//! limits, deadlines, idle TTL and metrics (engine.md §2, §5, §6, §9, §10).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_core::{
    Answer, Answers, CancelAck, CancelCode, CancelReason, EngineConfig, EventBody, FailureKind,
    ObserveItem, Outcome, Phase, QueryId, ResumeAck, ResumeError, SessionId, SnapshotOptions,
    StateError, Terminal, UntilPause,
};
use alc_engine::{Engine, HostServices, ManualClock, PackageRoots};
use common::*;

fn reason(code: CancelCode, detail: &str) -> CancelReason {
    CancelReason {
        code,
        detail: Some(detail.to_string()),
    }
}

fn qid(s: &str) -> QueryId {
    QueryId::parse(s).expect("valid query id")
}

fn answer(id: &str, text: &str) -> Answer {
    Answer::text(Some(qid(id)), text)
}

async fn wait_terminal(e: &Engine, id: &SessionId) -> Terminal {
    tokio::time::timeout(HANG, e.wait(id))
        .await
        .expect("session ended before the hang detector")
        .expect("wait succeeds")
}

async fn until_paused(e: &Engine, id: &SessionId) -> alc_core::Snapshot {
    match tokio::time::timeout(HANG, e.run_until_pause(id, HANG))
        .await
        .expect("no hang")
        .expect("session exists")
    {
        UntilPause::Paused { snapshot } => *snapshot,
        other => panic!("expected a pause, got {other:?}"),
    }
}

/// Polls `state` until the session reaches `phase` (hang detector only).
async fn until_phase(e: &Engine, id: &SessionId, phase: Phase) {
    let start = Instant::now();
    loop {
        let s = e.state(id, &SnapshotOptions::default()).expect("state");
        if s.phase == phase {
            return;
        }
        assert!(
            start.elapsed() < HANG,
            "session never reached {phase:?} (now {:?})",
            s.phase
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn cancelled(t: &Terminal) -> (CancelReason, Phase) {
    match &t.outcome {
        Outcome::Cancelled {
            reason,
            phase_before,
            ..
        } => (reason.clone(), *phase_before),
        other => panic!("expected a cancellation, got {other:?}"),
    }
}

fn failed_kind(t: &Terminal) -> FailureKind {
    match &t.outcome {
        Outcome::Failed { kind, .. } => *kind,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// An engine whose clock does not move, so snapshots taken at different moments compare equal.
fn frozen_engine() -> Engine {
    let services = HostServices {
        modules: Arc::new(PackageRoots::default()),
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        ..HostServices::default()
    };
    let config = EngineConfig {
        workers: 2,
        ..EngineConfig::default()
    };
    Engine::start_blocking(config, services).expect("engine starts")
}

// ---------------------------------------------------------------------------------------
// §10 item 2
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reg_resume_validation() {
    let e = frozen_engine();
    let code = r#"
        local a = alc.llm("one")
        local r = alc.llm_batch({ { prompt = "x" }, { prompt = "y" } })
        return a .. r[1] .. r[2]
    "#;
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    let s1 = until_paused(&e, &id).await;
    assert_eq!(s1.round, 1);
    let with_history = SnapshotOptions {
        include_history: true,
        history_limit: 100,
    };

    // Every rejected call leaves the snapshot (all fields, history included) unchanged.
    let check_rejected = |answers: Answers, expected: ResumeError| {
        let e = e.clone();
        let id = id.clone();
        let with_history = with_history.clone();
        async move {
            let before = e.state(&id, &SnapshotOptions::default()).unwrap();
            let before_h = e.state(&id, &with_history).unwrap();
            let got = e.resume(&id, answers).await;
            assert_eq!(got, Err(expected));
            assert_eq!(e.state(&id, &SnapshotOptions::default()).unwrap(), before);
            assert_eq!(e.state(&id, &with_history).unwrap(), before_h);
        }
    };

    // `q-7` on a one-query pause.
    check_rejected(
        Answers {
            round: Some(1),
            answers: vec![answer("q-7", "nope")],
        },
        ResumeError::UnknownQuery {
            query_id: "q-7".into(),
        },
    )
    .await;
    // Empty answers.
    check_rejected(
        Answers {
            round: Some(1),
            answers: vec![],
        },
        ResumeError::EmptyAnswers,
    )
    .await;
    // A round that was never issued.
    check_rejected(
        Answers {
            round: Some(5),
            answers: vec![answer("q-0", "A")],
        },
        ResumeError::StaleRound {
            given: 5,
            current: 1,
        },
    )
    .await;
    // A valid answer mixed with an unknown id: rejected whole, nothing applied.
    check_rejected(
        Answers {
            round: Some(1),
            answers: vec![answer("q-0", "A"), answer("q-3", "B")],
        },
        ResumeError::UnknownQuery {
            query_id: "q-3".into(),
        },
    )
    .await;
    let s = e.state(&id, &SnapshotOptions::default()).unwrap();
    assert!(s.pending.as_ref().unwrap().answered.is_empty());
    assert_eq!(s.metrics.total_response_chars, 0);

    let ack = e
        .resume(
            &id,
            Answers {
                round: Some(1),
                answers: vec![answer("q-0", "A")],
            },
        )
        .await
        .unwrap();
    assert_eq!(ack, ResumeAck::Continued { round: 1 });

    let s2 = until_paused(&e, &id).await;
    assert_eq!(s2.round, 2);
    assert_eq!(s2.pending.as_ref().unwrap().queries.len(), 2);

    // `round: 1` while round 2 is pending.
    check_rejected(
        Answers {
            round: Some(1),
            answers: vec![answer("q-0", "B")],
        },
        ResumeError::StaleRound {
            given: 1,
            current: 2,
        },
    )
    .await;

    // Partial answer: Accepted{remaining: 1}, still paused.
    let ack = e
        .resume(
            &id,
            Answers {
                round: Some(2),
                answers: vec![answer("q-0", "B")],
            },
        )
        .await
        .unwrap();
    assert_eq!(
        ack,
        ResumeAck::Accepted {
            round: 2,
            remaining: 1
        }
    );
    let s = e.state(&id, &SnapshotOptions::default()).unwrap();
    assert_eq!(s.phase, Phase::Paused);
    assert_eq!(s.pending.as_ref().unwrap().answered, vec![qid("q-0")]);

    // Rejections in a partially answered round change nothing either.
    check_rejected(
        Answers {
            round: Some(2),
            answers: vec![answer("q-9", "C")],
        },
        ResumeError::UnknownQuery {
            query_id: "q-9".into(),
        },
    )
    .await;
    check_rejected(
        Answers {
            round: Some(2),
            answers: vec![answer("q-0", "different")],
        },
        ResumeError::ConflictingAnswer {
            query_id: qid("q-0"),
        },
    )
    .await;
    check_rejected(
        Answers {
            round: Some(1),
            answers: vec![answer("q-1", "C")],
        },
        ResumeError::StaleRound {
            given: 1,
            current: 2,
        },
    )
    .await;

    let ack = e
        .resume(
            &id,
            Answers {
                round: Some(2),
                answers: vec![answer("q-1", "C")],
            },
        )
        .await
        .unwrap();
    assert_eq!(ack, ResumeAck::Continued { round: 2 });
    let t = wait_terminal(&e, &id).await;
    assert_eq!(completed(&t), serde_json::json!("ABC"));
    assert_eq!(t.metrics.rounds, 2);
    assert_eq!(t.metrics.llm_calls, 3);
    // Answering a finished session is refused.
    let late = e
        .resume(
            &id,
            Answers {
                round: Some(3),
                answers: vec![answer("q-0", "X")],
            },
        )
        .await;
    assert_eq!(
        late,
        Err(ResumeError::NotPaused {
            phase: Phase::Completed
        })
    );
}

// ---------------------------------------------------------------------------------------
// §10 item 5
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reg_cancel_reason_preserved_paused() {
    let e = engine();
    let id = e
        .spawn(code_spec("return alc.llm('x')", serde_json::json!({})))
        .await
        .unwrap();
    until_paused(&e, &id).await;
    let first = reason(CancelCode::User, "first");
    assert_eq!(
        e.cancel(&id, first.clone()).await.unwrap(),
        CancelAck::Cancelled
    );
    assert_eq!(
        e.cancel(&id, reason(CancelCode::Timeout, "second"))
            .await
            .unwrap(),
        CancelAck::AlreadyTerminal {
            phase: Phase::Cancelled
        }
    );
    let t = wait_terminal(&e, &id).await;
    assert_eq!(cancelled(&t), (first.clone(), Phase::Paused));
    let s = e.state(&id, &SnapshotOptions::default()).unwrap();
    assert_eq!(s.cancel, Some(first));
    assert!(s.pending.is_none());
}

#[tokio::test]
async fn reg_cancel_reason_preserved_queued() {
    // One worker held by a comparator that spins inside `table.sort` (not preemptible).
    let e = engine_with(1, Arc::new(PackageRoots::default()));
    let blocker = e
        .spawn(code_spec(
            "table.sort({3, 2, 1}, function(a, b) while true do end end) return 1",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    until_phase(&e, &blocker, Phase::Running).await;
    let id = e
        .spawn(code_spec("return 1", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(
        e.state(&id, &SnapshotOptions::default()).unwrap().phase,
        Phase::Queued
    );
    let first = reason(CancelCode::ClientCancelled, "first");
    assert_eq!(
        e.cancel(&id, first.clone()).await.unwrap(),
        CancelAck::Cancelled
    );
    assert_eq!(
        e.cancel(&id, reason(CancelCode::User, "second"))
            .await
            .unwrap(),
        CancelAck::AlreadyTerminal {
            phase: Phase::Cancelled
        }
    );
    let t = wait_terminal(&e, &id).await;
    assert_eq!(cancelled(&t), (first, Phase::Queued));

    // The blocker is cancellable too, and the stale queue entry of the cancelled
    // session is dropped without running it.
    e.cancel(&blocker, reason(CancelCode::User, "blocker"))
        .await
        .unwrap();
    let tb = wait_terminal(&e, &blocker).await;
    assert_eq!(cancelled(&tb).1, Phase::Running);
    let after = e
        .spawn(code_spec("return 'free'", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(
        completed(&wait_terminal(&e, &after).await),
        serde_json::json!("free")
    );
    assert_eq!(
        e.state(&id, &SnapshotOptions::default()).unwrap().phase,
        Phase::Cancelled
    );
}

#[tokio::test]
async fn reg_cancel_reason_preserved_running() {
    let e = engine();
    let id = e
        .spawn(code_spec("while true do end", serde_json::json!({})))
        .await
        .unwrap();
    until_phase(&e, &id, Phase::Running).await;
    let first = reason(CancelCode::User, "first");
    assert_eq!(
        e.cancel(&id, first.clone()).await.unwrap(),
        CancelAck::Requested
    );
    let second = e
        .cancel(&id, reason(CancelCode::Shutdown, "second"))
        .await
        .unwrap();
    assert!(
        matches!(
            second,
            CancelAck::Requested
                | CancelAck::AlreadyTerminal {
                    phase: Phase::Cancelled
                }
        ),
        "{second:?}"
    );
    let t = wait_terminal(&e, &id).await;
    assert_eq!(cancelled(&t), (first, Phase::Running));
    // Exactly one cancel_requested event, carrying the first reason.
    let mut stream = e.observe(&id, 1).unwrap();
    let mut requested = Vec::new();
    while let Some(item) = stream.next().await {
        if let ObserveItem::Event { event } = item {
            if let EventBody::CancelRequested { reason } = event.body {
                requested.push(reason);
            }
        }
    }
    assert_eq!(requested, vec![reason(CancelCode::User, "first")]);
}

// ---------------------------------------------------------------------------------------
// §10 item 6
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reg_budget_single_call() {
    let e = engine();
    let code = r#"
        local a = alc.llm("one")
        local ok, err = pcall(alc.llm, "two")
        return { a = a, ok = ok, err = err }
    "#;
    let (t, pauses) = run_code_ctx(
        &e,
        code,
        serde_json::json!({"budget": {"max_llm_calls": 1}}),
    )
    .await;
    assert_eq!(pauses.len(), 1);
    assert_eq!(
        completed(&t),
        serde_json::json!({
            "a": "A1",
            "ok": false,
            "err": "budget_exceeded: max_llm_calls (1) reached (1 used)"
        })
    );
    assert_eq!(t.metrics.llm_calls, 1);

    // Uncaught, it fails the session with kind budget_exceeded.
    let (t, _) = run_code_ctx(
        &e,
        "alc.llm('one') return alc.llm('two')",
        serde_json::json!({"budget": {"max_llm_calls": 1}}),
    )
    .await;
    let (kind, message) = failed(&t);
    assert_eq!(kind, "budget_exceeded");
    assert!(
        message.ends_with("budget_exceeded: max_llm_calls (1) reached (1 used)"),
        "{message}"
    );
}

#[tokio::test]
async fn reg_budget_batch_rejected_whole() {
    let e = engine();
    let code = r#"
        local ok, err = pcall(alc.llm_batch, { { prompt = "a" }, { prompt = "b" }, { prompt = "c" } })
        local two = alc.llm_batch({ { prompt = "a" }, { prompt = "b" } })
        return { ok = ok, err = err, two = two }
    "#;
    let (t, pauses) = run_code_ctx(
        &e,
        code,
        serde_json::json!({"budget": {"max_llm_calls": 2}}),
    )
    .await;
    assert_eq!(pauses.len(), 1, "the rejected batch never paused");
    assert_eq!(pauses[0].len(), 2);
    assert_eq!(
        completed(&t),
        serde_json::json!({
            "ok": false,
            "err": "budget_exceeded: max_llm_calls (2) would be exceeded by a batch of 3 (0 used)",
            "two": ["A1", "A2"]
        })
    );
    assert_eq!(t.metrics.llm_calls, 2);
}

// ---------------------------------------------------------------------------------------
// §10 item 9
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_always_visible() {
    let e = engine();
    let code = r#"
        local acc = 0
        for i = 1, 60 do
          local s = alc.llm("p" .. i)
          acc = acc + #s
          for j = 1, 2000 do acc = acc + 0 end
        end
        return acc
    "#;
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let e = e.clone();
        let id = id.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut polls = 0u64;
            let mut last_version = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = e
                    .state(&id, &SnapshotOptions::default())
                    .expect("a live session is always visible");
                assert!(s.version >= last_version, "version never goes back");
                last_version = s.version;
                e.observe(&id, 0).expect("observe never fails spuriously");
                polls += 1;
                tokio::task::yield_now().await;
            }
            polls
        })
    };
    // A live observer from the start sees every event exactly once, in order.
    let live = {
        let mut stream = e.observe(&id, 1).unwrap();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            while let Some(item) = stream.next().await {
                match item {
                    ObserveItem::Event { event } => seqs.push(event.seq),
                    ObserveItem::Gap { from_seq, to_seq } => {
                        seqs.extend(from_seq..=to_seq);
                    }
                }
            }
            seqs
        })
    };
    let (t, pauses) = drive(&e, &id, |q| Answer::text(None, prompt_of(q))).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(poller.await.unwrap() > 0);
    assert_eq!(pauses.len(), 60);
    let expected: i64 = (1..=60).map(|i: i64| format!("p{i}").len() as i64).sum();
    assert_eq!(completed(&t), serde_json::json!(expected));
    let live_seqs = tokio::time::timeout(HANG, live).await.unwrap().unwrap();
    let last = e
        .state(&id, &SnapshotOptions::default())
        .unwrap()
        .last_event_seq;
    assert_eq!(live_seqs, (1..=last).collect::<Vec<_>>());

    // A late subscriber (after the end) from seq 1 gets every buffered event and the
    // stream ends after `terminal`.
    let short = e
        .spawn(code_spec(
            "local a = alc.llm('x') return a",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    let (t2, _) = drive(&e, &short, |_| Answer::text(None, "y")).await;
    assert_eq!(completed(&t2), serde_json::json!("y"));
    let mut stream = e.observe(&short, 1).unwrap();
    let mut events = Vec::new();
    while let Some(item) = tokio::time::timeout(HANG, stream.next()).await.unwrap() {
        match item {
            ObserveItem::Event { event } => events.push(event),
            ObserveItem::Gap { .. } => panic!("nothing was evicted from a short session"),
        }
    }
    let seqs: Vec<u64> = events.iter().map(|ev| ev.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert!(matches!(events[0].body, EventBody::Created { .. }));
    assert!(matches!(
        events.last().unwrap().body,
        EventBody::Terminal { .. }
    ));
    assert_eq!(
        events
            .iter()
            .filter(|ev| matches!(ev.body, EventBody::Terminal { .. }))
            .count(),
        1
    );
    assert!(events
        .iter()
        .any(|ev| matches!(ev.body, EventBody::Paused { round: 1, .. })));
    // A subscriber from "next" after the end gets nothing and ends at once? It waits for
    // future events, so only check that it is accepted.
    let next = events.last().unwrap().seq + 1;
    assert!(e.observe(&short, next).is_ok());
    assert!(e.observe(&short, next + 1).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_concurrent_waits_same_terminal() {
    let e = engine();
    let id = e
        .spawn(code_spec(
            "return alc.llm('x') .. '!'",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    let mut waiters = Vec::new();
    for _ in 0..16 {
        let e = e.clone();
        let id = id.clone();
        waiters.push(tokio::spawn(async move { wait_terminal(&e, &id).await }));
    }
    let s = until_paused(&e, &id).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    e.resume(
        &id,
        Answers {
            round: Some(s.round),
            answers: vec![answer("q-0", "hi")],
        },
    )
    .await
    .unwrap();
    let mut terminals = Vec::new();
    for w in waiters {
        terminals.push(w.await.unwrap());
    }
    assert_eq!(completed(&terminals[0]), serde_json::json!("hi!"));
    for t in &terminals {
        assert_eq!(t, &terminals[0]);
    }
    // And once more after the end.
    assert_eq!(wait_terminal(&e, &id).await, terminals[0]);
}

// ---------------------------------------------------------------------------------------
// §10 item 10
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reg_finished_sessions_queryable() {
    let e = engine();
    let id = e
        .spawn(code_spec("return {n = 7}", serde_json::json!({})))
        .await
        .unwrap();
    let t = wait_terminal(&e, &id).await;
    assert_eq!(completed(&t), serde_json::json!({"n": 7}));
    let s = e.state(&id, &SnapshotOptions::default()).unwrap();
    assert_eq!(s.phase, Phase::Completed);
    assert_eq!(s.outcome, Some(t.outcome.clone()));
    assert_eq!(s.metrics.pauses, 0);
    assert_eq!(e.stats().sessions, 1);
    match e.run_until_pause(&id, HANG).await.unwrap() {
        UntilPause::Terminal { terminal } => assert_eq!(*terminal, t),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_finished_sessions_leave_after_retention() {
    let config = EngineConfig {
        workers: 2,
        retain_terminal_ms: 50,
        ..EngineConfig::default()
    };
    let e = engine_config(config, Arc::new(PackageRoots::default()));
    let mut ids = Vec::new();
    for i in 0..1000 {
        ids.push(
            e.spawn(code_spec(&format!("return {i}"), serde_json::json!({})))
                .await
                .unwrap(),
        );
    }
    // Each one either completed (and can be waited for) or already left the table.
    for (i, id) in ids.iter().enumerate() {
        match e.wait(id).await {
            Ok(t) => assert_eq!(completed(&t), serde_json::json!(i)),
            Err(alc_core::WaitError::NotFound { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    let start = Instant::now();
    while e.stats().sessions > 0 {
        assert!(
            start.elapsed() < HANG,
            "{} sessions still hosted",
            e.stats().sessions
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for id in &ids {
        assert!(matches!(
            e.state(id, &SnapshotOptions::default()),
            Err(StateError::NotFound { .. })
        ));
    }
    assert_eq!(e.stats().vm_bytes, 0);
}

#[tokio::test]
async fn reg_retained_terminal_cap() {
    let config = EngineConfig {
        workers: 2,
        max_retained_terminal: 5,
        ..EngineConfig::default()
    };
    let e = engine_config(config, Arc::new(PackageRoots::default()));
    let mut ids = Vec::new();
    for _ in 0..20 {
        let id = e
            .spawn(code_spec("return 1", serde_json::json!({})))
            .await
            .unwrap();
        wait_terminal(&e, &id).await;
        ids.push(id);
    }
    // Eviction happens right after the terminal transition is published.
    let start = Instant::now();
    while e.stats().sessions != 5 {
        assert!(start.elapsed() < HANG, "{} sessions", e.stats().sessions);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let present: Vec<usize> = (0..20)
        .filter(|&i| e.state(&ids[i], &SnapshotOptions::default()).is_ok())
        .collect();
    assert_eq!(present, vec![15, 16, 17, 18, 19]);
    assert!(e.state(&ids[0], &SnapshotOptions::default()).is_err());
}

// ---------------------------------------------------------------------------------------
// §10 item 12
// ---------------------------------------------------------------------------------------

fn id_shape_ok(s: &str) -> bool {
    s.len() == 34
        && s.starts_with("s-")
        && s[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[tokio::test]
async fn reg_ids_unpredictable() {
    // One worker held in a non-preemptible comparator: the spawned sessions stay queued
    // (no VM is built) and are cancelled in batches; a small retention cap keeps the
    // table small.
    let config = EngineConfig {
        workers: 1,
        max_retained_terminal: 16,
        ..EngineConfig::default()
    };
    let e = engine_config(config, Arc::new(PackageRoots::default()));
    let blocker = e
        .spawn(code_spec(
            "table.sort({3, 2, 1}, function(a, b) while true do end end)",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    until_phase(&e, &blocker, Phase::Running).await;
    const N: usize = 100_000;
    let mut seen = HashSet::with_capacity(N);
    let mut order = Vec::with_capacity(N);
    let spec = code_spec("return 1", serde_json::json!({}));
    let mut batch = Vec::with_capacity(1000);
    for _ in 0..N / 1000 {
        for _ in 0..1000 {
            batch.push(e.spawn_now(spec.clone()).unwrap());
        }
        for id in batch.drain(..) {
            assert_eq!(
                e.cancel_now(&id, CancelReason::new(CancelCode::User))
                    .unwrap(),
                CancelAck::Cancelled
            );
            assert!(id_shape_ok(id.as_str()), "bad id {id}");
            assert!(seen.insert(id.as_str().to_string()), "duplicate id {id}");
            order.push(id.as_str().to_string());
        }
    }
    assert_eq!(seen.len(), N);
    // Not ordered by creation time.
    let mut sorted = order.clone();
    sorted.sort();
    assert_ne!(sorted, order);
    let ascending = order.windows(2).filter(|w| w[0] < w[1]).count();
    assert!(
        ascending > N / 4 && ascending < 3 * N / 4,
        "{ascending} ascending pairs"
    );
    e.cancel_now(&blocker, CancelReason::new(CancelCode::User))
        .unwrap();
    wait_terminal(&e, &blocker).await;
    assert!(e.stats().sessions <= 16);
}

// ---------------------------------------------------------------------------------------
// §10 item 15
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reg_error_names_user_chunk() {
    let e = engine();
    let code = "local x = 1\nlocal y = x + 1\nerror(\"boom\")\nreturn y\n";
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    let t = wait_terminal(&e, &id).await;
    match &t.outcome {
        Outcome::Failed {
            kind,
            message,
            traceback,
            ..
        } => {
            assert_eq!(*kind, FailureKind::LuaError);
            assert_eq!(message, "session:3: boom");
            let tb = traceback.as_deref().expect("a traceback");
            assert!(!tb.contains("boom"), "traceback is separate: {tb}");
            assert!(tb.contains("session:3"), "{tb}");
            for host_path in [".rs", "/work", "src/", "sandbox.lua", "alc.lua", "/home"] {
                assert!(!tb.contains(host_path), "host path {host_path} in {tb}");
            }
        }
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// §10 item 16
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_limits_out_of_memory_isolated() {
    let e = engine();
    let bomb = e
        .spawn(code_spec(
            "local s = string.rep('x', 1 << 30) return #s",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    let normal = e
        .spawn(code_spec(
            "local t = {} for i = 1, 3 do t[i] = alc.llm('q' .. i) end return table.concat(t, ',')",
            serde_json::json!({}),
        ))
        .await
        .unwrap();
    let (tn, _) = drive(&e, &normal, |q| Answer::text(None, prompt_of(q))).await;
    let tb = wait_terminal(&e, &bomb).await;
    assert_eq!(failed_kind(&tb), FailureKind::OutOfMemory);
    assert_eq!(completed(&tn), serde_json::json!("q1,q2,q3"));

    // A memory error is catchable; the session then goes on normally.
    let (t, _) = run_code(
        &e,
        "local ok = pcall(string.rep, 'x', 1 << 30) return {ok = ok, a = alc.llm('x')}",
    )
    .await;
    assert_eq!(completed(&t), serde_json::json!({"ok": false, "a": "A1"}));
}

#[tokio::test]
async fn reg_limits_cpu() {
    let e = engine();
    let mut spec = code_spec("while true do end", serde_json::json!({}));
    spec.limits.cpu_ms = Some(200);
    let id = e.spawn(spec).await.unwrap();
    let t = wait_terminal(&e, &id).await;
    assert_eq!(failed_kind(&t), FailureKind::CpuLimit);
    assert_eq!(t.outcome.failure_wire_code(), Some("timeout"));
    assert_eq!(failed(&t).0, "timeout");

    // CPU time accumulates across pauses: 3 × ~100 ms of spinning with pauses between.
    let mut spec = code_spec(
        r#"
        for i = 1, 10 do
          local t0 = os.clock()
          while os.clock() - t0 < 0.1 do end
          alc.llm("p" .. i)
        end
        return "done"
        "#,
        serde_json::json!({}),
    );
    spec.limits.cpu_ms = Some(250);
    let id = e.spawn(spec).await.unwrap();
    let (t, pauses) = drive(&e, &id, |_| Answer::text(None, "a")).await;
    assert_eq!(failed_kind(&t), FailureKind::CpuLimit);
    assert!(pauses.len() >= 2 && pauses.len() < 10, "{}", pauses.len());
}

#[tokio::test]
async fn reg_limits_run_until_pause_times_out() {
    let e = engine();
    let code = r#"
        local t0 = os.clock()
        while os.clock() - t0 < 2 do end
        return alc.llm("after the loop")
    "#;
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    match e
        .run_until_pause(&id, Duration::from_millis(100))
        .await
        .unwrap()
    {
        UntilPause::Running { snapshot } => {
            assert!(matches!(snapshot.phase, Phase::Running | Phase::Queued));
        }
        other => panic!("expected running, got {other:?}"),
    }
    let s = until_paused(&e, &id).await;
    assert_eq!(
        prompt_of(&s.pending.as_ref().unwrap().queries[0]),
        "after the loop"
    );
    e.cancel(&id, CancelReason::new(CancelCode::User))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// §10 item 17, deadlines
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reg_idle_ttl_memory_journal() {
    let e = engine();
    let mut spec = code_spec("return alc.llm('x')", serde_json::json!({}));
    spec.limits.idle_ttl_ms = Some(100);
    let id = e.spawn(spec).await.unwrap();
    until_paused(&e, &id).await;
    let t = wait_terminal(&e, &id).await;
    let (reason, before) = cancelled(&t);
    assert_eq!(reason.code, CancelCode::Expired);
    assert_eq!(before, Phase::Paused);

    // A session answered within its TTL is not expired; the TTL restarts at each pause.
    let mut spec = code_spec(
        "local a = alc.llm('x') local b = alc.llm('y') return a .. b",
        serde_json::json!({}),
    );
    spec.limits.idle_ttl_ms = Some(2_000);
    let id = e.spawn(spec).await.unwrap();
    let (t, _) = drive(&e, &id, |q| Answer::text(None, prompt_of(q))).await;
    assert_eq!(completed(&t), serde_json::json!("xy"));
}

#[tokio::test]
async fn deadline_on_paused_session() {
    let e = engine();
    let mut spec = code_spec("return alc.llm('x')", serde_json::json!({}));
    spec.limits.deadline_ms = Some(200);
    let id = e.spawn(spec).await.unwrap();
    until_paused(&e, &id).await;
    let t = wait_terminal(&e, &id).await;
    assert_eq!(failed_kind(&t), FailureKind::Timeout);
    assert_eq!(
        e.state(&id, &SnapshotOptions::default()).unwrap().phase,
        Phase::Failed
    );
}

#[tokio::test]
async fn deadline_on_spinning_session() {
    let e = engine_with(1, Arc::new(PackageRoots::default()));
    let mut spec = code_spec(
        "while true do pcall(function() while true do end end) end",
        serde_json::json!({}),
    );
    spec.limits.deadline_ms = Some(200);
    let id = e.spawn(spec).await.unwrap();
    let t = wait_terminal(&e, &id).await;
    assert_eq!(failed_kind(&t), FailureKind::Timeout);
    // The single worker is free again.
    let id = e
        .spawn(code_spec("return 2", serde_json::json!({})))
        .await
        .unwrap();
    assert_eq!(
        completed(&wait_terminal(&e, &id).await),
        serde_json::json!(2)
    );
}

// ---------------------------------------------------------------------------------------
// metrics
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_after_run() {
    let e = engine();
    let code = r#"
        local a = alc.llm("one")
        local b = alc.llm("two")
        local r = alc.llm_batch({ { prompt = "x" }, { prompt = "y" } })
        return a .. b .. r[1] .. r[2]
    "#;
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    let mut n = 0;
    let (t, pauses) = drive(&e, &id, |_| {
        n += 1;
        let mut a = Answer::text(None, "r".repeat(n));
        a.meta.answerer = Some(if n % 2 == 0 { "even" } else { "odd" }.into());
        a
    })
    .await;
    assert_eq!(completed(&t), serde_json::json!("rrrrrrrrrr"));
    assert_eq!(pauses.len(), 3);
    let m = &t.metrics;
    assert_eq!(m.llm_calls, 4);
    assert_eq!(m.pauses, 3);
    assert_eq!(m.rounds, 3);
    assert_eq!(m.total_response_chars, 1 + 2 + 3 + 4);
    assert_eq!(m.total_prompt_chars, 3 + 3 + 1 + 1);
    assert_eq!(m.answered_by.get("odd"), Some(&2));
    assert_eq!(m.answered_by.get("even"), Some(&2));
    assert_eq!(m.answered_by.len(), 2);
    assert_eq!(
        e.state(&id, &SnapshotOptions::default()).unwrap().metrics,
        t.metrics
    );
}

#[tokio::test]
async fn cpu_ms_adds_up_over_short_steps() {
    // 200 steps of ~0.4 ms each: whole-millisecond truncation per step would report 0.
    let e = engine();
    let code = r#"
        for i = 1, 200 do
          local t0 = os.clock()
          while os.clock() - t0 < 0.0004 do end
          alc.llm("p")
        end
        return "ok"
    "#;
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    let (t, _) = drive(&e, &id, |_| Answer::text(None, "a")).await;
    assert_eq!(completed(&t), serde_json::json!("ok"));
    assert!(t.metrics.cpu_ms >= 60, "cpu_ms = {}", t.metrics.cpu_ms);

    // And the CPU limit sees that time: 0.4 ms steps against a 30 ms limit.
    let mut spec = code_spec(code, serde_json::json!({}));
    spec.limits.cpu_ms = Some(30);
    let id = e.spawn(spec).await.unwrap();
    let (t, pauses) = drive(&e, &id, |_| Answer::text(None, "a")).await;
    let (code, message) = failed(&t);
    assert_eq!(code, "timeout");
    assert!(message.contains("30 ms"), "{message}");
    assert!(pauses.len() < 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_waiters_of_open_sessions() {
    let e = engine();
    let id = e
        .spawn(code_spec("return alc.llm('x')", serde_json::json!({})))
        .await
        .unwrap();
    until_paused(&e, &id).await;
    let waiter = {
        let e = e.clone();
        let id = id.clone();
        tokio::spawn(async move { e.wait(&id).await })
    };
    let pauser = {
        let e = e.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut s = e.observe(&id, 0).unwrap();
            let mut n = 0;
            while s.next().await.is_some() {
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = tokio::task::spawn_blocking({
        let e = e.clone();
        move || e.shutdown_now(alc_engine::ShutdownMode::Drain)
    })
    .await
    .unwrap();
    assert_eq!(report.lost, 1);
    let w = tokio::time::timeout(HANG, waiter)
        .await
        .expect("waiter released")
        .unwrap();
    assert_eq!(w, Err(alc_core::WaitError::ShuttingDown));
    let n = tokio::time::timeout(HANG, pauser)
        .await
        .expect("observer released")
        .unwrap();
    assert!(n >= 3, "buffered events delivered before the end");
    assert!(matches!(
        e.run_until_pause(&id, HANG).await,
        Ok(UntilPause::Paused { .. })
    ));
    assert!(matches!(
        e.spawn(code_spec("return 1", serde_json::json!({}))).await,
        Err(alc_core::SpawnError::ShuttingDown)
    ));
}

#[tokio::test]
async fn a_session_parks_without_its_garbage() {
    // Each round leaves about 32 KB of garbage: the 1,024-slot array of the round before
    // and the smaller ones it grew through. The collection before parking takes it once
    // the heap grew by 16 KiB (`gc_park_growth_bytes`).
    let e = engine();
    let code = "for r = 1, 4 do local t = {} for i = 1, 1000 do t[i] = i end alc.llm('r') end \
                return 1";
    let id = e
        .spawn(code_spec(code, serde_json::json!({})))
        .await
        .unwrap();
    let first = until_paused(&e, &id).await.metrics.vm_bytes;
    for round in 2..=4 {
        e.resume(
            &id,
            Answers {
                round: None,
                answers: vec![answer("q-0", "a")],
            },
        )
        .await
        .unwrap();
        let parked = until_paused(&e, &id).await.metrics.vm_bytes;
        assert!(
            parked <= first + 16 * 1024,
            "round {round}: parked with {parked} bytes, {first} at the first pause"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Session ids
// ---------------------------------------------------------------------------------------

/// A session id starts with its creation time in milliseconds (12 hex digits), so ids made
/// later sort later; the other 20 digits are random.
#[tokio::test]
async fn session_ids_carry_their_creation_time_and_sort_by_it() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let services = HostServices {
        modules: Arc::new(PackageRoots::default()),
        clock: clock.clone(),
        ..HostServices::default()
    };
    let e = Engine::start_blocking(EngineConfig::default(), services).expect("engine starts");
    let spec = code_spec("return 1", serde_json::json!({}));
    let a = e.spawn_now(spec.clone()).expect("spawns");
    let b = e.spawn_now(spec.clone()).expect("spawns");
    clock.advance(1);
    let c = e.spawn_now(spec).expect("spawns");
    let prefix = format!("s-{:012x}", 1_700_000_000_000u64);
    assert!(a.as_str().starts_with(&prefix), "{a} starts with {prefix}");
    assert!(b.as_str().starts_with(&prefix), "{b} starts with {prefix}");
    assert_ne!(
        a, b,
        "ids made in the same millisecond differ in their random part"
    );
    assert!(c
        .as_str()
        .starts_with(&format!("s-{:012x}", 1_700_000_000_001u64)));
    assert!(a < c && b < c, "a later id sorts later: {a} {b} {c}");
    assert_eq!(SessionId::parse(c.as_str()).expect("a valid id"), c);
    for id in [a, b, c] {
        assert!(matches!(
            wait_terminal(&e, &id).await.outcome,
            Outcome::Completed { .. }
        ));
    }
}
