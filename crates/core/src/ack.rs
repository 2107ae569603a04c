//! Acknowledgements returned by resume, cancel and run-until-pause (§3.9).

use crate::outcome::Terminal;
use crate::phase::Phase;
use crate::snapshot::Snapshot;
use serde::{Deserialize, Serialize};

/// Reply to a valid `resume` (tag `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ResumeAck {
    /// Answers accepted; the round still has unanswered queries.
    Accepted {
        /// Round.
        round: u64,
        /// Unanswered queries.
        remaining: usize,
    },
    /// The round is complete and the session continues.
    Continued {
        /// Round.
        round: u64,
    },
}

/// Reply to `cancel` (tag `status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CancelAck {
    /// Cancelled at once.
    Cancelled,
    /// Requested; the running step will stop.
    Requested,
    /// Already in a terminal phase.
    AlreadyTerminal {
        /// The terminal phase.
        phase: Phase,
    },
}

/// Result of waiting until the next pause (tag `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum UntilPause {
    /// The session is paused.
    Paused {
        /// Its snapshot.
        snapshot: Box<Snapshot>,
    },
    /// The session ended.
    Terminal {
        /// The terminal record.
        terminal: Box<Terminal>,
    },
    /// The wait timed out while the session was still running.
    Running {
        /// Its snapshot.
        snapshot: Box<Snapshot>,
    },
}
