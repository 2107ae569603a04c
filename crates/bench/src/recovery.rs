//! Recovery on start (engine.md §7.5): N sessions paused in `alc.llm` by an engine in a
//! child process that then dies without shutting down; a fresh engine with
//! `recovery = eager` on the same SQLite file adopts all of them at start.
//!
//! ```text
//! cargo run --release --bin alc-bench -- recovery --json [--sessions N] [--sample K]
//! ```
//!
//! The timed part is `SqliteJournal::open` + `Engine::start_with_journal` (which returns
//! once every open session is hosted again). Afterwards, untimed: every session must be
//! paused on the round and query ids the dead engine journaled, and a sample of them is
//! resumed to completion (a replay of the recorded inputs, then the live answer).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alc_core::{
    Answer, Answers, EngineConfig, Outcome, Phase, Program, QueryId, Recovery, SessionId,
    SessionSpec, UntilPause,
};
use alc_engine::{Engine, ListFilter, ShutdownMode};
use serde_json::json;

/// The hidden subcommand the benchmark runs in its child process.
pub const PREPARE: &str = "recovery-prepare";

/// Each session reads the clock (a journaled input) and pauses in `alc.llm`.
const SCRIPT: &str = "local t = os.time()\nlocal a = alc.llm('question ' .. ctx.i)\nreturn a .. ':' .. ctx.i .. ':' .. (t > 0 and 'ok' or 'bad')";

fn expected_value(i: u64) -> serde_json::Value {
    json!(format!("answer {i}:{i}:ok"))
}

fn start_engine(db: &Path, recovery: Recovery) -> Engine {
    let config = EngineConfig {
        recovery,
        ..EngineConfig::default()
    };
    crate::start_sqlite(db, config)
}

/// Child process: spawns `n` sessions, waits until each is paused, writes
/// `<session id>\t<i>\t<round>\t<query ids>` lines to `manifest`, then exits without
/// shutting the engine down (its leases stay in the file, held by a dead process).
pub fn prepare(args: &[String]) -> ! {
    let (Some(db), Some(n), Some(manifest)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: alc-bench {PREPARE} DB N MANIFEST");
        std::process::exit(2);
    };
    let n: u64 = n.parse().expect("N is a number");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let engine = start_engine(Path::new(db), Recovery::OnDemand);
        let mut ids = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut spec = SessionSpec::new(Program::Code {
                source: SCRIPT.to_string(),
                name: Some("recovery".into()),
            });
            spec.ctx = json!({ "i": i });
            ids.push((engine.spawn(spec).await.expect("spawn"), i));
        }
        let mut out = std::io::BufWriter::new(std::fs::File::create(manifest).expect("manifest"));
        for (id, i) in &ids {
            match engine
                .run_until_pause(id, Duration::from_secs(600))
                .await
                .expect("session exists")
            {
                UntilPause::Paused { snapshot } => {
                    let p = snapshot.pending.expect("paused with a batch");
                    let qids: Vec<String> = p.queries.iter().map(|q| q.id.to_string()).collect();
                    writeln!(out, "{id}\t{i}\t{}\t{}", p.round, qids.join(",")).expect("write");
                }
                other => panic!("expected a pause, got {other:?}"),
            }
        }
        out.flush().expect("flush");
    });
    // Dies like a crashed process: no shutdown, no lease release.
    std::process::exit(0)
}

struct Expected {
    i: u64,
    round: u64,
    query_ids: Vec<String>,
}

fn read_manifest(path: &Path) -> BTreeMap<String, Expected> {
    let f = std::fs::File::open(path).expect("manifest");
    let mut out = BTreeMap::new();
    for line in std::io::BufReader::new(f).lines() {
        let line = line.expect("manifest line");
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "manifest line {line:?}");
        out.insert(
            cols[0].to_string(),
            Expected {
                i: cols[1].parse().expect("i"),
                round: cols[2].parse().expect("round"),
                query_ids: cols[3].split(',').map(str::to_string).collect(),
            },
        );
    }
    out
}

fn db_bytes(dir: &Path) -> u64 {
    ["alc.db", "alc.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

/// The benchmark: prepare in a child process, then time the eager recovery.
pub async fn run(sessions: u64, sample: u64) -> serde_json::Value {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("alc-bench-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("alc.db");
    let manifest = dir.join("manifest.tsv");

    let t_prep = Instant::now();
    let status = std::process::Command::new(std::env::current_exe().expect("current exe"))
        .arg(PREPARE)
        .arg(&db)
        .arg(sessions.to_string())
        .arg(&manifest)
        .status()
        .expect("child runs");
    assert!(status.success(), "the preparing engine failed: {status}");
    let prepare_s = t_prep.elapsed().as_secs_f64();
    let expected = read_manifest(&manifest);
    assert_eq!(expected.len() as u64, sessions, "every session paused");
    let bytes = db_bytes(&dir);

    // Timed: open the file and start an eager engine; `start` returns once every open
    // session whose lease is void has been adopted.
    let t0 = Instant::now();
    let engine = start_engine(&db, Recovery::Eager);
    let recovery_s = t0.elapsed().as_secs_f64();

    // Untimed checks: every session paused again on the journaled round and query ids.
    let paused = engine.list(&ListFilter {
        phases: vec![Phase::Paused],
        labels: BTreeMap::new(),
        limit: sessions as usize + 1,
    });
    assert_eq!(paused.len() as u64, sessions, "every session recovered");
    for snap in &paused {
        let e = expected
            .get(&snap.session_id.to_string())
            .expect("a session of the manifest");
        let p = snap.pending.as_ref().expect("paused with a batch");
        assert_eq!(p.round, e.round, "same round");
        let qids: Vec<String> = p.queries.iter().map(|q| q.id.to_string()).collect();
        assert_eq!(qids, e.query_ids, "same pending query ids");
    }
    // A sample resumed to completion: each rebuilds its VM, replays its clock read and
    // its pause from the journal, takes the live answer and returns.
    let step = (sessions / sample.max(1)).max(1);
    let mut resumed = 0u64;
    let t_resume = Instant::now();
    for (k, (sid, e)) in expected.iter().enumerate() {
        if !(k as u64).is_multiple_of(step) || resumed >= sample {
            continue;
        }
        let id = SessionId::parse(sid).expect("session id");
        let answers = Answers {
            round: Some(e.round),
            answers: vec![Answer::text(
                Some(QueryId::parse(&e.query_ids[0]).expect("query id")),
                format!("answer {}", e.i),
            )],
        };
        engine.resume(&id, answers).await.expect("answer accepted");
        let t = engine.wait(&id).await.expect("terminal");
        match &t.outcome {
            Outcome::Completed { value } => assert_eq!(value, &expected_value(e.i)),
            other => panic!("session {sid}: expected completion, got {other:?}"),
        }
        resumed += 1;
    }
    let resume_s = t_resume.elapsed().as_secs_f64();
    engine.shutdown(ShutdownMode::Drain).await;
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
    json!({
        "machine": crate::machine("sqlite"),
        "sessions": sessions,
        "database_bytes": bytes,
        "prepare_s": crate::round2(prepare_s),
        "recovery_s": (recovery_s * 1000.0).round() / 1000.0,
        "recovery_sessions_per_s": (sessions as f64 / recovery_s).round(),
        "target_s": 10.0,
        "verified_paused": paused.len(),
        "resumed_to_completion": resumed,
        "resumed_ms_mean": crate::round2(resume_s * 1000.0 / resumed.max(1) as f64),
    })
}
