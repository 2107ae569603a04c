//! SqliteJournal / MemoryJournal behaviour on real database files.

mod common;

use alc_core::*;
use alc_store::*;
use common::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alc.db");
    (dir, p)
}

fn journals(path: &std::path::Path) -> Vec<Box<dyn Journal>> {
    vec![
        Box::new(SqliteJournal::open(path, Durability::Normal).unwrap()),
        Box::new(MemoryJournal::new()),
    ]
}

#[test]
fn round_trip_every_record_kind() {
    let (_d, p) = db();
    for j in journals(&p) {
        let s = sid(1);
        let recs = all_records(&s);
        // Two appends: the first half, then the rest.
        let (a, b) = recs.split_at(5);
        j.append(&[append1(&s, a.to_vec(), Phase::Running, 0)])
            .unwrap();
        j.append(&[append1(&s, b.to_vec(), Phase::Completed, 1)])
            .unwrap();
        assert_eq!(j.read(&s, 1).unwrap(), recs);
        assert_eq!(j.read(&s, 8).unwrap(), recs[7..].to_vec());
        assert!(j.read(&sid(9), 1).unwrap().is_empty());
        let row = j.session(&s).unwrap().unwrap();
        assert_eq!(row.last_seq, recs.len() as u64);
        assert_eq!(row.status, SessionStatus::Terminal);
        assert_eq!(row.phase, Phase::Completed);
        assert_eq!(row.round, 1);
        assert_eq!(row.created_at, recs[0].at);
    }
}

#[test]
fn reopen_keeps_records() {
    let (_d, p) = db();
    let s = sid(1);
    {
        let j = SqliteJournal::open(&p, Durability::Full).unwrap();
        j.append(&[append1(&s, vec![rec(&s, 1, spawned())], Phase::Queued, 0)])
            .unwrap();
    }
    let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    assert_eq!(j.read(&s, 1).unwrap().len(), 1);
    assert!(j.durable());
    assert!(!MemoryJournal::new().durable());
}

#[test]
fn sequence_gaps_are_rejected_atomically() {
    let (_d, p) = db();
    for j in journals(&p) {
        let s = sid(2);
        let t = sid(3);
        // A new session must start at 1.
        let e = j
            .append(&[append1(&s, vec![rec(&s, 2, spawned())], Phase::Queued, 0)])
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::Sequence {
                session_id: s.clone(),
                expected: 1,
                got: 2
            }
        );
        j.append(&[append1(&s, vec![rec(&s, 1, spawned())], Phase::Queued, 0)])
            .unwrap();
        // Gap, duplicate, and a batch where the second session is wrong: nothing is written.
        for bad in [3, 1] {
            let e = j
                .append(&[append1(&s, vec![rec(&s, bad, spawned())], Phase::Queued, 0)])
                .unwrap_err();
            assert!(
                matches!(e, JournalError::Sequence { expected: 2, .. }),
                "{e:?}"
            );
        }
        let e = j
            .append(&[
                append1(&t, vec![rec(&t, 1, spawned())], Phase::Queued, 0),
                append1(
                    &s,
                    vec![rec(&s, 2, spawned()), rec(&s, 4, spawned())],
                    Phase::Queued,
                    0,
                ),
            ])
            .unwrap_err();
        assert_eq!(
            e,
            JournalError::Sequence {
                session_id: s.clone(),
                expected: 3,
                got: 4
            }
        );
        assert!(j.session(&t).unwrap().is_none());
        assert_eq!(j.session(&s).unwrap().unwrap().last_seq, 1);
        // Two appends for the same session in one batch continue each other.
        j.append(&[
            append1(&s, vec![rec(&s, 2, spawned())], Phase::Queued, 0),
            append1(&s, vec![rec(&s, 3, spawned())], Phase::Queued, 0),
        ])
        .unwrap();
        assert_eq!(j.session(&s).unwrap().unwrap().last_seq, 3);
    }
}

#[test]
fn newer_schema_is_refused() {
    let (_d, p) = db();
    drop(SqliteJournal::open(&p, Durability::Normal).unwrap());
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute(
        "UPDATE schema_version SET version = 99 WHERE component = 'store'",
        [],
    )
    .unwrap();
    drop(c);
    let e = SqliteJournal::open(&p, Durability::Normal).unwrap_err();
    assert_eq!(
        e,
        JournalError::Schema {
            found: 99,
            supported: SCHEMA_VERSION
        }
    );
}

