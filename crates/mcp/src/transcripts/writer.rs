//! The transcript writer: writes queued by the recorder and the tools are committed by one
//! background thread, all writes waiting at that moment in one transaction (group commit).
//! No request waits for a transcript write, and a burst of events costs one commit. The
//! thread commits as soon as it is woken: transcripts of a process that is killed lose
//! only the writes of that instant.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};

/// One queued write; it runs inside its own savepoint of the batch's transaction, so a
/// failing write is undone alone.
pub(super) type Write = Box<dyn FnOnce(&Connection) -> rusqlite::Result<()> + Send>;

#[derive(Default)]
struct Queue {
    writes: Vec<Write>,
    /// Writes queued since the start.
    queued: u64,
    /// Writes applied (committed or failed) since the start.
    done: u64,
    closing: bool,
}

struct Shared {
    conn: Arc<Mutex<Connection>>,
    queue: Mutex<Queue>,
    /// Signals the thread: writes queued, or closing.
    work: Condvar,
    /// Signals flushers: a batch was applied.
    applied: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The queue and its thread; dropping it applies what is queued, then stops the thread.
pub(super) struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread writing through `conn`.
    pub(super) fn start(conn: Arc<Mutex<Connection>>) -> std::io::Result<Writer> {
        let shared = Arc::new(Shared {
            conn,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            applied: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("alc-transcripts".into())
            .spawn(move || run(&s))?;
        Ok(Writer {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `write`.
    pub(super) fn push(&self, write: Write) {
        let mut q = lock(&self.shared.queue);
        q.writes.push(write);
        q.queued += 1;
        if q.writes.len() == 1 {
            self.shared.work.notify_one();
        }
    }

    /// Waits until every write queued before this call is applied.
    pub(super) fn flush(&self) {
        let mut q = lock(&self.shared.queue);
        let target = q.queued;
        while q.done < target {
            q = self
                .shared
                .applied
                .wait(q)
                .unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared.queue).closing = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The thread: takes whatever is queued, commits it, repeats; returns once closing with
/// nothing left.
fn run(s: &Shared) {
    loop {
        let batch = {
            let mut q = lock(&s.queue);
            while q.writes.is_empty() && !q.closing {
                q = s.work.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.writes.is_empty() {
                return;
            }
            std::mem::take(&mut q.writes)
        };
        let n = batch.len() as u64;
        if catch_unwind(AssertUnwindSafe(|| commit(&s.conn, batch))).is_err() {
            tracing::warn!("transcript writes failed: the writer panicked");
        }
        lock(&s.queue).done += n;
        s.applied.notify_all();
    }
}

/// Applies `batch` in one immediate transaction (transcripts are a record of what the
/// journal holds, so a failed write is logged, not retried).
fn commit(conn: &Mutex<Connection>, batch: Vec<Write>) {
    let mut conn = lock(conn);
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!(error = %e, writes = batch.len(), "transcript writes dropped");
            return;
        }
    };
    for write in batch {
        let r = tx.savepoint().and_then(|sp| {
            write(&sp)?;
            sp.commit()
        });
        if let Err(e) = r {
            tracing::warn!(error = %e, "transcript write failed");
        }
    }
    if let Err(e) = tx.commit() {
        tracing::warn!(error = %e, "transcript writes dropped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Arc<Mutex<Connection>> {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        Arc::new(Mutex::new(c))
    }

    fn count(conn: &Mutex<Connection>) -> i64 {
        lock(conn)
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn flush_waits_for_queued_writes_and_a_failing_write_is_undone_alone() {
        let conn = table();
        let w = Writer::start(conn.clone()).unwrap();
        for x in 0..100 {
            w.push(Box::new(move |c| {
                c.execute("INSERT INTO t (x) VALUES (?1)", [x]).map(|_| ())
            }));
        }
        w.push(Box::new(|c| {
            c.execute("INSERT INTO t (x) VALUES (1)", [])?;
            c.execute("INSERT INTO t (x) VALUES (NULL)", []).map(|_| ())
        }));
        w.flush();
        assert_eq!(count(&conn), 100);
        assert!(lock(&conn).is_autocommit(), "no transaction left open");
    }

    #[test]
    fn dropping_the_writer_applies_what_is_queued() {
        let conn = table();
        let w = Writer::start(conn.clone()).unwrap();
        for x in 0..10 {
            w.push(Box::new(move |c| {
                c.execute("INSERT INTO t (x) VALUES (?1)", [x]).map(|_| ())
            }));
        }
        drop(w);
        assert_eq!(count(&conn), 10);
    }
}
