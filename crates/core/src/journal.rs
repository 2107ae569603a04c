//! Journal records (§3.11, §7.2). The `Journal` trait itself is not defined here yet.

use crate::answer::Answer;
use crate::ids::SessionId;
use crate::metrics::{LogEntry, Progress, SessionMetrics};
use crate::outcome::Outcome;
use crate::query::PendingQuery;
use crate::spec::SessionSpec;
use serde::{Deserialize, Serialize};

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
        /// The spec.
        spec: SessionSpec,
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
        /// Queries.
        queries: Vec<PendingQuery>,
    },
    /// An accepted answer.
    Answer {
        /// Round.
        round: u64,
        /// The answer (with `query_id`).
        answer: Answer,
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
        outcome: Outcome,
        /// Final metrics.
        metrics: SessionMetrics,
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
