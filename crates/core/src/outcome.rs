//! Outcomes and terminal records (§3.7).

use crate::ids::SessionId;
use crate::metrics::SessionMetrics;
use crate::phase::Phase;
use serde::{Deserialize, Serialize};

/// How a session ended (tag `status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The program returned `value`.
    Completed {
        /// The result.
        value: serde_json::Value,
    },
    /// The program failed.
    Failed {
        /// Classification.
        kind: FailureKind,
        /// Answer-error code for `answer_error`.
        #[serde(default)]
        code: Option<String>,
        /// Error message.
        message: String,
        /// Lua traceback.
        #[serde(default)]
        traceback: Option<String>,
        /// Replay divergence details.
        #[serde(default)]
        divergence: Option<DivergenceReport>,
    },
    /// The session was cancelled.
    Cancelled {
        /// The first cancel reason.
        reason: CancelReason,
        /// When it was requested.
        requested_at: i64,
        /// Phase when the cancel took effect (`previous_phase` on the wire).
        phase_before: Phase,
    },
}

impl Outcome {
    /// The terminal phase this outcome belongs to.
    pub fn phase(&self) -> Phase {
        match self {
            Outcome::Completed { .. } => Phase::Completed,
            Outcome::Failed { .. } => Phase::Failed,
            Outcome::Cancelled { .. } => Phase::Cancelled,
        }
    }

    /// For a failure, the wire error code (`answer_error` becomes its `code`).
    pub fn failure_wire_code(&self) -> Option<&str> {
        match self {
            Outcome::Failed {
                kind: FailureKind::AnswerError,
                code: Some(c),
                ..
            } => Some(c),
            Outcome::Failed { kind, .. } => Some(kind.wire_code()),
            _ => None,
        }
    }

    /// A failure without code, traceback or divergence.
    pub fn failed(kind: FailureKind, message: impl Into<String>) -> Outcome {
        Outcome::Failed {
            kind,
            code: None,
            message: message.into(),
            traceback: None,
            divergence: None,
        }
    }
}

/// Failure classification (§5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// A Lua error escaped.
    LuaError,
    /// A budget limit was hit.
    BudgetExceeded,
    /// An answer error escaped; `code` carries its code.
    AnswerError,
    /// Memory limit.
    OutOfMemory,
    /// CPU limit.
    CpuLimit,
    /// Deadline.
    Timeout,
    /// Result not serializable.
    InvalidResult,
    /// Replay divergence.
    Divergence,
    /// Journal write failed.
    JournalError,
    /// Engine bug or VM build failure.
    EngineError,
}

impl FailureKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::LuaError => "lua_error",
            FailureKind::BudgetExceeded => "budget_exceeded",
            FailureKind::AnswerError => "answer_error",
            FailureKind::OutOfMemory => "out_of_memory",
            FailureKind::CpuLimit => "cpu_limit",
            FailureKind::Timeout => "timeout",
            FailureKind::InvalidResult => "invalid_result",
            FailureKind::Divergence => "divergence",
            FailureKind::JournalError => "journal_error",
            FailureKind::EngineError => "engine_error",
        }
    }

    /// Wire code (`interfaces.md` §2.2). For `answer_error` the caller uses the
    /// outcome's `code` instead (see [`Outcome::failure_wire_code`]); this returns `answer_error`.
    pub fn wire_code(self) -> &'static str {
        match self {
            FailureKind::Divergence => "replay_divergence",
            FailureKind::InvalidResult => "result_not_serializable",
            FailureKind::CpuLimit => "timeout",
            FailureKind::JournalError => "io_error",
            FailureKind::EngineError => "internal",
            k => k.as_str(),
        }
    }
}

/// Why a cancel was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelReason {
    /// Code.
    pub code: CancelCode,
    /// Free text.
    #[serde(default)]
    pub detail: Option<String>,
}

impl CancelReason {
    /// A reason with the given code and no detail.
    pub fn new(code: CancelCode) -> CancelReason {
        CancelReason { code, detail: None }
    }
}

/// Cancel codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelCode {
    /// A user asked.
    User,
    /// The client cancelled its request.
    ClientCancelled,
    /// A caller-side timeout.
    Timeout,
    /// Idle TTL expired (memory journal).
    Expired,
    /// Engine shutdown.
    Shutdown,
    /// Internal reason.
    Internal,
}

/// Details of a replay divergence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivergenceReport {
    /// 0 = main VM, i+1 = fork child i.
    pub vm: u32,
    /// Journal seq of the expected record.
    pub seq: u64,
    /// Expected record kind.
    pub expected: String,
    /// What the VM did instead.
    pub actual: String,
    /// Digest recorded.
    #[serde(default)]
    pub expected_digest: Option<String>,
    /// Digest of the re-run request.
    #[serde(default)]
    pub actual_digest: Option<String>,
    /// Line diff, truncated to 4 KiB.
    #[serde(default)]
    pub diff: String,
}

/// The final record of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Terminal {
    /// The session.
    pub session_id: SessionId,
    /// The outcome.
    pub outcome: Outcome,
    /// Final metrics.
    pub metrics: SessionMetrics,
    /// When it ended.
    pub ended_at: i64,
}
