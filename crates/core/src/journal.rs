//! Journal records (§3.11, §7.2) and the `Journal` storage trait (§7.4).

use crate::answer::Answer;
use crate::error::JournalError;
use crate::ids::SessionId;
use crate::metrics::{LogEntry, Progress, SessionMetrics};
use crate::outcome::Outcome;
use crate::phase::Phase;
use crate::query::PendingQuery;
use crate::spec::SessionSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Journal format written by this crate.
pub const JOURNAL_FORMAT: u32 = 1;

/// One sequence-numbered journal record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalRecord {
    /// The session.
    pub session_id: SessionId,
    /// Contiguous from 1.
    pub seq: u64,
    /// Producer: 0 = main VM, i+1 = fork child i.
    pub vm: u32,
    /// Wall time (Unix ms).
    pub at: i64,
    /// Payload.
    pub body: RecordBody,
}

/// Which clock a `clock` record captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockSource {
    /// `os.time`.
    OsTime,
    /// `os.clock`.
    OsClock,
    /// `os.date`.
    OsDate,
    /// `alc.time`.
    AlcTime,
    /// Budget elapsed read.
    Elapsed,
}

/// Record payloads (tag `kind`, §7.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    /// Seq 1: the spec (`env` values removed), seed and versions.
    Spawned {
        /// The spec (shared with the running session when nothing in it is blanked for
        /// the journal). The large payloads of this enum are behind pointers: a session's
        /// records are kept in memory by `MemoryJournal`, each as large as the largest
        /// variant.
        spec: Arc<SessionSpec>,
        /// PRNG seed.
        seed: u64,
        /// Engine version.
        engine_version: String,
        /// Journal format (1).
        journal_format: u32,
    },
    /// First `require` of a host-resolved module.
    Module {
        /// Module name.
        name: String,
        /// Digest of its source.
        digest: String,
    },
    /// A package data file opened.
    File {
        /// Logical path `<package>/<relative path>`.
        path: String,
        /// Digest of its content.
        digest: String,
    },
    /// A clock read.
    Clock {
        /// Which clock.
        source: ClockSource,
        /// The exact value returned to Lua.
        value: serde_json::Value,
    },
    /// An `alc.state.*` / `alc.card.*` operation.
    Effect {
        /// Service.
        service: String,
        /// Operation.
        op: String,
        /// Digest of the arguments.
        args_digest: String,
        /// Result returned to Lua.
        result: serde_json::Value,
    },
    /// First read of an env key.
    EnvRead {
        /// Key.
        key: String,
        /// Digest of the value (never the value).
        digest: String,
    },
    /// `alc.fork` accepted.
    Fork {
        /// Child strategies.
        strategies: Vec<String>,
        /// Digest of the ctx.
        ctx_digest: String,
    },
    /// A pause.
    Pause {
        /// Round.
        round: u64,
        /// Queries (shared with the session's pending state while it is paused).
        queries: Arc<[PendingQuery]>,
    },
    /// An accepted answer.
    Answer {
        /// Round.
        round: u64,
        /// The answer (with `query_id`).
        answer: Box<Answer>,
    },
    /// Annotation: a log entry.
    Log {
        /// Entry.
        entry: LogEntry,
    },
    /// Annotation: progress.
    Progress {
        /// Progress.
        progress: Progress,
    },
    /// Annotation: a custom metric.
    Metric {
        /// Key.
        key: String,
        /// Value.
        value: serde_json::Value,
    },
    /// Terminal record.
    Outcome {
        /// Outcome (with the cancel reason).
        outcome: Box<Outcome>,
        /// Final metrics.
        metrics: Box<SessionMetrics>,
    },
}

impl RecordBody {
    /// Input records are consumed by replay; annotations (`log`, `progress`, `metric`) and
    /// `outcome` are not.
    pub fn is_input(&self) -> bool {
        !matches!(
            self,
            RecordBody::Log { .. }
                | RecordBody::Progress { .. }
                | RecordBody::Metric { .. }
                | RecordBody::Outcome { .. }
        )
    }
}

