//! Error enums of the facade (§3.10). Each serializes with tag `code`.

use crate::ids::{QueryId, SessionId};
use crate::phase::Phase;
use serde::{Deserialize, Serialize};

fn for_query(q: &Option<String>) -> String {
    q.as_ref().map(|q| format!(" for {q}")).unwrap_or_default()
}

/// Errors of `spawn`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum SpawnError {
    /// The spec is invalid.
    #[error("invalid spec: {message}")]
    InvalidSpec {
        /// Details.
        message: String,
    },
    /// Too many live sessions.
    #[error("capacity reached: {limit} live sessions")]
    Capacity {
        /// The limit.
        limit: u64,
    },
    /// The engine is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// The journal failed.
    #[error("journal error: {message}")]
    Journal {
        /// Details.
        message: String,
    },
}

/// Errors of `state`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum StateError {
    /// Unknown session.
    #[error("session not found: {session_id}")]
    NotFound {
        /// The session.
        session_id: SessionId,
    },
    /// The journal failed.
    #[error("journal error: {message}")]
    Journal {
        /// Details.
        message: String,
    },
}

/// Errors of `resume` (§2.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ResumeError {
    /// Unknown session.
    #[error("session not found: {session_id}")]
    NotFound {
        /// The session.
        session_id: SessionId,
    },
    /// Another process holds the lease.
    #[error("session busy: {session_id} is hosted by another process")]
    Busy {
        /// The session.
        session_id: SessionId,
    },
    /// The session is not paused.
    #[error("not paused (phase {phase})")]
    NotPaused {
        /// Current phase.
        phase: Phase,
    },
    /// The given round is not the current one.
    #[error("stale round: given {given}, current {current}")]
    StaleRound {
        /// Round given.
        given: u64,
        /// Current round.
        current: u64,
    },
    /// No answers.
    #[error("empty answers: at least one answer is required")]
    EmptyAnswers,
    /// An id-less answer is ambiguous.
    #[error("ambiguous target: {unanswered} queries unanswered, specify query_id")]
    AmbiguousTarget {
        /// Unanswered queries in the round.
        unanswered: usize,
    },
    /// The id is not a query of the round.
    #[error("unknown query: {query_id}")]
    UnknownQuery {
        /// The id as given.
        query_id: String,
    },
    /// Already answered differently.
    #[error("conflicting answer: {query_id} was already answered differently")]
    ConflictingAnswer {
        /// The query.
        query_id: QueryId,
    },
    /// The answer breaks a rule.
    #[error("invalid answer{}: {message}", for_query(.query_id))]
    InvalidAnswer {
        /// The query, when known.
        query_id: Option<String>,
        /// The rule broken.
        message: String,
    },
    /// The journal failed.
    #[error("journal error: {message}")]
    Journal {
        /// Details.
        message: String,
    },
    /// The engine is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

/// Errors of `cancel`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum CancelError {
    /// Unknown session.
    #[error("session not found: {session_id}")]
    NotFound {
        /// The session.
        session_id: SessionId,
    },
    /// Another process holds the lease.
    #[error("session busy: {session_id} is hosted by another process")]
    Busy {
        /// The session.
        session_id: SessionId,
    },
    /// The journal failed.
    #[error("journal error: {message}")]
    Journal {
        /// Details.
        message: String,
    },
}

/// Errors of `observe`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ObserveError {
    /// Unknown session.
    #[error("session not found: {session_id}")]
    NotFound {
        /// The session.
        session_id: SessionId,
    },
    /// The session is not hosted by this process.
    #[error("session not hosted: {session_id}")]
    NotHosted {
        /// The session.
        session_id: SessionId,
    },
    /// The requested seq is beyond the next one.
    #[error("future seq: requested {requested}, next {next}")]
    FutureSeq {
        /// Requested seq.
        requested: u64,
        /// Next seq.
        next: u64,
    },
}

/// Errors of `wait` / `run_until_pause`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum WaitError {
    /// Unknown session.
    #[error("session not found: {session_id}")]
    NotFound {
        /// The session.
        session_id: SessionId,
    },
    /// Another process holds the lease.
    #[error("session busy: {session_id} is hosted by another process")]
    Busy {
        /// The session.
        session_id: SessionId,
    },
    /// The engine is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

/// Errors of `adopt`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum AdoptError {
    /// Unknown session.
    #[error("session not found: {session_id}")]
    NotFound {
        /// The session.
        session_id: SessionId,
    },
    /// Another process holds the lease.
    #[error("session busy: {session_id} is hosted by another process")]
    Busy {
        /// The session.
        session_id: SessionId,
    },
    /// The session already ended.
    #[error("already terminal (phase {phase})")]
    AlreadyTerminal {
        /// Its phase.
        phase: Phase,
    },
    /// The journal failed.
    #[error("journal error: {message}")]
    Journal {
        /// Details.
        message: String,
    },
}

/// Errors of a `Journal` implementation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum JournalError {
    /// I/O failure.
    #[error("journal io error: {message}")]
    Io {
        /// Details.
        message: String,
    },
    /// A record could not be decoded.
    #[error("journal corrupt: {session_id} seq {seq}: {message}")]
    Corrupt {
        /// The session.
        session_id: SessionId,
        /// The record.
        seq: u64,
        /// Details.
        message: String,
    },
    /// An append did not continue the last seq.
    #[error("journal sequence error: {session_id} expected seq {expected}, got {got}")]
    Sequence {
        /// The session.
        session_id: SessionId,
        /// Expected seq.
        expected: u64,
        /// Given seq.
        got: u64,
    },
    /// Unsupported journal format.
    #[error("journal schema {found} not supported (supported {supported})")]
    Schema {
        /// Found format.
        found: u32,
        /// Supported format.
        supported: u32,
    },
}

/// Errors of engine start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum StartError {
    /// Invalid configuration.
    #[error("invalid config: {message}")]
    Config {
        /// Details.
        message: String,
    },
    /// The journal failed.
    #[error("journal error: {message}")]
    Journal {
        /// Details.
        message: String,
    },
}
