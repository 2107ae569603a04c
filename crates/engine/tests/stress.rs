//! Resume race under load (engine.md §10 item 1, §12.2), scaled for a debug build on two
//! cores: many sessions of sequential `alc.llm` calls answered the instant each pause
//! appears by concurrent answerers (some racing each other with identical answers),
//! while pollers hammer `state`/`observe` and a canceller cancels ~10 % of the sessions
//! at random moments. A watchdog fails the test when nothing progresses.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_core::{
    Answer, Answers, CancelAck, CancelCode, CancelReason, EventBody, ObserveItem, Outcome, Phase,
    ResumeAck, ResumeError, SessionId, SnapshotOptions, UntilPause,
};
use alc_engine::{Engine, PackageRoots};
use common::*;

const SESSIONS: usize = 250;
const CALLS: u64 = 150;
const STALL: Duration = Duration::from_secs(30);

const CODE: &str = r#"
local k = ctx.k
local acc = 0
for i = 1, ctx.calls do
  local s = alc.llm(k .. ":" .. i)
  acc = acc + tonumber(s)
end
return acc
"#;

/// The answer to prompt `k:i`: `k + i`.
fn answer_for(prompt: &str) -> String {
    let (k, i) = prompt.split_once(':').expect("prompt k:i");
    (k.parse::<u64>().unwrap() + i.parse::<u64>().unwrap()).to_string()
}

fn expected(k: u64) -> u64 {
    CALLS * k + CALLS * (CALLS + 1) / 2
}

struct Shared {
    engine: Engine,
    progress: AtomicU64,
    done: AtomicBool,
}

/// Answers the session's pauses as soon as `run_until_pause` reports them.
async fn drive_until_pause(sh: Arc<Shared>, id: SessionId) {
    loop {
        let until = sh
            .engine
            .run_until_pause(&id, Duration::from_secs(5))
            .await
            .expect("a live session is always found");
        let snapshot = match until {
            UntilPause::Terminal { .. } => return,
            UntilPause::Running { .. } => continue,
            UntilPause::Paused { snapshot } => snapshot,
        };
        answer_pause(&sh, &id, &snapshot).await;
    }
}

/// Answers the session's pauses from its event stream (`paused` events).
async fn drive_observe(sh: Arc<Shared>, id: SessionId) {
    let mut stream = sh.engine.observe(&id, 1).expect("observe");
    while let Some(item) = stream.next().await {
        match item {
            ObserveItem::Event { event } => {
                if let EventBody::Paused { round, queries } = event.body {
                    let answers: Vec<Answer> = queries
                        .iter()
                        .map(|q| Answer::text(Some(q.id.clone()), answer_for(&prompt_of(q))))
                        .collect();
                    submit(&sh, &id, round, answers).await;
                }
            }
            ObserveItem::Gap { .. } => {
                // A gap may hide the current pause: fall back to the snapshot.
                let s = sh
                    .engine
                    .state(&id, &SnapshotOptions::default())
                    .expect("state");
                if s.phase == Phase::Paused {
                    answer_pause(&sh, &id, &s).await;
                }
            }
        }
    }
}

async fn answer_pause(sh: &Shared, id: &SessionId, s: &alc_core::Snapshot) {
    let batch = s.pending.as_ref().expect("paused snapshot has a batch");
    let answers: Vec<Answer> = batch
        .queries
        .iter()
        .map(|q| Answer::text(Some(q.id.clone()), answer_for(&prompt_of(q))))
        .collect();
    submit(sh, id, batch.round, answers).await;
}

