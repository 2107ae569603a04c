//! Durable sessions (engine.md §7, §12.6): journal writing, adoption, replay after a real
//! SIGKILL, divergence, leases, and `alc.state` replay (lua-api.md §4 item 110).
//!
//! The crash test re-executes this test binary as a child process (env `ALC_DURABLE_CHILD`)
//! hosting engine A on a SQLite journal; the child answers its own pauses deterministically
//! and reports every acknowledged (round, query id) on stdout, then waits to be killed at the
//! requested point. Engine B in the parent continues on the same database.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alc_core::{
    Answer, Answers, Durability, EngineConfig, FailureKind, Journal, Outcome, Phase, Program,
    QueryRequest, RecordBody, Residency, ResumeError, SessionId, SessionSpec, SnapshotOptions,
    UntilPause,
};
use alc_engine::{Engine, HostServices, ManualClock, ModuleSource, PackageRoots, ShutdownMode};
use alc_store::{SqliteJournal, StateStore};

const CHILD_ENV: &str = "ALC_DURABLE_CHILD";
const T_A: i64 = 1_700_000_000_000;
const HANG: Duration = Duration::from_secs(120);

/// 20 sequential `alc.llm` calls mixed with `os.time`, `math.random`, `pairs` over string
/// keys, `alc.state.incr` and, every 7th iteration, a CPU loop.
const SCRIPT: &str = r#"
local acc = {}
local t0 = os.time()
for i = 1, 20 do
  local r = math.random(1, 1000000)
  local tbl = { alpha = 1, beta = 2, gamma = 3, delta = 4, epsilon = 5 }
  tbl["k" .. i] = i
  local keys = {}
  for k in pairs(tbl) do keys[#keys + 1] = k end
  local n = alc.state.incr("counter")
  if i % 7 == 0 then
    local x = 0
    for j = 1, ctx.spin do x = x + j % 7 end
    acc[#acc + 1] = "spin" .. x
  end
  local prompt = string.format("q%d r=%d keys=%s n=%d @t=%d", i, r, table.concat(keys, ","), n, os.time())
  acc[#acc + 1] = alc.llm(prompt)
end
return { t0 = t0, answers = table.concat(acc, "|") }
"#;

/// The deterministic answerer: the prompt without its clock part.
fn answer_for(prompt: &str) -> String {
    let stable = prompt.split(" @t=").next().unwrap_or(prompt);
    format!("A[{stable}]")
}

fn prompt_of(q: &alc_core::PendingQuery) -> String {
    match &q.request {
        QueryRequest::Llm { query } => query.prompt.clone(),
        QueryRequest::Human { question } => question.question.clone(),
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        workers: 2,
        ..EngineConfig::default()
    }
}

fn durable_engine(db: &Path, clock_ms: i64, modules: Arc<dyn ModuleSource>) -> Engine {
    let journal = SqliteJournal::open(db, Durability::Normal).expect("journal opens");
    let services = HostServices {
        modules,
        clock: Arc::new(ManualClock::new(clock_ms)),
        state: Arc::new(journal.state_store()),
        state_shares_journal: true,
        ..HostServices::default()
    };
    Engine::start_with_journal(config(), Arc::new(journal), services).expect("engine starts")
}

fn spec(spin: u64) -> SessionSpec {
    let mut spec = SessionSpec::new(Program::Code {
        source: SCRIPT.to_string(),
        name: Some("crash".into()),
    });
    spec.ctx = serde_json::json!({ "spin": spin });
    spec.seed = Some(7);
    spec
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// One pause's unanswered queries, answered; returns the acknowledged (round, query id)s.
/// Spawns `spec` (seed 1) on `engine`, answers its first pause, checks that it pauses
/// again on round 2, and shuts the engine down with the session left paused.
async fn second_pause_then_drain(engine: Engine, mut spec: SessionSpec) -> SessionId {
    spec.seed = Some(1);
    let id = engine.spawn(spec).await.unwrap();
    let UntilPause::Paused { snapshot } = engine.run_until_pause(&id, HANG).await.unwrap() else {
        panic!("expected a pause")
    };
    answer_pause(&engine, &id, &snapshot).await;
    let UntilPause::Paused { snapshot } = engine.run_until_pause(&id, HANG).await.unwrap() else {
        panic!("expected a second pause")
    };
    assert_eq!(snapshot.round, 2);
    engine.shutdown(ShutdownMode::Drain).await;
    id
}

async fn answer_pause(
    engine: &Engine,
    id: &SessionId,
    snap: &alc_core::Snapshot,
) -> Vec<(u64, String)> {
    let batch = snap.pending.clone().expect("paused snapshot has a batch");
    let mut acked = Vec::new();
    let answers: Vec<Answer> = batch
        .queries
        .iter()
        .filter(|q| !batch.answered.contains(&q.id))
        .map(|q| {
            acked.push((batch.round, q.id.to_string()));
            Answer::text(Some(q.id.clone()), answer_for(&prompt_of(q)))
        })
        .collect();
    engine
        .resume(
            id,
            Answers {
                round: Some(batch.round),
                answers,
            },
        )
        .await
        .expect("answers accepted");
    acked
}

/// Child process: engine A. Kill points: `paused:<k>` (at the pause of round k),
/// `resumed:<k>` (right after round k's answers were acknowledged), `cpu:<k>` (once the
/// next iteration is seen spinning).
#[test]
fn durable_child_engine() {
    let Ok(cfg) = std::env::var(CHILD_ENV) else {
        return;
    };
    let cfg: serde_json::Value = serde_json::from_str(&cfg).unwrap();
    let db = cfg["db"].as_str().unwrap().to_string();
    let kill = cfg["kill"].as_str().unwrap().to_string();
    let (kind, at) = kill.split_once(':').unwrap();
    let at: u64 = at.parse().unwrap();
    let clock = cfg["clock"].as_i64().unwrap();
    let spin = cfg["spin"].as_u64().unwrap();
    let rt = rt();
    rt.block_on(async move {
        let engine = durable_engine(Path::new(&db), clock, Arc::new(PackageRoots::default()));
        let id = match cfg["sid"].as_str() {
            Some(s) => SessionId::parse(s).unwrap(),
            None => engine.spawn(spec(spin)).await.unwrap(),
        };
        let say = |s: String| {
            println!("{s}");
            std::io::stdout().flush().unwrap();
        };
        say(format!("SID {id}"));
        loop {
            match engine.run_until_pause(&id, HANG).await.unwrap() {
                UntilPause::Paused { snapshot } => {
                    let round = snapshot.pending.as_ref().unwrap().round;
                    if kind == "paused" && round == at {
                        say("READY".into());
                        loop {
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                    for (r, q) in answer_pause(&engine, &id, &snapshot).await {
                        say(format!("ACK {r} {q}"));
                    }
                    if round == at {
                        if kind == "cpu" {
                            spinning(Path::new(&db), &id, at + 1);
                        }
                        say("READY".into());
                        loop {
                            std::thread::sleep(Duration::from_secs(1));
                        }
                    }
                }
                UntilPause::Terminal { .. } => {
                    say("DONE".into());
                    return;
                }
                UntilPause::Running { .. } => panic!("child: session hung"),
            }
        }
    });
}

/// Waits until the journal shows iteration `i`'s `incr` effect as the session's last record:
/// the effect is flushed just before the CPU loop, so the step is then spinning (for hundreds
/// of milliseconds), however fast the machine got there.
fn spinning(db: &Path, id: &SessionId, i: u64) {
    let j = SqliteJournal::open(db, Durability::Normal).unwrap();
    let started = std::time::Instant::now();
    loop {
        let records = j.read(id, 1).unwrap();
        let incrs = records.iter().filter(|r| is_incr(&r.body)).count() as u64;
        if incrs == i && records.last().is_some_and(|r| is_incr(&r.body)) {
            return;
        }
        assert!(
            incrs <= i,
            "child: iteration {i} ended before it was seen spinning"
        );
        assert!(
            started.elapsed() < HANG,
            "child: iteration {i} never started"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether a record is the script's `alc.state.incr` effect.
fn is_incr(body: &RecordBody) -> bool {
    matches!(body, RecordBody::Effect { op, .. } if op == "incr")
}

struct KillOnDrop(std::process::Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs engine A in a child until the kill point, SIGKILLs it; returns the session id and the
/// acknowledged (round, query id)s.
fn run_child(
    db: &Path,
    sid: Option<&SessionId>,
    kill: &str,
    clock: i64,
    spin: u64,
) -> (SessionId, Vec<(u64, String)>) {
    let cfg = serde_json::json!({
        "db": db.to_str().unwrap(),
        "sid": sid.map(|s| s.to_string()),
        "kill": kill,
        "clock": clock,
        "spin": spin,
    });
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durable_child_engine",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, cfg.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = KillOnDrop(child);
    let mut id = None;
    let mut acked = Vec::new();
    for line in out.lines() {
        let line = line.unwrap();
        // libtest may print `test name ... ` on the same line before our output.
        let line = match ["SID ", "ACK ", "READY", "DONE"]
            .iter()
            .filter_map(|m| line.find(m))
            .min()
        {
            Some(i) => line[i..].to_string(),
            None => continue,
        };
        if let Some(s) = line.strip_prefix("SID ") {
            id = Some(SessionId::parse(s.trim()).unwrap());
        } else if let Some(rest) = line.strip_prefix("ACK ") {
            let (r, q) = rest.split_once(' ').unwrap();
            acked.push((r.parse().unwrap(), q.to_string()));
        } else if line.contains("READY") {
            // SIGKILL (std's kill sends SIGKILL on Unix), and reap it so its pid is gone.
            child.0.kill().unwrap();
            child.0.wait().unwrap();
            return (id.expect("child printed its session id"), acked);
        } else if line.contains("DONE") {
            panic!("child finished before its kill point {kill}");
        }
    }
    panic!("child exited before its kill point {kill}");
}

/// Engine B: continues the session by answering whatever pause it sees.
fn finish_in_parent(
    db: &Path,
    id: &SessionId,
    acked: &mut BTreeSet<(u64, String)>,
    clock: i64,
) -> serde_json::Value {
    let rt = rt();
    rt.block_on(async {
        let engine = durable_engine(db, clock, Arc::new(PackageRoots::default()));
        let value = loop {
            match engine.run_until_pause(id, HANG).await.unwrap() {
                UntilPause::Paused { snapshot } => {
                    let batch = snapshot.pending.clone().unwrap();
                    for q in batch
                        .queries
                        .iter()
                        .filter(|q| !batch.answered.contains(&q.id))
                    {
                        assert!(
                            !acked.contains(&(batch.round, q.id.to_string())),
                            "acknowledged query asked again: round {} {}",
                            batch.round,
                            q.id
                        );
                    }
                    for a in answer_pause(&engine, id, &snapshot).await {
                        assert!(acked.insert(a), "answered twice");
                    }
                }
                UntilPause::Terminal { terminal } => match terminal.outcome {
                    Outcome::Completed { value } => break value,
                    other => panic!("session did not complete: {other:?}"),
                },
                UntilPause::Running { .. } => panic!("session hung"),
            }
        };
        engine.shutdown(ShutdownMode::Drain).await;
        value
    })
}

fn check_journal(db: &Path, id: &SessionId) {
    let j = SqliteJournal::open(db, Durability::Normal).unwrap();
    let records = j.read(id, 1).unwrap();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1, "journal seqs are contiguous");
    }
    let answers = records
        .iter()
        .filter(|r| matches!(r.body, RecordBody::Answer { .. }))
        .count();
    assert_eq!(answers, 20, "exactly 20 answers journaled");
    let pauses: Vec<u64> = records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::Pause { round, .. } => Some(*round),
            _ => None,
        })
        .collect();
    assert_eq!(pauses, (1..=20).collect::<Vec<_>>(), "one pause per round");
    assert!(matches!(
        records.last().unwrap().body,
        RecordBody::Outcome { .. }
    ));
    let counter = j.state_store().get("default", "counter").unwrap();
    assert_eq!(
        counter,
        Some(serde_json::json!(20)),
        "one increment per incr call"
    );
}

fn uninterrupted(spin: u64) -> serde_json::Value {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    let (id, value) = rt.block_on(async {
        let engine = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let id = engine.spawn(spec(spin)).await.unwrap();
        let mut acked = BTreeSet::new();
        let value = loop {
            match engine.run_until_pause(&id, HANG).await.unwrap() {
                UntilPause::Paused { snapshot } => {
                    for a in answer_pause(&engine, &id, &snapshot).await {
                        assert!(acked.insert(a));
                    }
                }
                UntilPause::Terminal { terminal } => match terminal.outcome {
                    Outcome::Completed { value } => break value,
                    other => panic!("{other:?}"),
                },
                UntilPause::Running { .. } => panic!("hung"),
            }
        };
        engine.shutdown(ShutdownMode::Drain).await;
        (id, value)
    });
    check_journal(&db, &id);
    eprintln!("uninterrupted run: {:?}", started.elapsed());
    value
}

/// Long enough (hundreds of ms) that a `cpu:<k>` kill lands inside the loop.
const SPIN: u64 = 12_000_000;

#[test]
fn replay_after_sigkill_matches_an_uninterrupted_run() {
    let expected = uninterrupted(SPIN);
    assert_eq!(expected["t0"], serde_json::json!(T_A / 1000));
    // Each trial: a sequence of kill points, each in a new child process; then the parent
    // finishes. Every restart runs with a later clock, so only journaled reads can keep the
    // prompts and the result identical.
    let trials: &[&[&str]] = &[
        &["paused:5"],
        &["resumed:3"],
        &["cpu:6"],
        &["paused:1", "resumed:9", "cpu:13"],
        &["resumed:20"],
    ];
    for kills in trials {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("alc.db");
        let mut id: Option<SessionId> = None;
        let mut acked: BTreeSet<(u64, String)> = BTreeSet::new();
        for (n, kill) in kills.iter().enumerate() {
            let clock = T_A + (n as i64) * 1_000_000;
            let (sid, acks) = run_child(&db, id.as_ref(), kill, clock, SPIN);
            if let Some(k) = kill.strip_prefix("cpu:") {
                // Killed inside the CPU loop: round k was the last pause, and the last
                // durable record is the `incr` effect flushed before the loop.
                let j = SqliteJournal::open(&db, Durability::Normal).unwrap();
                let records = j.read(&sid, 1).unwrap();
                let last_pause = records
                    .iter()
                    .filter_map(|r| match &r.body {
                        RecordBody::Pause { round, .. } => Some(*round),
                        _ => None,
                    })
                    .max();
                assert_eq!(last_pause, Some(k.parse().unwrap()), "{kills:?}");
                assert!(
                    is_incr(&records.last().unwrap().body),
                    "{kills:?}: {:?}",
                    records.last()
                );
            }
            for a in acks {
                assert!(
                    acked.insert(a.clone()),
                    "{kills:?}: {a:?} acknowledged twice"
                );
            }
            id = Some(sid);
        }
        let id = id.unwrap();
        let clock = T_A + (kills.len() as i64) * 1_000_000;
        let value = finish_in_parent(&db, &id, &mut acked, clock);
        assert_eq!(
            value, expected,
            "{kills:?}: result equals the uninterrupted run"
        );
        assert_eq!(acked.len(), 20, "{kills:?}: 20 answers in total");
        check_journal(&db, &id);
    }
}

fn package(prompt1: &str) -> Arc<dyn ModuleSource> {
    let src = format!(
        r#"
local M = {{}}
function M.run(ctx)
  local a = alc.llm("{prompt1}")
  local b = alc.llm("second question after " .. a)
  return a .. "/" .. b
end
return M
"#
    );
    Arc::new(PackageRoots::default().with_memory_file("strat", "init.lua", &src))
}

#[test]
fn changed_package_source_is_a_divergence_with_both_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    rt.block_on(async {
        let a = durable_engine(&db, T_A, package("first: describe the sky"));
        let spec = SessionSpec::new(Program::Package {
            name: "strat".into(),
            entry: "run".into(),
        });
        let id = second_pause_then_drain(a, spec).await;

        let b = durable_engine(&db, T_A, package("first: describe the sea"));
        // Unhosted state comes from the journal.
        let st = b.state(&id, &SnapshotOptions::default()).unwrap();
        assert_eq!(st.residency, Residency::Unhosted);
        assert_eq!(st.phase, Phase::Paused);
        assert_eq!(st.round, 2);
        let UntilPause::Paused { snapshot } = b.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("adopted paused")
        };
        answer_pause(&b, &id, &snapshot).await;
        let terminal = tokio::time::timeout(HANG, b.wait(&id))
            .await
            .unwrap()
            .unwrap();
        let Outcome::Failed {
            kind,
            divergence: Some(report),
            ..
        } = &terminal.outcome
        else {
            panic!("expected a divergence, got {:?}", terminal.outcome)
        };
        assert_eq!(*kind, FailureKind::Divergence);
        assert_eq!(
            terminal.outcome.failure_wire_code(),
            Some("replay_divergence")
        );
        assert!(
            report.diff.contains("first: describe the sky"),
            "{}",
            report.diff
        );
        assert!(
            report.diff.contains("first: describe the sea"),
            "{}",
            report.diff
        );
        assert!(
            report.diff.contains("strat"),
            "the report names the module: {}",
            report.diff
        );
        // No new pause was published.
        let st = b.state(&id, &SnapshotOptions::default()).unwrap();
        assert_eq!(st.phase, Phase::Failed);
        assert_eq!(st.round, 2);
        b.shutdown(ShutdownMode::Drain).await;
    });
}

#[test]
fn second_engine_on_the_same_database_gets_busy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    rt.block_on(async {
        let a = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let b = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let id = a.spawn(spec(10)).await.unwrap();
        let UntilPause::Paused { snapshot } = a.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        let q = snapshot.pending.unwrap().queries[0].clone();
        let err = b
            .resume(
                &id,
                Answers {
                    round: Some(1),
                    answers: vec![Answer::text(Some(q.id.clone()), "x")],
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ResumeError::Busy { .. }), "{err:?}");
        assert!(matches!(
            b.cancel(
                &id,
                alc_core::CancelReason {
                    code: alc_core::CancelCode::User,
                    detail: None
                }
            )
            .await,
            Err(alc_core::CancelError::Busy { .. })
        ));
        // The first engine still hosts it.
        a.resume(
            &id,
            Answers {
                round: Some(1),
                answers: vec![Answer::text(Some(q.id), "x")],
            },
        )
        .await
        .unwrap();
        a.shutdown(ShutdownMode::Drain).await;
        b.shutdown(ShutdownMode::Drain).await;
    });
}

/// lua-api.md §4 item 110: a replayed session observes the journaled `alc.state` read, not
/// the store's current value.
#[test]
fn item110_state_reads_are_replayed_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    rt.block_on(async {
        let a = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let store = SqliteJournal::open(&db, Durability::Normal)
            .unwrap()
            .state_store();
        store
            .set("default", "k", Some(&serde_json::json!(1)))
            .unwrap();
        let mut spec = SessionSpec::new(Program::Code {
            source: r#"
                local v = alc.state.get("k")
                local a = alc.llm("saw " .. tostring(v))
                return { v = v, now = alc.state.get("k"), a = a }
            "#
            .into(),
            name: None,
        });
        spec.seed = Some(3);
        let id = a.spawn(spec).await.unwrap();
        let UntilPause::Paused { .. } = a.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        // Another session sets k = 2.
        let other = a
            .spawn(SessionSpec::new(Program::Code {
                source: r#"alc.state.set("k", 2) return alc.state.get("k")"#.into(),
                name: None,
            }))
            .await
            .unwrap();
        let t = a.wait(&other).await.unwrap();
        assert!(matches!(t.outcome, Outcome::Completed { .. }));
        a.shutdown(ShutdownMode::Drain).await;
        drop(a);

        let b = durable_engine(&db, T_A + 5_000, Arc::new(PackageRoots::default()));
        let UntilPause::Paused { snapshot } = b.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("adopted paused")
        };
        assert_eq!(
            prompt_of(&snapshot.pending.as_ref().unwrap().queries[0]),
            "saw 1"
        );
        answer_pause(&b, &id, &snapshot).await;
        let t = b.wait(&id).await.unwrap();
        let Outcome::Completed { value } = t.outcome else {
            panic!("{:?}", t.outcome)
        };
        assert_eq!(
            value["v"],
            serde_json::json!(1),
            "the replay still observes 1"
        );
        assert_eq!(
            value["now"],
            serde_json::json!(2),
            "live reads see the store"
        );
        b.shutdown(ShutdownMode::Drain).await;
    });
}

#[test]
fn state_api_basics_and_messages() {
    let rt = rt();
    rt.block_on(async {
        let engine = Engine::start_blocking(config(), HostServices::default()).unwrap();
        let code = r#"
            local s = alc.state
            local out = {}
            out.nx1 = s.set_nx("k", "first")
            out.nx2 = s.set_nx("k", "second")
            out.k = s.get("k")
            out.d1 = s.delete("k")
            out.d2 = s.delete("k")
            s.set("j", 1); s.set("j", nil)
            out.hasj = s.has("j")
            out.c1 = s.incr("c"); out.c2 = s.incr("c", 5); out.c3 = s.incr("c", 0.5)
            out.n = s.incr("n", 10, 100)
            s.set("s", "text")
            out.e1 = select(2, pcall(s.incr, "s"))
            s.set("flow_orch:abc", 1)
            out.list = s.list("flow_orch")
            out.show = s.show("flow_orch", "abc")
            out.e2 = select(2, pcall(s.show, "flow_orch", "zzz"))
            out.keys = s.keys("flow_orch:")
            out.e3 = select(2, pcall(s.set, "../x", 1))
            out.e4 = select(2, pcall(s.set, "f", { g = print }))
            out.u = s.update("u", function(v) return v + 1 end, 41)
            out.def = s.get("missing", "dflt")
            return out
        "#;
        let mut spec = SessionSpec::new(Program::Code {
            source: code.into(),
            name: None,
        });
        spec.ctx = serde_json::json!({});
        let id = engine.spawn(spec).await.unwrap();
        let t = engine.wait(&id).await.unwrap();
        let Outcome::Completed { value } = t.outcome else {
            panic!("{:?}", t.outcome)
        };
        let v = |k: &str| value[k].clone();
        assert_eq!(v("nx1"), true);
        assert_eq!(v("nx2"), false);
        assert_eq!(v("k"), "first");
        assert_eq!(v("d1"), true);
        assert_eq!(v("d2"), false);
        assert_eq!(v("hasj"), false);
        assert_eq!(v("c1"), 1);
        assert_eq!(v("c2"), 6);
        assert_eq!(v("c3"), 6.5);
        assert_eq!(v("n"), 110);
        assert_eq!(v("e1"), "alc.state.incr: value at 's' is not a number");
        assert_eq!(v("list"), serde_json::json!(["abc"]));
        assert_eq!(v("show"), 1);
        assert!(
            v("e2").as_str().unwrap().contains("not found"),
            "{}",
            v("e2")
        );
        assert_eq!(v("keys"), serde_json::json!(["flow_orch:abc"]));
        assert!(
            v("e3")
                .as_str()
                .unwrap()
                .starts_with("alc.state: invalid key '../x'"),
            "{}",
            v("e3")
        );
        assert_eq!(
            v("e4"),
            "alc.state.set: cannot encode value of type 'function' at $.g"
        );
        assert_eq!(v("u"), 42);
        assert_eq!(v("def"), "dflt");

        let mut bad = SessionSpec::new(Program::Code {
            source: r#"return select(2, pcall(alc.state.get, "k"))"#.into(),
            name: None,
        });
        bad.ctx = serde_json::json!({ "_ns": "../evil" });
        let id = engine.spawn(bad).await.unwrap();
        let t = engine.wait(&id).await.unwrap();
        assert_eq!(
            t.outcome,
            Outcome::Completed {
                value: serde_json::json!("alc.state: invalid namespace '../evil'")
            }
        );
        engine.shutdown(ShutdownMode::Drain).await;
    });
}

/// A journal whose appends start failing on demand.
struct FailingJournal {
    inner: alc_store::MemoryJournal,
    fail: std::sync::atomic::AtomicBool,
}

impl Journal for FailingJournal {
    fn append(&self, batch: &[alc_core::SessionAppend]) -> Result<(), alc_core::JournalError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(alc_core::JournalError::Io {
                message: "disk full".into(),
            });
        }
        self.inner.append(batch)
    }
    fn read(
        &self,
        id: &SessionId,
        from_seq: u64,
    ) -> Result<Vec<alc_core::JournalRecord>, alc_core::JournalError> {
        self.inner.read(id, from_seq)
    }
    fn session(
        &self,
        id: &SessionId,
    ) -> Result<Option<alc_core::SessionRow>, alc_core::JournalError> {
        self.inner.session(id)
    }
    fn open_sessions(
        &self,
        filter: &alc_core::RowFilter,
    ) -> Result<Vec<alc_core::SessionRow>, alc_core::JournalError> {
        self.inner.open_sessions(filter)
    }
    fn acquire_lease(
        &self,
        id: &SessionId,
        owner: &alc_core::OwnerId,
    ) -> Result<alc_core::LeaseResult, alc_core::JournalError> {
        self.inner.acquire_lease(id, owner)
    }
    fn release_lease(
        &self,
        id: &SessionId,
        owner: &alc_core::OwnerId,
    ) -> Result<(), alc_core::JournalError> {
        self.inner.release_lease(id, owner)
    }
    fn heartbeat(&self, owner: &alc_core::OwnerId) -> Result<(), alc_core::JournalError> {
        self.inner.heartbeat(owner)
    }
    fn delete(&self, id: &SessionId) -> Result<(), alc_core::JournalError> {
        self.inner.delete(id)
    }
    fn durable(&self) -> bool {
        false
    }
}

