//! Events published to observers (§3.8).

use crate::ids::{QueryId, SessionId};
use crate::metrics::{LogEntry, Progress};
use crate::outcome::{CancelReason, Outcome};
use crate::phase::Phase;
use crate::query::PendingQuery;
use serde::{Deserialize, Serialize};

/// One event with its per-session sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The session.
    pub session_id: SessionId,
    /// Contiguous from 1.
    pub seq: u64,
    /// Wall time (Unix ms).
    pub at: i64,
    /// Payload.
    pub body: EventBody,
}

/// Event payloads (tag `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    /// Spawned (seq 1).
    Created {
        /// `code` or `package`.
        program_kind: String,
    },
    /// Adopted from the journal.
    Recovered {
        /// Records read.
        records: u64,
    },
    /// Phase change.
    PhaseChanged {
        /// Previous phase.
        from: Phase,
        /// New phase.
        to: Phase,
    },
    /// A pause was issued.
    Paused {
        /// Round number.
        round: u64,
        /// The queries.
        queries: Vec<PendingQuery>,
    },
    /// Answers were accepted.
    AnswersAccepted {
        /// Round number.
        round: u64,
        /// Newly accepted ids.
        query_ids: Vec<QueryId>,
        /// Queries still unanswered.
        remaining: usize,
    },
    /// The round completed; the session is queued to continue.
    Resumed {
        /// Round number.
        round: u64,
    },
    /// `alc.fork` started.
    ForkStarted {
        /// Child strategies.
        strategies: Vec<String>,
    },
    /// A fork child finished.
    ForkChildFinished {
        /// Child index.
        index: usize,
        /// Strategy.
        strategy: String,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A log entry.
    Log {
        /// The entry.
        entry: LogEntry,
    },
    /// A progress report.
    Progress {
        /// The report.
        progress: Progress,
    },
    /// A custom metric.
    Metric {
        /// Key.
        key: String,
        /// Value.
        value: serde_json::Value,
    },
    /// A cancel was requested (first one only).
    CancelRequested {
        /// Reason.
        reason: CancelReason,
    },
    /// The session ended (exactly once, last).
    Terminal {
        /// The outcome (boxed: it is the largest payload, and every ring slot is as large
        /// as the largest variant).
        outcome: Box<Outcome>,
    },
}

/// An item of an observe stream (tag `item`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum ObserveItem {
    /// An event.
    Event {
        /// The event.
        event: Event,
    },
    /// Events that fell out of the ring.
    Gap {
        /// First missing seq.
        from_seq: u64,
        /// Last missing seq.
        to_seq: u64,
    },
}
