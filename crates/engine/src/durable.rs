//! Journal writing, adoption and replay support (engine.md §7).
//!
//! Seqs of a session are allocated under its [`SessionLog::last_seq`] mutex, which is taken
//! before the cell's state lock and held until the append returned: that makes the holder the
//! single writer of the moment (the worker while the session runs, the `apply` caller
//! otherwise) and orders the appends of one session totally.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use alc_core::{
    Answer, CompletedRound, DivergenceReport, Journal, JournalError, JournalRecord, PendingQuery,
    PendingState, QueryId, RecordBody, RowUpdate, SessionAppend, SessionId, SessionMetrics,
    SessionRow, SessionSpec,
};
use parking_lot::Mutex;

/// A record produced but not yet sequenced.
#[derive(Clone, Debug)]
pub struct PendingRecord {
    /// Producer (0 = main VM).
    pub vm: u32,
    /// Wall time.
    pub at: i64,
    /// Payload.
    pub body: RecordBody,
}

/// One session's handle on the journal.
pub struct SessionLog {
    /// The session.
    pub id: SessionId,
    /// The journal.
    pub journal: Arc<dyn Journal>,
    /// Seq of the last durable record; its mutex serializes the session's appends.
    pub last_seq: Mutex<u64>,
    /// Records held back to go out with the next append ([`HeldWrite`]); taken only
    /// under `last_seq`.
    held: Mutex<Option<Box<HeldWrite>>>,
}

/// Records held back until the session's next append, which writes them first and in
/// the same transaction: a new session's `spawned` record (with its row's labels and the
/// lease it takes) until its first step ends, or the answers that resumed a session until
/// the step they started ends. Only for callers that reply after that step.
pub struct HeldWrite {
    /// The records, in order (`spawned` is seq 1 of a new session).
    pub records: Vec<PendingRecord>,
    /// The row's labels (a new session's).
    pub labels: Option<BTreeMap<String, String>>,
    /// The owner whose lease the write takes (a new session's, durable journals).
    pub owner: Option<alc_core::OwnerId>,
}

impl SessionLog {
    /// A handle whose last durable record is `last_seq`.
    pub fn new(id: SessionId, journal: Arc<dyn Journal>, last_seq: u64) -> Arc<SessionLog> {
        Arc::new(SessionLog {
            id,
            journal,
            last_seq: Mutex::new(last_seq),
            held: Mutex::new(None),
        })
    }

    /// A handle on a session not yet in the journal: `first` (its `spawned` record) is
    /// written by the session's first append, ahead of that append's own records and in
    /// its transaction (or alone by [`SessionLog::write_held`]).
    pub fn unwritten(
        id: SessionId,
        journal: Arc<dyn Journal>,
        first: HeldWrite,
    ) -> Arc<SessionLog> {
        Arc::new(SessionLog {
            id,
            journal,
            last_seq: Mutex::new(0),
            held: Mutex::new(Some(Box::new(first))),
        })
    }

    /// Whether records are held back (the journal is behind the session).
    pub fn held_back(&self) -> bool {
        self.held.lock().is_some()
    }

    /// Holds `records` back for the next append, after any already held. The caller
    /// holds `last_seq`.
    pub fn hold(&self, records: Vec<PendingRecord>) {
        let mut held = self.held.lock();
        match held.as_mut() {
            Some(h) => h.records.extend(records),
            None => {
                *held = Some(Box::new(HeldWrite {
                    records,
                    labels: None,
                    owner: None,
                }))
            }
        }
    }

    /// Writes the held-back records now, alone, if there are any (`row` is the session's
    /// row as of now). The caller holds `last_seq` (passed as `last`).
    pub fn write_held(&self, last: &mut u64, row: RowUpdate) -> Result<(), JournalError> {
        let held = self.held.lock().take();
        match held {
            Some(held) => self.append_held(last, *held, Vec::new(), row),
            None => Ok(()),
        }
    }

    /// `held`, then `records`, in one write.
    fn append_held(
        &self,
        last: &mut u64,
        held: HeldWrite,
        records: Vec<PendingRecord>,
        mut row: RowUpdate,
    ) -> Result<(), JournalError> {
        let HeldWrite {
            records: mut all,
            labels,
            owner,
        } = held;
        all.extend(records);
        if let Some(labels) = labels {
            row.labels.get_or_insert(labels);
        }
        match owner {
            Some(owner) => match self.append_new_leased(last, all, row, &owner)? {
                alc_core::LeaseResult::Acquired { .. } => Ok(()),
                other => Err(JournalError::Io {
                    message: format!("cannot take the lease of a new session: {other:?}"),
                }),
            },
            None => self.append_locked(last, all, row),
        }
    }