/// T25: a failed journal write fails the session (`journal_error`) and the caller gets the
/// `journal` error.
#[test]
fn journal_write_failure_fails_the_session() {
    let rt = rt();
    rt.block_on(async {
        let journal = Arc::new(FailingJournal {
            inner: alc_store::MemoryJournal::new(),
            fail: std::sync::atomic::AtomicBool::new(false),
        });
        let engine = Engine::start(config(), journal.clone(), HostServices::default())
            .await
            .unwrap();
        let id = engine.spawn(spec(10)).await.unwrap();
        let UntilPause::Paused { snapshot } = engine.run_until_pause(&id, HANG).await.unwrap()
        else {
            panic!("expected a pause")
        };
        journal
            .fail
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let q = snapshot.pending.unwrap().queries[0].clone();
        let err = engine
            .resume(
                &id,
                Answers {
                    round: Some(1),
                    answers: vec![Answer::text(Some(q.id), "x")],
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ResumeError::Journal { .. }), "{err:?}");
        let t = engine.wait(&id).await.unwrap();
        assert!(matches!(
            t.outcome,
            Outcome::Failed {
                kind: FailureKind::JournalError,
                ..
            }
        ));
        // Spawning needs a durable `spawned` record.
        assert!(matches!(
            engine.spawn(spec(10)).await,
            Err(alc_core::SpawnError::Journal { .. })
        ));
        engine.shutdown(ShutdownMode::Drain).await;
    });
}

