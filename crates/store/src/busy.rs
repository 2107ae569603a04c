//! How a connection waits for another connection's write lock on the same database.
//!
//! SQLite's built-in busy handler sleeps at least a millisecond per retry. Writers in one
//! process (the journal, transcripts, the eval store, the response cache) each hold their
//! lock for tens of microseconds, so that first millisecond is most of the wait, and it is
//! spent blocking whichever thread asked (often an async runtime's worker). This policy
//! retries after 50 µs at first, then backs off to 0.5 ms and 2 ms, giving up after about
//! five seconds like `busy_timeout(5 s)`.

use rusqlite::Connection;
use std::time::Duration;

/// Retries at 50 µs (1 ms in total), then 0.5 ms (40 ms), then 2 ms each.
fn wait(retries: i32) -> bool {
    let pause = match retries {
        0..20 => Duration::from_micros(50),
        20..100 => Duration::from_micros(500),
        100..2580 => Duration::from_millis(2),
        _ => return false,
    };
    std::thread::sleep(pause);
    true
}

/// Installs the busy policy on `conn` (replacing any `busy_timeout`).
pub fn set_busy_policy(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(wait))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_up_after_about_five_seconds_of_retries() {
        // Sum the schedule instead of sleeping through it.
        let total: Duration = (0..)
            .map_while(|i| match i {
                0..20 => Some(Duration::from_micros(50)),
                20..100 => Some(Duration::from_micros(500)),
                100..2580 => Some(Duration::from_millis(2)),
                _ => None,
            })
            .sum();
        assert!(
            total > Duration::from_secs(4) && total < Duration::from_secs(6),
            "{total:?}"
        );
        assert!(
            !wait(2580),
            "the handler stops retrying at the end of the schedule"
        );
    }

    #[test]
    fn a_second_writer_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let a = Connection::open(&path).unwrap();
        a.pragma_update(None, "journal_mode", "WAL").unwrap();
        a.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let b = Connection::open(&path).unwrap();
        set_busy_policy(&b).unwrap();
        a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)")
            .unwrap();
        let writer =
            std::thread::spawn(move || b.execute("INSERT INTO t VALUES (2)", []).map(|_| ()));
        std::thread::sleep(Duration::from_millis(30));
        a.execute_batch("COMMIT").unwrap();
        writer
            .join()
            .unwrap()
            .expect("the waiting write goes through once the lock is free");
        let n: i64 = a
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