/// The size in bytes and the digest a redacted stand-in records (see
/// [`RecordBody::redact_texts`]), or `None` for any other text.
pub fn parse_redacted(text: &str) -> Option<(usize, &str)> {
    let rest = text.strip_prefix("[redacted: ")?.strip_suffix(']')?;
    let (bytes, digest) = rest.split_once(" bytes, sha256 ")?;
    Some((bytes.parse().ok()?, digest))
}

/// The stand-in of a redacted text: its size and digest, never the text.
fn redacted(text: &str) -> String {
    if parse_redacted(text).is_some() {
        return text.to_string();
    }
    format!(
        "[redacted: {} bytes, sha256 {}]",
        text.len(),
        crate::digest::digest_bytes(text.as_bytes())
    )
}

impl RecordBody {
    /// Replaces the prompt, system and question texts of a pause and the text of an answer
    /// by their size and digest; true if anything changed. Other records are left as they
    /// are (their values are digests already, or are not prompts or answers).
    pub fn redact_texts(&mut self) -> bool {
        let mut changed = false;
        let mut swap = |t: &mut String| {
            let r = redacted(t);
            if r != *t {
                *t = r;
                changed = true;
            }
        };
        match self {
            RecordBody::Pause { queries, .. } => {
                for q in Arc::make_mut(queries).iter_mut() {
                    match &mut q.request {
                        crate::query::QueryRequest::Llm { query } => {
                            swap(&mut query.prompt);
                            if let Some(s) = query.system.as_mut() {
                                swap(s);
                            }
                        }
                        crate::query::QueryRequest::Human { question } => {
                            swap(&mut question.question)
                        }
                    }
                }
            }
            RecordBody::Answer { answer, .. } => {
                if let Some(t) = answer.text.as_mut() {
                    swap(t);
                }
            }
            _ => {}
        }
        changed
    }

    /// The `kind` tag of this record (`spawned`, `module`, …), as stored in the `records.kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            RecordBody::Spawned { .. } => "spawned",
            RecordBody::Module { .. } => "module",
            RecordBody::File { .. } => "file",
            RecordBody::Clock { .. } => "clock",
            RecordBody::Effect { .. } => "effect",
            RecordBody::EnvRead { .. } => "env_read",
            RecordBody::Fork { .. } => "fork",
            RecordBody::Pause { .. } => "pause",
            RecordBody::Answer { .. } => "answer",
            RecordBody::Log { .. } => "log",
            RecordBody::Progress { .. } => "progress",
            RecordBody::Metric { .. } => "metric",
            RecordBody::Outcome { .. } => "outcome",
        }
    }
}

/// Identifies one engine process in the `owners` table (§5.5). Opaque; the engine generates a unique
/// string per process start (for example `o-<random hex>`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OwnerId(String);