#[test]
fn newer_journal_format_is_refused() {
    let (_d, p) = db();
    drop(SqliteJournal::open(&p, Durability::Normal).unwrap());
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute(
        "UPDATE journal_meta SET value = '7' WHERE key = 'journal_format'",
        [],
    )
    .unwrap();
    drop(c);
    let e = SqliteJournal::open(&p, Durability::Normal).unwrap_err();
    assert_eq!(
        e,
        JournalError::Schema {
            found: 7,
            supported: JOURNAL_FORMAT
        }
    );
}

#[test]
fn garbage_file_is_refused_with_path() {
    let (_d, p) = db();
    std::fs::write(&p, vec![0x42u8; 8192]).unwrap();
    let e = SqliteJournal::open(&p, Durability::Normal).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, JournalError::Io { .. }), "{e:?}");
    assert!(msg.contains(&p.display().to_string()), "{msg}");
    assert!(msg.contains("not an SQLite database"), "{msg}");
}

#[test]
fn damaged_layout_is_refused() {
    let (_d, p) = db();
    drop(SqliteJournal::open(&p, Durability::Normal).unwrap());
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute_batch("DROP TABLE records").unwrap();
    drop(c);
    let msg = SqliteJournal::open(&p, Durability::Normal)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("table 'records' is missing") && msg.contains("alc.db"),
        "{msg}"
    );
    // Our tables without a schema version (a foreign layout) are refused too.
    let (_d2, p2) = db();
    let c = rusqlite::Connection::open(&p2).unwrap();
    c.execute_batch("CREATE TABLE sessions (x)").unwrap();
    drop(c);
    let msg = SqliteJournal::open(&p2, Durability::Normal)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("without a store schema version"), "{msg}");
    // Another component's tables are fine.
    let (_d3, p3) = db();
    let c = rusqlite::Connection::open(&p3).unwrap();
    c.execute_batch("CREATE TABLE evals (x)").unwrap();
    drop(c);
    SqliteJournal::open(&p3, Durability::Normal).unwrap();
}

#[test]
fn corrupt_record_is_reported() {
    let (_d, p) = db();
    let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    let s = sid(1);
    j.append(&[append1(&s, vec![rec(&s, 1, spawned())], Phase::Queued, 0)])
        .unwrap();
    let c = rusqlite::Connection::open(&p).unwrap();
    c.execute("UPDATE records SET body = '{\"kind\":\"nope\"}'", [])
        .unwrap();
    let e = j.read(&s, 1).unwrap_err();
    assert!(matches!(e, JournalError::Corrupt { seq: 1, .. }), "{e:?}");
}

#[test]
fn open_sessions_filters() {
    let (_d, p) = db();
    for j in journals(&p) {
        let mk = |n: u8, phase: Phase, at: i64, kind: &str, outcome: bool| {
            let s = sid(n);
            let mut a = append1(&s, vec![rec(&s, 1, spawned())], phase, 1);
            a.row.updated_at = at;
            a.row.labels = Some(BTreeMap::from([("kind".to_string(), kind.to_string())]));
            if outcome {
                a.row.outcome = Some(Outcome::Completed {
                    value: serde_json::json!(1),
                });
                a.row.metrics = Some(SessionMetrics::default());
            }
            a
        };
        j.append(&[
            mk(1, Phase::Paused, 300, "run", false),
            mk(2, Phase::Queued, 100, "eval", false),
            mk(3, Phase::Completed, 200, "run", true),
            mk(4, Phase::Paused, 50, "run", false),
        ])
        .unwrap();
        let ids = |f: RowFilter| -> Vec<SessionId> {
            j.open_sessions(&f)
                .unwrap()
                .into_iter()
                .map(|r| r.session_id)
                .collect()
        };
        assert_eq!(ids(RowFilter::open()), vec![sid(4), sid(2), sid(1)]);
        assert_eq!(
            ids(RowFilter::default()),
            vec![sid(4), sid(2), sid(3), sid(1)]
        );
        assert_eq!(
            ids(RowFilter {
                status: Some(SessionStatus::Terminal),
                ..Default::default()
            }),
            vec![sid(3)]
        );
        assert_eq!(
            ids(RowFilter {
                phase: Some(Phase::Paused),
                ..Default::default()
            }),
            vec![sid(4), sid(1)]
        );
        assert_eq!(
            ids(RowFilter {
                updated_before: Some(200),
                ..Default::default()
            }),
            vec![sid(4), sid(2)]
        );
        let mut labels = BTreeMap::new();
        labels.insert("kind".to_string(), "run".to_string());
        assert_eq!(
            ids(RowFilter {
                labels,
                limit: Some(2),
                ..RowFilter::open()
            }),
            vec![sid(4), sid(1)]
        );
        let row = j.session(&sid(3)).unwrap().unwrap();
        assert_eq!(
            row.outcome,
            Some(Outcome::Completed {
                value: serde_json::json!(1)
            })
        );
        assert_eq!(row.labels["kind"], "run");
        // Row updates without labels keep them.
        j.append(&[append1(&sid(1), vec![], Phase::Queued, 2)])
            .unwrap();
        let row = j.session(&sid(1)).unwrap().unwrap();
        assert_eq!(
            (row.labels["kind"].as_str(), row.round, row.phase),
            ("run", 2, Phase::Queued)
        );
        // delete removes row and records.
        j.delete(&sid(1)).unwrap();
        assert!(j.session(&sid(1)).unwrap().is_none());
        assert!(j.read(&sid(1), 1).unwrap().is_empty());
    }
}