    /// The append of `records` sequenced after `base`.
    pub fn sequence(
        &self,
        base: u64,
        records: Vec<PendingRecord>,
        row: RowUpdate,
    ) -> SessionAppend {
        SessionAppend {
            session_id: self.id.clone(),
            records: records
                .into_iter()
                .enumerate()
                .map(|(i, r)| JournalRecord {
                    session_id: self.id.clone(),
                    seq: base + 1 + i as u64,
                    vm: r.vm,
                    at: r.at,
                    body: r.body,
                })
                .collect(),
            row,
        }
    }

    /// Sequences `records` after `*last` and appends them with `row` in one durable write.
    pub fn append_locked(
        &self,
        last: &mut u64,
        records: Vec<PendingRecord>,
        row: RowUpdate,
    ) -> Result<(), JournalError> {
        let held = self.held.lock().take();
        if let Some(held) = held {
            return self.append_held(last, *held, records, row);
        }
        let (append, n) = self.numbered(*last, records, row);
        self.journal.append(&[append])?;
        *last += n;
        Ok(())
    }

    /// `append_locked` for the first records of a new session, taking its lease for
    /// `owner` in the same write (`Journal::append_new_leased`).
    pub fn append_new_leased(
        &self,
        last: &mut u64,
        records: Vec<PendingRecord>,
        row: RowUpdate,
        owner: &alc_core::OwnerId,
    ) -> Result<alc_core::LeaseResult, JournalError> {
        let (append, n) = self.numbered(*last, records, row);
        let lease = self.journal.append_new_leased(&append, owner)?;
        *last += n;
        Ok(lease)
    }

    /// The append of `records` numbered after `base`, and how many there are.
    fn numbered(
        &self,
        base: u64,
        records: Vec<PendingRecord>,
        row: RowUpdate,
    ) -> (SessionAppend, u64) {
        let records: Vec<JournalRecord> = records
            .into_iter()
            .enumerate()
            .map(|(i, r)| JournalRecord {
                session_id: self.id.clone(),
                seq: base + 1 + i as u64,
                vm: r.vm,
                at: r.at,
                body: r.body,
            })
            .collect();
        let n = records.len() as u64;
        let append = SessionAppend {
            session_id: self.id.clone(),
            records,
            row,
        };
        (append, n)
    }
}

/// The replay cursor of one VM: its input records after `spawned`, in seq order.
#[derive(Debug, Default)]
pub struct Replay {
    records: VecDeque<JournalRecord>,
}

impl Replay {
    /// The cursor over the input records of VM `vm`.
    pub fn new(records: &[JournalRecord], vm: u32) -> Replay {
        Replay {
            records: records
                .iter()
                .filter(|r| r.vm == vm && r.body.is_input())
                .filter(|r| !matches!(r.body, RecordBody::Spawned { .. }))
                .cloned()
                .collect(),
        }
    }

    /// Whether records remain.
    pub fn active(&self) -> bool {
        !self.records.is_empty()
    }

    /// The next record, if any.
    pub fn peek(&self) -> Option<&JournalRecord> {
        self.records.front()
    }

    /// Takes the next record.
    pub fn pop(&mut self) -> Option<JournalRecord> {
        self.records.pop_front()
    }
}

/// A short description of what a record expects (for divergence reports).
pub fn describe(body: &RecordBody) -> String {
    match body {
        RecordBody::Clock { source, .. } => format!("clock {source:?}"),
        RecordBody::Effect { service, op, .. } => format!("effect {service}.{op}"),
        RecordBody::EnvRead { key, .. } => format!("env_read {key}"),
        RecordBody::Module { name, .. } => format!("module {name}"),
        RecordBody::File { path, .. } => format!("file {path}"),
        RecordBody::Pause { round, .. } => format!("pause round {round}"),
        RecordBody::Answer { round, .. } => format!("answer round {round}"),
        other => other.kind().to_string(),
    }
}

/// The digest of an input record (`env_read`, `module`, `file`); `None` for other kinds.
pub fn input_digest(body: &RecordBody) -> Option<&str> {
    match body {
        RecordBody::EnvRead { digest, .. }
        | RecordBody::Module { digest, .. }
        | RecordBody::File { digest, .. } => Some(digest),
        _ => None,
    }
}