/// `recovery = eager` adopts open sessions at start; the session then answers `state` as a
/// hosted one and continues.
#[test]
fn eager_recovery_adopts_open_sessions_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    rt.block_on(async {
        let a = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let id = a.spawn(spec(10)).await.unwrap();
        let UntilPause::Paused { snapshot } = a.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        answer_pause(&a, &id, &snapshot).await;
        let UntilPause::Paused { .. } = a.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        a.shutdown(ShutdownMode::Drain).await;
        drop(a);

        let journal = SqliteJournal::open(&db, Durability::Normal).unwrap();
        let services = HostServices {
            clock: Arc::new(ManualClock::new(T_A)),
            state: Arc::new(journal.state_store()),
            ..HostServices::default()
        };
        let cfg = EngineConfig {
            recovery: alc_core::Recovery::Eager,
            ..config()
        };
        let b = Engine::start(cfg, Arc::new(journal), services)
            .await
            .unwrap();
        let st = b.state(&id, &SnapshotOptions::default()).unwrap();
        assert_eq!(st.residency, Residency::Cold);
        assert_eq!(st.phase, Phase::Paused);
        assert_eq!(st.round, 2);
        b.shutdown(ShutdownMode::Drain).await;
    });
}

/// A state write made inside `append_with` commits or rolls back with the append.
#[test]
fn state_writes_share_the_journal_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let j = SqliteJournal::open(&db, Durability::Normal).unwrap();
    let st = j.state_store();
    let one = serde_json::Number::from(1);
    let zero = serde_json::Number::from(0);
    let r = j.append_with(&mut || {
        st.incr("default", "c", &one, &zero).unwrap();
        Err(alc_core::JournalError::Io {
            message: "refused".into(),
        })
    });
    assert!(r.is_err());
    assert_eq!(st.get("default", "c").unwrap(), None, "rolled back");
    // A batch that does not continue the session's seqs is refused: the write goes too.
    let sid = SessionId::parse("s-0123456789abcdef0123456789abcdef").unwrap();
    let r = j.append_with(&mut || {
        st.incr("default", "c", &one, &zero).unwrap();
        Ok(vec![alc_core::SessionAppend {
            session_id: sid.clone(),
            records: vec![alc_core::JournalRecord {
                session_id: sid.clone(),
                seq: 5,
                vm: 0,
                at: 0,
                body: RecordBody::Clock {
                    source: alc_core::ClockSource::OsTime,
                    value: serde_json::json!(1),
                },
            }],
            row: alc_core::RowUpdate::new(Phase::Running, 0, 0),
        }])
    });
    assert!(r.is_err());
    assert_eq!(st.get("default", "c").unwrap(), None, "rolled back");
    let r = j.append_with(&mut || {
        st.incr("default", "c", &one, &zero).unwrap();
        Ok(Vec::new())
    });
    assert!(r.is_ok());
    assert_eq!(st.get("default", "c").unwrap(), Some(serde_json::json!(1)));
}