#[test]
fn prune_terminal_sessions() {
    let (_d, p) = db();
    let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    let (a, b) = (sid(1), sid(2));
    let mut done = append1(&a, vec![rec(&a, 1, spawned())], Phase::Failed, 0);
    done.row.updated_at = 10;
    let mut open = append1(&b, vec![rec(&b, 1, spawned())], Phase::Paused, 0);
    open.row.updated_at = 10;
    j.append(&[done, open]).unwrap();
    assert_eq!(j.prune_terminal(11).unwrap(), 1);
    assert!(j.session(&a).unwrap().is_none() && j.read(&a, 1).unwrap().is_empty());
    assert!(j.session(&b).unwrap().is_some());
}

fn new_session(j: &dyn Journal, s: &SessionId) {
    j.append(&[append1(s, vec![rec(s, 1, spawned())], Phase::Paused, 1)])
        .unwrap();
}

#[test]
fn lease_busy_between_two_connections_then_takeover_after_expiry() {
    let (_d, p) = db();
    let j1 = SqliteJournal::open(&p, Durability::Normal).unwrap();
    let mut j2 = SqliteJournal::open(&p, Durability::Normal).unwrap();
    let s = sid(1);
    new_session(&j1, &s);
    let (o1, o2) = (OwnerId::new("o-1"), OwnerId::new("o-2"));
    assert_eq!(
        j1.acquire_lease(&sid(7), &o1).unwrap(),
        LeaseResult::NotFound
    );
    assert_eq!(
        j1.acquire_lease(&s, &o1).unwrap(),
        LeaseResult::Acquired { taken_over: None }
    );
    assert_eq!(
        j1.acquire_lease(&s, &o1).unwrap(),
        LeaseResult::Acquired { taken_over: None }
    );
    assert_eq!(
        j2.acquire_lease(&s, &o2).unwrap(),
        LeaseResult::Busy { owner: o1.clone() }
    );
    assert_eq!(j2.session(&s).unwrap().unwrap().owner, Some(o1.clone()));
    // Release, then o2 gets it.
    j1.release_lease(&s, &o2).unwrap(); // not the holder: no-op
    assert!(matches!(
        j2.acquire_lease(&s, &o2).unwrap(),
        LeaseResult::Busy { .. }
    ));
    j1.release_lease(&s, &o1).unwrap();
    assert_eq!(
        j2.acquire_lease(&s, &o2).unwrap(),
        LeaseResult::Acquired { taken_over: None }
    );
    // o1 takes it back after o2's heartbeat grows stale (same live pid, so only the age counts).
    j1.heartbeat(&o1).unwrap();
    assert!(matches!(
        j1.acquire_lease(&s, &o1).unwrap(),
        LeaseResult::Busy { .. }
    ));
    j2.register_owner(&o2, &current_host(), std::process::id(), now_ms() - 31_000)
        .unwrap();
    assert_eq!(
        j1.acquire_lease(&s, &o1).unwrap(),
        LeaseResult::Acquired {
            taken_over: Some(o2.clone())
        }
    );
    // A fresh heartbeat keeps a lease valid; a short TTL voids it.
    j1.heartbeat(&o1).unwrap();
    assert!(matches!(
        j2.acquire_lease(&s, &o2).unwrap(),
        LeaseResult::Busy { .. }
    ));
    j2.set_lease_ttl_ms(-1);
    assert!(matches!(
        j2.acquire_lease(&s, &o2).unwrap(),
        LeaseResult::Acquired { .. }
    ));
}

fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

#[test]
fn lease_of_dead_pid_on_this_host_is_void() {
    let (_d, p) = db();
    let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    let s = sid(1);
    let t = sid(2);
    new_session(&j, &s);
    new_session(&j, &t);
    let dead = OwnerId::new("o-dead");
    let remote = OwnerId::new("o-remote");
    j.acquire_lease(&s, &dead).unwrap();
    j.acquire_lease(&t, &remote).unwrap();
    j.register_owner(&dead, &current_host(), dead_pid(), now_ms())
        .unwrap();
    // A pid on another host cannot be checked: only the heartbeat counts.
    j.register_owner(&remote, "other-host", dead_pid(), now_ms())
        .unwrap();
    let me = OwnerId::new("o-me");
    assert_eq!(
        j.acquire_lease(&s, &me).unwrap(),
        LeaseResult::Acquired {
            taken_over: Some(dead.clone())
        }
    );
    assert_eq!(
        j.acquire_lease(&t, &me).unwrap(),
        LeaseResult::Busy {
            owner: remote.clone()
        }
    );
    // Start-up sweep voids dead owners' leases.
    j.release_lease(&s, &me).unwrap();
    j.acquire_lease(&s, &dead).unwrap();
    j.register_owner(&dead, &current_host(), dead_pid(), now_ms())
        .unwrap();
    assert_eq!(j.void_dead_leases().unwrap(), 1);
    assert_eq!(j.session(&s).unwrap().unwrap().owner, None);
    assert_eq!(j.session(&t).unwrap().unwrap().owner, Some(remote.clone()));
    assert_eq!(j.release_owner(&remote).unwrap(), 1);
    assert_eq!(j.session(&t).unwrap().unwrap().owner, None);
}

#[test]
fn memory_journal_grants_every_lease() {
    let j = MemoryJournal::new();
    let s = sid(1);
    new_session(&j, &s);
    let (a, b) = (OwnerId::new("a"), OwnerId::new("b"));
    assert_eq!(
        j.acquire_lease(&s, &a).unwrap(),
        LeaseResult::Acquired { taken_over: None }
    );
    assert_eq!(
        j.acquire_lease(&s, &b).unwrap(),
        LeaseResult::Acquired {
            taken_over: Some(a)
        }
    );
    assert_eq!(j.acquire_lease(&sid(2), &b).unwrap(), LeaseResult::NotFound);
}

const CHILD_ENV: &str = "ALC_STORE_LEASE_CHILD_DB";

/// Helper run in a child process by `lease_held_by_child_process`: takes the lease, prints
/// `ready`, then sleeps until killed.
#[test]
fn child_lease_holder() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let j = SqliteJournal::open(&path, Durability::Normal).unwrap();
    let r = j.acquire_lease(&sid(1), &OwnerId::new("o-child")).unwrap();
    assert!(matches!(r, LeaseResult::Acquired { .. }));
    println!("LEASE-CHILD-READY");
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    loop {
        j.heartbeat(&OwnerId::new("o-child")).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn lease_held_by_child_process() {
    use std::io::BufRead;
    let (_d, p) = db();
    let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    new_session(&j, &sid(1));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_lease_holder",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &p)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child exited early");
        if line.contains("LEASE-CHILD-READY") {
            break;
        }
    }
    let me = OwnerId::new("o-parent");
    assert_eq!(
        j.acquire_lease(&sid(1), &me).unwrap(),
        LeaseResult::Busy {
            owner: OwnerId::new("o-child")
        }
    );
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(
        j.acquire_lease(&sid(1), &me).unwrap(),
        LeaseResult::Acquired {
            taken_over: Some(OwnerId::new("o-child"))
        }
    );
}