/// A line diff of two texts (`- ` expected, `+ ` actual), truncated to 4 KiB.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // Longest common subsequence table (texts are prompts: small).
    let (n, m) = (a.len(), b.len());
    let mut out = String::new();
    if n * m <= 1_000_000 {
        let mut l = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                l[i][j] = if a[i] == b[j] {
                    l[i + 1][j + 1] + 1
                } else {
                    l[i + 1][j].max(l[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && a[i] == b[j] {
                out.push_str("  ");
                out.push_str(a[i]);
                i += 1;
                j += 1;
            } else if j < m && (i == n || l[i][j + 1] >= l[i + 1][j]) {
                out.push_str("+ ");
                out.push_str(b[j]);
                j += 1;
            } else {
                out.push_str("- ");
                out.push_str(a[i]);
                i += 1;
            }
            out.push('\n');
        }
    } else {
        for l in &a {
            out.push_str("- ");
            out.push_str(l);
            out.push('\n');
        }
        for l in &b {
            out.push_str("+ ");
            out.push_str(l);
            out.push('\n');
        }
    }
    if out.len() > 4096 {
        let mut cut = 4096;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// A divergence report for a record `expected` met by `actual`.
pub fn report(
    seq: u64,
    expected: String,
    actual: String,
    expected_digest: Option<String>,
    actual_digest: Option<String>,
    diff: String,
) -> DivergenceReport {
    DivergenceReport {
        vm: 0,
        seq,
        expected,
        actual,
        expected_digest,
        actual_digest,
        diff,
    }
}

/// Human-readable text of a query batch, for diffs.
pub fn queries_text(queries: &[PendingQuery]) -> String {
    let mut s = String::new();
    for q in queries {
        s.push_str(&format!("[{}]\n", q.id));
        match serde_json::to_value(&q.request) {
            Ok(serde_json::Value::Object(m)) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(t) => {
                            for line in t.lines() {
                                s.push_str(&format!("{k}: {line}\n"));
                            }
                        }
                        serde_json::Value::Null => {}
                        other => s.push_str(&format!("{k}: {other}\n")),
                    }
                }
            }
            _ => s.push_str("?\n"),
        }
    }
    s
}

/// What the journal says about a session, for adoption and unhosted `state`.
pub struct Recovered {
    /// The `spawned` spec.
    pub spec: SessionSpec,
    /// The seed.
    pub seed: u64,
    /// Last recorded round.
    pub round: u64,
    /// The open pause (`Some` → Paused).
    pub pending: Option<PendingState>,
    /// The last completed round.
    pub last_round: Option<CompletedRound>,
    /// Metrics: the row's, else default.
    pub metrics: SessionMetrics,
    /// Records read.
    pub records: u64,
}

/// Rebuilds a session's resumable state from its records (§7.5).
pub fn recover(row: &SessionRow, records: &[JournalRecord]) -> Result<Recovered, JournalError> {
    let corrupt = |m: &str| JournalError::Corrupt {
        session_id: row.session_id.clone(),
        seq: 0,
        message: m.to_string(),
    };
    let (spec, seed) = match records.first().map(|r| &r.body) {
        Some(RecordBody::Spawned { spec, seed, .. }) => ((**spec).clone(), *seed),
        _ => return Err(corrupt("the first record is not `spawned`")),
    };
    // Pauses of the main VM, with the index of their record.
    let pauses: Vec<(usize, u64, &Arc<[PendingQuery]>, i64)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.vm == 0)
        .filter_map(|(i, r)| match &r.body {
            RecordBody::Pause { round, queries } => Some((i, *round, queries, r.at)),
            _ => None,
        })
        .collect();
    let answers_of = |from: usize, round: u64| -> (Vec<Answer>, bool) {
        let mut out = Vec::new();
        let mut other_follows = false;
        for r in &records[from + 1..] {
            if r.vm != 0 {
                continue;
            }
            match &r.body {
                RecordBody::Answer { round: ar, answer } if *ar == round => {
                    out.push((**answer).clone())
                }
                b if b.is_input() => other_follows = true,
                _ => {}
            }
        }
        (out, other_follows)
    };
    let complete = |round: u64, answers: &[Answer]| -> CompletedRound {
        CompletedRound {
            round,
            answers: answers
                .iter()
                .filter_map(|a| a.query_id.clone().map(|id| (id, a.clone())))
                .collect(),
        }
    };
    let mut round = 0;
    let mut pending = None;
    let mut last_round = None;
    if let Some(&(idx, r, queries, at)) = pauses.last() {
        round = r;
        let (answers, other_follows) = answers_of(idx, r);
        let done = answers.len() >= queries.len();
        if !done && !other_follows {
            let mut map: BTreeMap<QueryId, Answer> = BTreeMap::new();
            let mut answered = Vec::new();
            for a in answers {
                if let Some(id) = a.query_id.clone() {
                    answered.push(id.clone());
                    map.insert(id, a);
                }
            }
            pending = Some(PendingState {
                round: r,
                issued_at: at,
                queries: queries.clone(),
                answers: map,
                answered,
            });
            if pauses.len() >= 2 {
                let (pidx, pr, _, _) = pauses[pauses.len() - 2];
                let (pa, _) = answers_of(pidx, pr);
                last_round = Some(complete(pr, &pa));
            }
        } else if done {
            last_round = Some(complete(r, &answers));
        }
    }
    let metrics = row.metrics.clone().unwrap_or_default();
    Ok(Recovered {
        spec,
        seed,
        round,
        pending,
        last_round,
        metrics,
        records: records.len() as u64,
    })
}