async fn submit(sh: &Shared, id: &SessionId, round: u64, answers: Vec<Answer>) {
    let r = sh
        .engine
        .resume(
            id,
            Answers {
                round: Some(round),
                answers,
            },
        )
        .await;
    match r {
        Ok(ResumeAck::Continued { round: r }) => {
            assert_eq!(r, round);
            sh.progress.fetch_add(1, Ordering::Relaxed);
        }
        Ok(other) => panic!("single-query round answered partially: {other:?}"),
        // Another answerer got there first (the session moved on), or it was cancelled.
        Err(ResumeError::StaleRound { given, current }) => assert!(given < current),
        Err(ResumeError::NotPaused { phase }) => {
            // Legitimate only when terminal, or when our round is older than the last
            // completed one (rule 6 covers the retry of the *last* completing call only).
            if !phase.is_terminal() {
                let now = sh
                    .engine
                    .state(id, &SnapshotOptions::default())
                    .expect("state");
                assert!(
                    now.round > round || now.phase.is_terminal(),
                    "a retry of the last completing answers (round {round}) must be \
                     `Continued`, got NotPaused({phase:?}); now round {}",
                    now.round
                );
            }
        }
        Err(e) => panic!("unexpected resume error: {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reg_resume_race_scaled() {
    let e = engine_with(2, Arc::new(PackageRoots::default()));
    let sh = Arc::new(Shared {
        engine: e.clone(),
        progress: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let started = Instant::now();
    let mut ids = Vec::new();
    for k in 0..SESSIONS as u64 {
        let id = e
            .spawn(code_spec(CODE, serde_json::json!({"k": k, "calls": CALLS})))
            .await
            .unwrap();
        ids.push(id);
    }

    // Answerers: sessions 0 mod 3 by run_until_pause, 1 mod 3 by observe, 2 mod 3 by both
    // at once (racing with identical answers).
    let mut drivers = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        if k % 3 != 1 {
            drivers.push(tokio::spawn(drive_until_pause(sh.clone(), id.clone())));
        }
        if k % 3 != 0 {
            drivers.push(tokio::spawn(drive_observe(sh.clone(), id.clone())));
        }
    }

    // Canceller: ~10 % of the sessions at random moments.
    let to_cancel: HashSet<usize> = {
        let mut set = HashSet::new();
        while set.len() < SESSIONS / 10 {
            set.insert((rand::random::<u64>() % SESSIONS as u64) as usize);
        }
        set
    };
    let canceller = {
        let sh = sh.clone();
        let targets: Vec<(usize, SessionId)> =
            to_cancel.iter().map(|&k| (k, ids[k].clone())).collect();
        tokio::spawn(async move {
            let mut acks = HashMap::new();
            for (k, id) in targets {
                let delay = rand::random::<u64>() % 400;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let ack = sh
                    .engine
                    .cancel(
                        &id,
                        CancelReason {
                            code: CancelCode::User,
                            detail: Some(format!("stress {k}")),
                        },
                    )
                    .await
                    .expect("cancel");
                acks.insert(k, ack);
            }
            acks
        })
    };

    // Pollers: state never NotFound, versions never go back, observe never fails.
    let mut pollers = Vec::new();
    for p in 0..2 {
        let sh = sh.clone();
        let ids = ids.clone();
        pollers.push(tokio::spawn(async move {
            let mut versions = vec![0u64; ids.len()];
            let mut rounds = 0u64;
            while !sh.done.load(Ordering::Relaxed) {
                for (k, id) in ids.iter().enumerate() {
                    let s = sh
                        .engine
                        .state(id, &SnapshotOptions::default())
                        .expect("state never NotFound for a live session");
                    assert!(s.version >= versions[k], "version went back");
                    versions[k] = s.version;
                    assert_eq!(s.pending.is_some(), s.phase == Phase::Paused);
                    assert_eq!(s.outcome.is_some(), s.phase.is_terminal());
                    assert!(s.metrics.rounds <= s.metrics.pauses);
                    assert!(s.metrics.pauses <= s.metrics.rounds + 1);
                    if (k + p) % 16 == 0 {
                        sh.engine.observe(id, 0).expect("observe");
                    }
                }
                rounds += 1;
                tokio::task::yield_now().await;
            }
            rounds
        }));
    }

    // Watchdog: fails on a stall (no accepted round anywhere for STALL).
    let watchdog = {
        let sh = sh.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut last = sh.progress.load(Ordering::Relaxed);
            let mut since = Instant::now();
            while !sh.done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let now = sh.progress.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    since = Instant::now();
                } else if since.elapsed() > STALL {
                    let stuck: Vec<String> = ids
                        .iter()
                        .filter_map(|id| {
                            let s = sh.engine.state(id, &SnapshotOptions::default()).ok()?;
                            (!s.phase.is_terminal()).then(|| {
                                format!("{id}: {:?} round {} v{}", s.phase, s.round, s.version)
                            })
                        })
                        .collect();
                    return Err(format!(
                        "no progress for {STALL:?}; stats {:?}; open sessions: {stuck:#?}",
                        sh.engine.stats()
                    ));
                }
            }
            Ok(())
        })
    };

    // The watchdog only finishes early on a stall.
    let mut watchdog = watchdog;
    let all_drivers = async {
        for d in drivers {
            d.await.expect("driver task");
        }
    };
    tokio::select! {
        () = all_drivers => {}
        r = &mut watchdog => panic!("watchdog: {:?}", r.unwrap()),
    }
    let acks = canceller.await.unwrap();
    sh.done.store(true, Ordering::Relaxed);
    for p in pollers {
        assert!(p.await.unwrap() > 0);
    }
    (&mut watchdog).await.unwrap().expect("no stall");

    let mut completed_n = 0;
    let mut cancelled_n = 0;
    for (k, id) in ids.iter().enumerate() {
        let t = e.wait(id).await.unwrap();
        match &t.outcome {
            Outcome::Completed { value } => {
                completed_n += 1;
                assert_eq!(value, &serde_json::json!(expected(k as u64)), "session {k}");
                assert_eq!(t.metrics.llm_calls, CALLS);
                assert_eq!(t.metrics.rounds, CALLS);
                assert_eq!(t.metrics.pauses, CALLS);
                if to_cancel.contains(&k) {
                    assert!(
                        matches!(
                            acks[&k],
                            CancelAck::AlreadyTerminal {
                                phase: Phase::Completed
                            }
                        ),
                        "session {k}: {:?}",
                        acks[&k]
                    );
                }
            }
            Outcome::Cancelled {
                reason,
                phase_before,
                ..
            } => {
                cancelled_n += 1;
                assert!(to_cancel.contains(&k), "session {k} was never cancelled");
                assert_eq!(
                    reason.detail.as_deref(),
                    Some(format!("stress {k}").as_str())
                );
                assert!(!phase_before.is_terminal());
                assert!(matches!(
                    acks[&k],
                    CancelAck::Cancelled | CancelAck::Requested
                ));
                assert!(t.metrics.llm_calls <= CALLS);
                assert!(t.metrics.rounds <= t.metrics.pauses);
                assert!(t.metrics.pauses <= t.metrics.rounds + 1);
            }
            other => panic!("session {k}: {other:?}"),
        }
    }
    assert_eq!(completed_n + cancelled_n, SESSIONS);
    assert!(completed_n >= SESSIONS - SESSIONS / 10);
    let stats = e.stats();
    assert_eq!(stats.vm_bytes, 0);
    assert_eq!(stats.queued, 0);
    assert_eq!(stats.sessions, SESSIONS);
    eprintln!(
        "stress: {SESSIONS} sessions × {CALLS} calls, {completed_n} completed, {cancelled_n} cancelled, {} rounds accepted in {:?}",
        sh.progress.load(Ordering::Relaxed),
        started.elapsed()
    );
}