#[test]
fn group_commit_shares_transactions() {
    let (_d, p) = db();
    let g = Arc::new(GroupCommit::new(
        SqliteJournal::open(&p, Durability::Normal).unwrap(),
    ));
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let g = g.clone();
            std::thread::spawn(move || {
                let s = sid(t + 1);
                for seq in 1..=50 {
                    g.append(&[append1(
                        &s,
                        vec![rec(&s, seq, spawned())],
                        Phase::Running,
                        0,
                    )])
                    .unwrap();
                }
                // A bad seq fails only this caller.
                let e = g.append(&[append1(&s, vec![rec(&s, 99, spawned())], Phase::Running, 0)]);
                assert!(matches!(
                    e,
                    Err(JournalError::Sequence { expected: 51, .. })
                ));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for t in 0..8u8 {
        assert_eq!(g.read(&sid(t + 1), 1).unwrap().len(), 50);
        assert_eq!(g.session(&sid(t + 1)).unwrap().unwrap().last_seq, 50);
    }
    assert!(g.transactions() <= 8 * 51);
    eprintln!(
        "group commit: {} transactions for {} appends",
        g.transactions(),
        8 * 51
    );
}

#[test]
fn a_new_session_takes_its_lease_and_refreshes_a_stale_owner_row() {
    let (_d, p) = db();
    let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    let other = SqliteJournal::open(&p, Durability::Normal).unwrap();
    let owner = OwnerId::new("o-1");
    // Stale heartbeat: a new session's write brings it up to date, so the lease holds.
    j.register_owner(
        &owner,
        &current_host(),
        std::process::id(),
        now_ms() - 31_000,
    )
    .unwrap();
    for n in 1..=3u8 {
        let s = sid(n);
        let first = append1(&s, vec![rec(&s, 1, spawned())], Phase::Queued, 0);
        assert_eq!(
            j.append_new_leased(&first, &owner).unwrap(),
            LeaseResult::Acquired { taken_over: None }
        );
        assert_eq!(j.session(&s).unwrap().unwrap().owner, Some(owner.clone()));
        assert!(matches!(
            other.acquire_lease(&s, &OwnerId::new("o-2")).unwrap(),
            LeaseResult::Busy { .. }
        ));
    }
}

#[test]
fn background_checkpoints_keep_every_record() {
    let (_d, p) = db();
    {
        let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
        j.checkpoint_in_background().unwrap();
        for n in 1..=200u8 {
            let s = sid(n);
            j.append(&[append1(&s, vec![rec(&s, 1, spawned())], Phase::Queued, 0)])
                .unwrap();
            j.append(&[append1(&s, vec![rec(&s, 2, spawned())], Phase::Running, 0)])
                .unwrap();
        }
        for n in 1..=200u8 {
            assert_eq!(j.read(&sid(n), 1).unwrap().len(), 2);
        }
    }
    let j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    for n in 1..=200u8 {
        assert_eq!(j.session(&sid(n)).unwrap().unwrap().last_seq, 2);
    }
}

#[test]
fn a_terminal_append_releases_the_lease() {
    let (_d, p) = db();
    for j in journals(&p) {
        let s = sid(3);
        new_session(j.as_ref(), &s);
        let me = OwnerId::new("o-terminal");
        assert_eq!(
            j.acquire_lease(&s, &me).unwrap(),
            LeaseResult::Acquired { taken_over: None }
        );
        // A further open append keeps it; the terminal one clears it in the same write.
        j.append(&[append1(&s, vec![], Phase::Running, 1)]).unwrap();
        assert_eq!(j.session(&s).unwrap().unwrap().owner, Some(me.clone()));
        let outcome = RecordBody::Outcome {
            outcome: Box::new(Outcome::Completed {
                value: serde_json::json!(1),
            }),
            metrics: Box::default(),
        };
        j.append(&[append1(&s, vec![rec(&s, 2, outcome)], Phase::Completed, 1)])
            .unwrap();
        let row = j.session(&s).unwrap().unwrap();
        assert_eq!(row.status, SessionStatus::Terminal);
        assert_eq!(row.owner, None);
    }
}

/// Counts each append's records in a table of the journal's database, and fails (after
/// writing) for session 9.
struct CountingMirror {
    failures: std::sync::Mutex<Vec<SessionId>>,
}

impl AppendMirror for CountingMirror {
    fn mirror(
        &self,
        tx: &rusqlite::Connection,
        a: &SessionAppend,
        metrics: Option<&str>,
    ) -> rusqlite::Result<()> {
        let encoded = a
            .row
            .metrics
            .as_ref()
            .map(|m| serde_json::to_string(m).unwrap());
        assert_eq!(metrics, encoded.as_deref());
        tx.execute(
            "INSERT INTO mirrored (session_id, records, status) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                a.session_id.as_str(),
                a.records.len(),
                a.row.status().as_str()
            ],
        )?;
        if a.session_id == sid(9) {
            return Err(rusqlite::Error::InvalidQuery);
        }
        Ok(())
    }

    fn failed(&self, a: &SessionAppend, _error: rusqlite::Error) {
        self.failures.lock().unwrap().push(a.session_id.clone());
    }
}

fn log(message: &str) -> RecordBody {
    RecordBody::Log {
        entry: LogEntry {
            ts: 5,
            level: "info".into(),
            source: "alc.log".into(),
            message: message.into(),
        },
    }
}

fn mirrored(path: &std::path::Path) -> Vec<(String, i64, String)> {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c
        .prepare("SELECT session_id, records, status FROM mirrored ORDER BY rowid")
        .unwrap();
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

#[test]
fn a_mirror_writes_in_every_appends_transaction_and_its_failure_is_its_own() {
    let (_d, p) = db();
    let mut j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    j.shared_connection()
        .lock()
        .unwrap()
        .execute_batch("CREATE TABLE mirrored (session_id TEXT, records INTEGER, status TEXT)")
        .unwrap();
    let mirror = Arc::new(CountingMirror {
        failures: Default::default(),
    });
    j.set_mirror(mirror.clone());
    let owner = OwnerId::new("o-1");
    // A new session with its lease, then its end through the other append paths.
    let (a, b) = (sid(1), sid(2));
    // (with metrics: the mirror is given the journal's encoding of them)
    let mut first = append1(&a, vec![rec(&a, 1, spawned())], Phase::Paused, 1);
    first.row.metrics = Some(SessionMetrics::default());
    j.append_new_leased(&first, &owner).unwrap();
    j.append(&[append1(&a, vec![rec(&a, 2, log("x"))], Phase::Completed, 1)])
        .unwrap();
    j.append_with(&mut || {
        Ok(vec![append1(
            &b,
            vec![rec(&b, 1, spawned())],
            Phase::Running,
            0,
        )])
    })
    .unwrap();
    let g = GroupCommit::new(j.clone());
    g.append(&[append1(
        &b,
        vec![rec(&b, 2, log("y")), rec(&b, 3, log("z"))],
        Phase::Failed,
        0,
    )])
    .unwrap();
    let ended = |s: &str| (s.to_string(), 1i64, "terminal".to_string());
    assert_eq!(
        mirrored(&p),
        vec![
            (a.as_str().to_string(), 1, "open".to_string()),
            ended(a.as_str()),
            (b.as_str().to_string(), 1, "open".to_string()),
            (b.as_str().to_string(), 2, "terminal".to_string()),
        ]
    );
    // A failing mirror undoes its own rows only: the append commits.
    let c = sid(9);
    j.append(&[append1(&c, vec![rec(&c, 1, spawned())], Phase::Running, 0)])
        .unwrap();
    assert_eq!(j.read(&c, 1).unwrap().len(), 1);
    assert_eq!(mirrored(&p).len(), 4);
    assert_eq!(*mirror.failures.lock().unwrap(), vec![c]);
}

#[test]
fn redact_finished_redacts_in_the_append_that_ends_the_session() {
    let (_d, p) = db();
    let mut j = SqliteJournal::open(&p, Durability::Normal).unwrap();
    j.set_redact_finished(true);
    let s = sid(3);
    let recs = all_records(&s);
    let (open, end) = recs.split_at(recs.len() - 1);
    j.append(&[append1(&s, open.to_vec(), Phase::Paused, 1)])
        .unwrap();
    let texts = |j: &SqliteJournal| {
        j.read(&s, 1)
            .unwrap()
            .iter()
            .filter(|r| matches!(r.body, RecordBody::Pause { .. } | RecordBody::Answer { .. }))
            .map(|r| serde_json::to_string(&r.body).unwrap())
            .filter(|b| b.contains("\"hi\"") || b.contains("\"A1\""))
            .count()
    };
    assert!(texts(&j) > 0, "texts stay while the session is open");
    j.append(&[append1(&s, end.to_vec(), Phase::Completed, 1)])
        .unwrap();
    assert_eq!(texts(&j), 0, "the end redacts them");
}