/// Journal retention of finished sessions (`interfaces.md` §9.5): deletes, oldest first,
/// every terminal session whose row was last updated before `now - retention_ms`, with its
/// records. Only `terminal` rows are selected, and a terminal row never becomes open again,
/// so open sessions of any age are untouched. Returns the number of sessions deleted.
pub fn expire_terminal(
    journal: &dyn Journal,
    now: i64,
    retention_ms: u64,
) -> Result<usize, JournalError> {
    const BATCH: usize = 1000;
    let filter = alc_core::RowFilter {
        status: Some(alc_core::SessionStatus::Terminal),
        updated_before: Some(now.saturating_sub(retention_ms.min(i64::MAX as u64) as i64)),
        limit: Some(BATCH),
        ..alc_core::RowFilter::default()
    };
    let mut deleted = 0;
    loop {
        let rows = journal.open_sessions(&filter)?;
        let full = rows.len() == BATCH;
        let mut batch_deleted = 0;
        for row in rows {
            if row.status == alc_core::SessionStatus::Terminal {
                journal.delete(&row.session_id)?;
                batch_deleted += 1;
            }
        }
        deleted += batch_deleted;
        if !full || batch_deleted == 0 {
            return Ok(deleted);
        }
    }
}

/// The `ctx.env.inject` table of a spec's ctx, if any.
pub fn injected(spec: &SessionSpec) -> Option<&serde_json::Map<String, serde_json::Value>> {
    spec.ctx
        .get("env")
        .and_then(|e| e.get("inject"))
        .and_then(|i| i.as_object())
}

/// [`injected`], to change.
fn inject_mut(spec: &mut SessionSpec) -> Option<&mut serde_json::Map<String, serde_json::Value>> {
    spec.ctx
        .get_mut("env")
        .and_then(|e| e.get_mut("inject"))
        .and_then(|i| i.as_object_mut())
}

/// A spec as journaled: the values of `env` and of `ctx.env.inject` removed (emptied), keys
/// kept. A spec with neither is journaled as it is, shared.
pub fn journaled_spec(spec: &Arc<SessionSpec>) -> Arc<SessionSpec> {
    if spec.env.is_empty() && injected(spec).is_none() {
        return Arc::clone(spec);
    }
    let mut s = SessionSpec::clone(spec);
    for v in s.env.values_mut() {
        v.clear();
    }
    if let Some(inject) = inject_mut(&mut s) {
        for v in inject.values_mut() {
            if v.is_string() {
                *v = serde_json::Value::String(String::new());
            }
        }
    }
    Arc::new(s)
}

/// A journaled spec made ready for adoption: the emptied env and `ctx.env.inject` entries
/// are dropped, so the values supplied at adoption (or none) take their place.
pub fn without_journaled_env(mut spec: SessionSpec) -> SessionSpec {
    spec.env.retain(|_, v| !v.is_empty());
    if let Some(inject) = inject_mut(&mut spec) {
        inject.retain(|_, v| v.as_str() != Some(""));
    }
    spec
}
