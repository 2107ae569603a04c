//! Append latency of `SqliteJournal` (one `clock` record + row update per append, one session),
//! `synchronous=NORMAL` and `FULL`, plus `MemoryJournal` and 4-thread `GroupCommit` throughput.
//! Prints one JSON document. Run: `cargo run --release -p alc-store --example journal_bench`.

use alc_core::*;
use alc_store::*;
use std::sync::Arc;
use std::time::Instant;

const N: u64 = 2000;

fn append(s: &SessionId, seq: u64) -> SessionAppend {
    SessionAppend {
        session_id: s.clone(),
        records: vec![JournalRecord {
            session_id: s.clone(),
            seq,
            vm: 0,
            at: 1_700_000_000_000 + seq as i64,
            body: RecordBody::Clock {
                source: ClockSource::OsTime,
                value: serde_json::json!(1_700_000_000u64 + seq),
            },
        }],
        row: RowUpdate::new(Phase::Running, seq, 1_700_000_000_000 + seq as i64),
    }
}

fn measure(j: &dyn Journal) -> serde_json::Value {
    let s = SessionId::from_bytes([7; 16]);
    let mut us = Vec::with_capacity(N as usize);
    for seq in 1..=N {
        let a = append(&s, seq);
        let t = Instant::now();
        j.append(std::slice::from_ref(&a)).unwrap();
        us.push(t.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| us[((us.len() as f64 - 1.0) * p).round() as usize];
    serde_json::json!({
        "appends": N,
        "median_us": (pct(0.5) * 10.0).round() / 10.0,
        "p99_us": (pct(0.99) * 10.0).round() / 10.0,
        "max_us": (pct(1.0) * 10.0).round() / 10.0,
    })
}

fn group(j: SqliteJournal, threads: u8) -> serde_json::Value {
    let g = Arc::new(GroupCommit::new(j));
    let per = N / threads as u64;
    let t0 = Instant::now();
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let g = g.clone();
            std::thread::spawn(move || {
                let s = SessionId::from_bytes([t + 10; 16]);
                for seq in 1..=per {
                    g.append_owned(vec![append(&s, seq)]).unwrap();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    serde_json::json!({
        "threads": threads,
        "appends": per * threads as u64,
        "transactions": g.transactions(),
        "appends_per_s": ((per * threads as u64) as f64 / secs).round(),
    })
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let normal = SqliteJournal::open(dir.path().join("normal.db"), Durability::Normal).unwrap();
    let full = SqliteJournal::open(dir.path().join("full.db"), Durability::Full).unwrap();
    let out = serde_json::json!({
        "bench": "journal_append",
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "tmpdir": dir.path().display().to_string(),
        "sqlite_normal": measure(&normal),
        "sqlite_full": measure(&full),
        "memory": measure(&MemoryJournal::new()),
        "group_commit_normal_4_threads": group(
            SqliteJournal::open(dir.path().join("g1.db"), Durability::Normal).unwrap(), 4),
        "group_commit_full_4_threads": group(
            SqliteJournal::open(dir.path().join("g2.db"), Durability::Full).unwrap(), 4),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