impl OwnerId {
    /// Wraps an owner id string.
    pub fn new(id: impl Into<String>) -> OwnerId {
        OwnerId(id.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Row-level status of a stored session (`sessions.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    /// Not terminal: may be hosted, adopted or resumed.
    Open,
    /// Terminal (an outcome was recorded).
    Terminal,
}

impl SessionStatus {
    /// `open` or `terminal`.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Open => "open",
            SessionStatus::Terminal => "terminal",
        }
    }
}

/// Session-row update applied together with an append (§7.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowUpdate {
    /// Current phase after the transition.
    pub phase: Phase,
    /// Current round.
    pub round: u64,
    /// Wall time of the transition (Unix ms). The first append of a session also uses it as
    /// `created_at` when it carries no record.
    pub updated_at: i64,
    /// New labels; `None` keeps the stored ones (an empty map initially).
    pub labels: Option<BTreeMap<String, String>>,
    /// Final outcome; `Some` makes the row `terminal`. `None` keeps the stored value.
    pub outcome: Option<Outcome>,
    /// Metrics; `None` keeps the stored value.
    pub metrics: Option<SessionMetrics>,
}

impl RowUpdate {
    /// A row update with only phase, round and time.
    pub fn new(phase: Phase, round: u64, updated_at: i64) -> RowUpdate {
        RowUpdate {
            phase,
            round,
            updated_at,
            labels: None,
            outcome: None,
            metrics: None,
        }
    }

    /// The row status this update leads to: `terminal` with an outcome or a terminal phase.
    pub fn status(&self) -> SessionStatus {
        if self.outcome.is_some() || self.phase.is_terminal() {
            SessionStatus::Terminal
        } else {
            SessionStatus::Open
        }
    }
}

/// The records and row update of one session within an atomic [`Journal::append`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionAppend {
    /// The session.
    pub session_id: SessionId,
    /// Records in seq order; the first must be the session's `last_seq + 1` (1 for a new session)
    /// and each next one +1. May be empty (row update only).
    pub records: Vec<JournalRecord>,
    /// Row update applied in the same transaction.
    pub row: RowUpdate,
}

/// One row of the `sessions` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    /// The session.
    pub session_id: SessionId,
    /// Unix ms of the first append (the `spawned` record's `at`).
    pub created_at: i64,
    /// Unix ms of the last row update.
    pub updated_at: i64,
    /// Open or terminal.
    pub status: SessionStatus,
    /// Last recorded phase.
    pub phase: Phase,
    /// Last recorded round.
    pub round: u64,
    /// Seq of the last record (0 when none).
    pub last_seq: u64,
    /// Lease holder, if any (the lease may be void; see [`Journal::acquire_lease`]).
    pub owner: Option<OwnerId>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Final outcome (terminal rows).
    pub outcome: Option<Outcome>,
    /// Last stored metrics.
    pub metrics: Option<SessionMetrics>,
}

/// Selection of [`Journal::open_sessions`]. `Default` selects every row; rows are returned
/// ordered by `updated_at`, then `session_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowFilter {
    /// Only rows with this status.
    pub status: Option<SessionStatus>,
    /// Only rows in this phase.
    pub phase: Option<Phase>,
    /// Only rows with `updated_at < updated_before` (retention, oldest first).
    pub updated_before: Option<i64>,
    /// Only rows carrying every one of these labels with the same value.
    pub labels: BTreeMap<String, String>,
    /// At most this many rows.
    pub limit: Option<usize>,
}

impl RowFilter {
    /// Every open (non-terminal) session: the recovery scan of §7.5.
    pub fn open() -> RowFilter {
        RowFilter {
            status: Some(SessionStatus::Open),
            ..RowFilter::default()
        }
    }

    /// Whether `row` passes this filter (ignoring `limit`).
    pub fn matches(&self, row: &SessionRow) -> bool {
        self.matches_fields(row.status, row.phase, row.updated_at, &row.labels)
    }

    /// [`matches`](Self::matches) on the fields it reads, for journals that keep rows in
    /// another shape.
    pub fn matches_fields(
        &self,
        status: SessionStatus,
        phase: Phase,
        updated_at: i64,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        self.status.is_none_or(|s| s == status)
            && self.phase.is_none_or(|p| p == phase)
            && self.updated_before.is_none_or(|t| updated_at < t)
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Result of [`Journal::acquire_lease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LeaseResult {
    /// The caller now holds the lease (it was free, already the caller's, or void).
    Acquired {
        /// The previous holder whose lease was void and taken over, if any.
        taken_over: Option<OwnerId>,
    },
    /// Another live process holds the lease.
    Busy {
        /// The holder.
        owner: OwnerId,
    },
    /// No such session row.
    NotFound,
}

/// Session journal storage (§7.4). Implementations: `SqliteJournal` and `MemoryJournal` (crate
/// `alc-store`).
pub trait Journal: Send + Sync + 'static {
    /// Appends atomically (records + row updates); durable on return.
    /// Each session's records must continue its last seq, else [`JournalError::Sequence`] and
    /// nothing of the batch is written.
    fn append(&self, batch: &[SessionAppend]) -> Result<(), JournalError>;
    /// Records of `id` with `seq >= from_seq`, in seq order (empty for an unknown session).
    fn read(&self, id: &SessionId, from_seq: u64) -> Result<Vec<JournalRecord>, JournalError>;
    /// The session row, if any.
    fn session(&self, id: &SessionId) -> Result<Option<SessionRow>, JournalError>;
    /// Rows passing `filter`, ordered by `updated_at` then id.
    fn open_sessions(&self, filter: &RowFilter) -> Result<Vec<SessionRow>, JournalError>;
    /// Takes the lease of `id` for `owner` (registering `owner` for this process if needed):
    /// acquired when free, already held by `owner`, or held by a void lease (heartbeat older than
    /// 30 s, or a dead process on this host); otherwise busy.
    fn acquire_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<LeaseResult, JournalError>;
    /// Clears the lease of `id` if `owner` holds it (no-op otherwise). An `append` whose row
    /// update is terminal releases the lease by itself, in the same write.
    fn release_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<(), JournalError>;
    /// Registers `owner` for this process (host, pid) or renews its heartbeat.
    fn heartbeat(&self, owner: &OwnerId) -> Result<(), JournalError>;
    /// Removes the session row and its records (no-op for an unknown session).
    fn delete(&self, id: &SessionId) -> Result<(), JournalError>;
    /// Whether appends survive a process crash (false for `MemoryJournal`).
    fn durable(&self) -> bool;
    /// Start-up recovery (§7.5): clears the leases of void owners (stale heartbeat, or a dead
    /// process on this host). Returns the number of sessions whose lease was cleared. The default
    /// does nothing (journals without leases).
    fn void_dead_leases(&self) -> Result<usize, JournalError> {
        Ok(0)
    }
    /// Runs `effect` and appends the batch it returns as one atomic write together with the
    /// writes `effect` made to a store sharing this journal's database (exactly-once effects,
    /// §7.3). The default runs `effect`, then appends (two writes: a crash between them
    /// loses the records but not the store's write).
    fn append_with(
        &self,
        effect: &mut dyn FnMut() -> Result<Vec<SessionAppend>, JournalError>,
    ) -> Result<(), JournalError> {
        let batch = effect()?;
        self.append(&batch)
    }

    /// Appends the first records of a session that is new to the journal and takes its lease
    /// for `owner`. A journal that can do both in one write should (a spawn then costs one
    /// commit); the default appends, then acquires.
    fn append_new_leased(
        &self,
        first: &SessionAppend,
        owner: &OwnerId,
    ) -> Result<LeaseResult, JournalError> {
        self.append(std::slice::from_ref(first))?;
        self.acquire_lease(&first.session_id, owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LlmQuery, PendingQuery, QueryId, QueryOrigin};

    #[test]
    fn redaction_keeps_size_and_digest_and_is_idempotent() {
        let mut query = LlmQuery::new("What is the capital of Freedonia?");
        query.system = Some("terse".into());
        let mut pause = RecordBody::Pause {
            round: 1,
            queries: vec![PendingQuery {
                id: QueryId::main(0),
                origin: QueryOrigin::Main,
                request: query.into(),
                digest: "0".repeat(32),
            }]
            .into(),
        };
        assert!(pause.redact_texts());
        let text = serde_json::to_string(&pause).unwrap();
        assert!(
            !text.contains("Freedonia") && !text.contains("terse"),
            "{text}"
        );
        assert!(text.contains("[redacted: 33 bytes, sha256 "), "{text}");
        assert!(!pause.redact_texts(), "a second pass changes nothing");
        let RecordBody::Pause { queries, .. } = &pause else {
            unreachable!()
        };
        let crate::query::QueryRequest::Llm { query } = &queries[0].request else {
            unreachable!()
        };
        let (bytes, digest) = parse_redacted(&query.prompt).expect("a stand-in");
        assert_eq!(bytes, "What is the capital of Freedonia?".len());
        assert_eq!(
            digest,
            crate::digest::digest_bytes(b"What is the capital of Freedonia?")
        );
        let mut answer = RecordBody::Answer {
            round: 1,
            answer: Box::new(Answer::text(Some(QueryId::main(0)), "Fredville")),
        };
        assert!(answer.redact_texts());
        assert!(!serde_json::to_string(&answer)
            .unwrap()
            .contains("Fredville"));
        let mut clock = RecordBody::Clock {
            source: ClockSource::OsTime,
            value: serde_json::json!(1),
        };
        assert!(!clock.redact_texts(), "other records are left as they are");
    }
}