/// Env values are not journaled: `adopt` re-supplies them, and a changed value is a
/// divergence (its `env_read` digest no longer matches).
#[test]
fn adopt_resupplies_env_and_checks_its_digest() {
    let rt = rt();
    for (value, diverges) in [("blue", false), ("red", true)] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("alc.db");
        rt.block_on(async {
            let a = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
            let mut spec = SessionSpec::new(Program::Code {
                source: r#"local c = alc.env.COLOR
                           local x = alc.llm("pick")
                           return c .. ":" .. x"#
                    .into(),
                name: None,
            });
            spec.env.insert("COLOR".into(), "blue".into());
            let id = a.spawn(spec).await.unwrap();
            let UntilPause::Paused { .. } = a.run_until_pause(&id, HANG).await.unwrap() else {
                panic!("expected a pause")
            };
            a.shutdown(ShutdownMode::Drain).await;
            drop(a);
            // The journal keeps the key, not the value.
            let j = SqliteJournal::open(&db, Durability::Normal).unwrap();
            let RecordBody::Spawned { spec, .. } = &j.read(&id, 1).unwrap()[0].body else {
                panic!("spawned first")
            };
            assert_eq!(spec.env.get("COLOR").map(String::as_str), Some(""));

            let b = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
            let env = [("COLOR".to_string(), value.to_string())]
                .into_iter()
                .collect();
            let snap = b.adopt(&id, env).await.unwrap();
            assert_eq!(snap.phase, Phase::Paused);
            answer_pause(&b, &id, &snap).await;
            let t = b.wait(&id).await.unwrap();
            match (&t.outcome, diverges) {
                (Outcome::Completed { value }, false) => {
                    assert_eq!(value, &serde_json::json!("blue:A[pick]"))
                }
                (
                    Outcome::Failed {
                        kind: FailureKind::Divergence,
                        divergence: Some(d),
                        ..
                    },
                    true,
                ) => assert!(d.actual.contains("COLOR"), "{d:?}"),
                (other, _) => panic!("{value}: {other:?}"),
            }
            b.shutdown(ShutdownMode::Drain).await;
        });
    }
}

