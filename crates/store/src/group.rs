//! Group commit (§7.3): concurrent appends from several threads share one transaction.

use crate::sqlite::{db_err, lock, SqliteJournal};
use alc_core::{
    Journal, JournalError, JournalRecord, LeaseResult, OwnerId, RowFilter, SessionAppend,
    SessionId, SessionRow,
};
use rusqlite::TransactionBehavior;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Default)]
struct State {
    next_id: u64,
    queue: Vec<(u64, Vec<SessionAppend>)>,
    results: HashMap<u64, Result<(), JournalError>>,
    leader: bool,
    transactions: u64,
}

/// Wraps a [`SqliteJournal`] so that concurrent [`Journal::append`] calls are committed together:
/// the first caller becomes the leader and commits every queued batch in one transaction (each
/// batch under its own savepoint, so a sequence error fails only its own caller); callers that
/// arrive meanwhile wait and are served by the next transaction. Every caller returns after its
/// batch is committed. Other methods delegate to the journal.
pub struct GroupCommit {
    journal: SqliteJournal,
    state: Mutex<State>,
    done: Condvar,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("journal", &self.journal)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Wraps `journal`.
    pub fn new(journal: SqliteJournal) -> GroupCommit {
        GroupCommit {
            journal,
            state: Mutex::new(State::default()),
            done: Condvar::new(),
        }
    }

    /// The wrapped journal.
    pub fn journal(&self) -> &SqliteJournal {
        &self.journal
    }

    /// Number of transactions committed so far (for tests and metrics).
    pub fn transactions(&self) -> u64 {
        self.lock().transactions
    }

    /// Appends an owned batch (avoids the copy of [`Journal::append`]).
    pub fn append_owned(&self, batch: Vec<SessionAppend>) -> Result<(), JournalError> {
        let mut g = self.lock();
        let id = g.next_id;
        g.next_id += 1;
        g.queue.push((id, batch));
        loop {
            if let Some(r) = g.results.remove(&id) {
                return r;
            }
            if !g.leader {
                g.leader = true;
                let work = std::mem::take(&mut g.queue);
                drop(g);
                let results = self.commit(work);
                g = self.lock();
                g.results.extend(results);
                g.leader = false;
                g.transactions += 1;
                self.done.notify_all();
                continue;
            }
            g = self.done.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn commit(&self, work: Vec<(u64, Vec<SessionAppend>)>) -> Vec<(u64, Result<(), JournalError>)> {
        let mut conn = lock(self.journal.shared());
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let e = db_err(e);
                return work
                    .into_iter()
                    .map(|(id, _)| (id, Err(e.clone())))
                    .collect();
            }
        };
        let mut results = Vec::with_capacity(work.len());
        for (id, batch) in &work {
            let r = (|| {
                let sp = tx.savepoint().map_err(db_err)?;
                for a in batch {
                    self.journal.write_append(&sp, a, None)?;
                }
                sp.commit().map_err(db_err)
            })();
            results.push((*id, r));
        }
        if let Err(e) = tx.commit() {
            let e = db_err(e);
            for r in &mut results {
                if r.1.is_ok() {
                    r.1 = Err(e.clone());
                }
            }
        }
        results
    }
}

impl Journal for GroupCommit {
    fn append(&self, batch: &[SessionAppend]) -> Result<(), JournalError> {
        self.append_owned(batch.to_vec())
    }
    fn read(&self, id: &SessionId, from_seq: u64) -> Result<Vec<JournalRecord>, JournalError> {
        self.journal.read(id, from_seq)
    }
    fn session(&self, id: &SessionId) -> Result<Option<SessionRow>, JournalError> {
        self.journal.session(id)
    }
    fn open_sessions(&self, filter: &RowFilter) -> Result<Vec<SessionRow>, JournalError> {
        self.journal.open_sessions(filter)
    }
    fn acquire_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<LeaseResult, JournalError> {
        self.journal.acquire_lease(id, owner)
    }
    fn release_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<(), JournalError> {
        self.journal.release_lease(id, owner)
    }
    fn heartbeat(&self, owner: &OwnerId) -> Result<(), JournalError> {
        self.journal.heartbeat(owner)
    }
    fn delete(&self, id: &SessionId) -> Result<(), JournalError> {
        self.journal.delete(id)
    }
    fn durable(&self) -> bool {
        true
    }
    fn void_dead_leases(&self) -> Result<usize, JournalError> {
        self.journal.void_dead_leases()
    }
    fn append_with(
        &self,
        effect: &mut dyn FnMut() -> Result<Vec<SessionAppend>, JournalError>,
    ) -> Result<(), JournalError> {
        self.journal.append_with(effect)
    }
}
