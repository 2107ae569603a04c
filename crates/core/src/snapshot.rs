//! Session snapshots and history (§3.5).

use crate::answer::{AnswerError, TokenUsage};
use crate::ids::{QueryId, SessionId};
use crate::metrics::{BudgetStatus, SessionMetrics};
use crate::outcome::{CancelReason, Outcome};
use crate::phase::{Owner, Phase, Residency};
use crate::query::{PendingBatch, QueryKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The public state of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The session.
    pub session_id: SessionId,
    /// Phase.
    pub phase: Phase,
    /// Transition counter.
    pub version: u64,
    /// Last round issued (0 = none).
    pub round: u64,
    /// Creation time.
    pub created_at: i64,
    /// Time of the last transition.
    pub updated_at: i64,
    /// Time of the last activity.
    pub last_activity_at: i64,
    /// `code` or `package`.
    pub program_kind: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The current pause.
    #[serde(default)]
    pub pending: Option<PendingBatch>,
    /// First cancel request.
    #[serde(default)]
    pub cancel: Option<CancelReason>,
    /// Terminal outcome.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Metrics.
    #[serde(default)]
    pub metrics: SessionMetrics,
    /// Budget status.
    #[serde(default)]
    pub budget: BudgetStatus,
    /// Seq of the last event (0 = none).
    pub last_event_seq: u64,
    /// Residency.
    pub residency: Residency,
    /// Lease owner.
    pub owner: Owner,
    /// History read from the journal, when requested.
    #[serde(default)]
    pub history: Option<Vec<Exchange>>,
}

fn default_history_limit() -> u32 {
    10
}

/// What a snapshot should include.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOptions {
    /// Include the history (default false).
    #[serde(default)]
    pub include_history: bool,
    /// Number of exchanges (default 10).
    #[serde(default = "default_history_limit")]
    pub history_limit: u32,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            include_history: false,
            history_limit: default_history_limit(),
        }
    }
}

/// One query and its answer, read from the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Round.
    pub round: u64,
    /// Query id.
    pub query_id: QueryId,
    /// Query kind.
    pub kind: QueryKind,
    /// Prompt (or question).
    pub prompt: String,
    /// System prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// Response text.
    #[serde(default)]
    pub response: Option<String>,
    /// Answer error.
    #[serde(default)]
    pub error: Option<AnswerError>,
    /// Usage.
    #[serde(default)]
    pub usage: Option<TokenUsage>,
    /// When asked.
    pub asked_at: i64,
    /// When answered.
    #[serde(default)]
    pub answered_at: Option<i64>,
}
