//! `MemoryJournal`: the in-process, non-durable journal.

use alc_core::{
    Journal, JournalError, JournalRecord, LeaseResult, OwnerId, RowFilter, SessionAppend,
    SessionId, SessionRow, SessionStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Inner {
    rows: HashMap<SessionId, SessionRow>,
    records: HashMap<SessionId, Vec<JournalRecord>>,
}

/// A journal kept in memory: same validation as [`SqliteJournal`](crate::SqliteJournal)
/// (contiguous seqs, atomic batches), every lease granted locally, `durable() == false`.
#[derive(Default)]
pub struct MemoryJournal {
    inner: Mutex<Inner>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> MemoryJournal {
        MemoryJournal::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for MemoryJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryJournal")
            .field("sessions", &self.lock().rows.len())
            .finish()
    }
}

impl Journal for MemoryJournal {
    fn append(&self, batch: &[SessionAppend]) -> Result<(), JournalError> {
        let mut g = self.lock();
        // Validate the whole batch first so that a failure writes nothing.
        let mut last: HashMap<&SessionId, u64> = HashMap::new();
        for a in batch {
            let l = last
                .entry(&a.session_id)
                .or_insert_with(|| g.rows.get(&a.session_id).map_or(0, |r| r.last_seq));
            for (i, r) in a.records.iter().enumerate() {
                let expected = *l + 1 + i as u64;
                if r.seq != expected || r.session_id != a.session_id {
                    return Err(JournalError::Sequence {
                        session_id: a.session_id.clone(),
                        expected,
                        got: r.seq,
                    });
                }
            }
            *l += a.records.len() as u64;
        }
        for a in batch {
            let recs = g.records.entry(a.session_id.clone()).or_default();
            // Exactly sized while short: most sessions hold a handful of records, and a
            // doubling vector of 500-byte records would keep a third of it empty. Longer
            // ones grow by doubling as usual.
            if recs.len() + a.records.len() <= 8 {
                recs.reserve_exact(a.records.len());
            }
            recs.extend(a.records.iter().cloned());
            let last_seq = recs.len() as u64;
            let row = &a.row;
            match g.rows.get_mut(&a.session_id) {
                Some(r) => {
                    r.updated_at = row.updated_at;
                    r.status = row.status();
                    if r.status == SessionStatus::Terminal {
                        r.owner = None;
                    }
                    r.phase = row.phase;
                    r.round = row.round;
                    r.last_seq = last_seq;
                    if let Some(l) = &row.labels {
                        r.labels = l.clone();
                    }
                    if let Some(o) = &row.outcome {
                        r.outcome = Some(o.clone());
                    }
                    if let Some(m) = &row.metrics {
                        r.metrics = Some(m.clone());
                    }
                }
                None => {
                    let created_at = a.records.first().map_or(row.updated_at, |r| r.at);
                    g.rows.insert(
                        a.session_id.clone(),
                        SessionRow {
                            session_id: a.session_id.clone(),
                            created_at,
                            updated_at: row.updated_at,
                            status: row.status(),
                            phase: row.phase,
                            round: row.round,
                            last_seq,
                            owner: None,
                            labels: row.labels.clone().unwrap_or_else(BTreeMap::new),
                            outcome: row.outcome.clone(),
                            metrics: row.metrics.clone(),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    fn read(&self, id: &SessionId, from_seq: u64) -> Result<Vec<JournalRecord>, JournalError> {
        let g = self.lock();
        Ok(g.records
            .get(id)
            .map(|v| v.iter().filter(|r| r.seq >= from_seq).cloned().collect())
            .unwrap_or_default())
    }

    fn session(&self, id: &SessionId) -> Result<Option<SessionRow>, JournalError> {
        Ok(self.lock().rows.get(id).cloned())
    }

    fn open_sessions(&self, filter: &RowFilter) -> Result<Vec<SessionRow>, JournalError> {
        let g = self.lock();
        let mut rows: Vec<SessionRow> = g
            .rows
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        rows.sort_by(|a, b| (a.updated_at, &a.session_id).cmp(&(b.updated_at, &b.session_id)));
        if let Some(n) = filter.limit {
            rows.truncate(n);
        }
        Ok(rows)
    }

    fn acquire_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<LeaseResult, JournalError> {
        let mut g = self.lock();
        match g.rows.get_mut(id) {
            None => Ok(LeaseResult::NotFound),
            Some(r) => {
                let prev = r.owner.replace(owner.clone());
                Ok(LeaseResult::Acquired {
                    taken_over: prev.filter(|p| p != owner),
                })
            }
        }
    }

    fn release_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<(), JournalError> {
        let mut g = self.lock();
        if let Some(r) = g.rows.get_mut(id) {
            if r.owner.as_ref() == Some(owner) {
                r.owner = None;
            }
        }
        Ok(())
    }

    fn heartbeat(&self, _owner: &OwnerId) -> Result<(), JournalError> {
        Ok(())
    }

    fn delete(&self, id: &SessionId) -> Result<(), JournalError> {
        let mut g = self.lock();
        g.rows.remove(id);
        g.records.remove(id);
        Ok(())
    }

    fn durable(&self) -> bool {
        false
    }
}
