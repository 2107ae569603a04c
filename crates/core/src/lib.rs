//! Pure types and the session state machine of the algocline engine.
//!
//! No Lua, no I/O, no threads, no clock: time is passed in as Unix milliseconds.

#![warn(missing_docs)]

mod ack;
mod answer;
mod config;
mod digest;
mod error;
mod event;
mod human;
mod ids;
mod journal;
mod machine;
mod metrics;
mod outcome;
mod phase;
mod query;
mod resume;
mod serde_util;
mod snapshot;
mod spec;

pub use ack::{CancelAck, ResumeAck, UntilPause};
pub use answer::{Answer, AnswerError, AnswerMeta, Answers, AskStatus, TokenSource, TokenUsage};
pub use config::{Durability, EngineConfig, Recovery};
pub use digest::{digest_bytes, digest_request};
pub use error::{
    AdoptError, CancelError, JournalError, ObserveError, ResumeError, SpawnError, StartError,
    StateError, WaitError,
};
pub use event::{Event, EventBody, ObserveItem};
pub use human::check_human_answer;
pub use ids::{IdError, QueryId, SessionId};
pub use journal::{parse_redacted, ClockSource, JournalRecord, RecordBody, JOURNAL_FORMAT};
pub use journal::{
    Journal, LeaseResult, OwnerId, RowFilter, RowUpdate, SessionAppend, SessionRow, SessionStatus,
};
pub use machine::{
    AbortCause, Ack, Adopted, CompletedRound, Effects, EventRing, Input, MachineLimits,
    PendingState, Rejection, SessionCore, SessionMachine, SlotState, StepOutcome, StepReport,
    TimerKind, TimerRequest, TokenLedger,
};
pub use metrics::{
    estimate_tokens, BudgetLimits, BudgetRemaining, BudgetStatus, LogEntry, ModelUsage, Progress,
    SessionMetrics, TokenCount,
};
pub use outcome::{CancelCode, CancelReason, DivergenceReport, FailureKind, Outcome, Terminal};
pub use phase::{Owner, Phase, Residency};
pub use query::{
    HumanQuestion, LlmQuery, PendingBatch, PendingQuery, QueryKind, QueryOrigin, QueryRequest,
};
pub use snapshot::{Exchange, Snapshot, SnapshotOptions};
pub use spec::{LimitOverrides, Program, SessionSpec};
