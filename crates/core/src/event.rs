//! Events published to observers (§3.8).

use crate::ids::{QueryId, SessionId};
use crate::metrics::{LogEntry, Progress};
use crate::outcome::{CancelReason, Outcome};
use crate::phase::Phase;
use crate::query::PendingQuery;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

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
        queries: Arc<[PendingQuery]>,
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
    /// A log entry (boxed, like the metric's value and the outcome: every ring slot is as
    /// large as the largest variant).
    Log {
        /// The entry.
        entry: Box<LogEntry>,
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
        value: Box<serde_json::Value>,
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

impl EventBody {
    /// Bytes of text the event carries: prompts, messages, names and JSON values (an
    /// estimate for values: their strings, keys and a few bytes per scalar). The event
    /// ring bounds these per session.
    pub fn text_bytes(&self) -> usize {
        match self {
            EventBody::Created { program_kind } => program_kind.len(),
            EventBody::Paused { queries, .. } => queries.iter().map(PendingQuery::text_bytes).sum(),
            EventBody::AnswersAccepted { query_ids, .. } => {
                query_ids.iter().map(|q| q.as_str().len()).sum()
            }
            EventBody::ForkStarted { strategies } => strategies.iter().map(String::len).sum(),
            EventBody::ForkChildFinished { strategy, .. } => strategy.len(),
            EventBody::Log { entry } => {
                entry.level.len() + entry.source.len() + entry.message.len()
            }
            EventBody::Progress { progress } => progress.message.len(),
            EventBody::Metric { key, value } => key.len() + json_text_bytes(value),
            EventBody::CancelRequested { reason } => reason.detail.as_ref().map_or(0, String::len),
            EventBody::Terminal { outcome } => match outcome.as_ref() {
                Outcome::Completed { value } => json_text_bytes(value),
                Outcome::Failed {
                    message, traceback, ..
                } => message.len() + traceback.as_ref().map_or(0, String::len),
                Outcome::Cancelled { reason, .. } => reason.detail.as_ref().map_or(0, String::len),
            },
            EventBody::Recovered { .. }
            | EventBody::PhaseChanged { .. }
            | EventBody::Resumed { .. } => 0,
        }
    }
}

/// [`EventBody::text_bytes`] of a JSON value.
pub(crate) fn json_text_bytes(v: &serde_json::Value) -> usize {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(json_text_bytes).sum(),
        Value::Object(map) => map.iter().map(|(k, v)| k.len() + json_text_bytes(v)).sum(),
    }
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
