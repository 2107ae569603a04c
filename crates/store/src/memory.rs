//! `MemoryJournal`: the in-process, non-durable journal.

use alc_core::{
    Journal, JournalError, JournalRecord, LeaseResult, Outcome, OwnerId, Phase, RowFilter,
    SessionAppend, SessionId, SessionMetrics, SessionRow, SessionStatus,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

/// One session's row and records. Boxed in the map: a paused session's entry is a few
/// hundred bytes, and an unboxed map would keep that much empty for each free slot.
struct Entry {
    row: Row,
    records: Vec<JournalRecord>,
}

/// A [`SessionRow`] as this journal keeps it: the id is the map's key, and the outcome and
/// metrics (large, and unset for most of a session's life) are boxed, so a paused
/// session's entry is a quarter of a `SessionRow`.
struct Row {
    created_at: i64,
    updated_at: i64,
    status: SessionStatus,
    phase: Phase,
    round: u64,
    last_seq: u64,
    owner: Option<OwnerId>,
    labels: BTreeMap<String, String>,
    outcome: Option<Box<Outcome>>,
    metrics: Option<Box<SessionMetrics>>,
}

impl Row {
    fn to_row(&self, id: &SessionId) -> SessionRow {
        SessionRow {
            session_id: id.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            status: self.status,
            phase: self.phase,
            round: self.round,
            last_seq: self.last_seq,
            owner: self.owner.clone(),
            labels: self.labels.clone(),
            outcome: self.outcome.as_deref().cloned(),
            metrics: self.metrics.as_deref().cloned(),
        }
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<SessionId, Box<Entry>>,
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
            .field("sessions", &self.lock().sessions.len())
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
                .or_insert_with(|| g.sessions.get(&a.session_id).map_or(0, |e| e.row.last_seq));
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
            let row = &a.row;
            let e = g.sessions.entry(a.session_id.clone()).or_insert_with(|| {
                Box::new(Entry {
                    row: Row {
                        created_at: a.records.first().map_or(row.updated_at, |r| r.at),
                        updated_at: row.updated_at,
                        status: row.status(),
                        phase: row.phase,
                        round: row.round,
                        last_seq: 0,
                        owner: None,
                        labels: BTreeMap::new(),
                        outcome: None,
                        metrics: None,
                    },
                    records: Vec::new(),
                })
            });
            let recs = &mut e.records;
            // Exactly sized while short: most sessions hold a handful of records, and a
            // doubling vector of 500-byte records would keep a third of it empty. Longer
            // ones grow by doubling as usual.
            if recs.len() + a.records.len() <= 8 {
                recs.reserve_exact(a.records.len());
            }
            recs.extend(a.records.iter().cloned());
            let r = &mut e.row;
            r.last_seq = recs.len() as u64;
            r.updated_at = row.updated_at;
            r.status = row.status();
            if r.status == SessionStatus::Terminal {
                r.owner = None;
            }
            r.phase = row.phase;
            r.round = row.round;
            if let Some(l) = &row.labels {
                r.labels = l.clone();
            }
            if let Some(o) = &row.outcome {
                r.outcome = Some(Box::new(o.clone()));
            }
            if let Some(m) = &row.metrics {
                r.metrics = Some(Box::new(m.clone()));
            }
        }
        Ok(())
    }

    fn read(&self, id: &SessionId, from_seq: u64) -> Result<Vec<JournalRecord>, JournalError> {
        let g = self.lock();
        Ok(g.sessions
            .get(id)
            .map(|e| {
                e.records
                    .iter()
                    .filter(|r| r.seq >= from_seq)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn session(&self, id: &SessionId) -> Result<Option<SessionRow>, JournalError> {
        Ok(self.lock().sessions.get(id).map(|e| e.row.to_row(id)))
    }

    fn open_sessions(&self, filter: &RowFilter) -> Result<Vec<SessionRow>, JournalError> {
        let g = self.lock();
        let mut rows: Vec<SessionRow> = g
            .sessions
            .iter()
            .filter(|(_, e)| {
                let r = &e.row;
                filter.matches_fields(r.status, r.phase, r.updated_at, &r.labels)
            })
            .map(|(id, e)| e.row.to_row(id))
            .collect();
        rows.sort_by(|a, b| (a.updated_at, &a.session_id).cmp(&(b.updated_at, &b.session_id)));
        if let Some(n) = filter.limit {
            rows.truncate(n);
        }
        Ok(rows)
    }

    fn acquire_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<LeaseResult, JournalError> {
        let mut g = self.lock();
        match g.sessions.get_mut(id) {
            None => Ok(LeaseResult::NotFound),
            Some(e) => {
                let prev = e.row.owner.replace(owner.clone());
                Ok(LeaseResult::Acquired {
                    taken_over: prev.filter(|p| p != owner),
                })
            }
        }
    }

    fn release_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<(), JournalError> {
        let mut g = self.lock();
        if let Some(e) = g.sessions.get_mut(id) {
            if e.row.owner.as_ref() == Some(owner) {
                e.row.owner = None;
            }
        }
        Ok(())
    }

    fn heartbeat(&self, _owner: &OwnerId) -> Result<(), JournalError> {
        Ok(())
    }

    fn delete(&self, id: &SessionId) -> Result<(), JournalError> {
        let mut g = self.lock();
        g.sessions.remove(id);
        Ok(())
    }

    fn durable(&self) -> bool {
        false
    }
}