fn fork_packages() -> Arc<dyn ModuleSource> {
    let fa = r#"
local M = {}
function M.run(ctx)
  local n = alc.state.incr("c")
  local r = math.random(1, 1000000)
  local a = alc.llm("fa1 " .. ctx.x .. " n=" .. n .. " r=" .. r .. " @t=" .. os.time())
  local b = alc.llm("fa2 " .. a)
  print("fa done")
  return {a = a, b = b, n = n, r = r}
end
return M
"#;
    let fb = "local M = {}\nfunction M.run(ctx) return alc.llm('fb ' .. ctx.x) end\nreturn M\n";
    Arc::new(
        PackageRoots::default()
            .with_memory_file("fa", "init.lua", fa)
            .with_memory_file("fb", "init.lua", fb),
    )
}

const FORK_SCRIPT: &str = r#"
local pre = alc.llm("main q")
local r = alc.fork({"fa", "fb"}, {x = pre})
return {r = r, main = alc.state.get("c", "none"), calls = alc.stats.llm_calls()}
"#;

fn fork_spec() -> SessionSpec {
    let mut spec = SessionSpec::new(Program::Code {
        source: FORK_SCRIPT.to_string(),
        name: Some("forked".into()),
    });
    spec.seed = Some(11);
    spec
}

/// Runs the fork session on engine A until `stop_round` pauses have been answered (with
/// `stop_at_pause`, until the next pause is published), then finishes it on engine B over
/// the same database; returns the completed value.
fn fork_across_restart(stop_round: u64, stop_at_pause: bool) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    rt.block_on(async {
        let a = durable_engine(&db, T_A, fork_packages());
        let id = a.spawn(fork_spec()).await.unwrap();
        for _ in 0..stop_round {
            match a.run_until_pause(&id, HANG).await.unwrap() {
                UntilPause::Paused { snapshot } => {
                    answer_pause(&a, &id, &snapshot).await;
                }
                UntilPause::Terminal { terminal } => {
                    let Outcome::Completed { value } = terminal.outcome else {
                        panic!("expected completion, got {:?}", terminal.outcome)
                    };
                    a.shutdown(ShutdownMode::Drain).await;
                    return value;
                }
                UntilPause::Running { .. } => panic!("hung"),
            }
        }
        if stop_at_pause {
            let until = a.run_until_pause(&id, HANG).await.unwrap();
            assert!(matches!(until, UntilPause::Paused { .. }));
        }
        a.shutdown(ShutdownMode::Drain).await;
        drop(a);

        let b = durable_engine(&db, T_A + 5_000, fork_packages());
        loop {
            match b.run_until_pause(&id, HANG).await.unwrap() {
                UntilPause::Paused { snapshot } => {
                    answer_pause(&b, &id, &snapshot).await;
                }
                UntilPause::Terminal { terminal } => {
                    let Outcome::Completed { value } = terminal.outcome else {
                        panic!("expected completion, got {:?}", terminal.outcome)
                    };
                    b.shutdown(ShutdownMode::Drain).await;
                    return value;
                }
                UntilPause::Running { .. } => panic!("hung"),
            }
        }
    })
}

#[test]
fn forked_session_survives_restart() {
    // Uninterrupted reference run.
    let reference = fork_across_restart(10, false);
    assert_eq!(reference["r"][0]["ok"], serde_json::json!(true));
    assert_eq!(reference["r"][0]["result"]["n"], serde_json::json!(1));
    assert_eq!(reference["main"], serde_json::json!("none"));
    assert_eq!(reference["calls"], serde_json::json!(4));
    for (round, at_pause) in [(1, true), (2, false), (2, true), (3, false)] {
        let v = fork_across_restart(round, at_pause);
        assert_eq!(
            v, reference,
            "stopped after round {round} (at pause: {at_pause})"
        );
    }
}

const DAY_MS: i64 = 86_400_000;

/// Journal retention of finished sessions (interfaces.md §9.5), on a real SQLite file and
/// the engine's manual clock: at start, and later at a heartbeat once the engine clock has
/// moved past the retention, terminal sessions older than the retention are deleted with
/// their records; an open session older than the retention is kept and still resumable.
#[test]
fn terminal_journals_expire_after_the_retention_and_open_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    let engine_at = |clock: Arc<ManualClock>| {
        let journal = SqliteJournal::open(&db, Durability::Normal).unwrap();
        let services = HostServices {
            clock,
            state: Arc::new(journal.state_store()),
            state_shares_journal: true,
            ..HostServices::default()
        };
        let cfg = EngineConfig {
            terminal_journal_retention_ms: Some(DAY_MS as u64),
            ..config()
        };
        Engine::start_with_journal(cfg, Arc::new(journal), services).unwrap()
    };
    let code = |src: &str| {
        SessionSpec::new(Program::Code {
            source: src.into(),
            name: None,
        })
    };
    let observer = SqliteJournal::open(&db, Durability::Normal).unwrap();
    let status = |id: &SessionId| observer.session(id).unwrap().map(|r| r.status);
    rt.block_on(async {
        let a = engine_at(Arc::new(ManualClock::new(T_A)));
        let old_done = a.spawn(code("return 1")).await.unwrap();
        a.wait(&old_done).await.unwrap();
        let old_open = a
            .spawn(code("return alc.llm('still here?')"))
            .await
            .unwrap();
        let UntilPause::Paused { .. } = a.run_until_pause(&old_open, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        // Within the retention: the start of a second engine deletes nothing.
        a.shutdown(ShutdownMode::Drain).await;
        drop(a);
        let clock = Arc::new(ManualClock::new(T_A + DAY_MS / 2));
        let b = engine_at(clock.clone());
        assert_eq!(status(&old_done), Some(alc_core::SessionStatus::Terminal));
        b.shutdown(ShutdownMode::Drain).await;
        drop(b);

        // Two days later: the start removes the finished session, keeps the open one.
        let clock = Arc::new(ManualClock::new(T_A + 2 * DAY_MS));
        let c = engine_at(clock.clone());
        assert_eq!(
            status(&old_done),
            None,
            "the finished session's row is gone"
        );
        assert!(
            observer.read(&old_done, 1).unwrap().is_empty(),
            "and its records"
        );
        assert_eq!(status(&old_open), Some(alc_core::SessionStatus::Open));

        // A session finished now is kept until the clock passes the retention; then the
        // periodic run (at a heartbeat) deletes it.
        let new_done = c.spawn(code("return 2")).await.unwrap();
        c.wait(&new_done).await.unwrap();
        // `wait` can return as the outcome is being written: poll the row.
        let deadline = std::time::Instant::now() + HANG;
        while status(&new_done) != Some(alc_core::SessionStatus::Terminal) {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                status(&new_done)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        clock.advance(DAY_MS + 3_600_000 + 1);
        let deadline = std::time::Instant::now() + HANG;
        while status(&new_done).is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "the periodic retention never ran"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The open session, older than the retention, was never touched.
        assert_eq!(status(&old_open), Some(alc_core::SessionStatus::Open));
        let snap = c.state(&old_open, &SnapshotOptions::default()).unwrap();
        assert_eq!(snap.phase, Phase::Paused);
        let UntilPause::Paused { snapshot } = c.run_until_pause(&old_open, HANG).await.unwrap()
        else {
            panic!("expected the recorded pause")
        };
        answer_pause(&c, &old_open, &snapshot).await;
        let t = c.wait(&old_open).await.unwrap();
        assert_eq!(
            t.outcome,
            Outcome::Completed {
                value: serde_json::json!("A[still here?]")
            }
        );
        c.shutdown(ShutdownMode::Drain).await;
    });
}

/// Implicit adoption (the first `resume` naming the session) and eager recovery re-supply
/// the engine's environment values (`HostServices::env`, the source a fresh session's
/// `alc.env` reads): a session that read a value still configured alike replays and
/// completes; one whose value changed fails with a divergence naming the key. The value is
/// never written to the journal.
#[test]
fn implicit_adoption_resupplies_the_engine_env() {
    let rt = rt();
    for (value, diverges, eager) in [
        ("blue", false, false),
        ("red", true, false),
        ("blue", false, true),
        ("red", true, true),
    ] {
        let case = format!("COLOR={value}, eager={eager}");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("alc.db");
        let engine = |color: &str, recovery: alc_core::Recovery| {
            let journal = SqliteJournal::open(&db, Durability::Normal).unwrap();
            let services = HostServices {
                clock: Arc::new(ManualClock::new(T_A)),
                env: Arc::new([("COLOR".to_string(), color.to_string())].into()),
                state: Arc::new(journal.state_store()),
                state_shares_journal: true,
                ..HostServices::default()
            };
            let cfg = EngineConfig {
                recovery,
                ..config()
            };
            Engine::start_with_journal(cfg, Arc::new(journal), services).unwrap()
        };
        rt.block_on(async {
            let a = engine("blue", alc_core::Recovery::OnDemand);
            let id = a
                .spawn(SessionSpec::new(Program::Code {
                    source: r#"local c = alc.env.COLOR
                               local g = os.getenv("COLOR")
                               local x = alc.llm("pick")
                               return c .. "/" .. g .. ":" .. x"#
                        .into(),
                    name: None,
                }))
                .await
                .unwrap();
            let UntilPause::Paused { .. } = a.run_until_pause(&id, HANG).await.unwrap() else {
                panic!("{case}: expected a pause")
            };
            a.shutdown(ShutdownMode::Drain).await;
            drop(a);
            let j = SqliteJournal::open(&db, Durability::Normal).unwrap();
            let records = serde_json::to_string(&j.read(&id, 1).unwrap()).unwrap();
            assert!(
                records.contains("env_read"),
                "{case}: the read is journaled"
            );
            assert!(!records.contains("blue"), "{case}: the value is not");

            let recovery = if eager {
                alc_core::Recovery::Eager
            } else {
                alc_core::Recovery::OnDemand
            };
            let b = engine(value, recovery);
            let expected_residency = if eager {
                Residency::Cold
            } else {
                Residency::Unhosted
            };
            let snap = b.state(&id, &SnapshotOptions::default()).unwrap();
            assert_eq!(snap.residency, expected_residency, "{case}");
            assert_eq!(snap.phase, Phase::Paused, "{case}");
            // `resume` adopts the session when it is not hosted yet.
            b.resume(
                &id,
                Answers {
                    round: Some(1),
                    answers: vec![Answer::text(Some(alc_core::QueryId::main(0)), "A[pick]")],
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{case}: {e}"));
            let t = b.wait(&id).await.unwrap();
            match (&t.outcome, diverges) {
                (Outcome::Completed { value }, false) => {
                    assert_eq!(value, &serde_json::json!("blue/blue:A[pick]"), "{case}")
                }
                (
                    Outcome::Failed {
                        kind: FailureKind::Divergence,
                        divergence: Some(d),
                        ..
                    },
                    true,
                ) => assert!(d.actual.contains("COLOR"), "{case}: {d:?}"),
                (other, _) => panic!("{case}: {other:?}"),
            }
            b.shutdown(ShutdownMode::Drain).await;
        });
    }
}

/// `ctx.env.inject` values are not journaled either (only their keys): after a restart an
/// explicit `adopt` that gives the value again replays the session, while an implicit
/// adoption on an engine that does not have the value fails it with a divergence.
#[test]
fn injected_env_values_are_not_journaled() {
    let rt = rt();
    for explicit in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("alc.db");
        rt.block_on(async {
            let a = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
            let mut spec = SessionSpec::new(Program::Code {
                source: r#"local t = alc.env.TOKEN
                           local x = alc.llm("go")
                           return t .. ":" .. x"#
                    .into(),
                name: None,
            });
            spec.ctx = serde_json::json!({"env": {"inject": {"TOKEN": "s3cret"}}, "n": 1});
            let id = a.spawn(spec).await.unwrap();
            let UntilPause::Paused { .. } = a.run_until_pause(&id, HANG).await.unwrap() else {
                panic!("expected a pause")
            };
            a.shutdown(ShutdownMode::Drain).await;
            drop(a);
            let j = SqliteJournal::open(&db, Durability::Normal).unwrap();
            let records = j.read(&id, 1).unwrap();
            let RecordBody::Spawned { spec, .. } = &records[0].body else {
                panic!("spawned first")
            };
            assert_eq!(
                spec.ctx,
                serde_json::json!({"env": {"inject": {"TOKEN": ""}}, "n": 1}),
                "the key is kept, the value is not"
            );
            assert!(!serde_json::to_string(&records).unwrap().contains("s3cret"));

            let b = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
            if explicit {
                let env = [("TOKEN".to_string(), "s3cret".to_string())].into();
                b.adopt(&id, env).await.unwrap();
            }
            b.resume(
                &id,
                Answers {
                    round: Some(1),
                    answers: vec![Answer::text(Some(alc_core::QueryId::main(0)), "ok")],
                },
            )
            .await
            .unwrap();
            let t = b.wait(&id).await.unwrap();
            match (&t.outcome, explicit) {
                (Outcome::Completed { value }, true) => {
                    assert_eq!(value, &serde_json::json!("s3cret:ok"))
                }
                (
                    Outcome::Failed {
                        kind: FailureKind::Divergence,
                        divergence: Some(d),
                        ..
                    },
                    false,
                ) => assert!(d.actual.contains("TOKEN"), "{d:?}"),
                (other, _) => panic!("explicit={explicit}: {other:?}"),
            }
            b.shutdown(ShutdownMode::Drain).await;
        });
    }
}

/// `journal_retention_days` (interfaces.md §9.5): at start, an open session idle for longer
/// than the retention is cancelled with code `expired` (journaled); a younger one stays.
#[test]
fn open_journals_older_than_the_retention_expire_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    let engine_at = |at: i64| {
        let journal = SqliteJournal::open(&db, Durability::Normal).unwrap();
        let services = HostServices {
            clock: Arc::new(ManualClock::new(at)),
            ..HostServices::default()
        };
        let cfg = EngineConfig {
            open_journal_retention_ms: Some(DAY_MS as u64),
            ..config()
        };
        Engine::start_with_journal(cfg, Arc::new(journal), services).unwrap()
    };
    let spec = SessionSpec::new(Program::Code {
        source: "return alc.llm('anyone there?')".into(),
        name: None,
    });
    let observer = SqliteJournal::open(&db, Durability::Normal).unwrap();
    rt.block_on(async {
        let a = engine_at(T_A);
        let old = a.spawn(spec.clone()).await.unwrap();
        let UntilPause::Paused { .. } = a.run_until_pause(&old, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        a.shutdown(ShutdownMode::Drain).await;
        drop(a);

        // Half a day later: within the retention, nothing changes.
        let b = engine_at(T_A + DAY_MS / 2);
        let young = b.spawn(spec.clone()).await.unwrap();
        let UntilPause::Paused { .. } = b.run_until_pause(&young, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        assert_eq!(
            observer.session(&old).unwrap().map(|r| r.status),
            Some(alc_core::SessionStatus::Open)
        );
        b.shutdown(ShutdownMode::Drain).await;
        drop(b);

        // Two days after the first pause: the old session expires, the younger one (1.5 days
        // old, still past the retention) too; a session of the new engine is untouched.
        let c = engine_at(T_A + 2 * DAY_MS + DAY_MS / 4);
        for id in [&old, &young] {
            let row = observer.session(id).unwrap().expect("row kept");
            assert_eq!(row.status, alc_core::SessionStatus::Terminal, "{id}");
            let snap = c.state(id, &SnapshotOptions::default()).unwrap();
            assert_eq!(snap.phase, Phase::Cancelled, "{id}");
            match snap.outcome {
                Some(alc_core::Outcome::Cancelled { reason, .. }) => {
                    assert_eq!(reason.code, alc_core::CancelCode::Expired);
                    assert!(
                        reason
                            .detail
                            .as_deref()
                            .unwrap_or("")
                            .contains("journal_retention_days"),
                        "{reason:?}"
                    );
                }
                other => panic!("expected an expired cancel, got {other:?}"),
            }
        }
        let fresh = c.spawn(spec.clone()).await.unwrap();
        let UntilPause::Paused { .. } = c.run_until_pause(&fresh, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        c.shutdown(ShutdownMode::Cancel).await;
    });
}

/// Reads a package data file through `io.open` before its first pause. The prompts do not
/// depend on the file, so only its `file` record can tell a changed content.
const DATA_FILE_SCRIPT: &str = r#"
local f = assert(io.open("pk/data.txt"))
local first = f:read("l")
f:close()
local a = alc.llm("first question")
local b = alc.llm("second question")
return first .. "/" .. a .. "/" .. b
"#;

/// Runs `DATA_FILE_SCRIPT` to its second pause on engine A, rewrites the data file with
/// `replayed` and finishes the session on engine B (which replays it).
fn data_file_across_restart(replayed: &str) -> (alc_core::Terminal, Vec<alc_core::JournalRecord>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let pk = dir.path().join("pkgs/pk");
    std::fs::create_dir_all(&pk).unwrap();
    std::fs::write(pk.join("init.lua"), "return {}\n").unwrap();
    std::fs::write(pk.join("data.txt"), "alpha\n").unwrap();
    let modules = || -> Arc<dyn ModuleSource> {
        Arc::new(PackageRoots::new(vec![(
            "global".into(),
            dir.path().join("pkgs"),
        )]))
    };
    let rt = rt();
    rt.block_on(async {
        let a = durable_engine(&db, T_A, modules());
        let spec = SessionSpec::new(Program::Code {
            source: DATA_FILE_SCRIPT.to_string(),
            name: Some("data".into()),
        });
        let id = second_pause_then_drain(a, spec).await;

        std::fs::write(pk.join("data.txt"), replayed).unwrap();
        let b = durable_engine(&db, T_A, modules());
        let UntilPause::Paused { snapshot } = b.run_until_pause(&id, HANG).await.unwrap() else {
            panic!("adopted paused")
        };
        answer_pause(&b, &id, &snapshot).await;
        let terminal = tokio::time::timeout(HANG, b.wait(&id))
            .await
            .unwrap()
            .unwrap();
        let st = b.state(&id, &SnapshotOptions::default()).unwrap();
        assert_eq!(st.round, 2, "no new pause was published");
        b.shutdown(ShutdownMode::Drain).await;
        let records = SqliteJournal::open(&db, Durability::Normal)
            .unwrap()
            .read(&id, 1)
            .unwrap();
        (terminal, records)
    })
}

#[test]
fn unchanged_data_file_replays() {
    let (terminal, records) = data_file_across_restart("alpha\n");
    assert_eq!(
        terminal.outcome,
        Outcome::Completed {
            value: serde_json::json!("alpha/A[first question]/A[second question]")
        }
    );
    let files: Vec<&str> = records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::File { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        files,
        vec!["pk/data.txt"],
        "one file record, not repeated by replay"
    );
}

#[test]
fn changed_data_file_is_a_divergence_naming_the_file() {
    let (terminal, _) = data_file_across_restart("beta\n");
    let Outcome::Failed {
        kind,
        divergence: Some(report),
        ..
    } = &terminal.outcome
    else {
        panic!("expected a divergence, got {:?}", terminal.outcome)
    };
    assert_eq!(*kind, FailureKind::Divergence);
    assert_eq!(
        terminal.outcome.failure_wire_code(),
        Some("replay_divergence")
    );
    assert_eq!(report.expected, "file pk/data.txt", "{report:?}");
    assert!(report.diff.contains("pk/data.txt"), "{report:?}");
    assert_ne!(report.expected_digest, report.actual_digest, "{report:?}");
}

/// A spec running `source`.
fn code_spec(source: &str) -> SessionSpec {
    SessionSpec::new(Program::Code {
        source: source.into(),
        name: None,
    })
}

/// The record kinds of session `id` in `journal`, in seq order.
fn record_kinds(journal: &SqliteJournal, id: &SessionId) -> Vec<&'static str> {
    journal
        .read(id, 1)
        .unwrap()
        .iter()
        .map(|r| r.body.kind())
        .collect()
}

/// The session's end (a hang is a failure).
async fn ended(engine: &Engine, id: &SessionId) -> alc_core::Terminal {
    tokio::time::timeout(HANG, engine.wait(id))
        .await
        .unwrap()
        .unwrap()
}

/// Cancels a session and waits for its end (a running session's outcome is written by
/// its worker when the step ends).
async fn cancel_and_end(engine: &Engine, id: &SessionId) {
    engine
        .cancel(
            id,
            alc_core::CancelReason::new(alc_core::CancelCode::ClientCancelled),
        )
        .await
        .unwrap();
    ended(engine, id).await;
}

/// `spawn_now_with_first_step`: the session reaches the journal with its first step's
/// records (`spawned` and the outcome as seqs 1 and 2, the row with its labels); a session
/// still in its first step is not in the journal until `ensure_written`; a session paused
/// that way is adopted and finished by a second engine like any other.
#[test]
fn spawned_is_written_with_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    rt.block_on(async {
        let a = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let journal = SqliteJournal::open(&db, Durability::Normal).unwrap();
        let code = |source: &str| {
            let mut spec = code_spec(source);
            spec.labels.insert("kind".into(), "run".into());
            spec
        };

        let done = a.spawn_now_with_first_step(code("return 1")).unwrap();
        let t = ended(&a, &done).await;
        assert_eq!(
            t.outcome,
            Outcome::Completed {
                value: serde_json::json!(1)
            }
        );
        let seqs: Vec<u64> = journal
            .read(&done, 1)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(record_kinds(&journal, &done), vec!["spawned", "outcome"]);
        let row = journal.session(&done).unwrap().expect("row written");
        assert_eq!(row.labels.get("kind").map(String::as_str), Some("run"));
        assert_eq!(row.phase, Phase::Completed);

        // A first step that runs on: nothing in the journal until `ensure_written`.
        let spinning = a
            .spawn_now_with_first_step(code("local x = 0 while true do x = x + 1 end"))
            .unwrap();
        assert!(journal.session(&spinning).unwrap().is_none());
        a.ensure_written(&spinning).unwrap();
        let row = journal
            .session(&spinning)
            .unwrap()
            .expect("written on demand");
        assert_eq!(row.status, alc_core::SessionStatus::Open);
        assert_eq!(journal.read(&spinning, 1).unwrap().len(), 1);
        a.ensure_written(&spinning).unwrap(); // idempotent
        cancel_and_end(&a, &spinning).await;
        assert_eq!(
            record_kinds(&journal, &spinning),
            vec!["spawned", "outcome"]
        );

        // Paused in the first step, then adopted by another engine.
        let paused = a
            .spawn_now_with_first_step(code(r#"return "got " .. alc.llm("q")"#))
            .unwrap();
        let UntilPause::Paused { .. } = a.run_until_pause(&paused, HANG).await.unwrap() else {
            panic!("expected a pause")
        };
        assert_eq!(record_kinds(&journal, &paused), vec!["spawned", "pause"]);
        a.shutdown(ShutdownMode::Drain).await;

        let b = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let UntilPause::Paused { snapshot } = b.run_until_pause(&paused, HANG).await.unwrap()
        else {
            panic!("adopted paused")
        };
        answer_pause(&b, &paused, &snapshot).await;
        let t = ended(&b, &paused).await;
        assert_eq!(
            t.outcome,
            Outcome::Completed {
                value: serde_json::json!("got A[q]")
            }
        );
        b.shutdown(ShutdownMode::Drain).await;
    });
}

/// `resume_now_with_next_step`: answers that complete a round are written with the step
/// they start; while that step runs they are not in the journal until `ensure_written`.
#[test]
fn answers_are_written_with_the_step_they_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let rt = rt();
    rt.block_on(async {
        let engine = durable_engine(&db, T_A, Arc::new(PackageRoots::default()));
        let journal = SqliteJournal::open(&db, Durability::Normal).unwrap();
        let kinds = |id: &SessionId| record_kinds(&journal, id);
        let answer = |snap: &alc_core::Snapshot, text: &str| {
            let batch = snap.pending.as_ref().unwrap();
            Answers {
                round: Some(batch.round),
                answers: vec![Answer::text(Some(batch.queries[0].id.clone()), text)],
            }
        };

        let id = engine
            .spawn(code_spec(
                r#"local a = alc.llm("1") return alc.llm("2 " .. a)"#,
            ))
            .await
            .unwrap();
        let UntilPause::Paused { snapshot } = engine.run_until_pause(&id, HANG).await.unwrap()
        else {
            panic!("expected a pause")
        };
        engine
            .resume_now_with_next_step(&id, answer(&snapshot, "A"))
            .unwrap();
        let UntilPause::Paused { snapshot } = engine.run_until_pause(&id, HANG).await.unwrap()
        else {
            panic!("expected a second pause")
        };
        assert_eq!(kinds(&id), vec!["spawned", "pause", "answer", "pause"]);
        engine
            .resume_now_with_next_step(&id, answer(&snapshot, "B"))
            .unwrap();
        let t = ended(&engine, &id).await;
        assert_eq!(
            t.outcome,
            Outcome::Completed {
                value: serde_json::json!("B")
            }
        );
        assert_eq!(
            kinds(&id),
            vec!["spawned", "pause", "answer", "pause", "answer", "outcome"]
        );

        // Answers that start a long step: written on demand.
        let id = engine
            .spawn(code_spec(
                r#"alc.llm("1") local x = 0 while true do x = x + 1 end"#,
            ))
            .await
            .unwrap();
        let UntilPause::Paused { snapshot } = engine.run_until_pause(&id, HANG).await.unwrap()
        else {
            panic!("expected a pause")
        };
        engine
            .resume_now_with_next_step(&id, answer(&snapshot, "A"))
            .unwrap();
        assert_eq!(kinds(&id), vec!["spawned", "pause"]);
        engine.ensure_written(&id).unwrap();
        assert_eq!(kinds(&id), vec!["spawned", "pause", "answer"]);
        cancel_and_end(&engine, &id).await;
        assert_eq!(kinds(&id), vec!["spawned", "pause", "answer", "outcome"]);
        engine.shutdown(ShutdownMode::Drain).await;
    });
}
