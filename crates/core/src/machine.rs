//! The session state machine (§2): [`SessionCore`] and the pure transition function
//! [`SessionMachine::apply`].

use crate::ack::{CancelAck, ResumeAck};
use crate::answer::{Answer, Answers, AskStatus, TokenSource};
use crate::config::EngineConfig;
use crate::error::ResumeError;
use crate::event::{Event, EventBody, ObserveItem};
use crate::ids::{QueryId, SessionId};
use crate::metrics::{
    BudgetLimits, BudgetRemaining, BudgetStatus, LogEntry, Progress, SessionMetrics, TokenCount,
};
use crate::outcome::{CancelCode, CancelReason, FailureKind, Outcome, Terminal};
use crate::phase::{Owner, Phase, Residency};
use crate::query::{PendingBatch, PendingQuery, QueryKind, QueryRequest};
use crate::snapshot::{Snapshot, SnapshotOptions};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Where the session's VM set is (the engine keeps the real VM beside the core).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// Built and parked in the cell.
    Hot,
    /// Not built (replay will build it).
    Cold,
    /// A worker holds it.
    CheckedOut,
    /// Gone for good (terminal).
    Dropped,
}

/// Why a running step must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbortCause {
    /// A cancel was requested.
    Cancel,
    /// The deadline passed.
    Deadline,
    /// The CPU limit was hit.
    CpuLimit,
}

/// Limits the machine itself enforces or arms timers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineLimits {
    /// Maximum bytes of one answer text.
    pub max_answer_bytes: usize,
    /// Events kept in the ring.
    pub event_ring: usize,
    /// Bytes of events kept in the ring (each its record plus its text).
    pub event_ring_bytes: usize,
    /// Log entries kept in `recent_logs`.
    pub log_ring: usize,
    /// Deadline from `created_at` (armed at spawn).
    pub deadline_ms: Option<u64>,
    /// Idle TTL while paused (armed at each pause and accepted answer).
    pub idle_ttl_ms: Option<u64>,
    /// Retention after terminal.
    pub retain_terminal_ms: Option<u64>,
}

impl MachineLimits {
    /// Limits taken from an engine configuration.
    pub fn from_config(cfg: &EngineConfig) -> MachineLimits {
        MachineLimits {
            max_answer_bytes: cfg.max_answer_bytes,
            event_ring: cfg.event_ring,
            event_ring_bytes: cfg.event_ring_bytes,
            log_ring: cfg.log_ring,
            deadline_ms: cfg.deadline_ms,
            idle_ttl_ms: Some(cfg.idle_ttl_ms),
            retain_terminal_ms: Some(cfg.retain_terminal_ms),
        }
    }
}

impl Default for MachineLimits {
    fn default() -> Self {
        MachineLimits::from_config(&EngineConfig::default())
    }
}

/// The state of the current pause (`Some` iff Paused).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingState {
    /// Round number.
    pub round: u64,
    /// When the pause was issued.
    pub issued_at: i64,
    /// Queries in issue order (shared with the pause's event and journal record).
    pub queries: Arc<[PendingQuery]>,
    /// Accepted answers (with `query_id` set).
    pub answers: BTreeMap<QueryId, Answer>,
    /// Accepted ids in acceptance order.
    pub answered: Vec<QueryId>,
}

impl PendingState {
    /// Unanswered queries.
    pub fn remaining(&self) -> usize {
        self.queries.len() - self.answers.len()
    }

    /// The query with this id.
    pub fn query(&self, id: &QueryId) -> Option<&PendingQuery> {
        self.queries.iter().find(|q| &q.id == id)
    }

    /// The public view.
    pub fn to_batch(&self) -> PendingBatch {
        PendingBatch {
            round: self.round,
            issued_at: self.issued_at,
            queries: self.queries.clone(),
            answered: self.answered.clone(),
        }
    }
}

/// The answers of the last completed round (for the safe retry of §2.4 rule 6).
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedRound {
    /// Round number.
    pub round: u64,
    /// Its answers.
    pub answers: BTreeMap<QueryId, Answer>,
}

/// Bounded ring of recent events with the next sequence number. Its bounds are the
/// session's [`MachineLimits`] (at most `event_ring` events and `event_ring_bytes` of them,
/// each counted as its record plus its text, [`EventBody::text_bytes`]); the newest event
/// is always kept.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRing {
    events: VecDeque<Event>,
    next_seq: u64,
    /// Bytes of the events held ([`EventRing::weight`]).
    bytes: usize,
}

impl Default for EventRing {
    fn default() -> Self {
        EventRing::new()
    }
}

impl EventRing {
    /// An empty ring; the first seq is 1.
    pub fn new() -> EventRing {
        EventRing {
            events: VecDeque::new(),
            next_seq: 1,
            bytes: 0,
        }
    }

    /// The seq the next event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Seq of the last event (0 = none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Events still held, oldest first.
    pub fn events(&self) -> &VecDeque<Event> {
        &self.events
    }

    /// Items from `from_seq` on: a `gap` first when older events fell out of the ring.
    pub fn read_from(&self, from_seq: u64) -> Vec<ObserveItem> {
        let from_seq = from_seq.max(1);
        let mut out = Vec::new();
        let oldest = self.events.front().map_or(self.next_seq, |e| e.seq);
        if from_seq < oldest {
            out.push(ObserveItem::Gap {
                from_seq,
                to_seq: oldest - 1,
            });
        }
        out.extend(
            self.events
                .iter()
                .filter(|e| e.seq >= from_seq)
                .map(|e| ObserveItem::Event { event: e.clone() }),
        );
        out
    }

    /// What one event counts against `event_ring_bytes`: its record and its text.
    fn weight(event: &Event) -> usize {
        std::mem::size_of::<Event>() + event.body.text_bytes()
    }

    fn push(
        &mut self,
        limits: &MachineLimits,
        session_id: &SessionId,
        at: i64,
        body: EventBody,
    ) -> Event {
        let event = Event {
            session_id: session_id.clone(),
            seq: self.next_seq,
            at,
            body,
        };
        self.next_seq += 1;
        if limits.event_ring > 0 {
            let bytes = Self::weight(&event);
            while !self.events.is_empty()
                && (self.events.len() >= limits.event_ring
                    || self.bytes + bytes > limits.event_ring_bytes)
            {
                if let Some(old) = self.events.pop_front() {
                    self.bytes -= Self::weight(&old);
                }
            }
            self.bytes += bytes;
            self.events.push_back(event.clone());
        }
        event
    }
}

/// Token contributions per source (index = `TokenSource as usize`), for the weakest-source rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenLedger {
    /// Prompt-token contributions per source.
    pub prompt: [u64; 3],
    /// Response-token contributions per source.
    pub response: [u64; 3],
}

const SOURCES: [TokenSource; 3] = [
    TokenSource::Estimated,
    TokenSource::Provided,
    TokenSource::Definite,
];

fn weakest(counts: &[u64; 3]) -> TokenSource {
    SOURCES
        .iter()
        .zip(counts)
        .find(|(_, n)| **n > 0)
        .map_or(TokenSource::Estimated, |(s, _)| *s)
}

/// The mutable record of one hosted session. Only [`SessionMachine::apply`] changes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionCore {
    /// The session.
    pub id: SessionId,
    /// Phase.
    pub phase: Phase,
    /// Transition counter (+1 per applied transition).
    pub version: u64,
    /// Last round issued (0 = none).
    pub round: u64,
    /// Where the VM set is.
    pub slot: SlotState,
    /// The session is in the run queue (guards double enqueue).
    pub in_queue: bool,
    /// `Some` iff Paused.
    pub pending: Option<PendingState>,
    /// The last completed round (this and the next are boxed: a paused session holds its
    /// core inline in its cell, which stays within a smaller size class).
    pub last_round: Option<Box<CompletedRound>>,
    /// Answers of the completed round in issue order; taken by `Dispatch`.
    pub resume_input: Option<Box<Vec<Answer>>>,
    /// First cancel request and its time (boxed: set at most once, late in a session).
    pub cancel: Option<Box<(CancelReason, i64)>>,
    /// First abort cause of the running step.
    pub abort: Option<AbortCause>,
    /// Terminal outcome (boxed: most sessions held in memory are not terminal).
    pub outcome: Option<Box<Outcome>>,
    /// Metrics.
    pub metrics: SessionMetrics,
    /// Token contributions per source.
    pub tokens: TokenLedger,
    /// Effective budget.
    pub budget: BudgetLimits,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `code` or `package`.
    pub program_kind: Box<str>,
    /// Creation time.
    pub created_at: i64,
    /// Time of the last transition.
    pub updated_at: i64,
    /// Time of the last activity.
    pub last_activity_at: i64,
    /// When it ended.
    pub ended_at: Option<i64>,
    /// Recent events.
    pub events: EventRing,
    /// Limits.
    pub limits: MachineLimits,
}

/// What adoption (T3) restores from the journal (§7.5).
#[derive(Debug, Clone, PartialEq)]
pub struct Adopted {
    /// The session.
    pub id: SessionId,
    /// `code` or `package`.
    pub program_kind: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Effective budget.
    pub budget: BudgetLimits,
    /// Original creation time.
    pub created_at: i64,
    /// Last round issued.
    pub round: u64,
    /// The open pause (`Some` → Paused, `None` → Queued).
    pub pending: Option<PendingState>,
    /// The last completed round.
    pub last_round: Option<CompletedRound>,
    /// Metrics from the journal (`cpu_ms` is reset: not carried across adoption).
    pub metrics: SessionMetrics,
    /// Journal records read (for the `recovered` event).
    pub records: u64,
}

/// An input to the machine (§2.2).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A worker popped the queue entry.
    Dispatch,
    /// A step ended.
    Step(StepOutcome),
    /// A `resume` call.
    Resume(Answers),
    /// A `cancel` call.
    Cancel(CancelReason),
    /// The deadline timer fired.
    Deadline,
    /// The idle TTL timer fired (the engine skips entries whose version is stale).
    IdleTtl {
        /// The journal is durable (evict) or not (cancel with `expired`).
        durable: bool,
    },
    /// A human question's timeout fired.
    AskTimeout {
        /// Round the timer was armed for.
        round: u64,
        /// The question.
        query: QueryId,
    },
    /// Retention of a terminal session ended.
    RetentionExpired,
    /// A journal write failed.
    JournalFailed {
        /// Details.
        message: String,
    },
}

/// What a step reports besides its outcome.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepReport {
    /// Duration of the step in ms.
    pub cpu_ms: u64,
    /// Memory of the VM set at the end of the step.
    pub vm_bytes: u64,
    /// Log entries produced.
    pub logs: Vec<LogEntry>,
    /// Last progress report.
    pub progress: Option<Progress>,
    /// Custom metrics recorded.
    pub custom: BTreeMap<String, serde_json::Value>,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The program asked for a batch of queries.
    Paused {
        /// The queries in issue order.
        queries: Vec<PendingQuery>,
        /// Report.
        report: StepReport,
    },
    /// The slice expired.
    Preempted {
        /// Report.
        report: StepReport,
    },
    /// The program returned.
    Finished {
        /// The result.
        value: serde_json::Value,
        /// Report.
        report: StepReport,
    },
    /// The program failed.
    Failed {
        /// Classification.
        kind: FailureKind,
        /// Answer-error code.
        code: Option<String>,
        /// Message.
        message: String,
        /// Traceback.
        traceback: Option<String>,
        /// Report.
        report: StepReport,
    },
    /// The step was aborted (cancel, deadline, CPU limit).
    Aborted {
        /// Report.
        report: StepReport,
    },
}

/// A timer the engine must arm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRequest {
    /// What fires.
    pub kind: TimerKind,
    /// When (Unix ms).
    pub due_at: i64,
    /// Core version after the arming transition; an `IdleTtl` entry whose version differs from
    /// the core's at firing time is stale. Other kinds are validated by `apply` itself.
    pub version: u64,
}

/// Timer kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerKind {
    /// Fire [`Input::Deadline`].
    Deadline,
    /// Fire [`Input::IdleTtl`].
    IdleTtl,
    /// Fire [`Input::AskTimeout`].
    AskTimeout {
        /// Round.
        round: u64,
        /// Question.
        query: QueryId,
    },
    /// Fire [`Input::RetentionExpired`].
    Retention,
}

/// The reply carried back to a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// Reply to `resume`.
    Resume(ResumeAck),
    /// Reply to `cancel`.
    Cancel(CancelAck),
}

/// Why an input was not applied (the core is unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// An invalid resume.
    Resume(ResumeError),
    /// The input does not apply in this phase (stale dispatch, timer, step outcome).
    NotApplicable,
}

/// What the engine must do after a transition (after unlocking the cell).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effects {
    /// Push the session to the run queue (once records are durable).
    pub enqueue: bool,
    /// Drop the VM set (in the slot, or when the worker returns it).
    pub drop_vm: bool,
    /// On `Dispatch`: the answers to resume the VM with, in issue order.
    pub take_resume_input: Option<Vec<Answer>>,
    /// Events to publish (already sequenced).
    pub events: Vec<Event>,
    /// Wake waiters.
    pub wake_waiters: bool,
    /// The session became terminal.
    pub terminal: bool,
    /// Remove the session from the table.
    pub removed: bool,
    /// Set the cell's abort flag.
    pub set_abort_flag: bool,
    /// Newly accepted answers (to journal), with `query_id` set, in acceptance order.
    pub accepted: Vec<Answer>,
    /// Timers to arm.
    pub timers: Vec<TimerRequest>,
    /// The caller's reply.
    pub ack: Option<Ack>,
}

/// The pure transition function.
pub struct SessionMachine;

impl SessionMachine {
    /// Applies one input at time `now`. On `Err` the core is unchanged.
    pub fn apply(core: &mut SessionCore, input: Input, now: i64) -> Result<Effects, Rejection> {
        match input {
            Input::Dispatch => core.dispatch(now),
            Input::Step(outcome) => core.step(outcome, now),
            Input::Resume(answers) => core.resume(answers, now),
            Input::Cancel(reason) => Ok(core.cancel(reason, now)),
            Input::Deadline => core.deadline(now),
            Input::IdleTtl { durable } => core.idle_ttl(durable, now),
            Input::AskTimeout { round, query } => core.ask_timeout(round, query, now),
            Input::RetentionExpired => core.retention_expired(now),
            Input::JournalFailed { message } => core.journal_failed(message, now),
        }
    }
}

impl SessionCore {
    /// T1: a new session, Queued with a Cold slot; event `created` (seq 1); enqueue; arm deadline.
    pub fn spawn(
        id: SessionId,
        program_kind: impl Into<String>,
        labels: BTreeMap<String, String>,
        budget: BudgetLimits,
        limits: MachineLimits,
        now: i64,
    ) -> (SessionCore, Effects) {
        let program_kind = program_kind.into();
        let mut core = SessionCore {
            id,
            phase: Phase::Queued,
            version: 1,
            round: 0,
            slot: SlotState::Cold,
            in_queue: true,
            pending: None,
            last_round: None,
            resume_input: None,
            cancel: None,
            abort: None,
            outcome: None,
            metrics: SessionMetrics::default(),
            tokens: TokenLedger::default(),
            budget,
            labels,
            program_kind: program_kind.clone().into_boxed_str(),
            created_at: now,
            updated_at: now,
            last_activity_at: now,
            ended_at: None,
            events: EventRing::new(),
            limits,
        };
        let mut fx = Effects {
            enqueue: true,
            wake_waiters: true,
            ..Effects::default()
        };
        core.emit(&mut fx, now, EventBody::Created { program_kind });
        if let Some(d) = core.limits.deadline_ms {
            fx.timers.push(TimerRequest {
                kind: TimerKind::Deadline,
                due_at: now.saturating_add(d as i64),
                version: core.version,
            });
        }
        (core, fx)
    }

    /// T3: a session rebuilt from its journal, Paused (with `pending`) or Queued; slot Cold;
    /// events restart at seq 1 with `recovered`; deadline, idle TTL and open ask timeouts are armed
    /// (an ask timeout already due fires at once). A Queued session is enqueued.
    pub fn adopt(a: Adopted, limits: MachineLimits, now: i64) -> (SessionCore, Effects) {
        let phase = if a.pending.is_some() {
            Phase::Paused
        } else {
            Phase::Queued
        };
        let mut metrics = a.metrics;
        metrics.cpu_ms = 0;
        let mut tokens = TokenLedger::default();
        tokens.prompt[metrics.prompt_tokens.source as usize] = 1;
        tokens.response[metrics.response_tokens.source as usize] =
            u64::from(metrics.response_tokens.tokens > 0);
        let mut core = SessionCore {
            id: a.id,
            phase,
            version: 1,
            round: a.round,
            slot: SlotState::Cold,
            in_queue: phase == Phase::Queued,
            pending: a.pending,
            last_round: a.last_round.map(Box::new),
            resume_input: None,
            cancel: None,
            abort: None,
            outcome: None,
            metrics,
            tokens,
            budget: a.budget,
            labels: a.labels,
            program_kind: a.program_kind.into_boxed_str(),
            created_at: a.created_at,
            updated_at: now,
            last_activity_at: now,
            ended_at: None,
            events: EventRing::new(),
            limits,
        };
        let mut fx = Effects {
            enqueue: phase == Phase::Queued,
            ..Effects::default()
        };
        core.emit(&mut fx, now, EventBody::Recovered { records: a.records });
        if let Some(d) = core.limits.deadline_ms {
            fx.timers.push(TimerRequest {
                kind: TimerKind::Deadline,
                due_at: core.created_at.saturating_add(d as i64),
                version: core.version,
            });
        }
        if let Some(p) = &core.pending {
            for q in p.queries.iter() {
                if let QueryRequest::Human { question } = &q.request {
                    if let (Some(t), false) = (question.timeout_ms, p.answers.contains_key(&q.id)) {
                        fx.timers.push(TimerRequest {
                            kind: TimerKind::AskTimeout {
                                round: p.round,
                                query: q.id.clone(),
                            },
                            due_at: p.issued_at.saturating_add(t as i64),
                            version: core.version,
                        });
                    }
                }
            }
            core.arm_idle(&mut fx, now);
        }
        (core, fx)
    }

    /// The public snapshot as of the last transition (history is filled by the engine).
    pub fn snapshot(&self, _opts: &SnapshotOptions) -> Snapshot {
        Snapshot {
            session_id: self.id.clone(),
            phase: self.phase,
            version: self.version,
            round: self.round,
            created_at: self.created_at,
            updated_at: self.updated_at,
            last_activity_at: self.last_activity_at,
            program_kind: self.program_kind.to_string(),
            labels: self.labels.clone(),
            pending: self.pending.as_ref().map(PendingState::to_batch),
            cancel: self.cancel.as_ref().map(|c| c.0.clone()),
            outcome: self.outcome.as_deref().cloned(),
            metrics: self.metrics.clone(),
            budget: self.budget_status(),
            last_event_seq: self.events.last_seq(),
            residency: match self.slot {
                SlotState::Hot | SlotState::CheckedOut => Residency::Hot,
                SlotState::Cold | SlotState::Dropped => Residency::Cold,
            },
            owner: Owner::ThisProcess,
            history: None,
        }
    }

    /// Like [`SessionCore::snapshot`], with `elapsed_ms` and the open paused interval
    /// brought up to `now` (non-terminal sessions only).
    pub fn snapshot_at(&self, opts: &SnapshotOptions, now: i64) -> Snapshot {
        let mut s = self.snapshot(opts);
        if !self.phase.is_terminal() {
            s.metrics.elapsed_ms = ms_between(self.created_at, now);
            if let Some(p) = &self.pending {
                s.metrics.paused_ms += ms_between(p.issued_at, now);
            }
            s.budget = budget_status(&self.budget, &s.metrics);
        }
        s
    }

    /// Limits and remainders.
    pub fn budget_status(&self) -> BudgetStatus {
        budget_status(&self.budget, &self.metrics)
    }

    /// The terminal record, once terminal.
    pub fn terminal(&self) -> Option<Terminal> {
        Some(Terminal {
            session_id: self.id.clone(),
            outcome: self.outcome.as_deref()?.clone(),
            metrics: self.metrics.clone(),
            ended_at: self.ended_at.unwrap_or(self.updated_at),
        })
    }

    // ---- helpers -------------------------------------------------------------------------

    fn emit(&mut self, fx: &mut Effects, now: i64, body: EventBody) {
        let e = self.events.push(&self.limits, &self.id, now, body);
        fx.events.push(e);
        fx.wake_waiters = true;
    }

    fn touch(&mut self, now: i64) {
        self.version += 1;
        self.updated_at = now;
        self.last_activity_at = now;
        self.metrics.elapsed_ms = ms_between(self.created_at, now);
    }

    fn set_phase(&mut self, fx: &mut Effects, now: i64, to: Phase) {
        let from = self.phase;
        self.phase = to;
        self.emit(fx, now, EventBody::PhaseChanged { from, to });
    }

    fn close_pause(&mut self, now: i64) -> Option<PendingState> {
        let p = self.pending.take()?;
        self.metrics.paused_ms += ms_between(p.issued_at, now);
        Some(p)
    }

    /// Enters a terminal phase (T8-style); the caller has already called `touch`.
    fn finish(&mut self, fx: &mut Effects, now: i64, outcome: Outcome) {
        self.close_pause(now);
        self.slot = SlotState::Dropped;
        self.ended_at = Some(now);
        self.metrics.elapsed_ms = ms_between(self.created_at, now);
        self.outcome = Some(Box::new(outcome.clone()));
        self.set_phase(fx, now, outcome.phase());
        self.emit(
            fx,
            now,
            EventBody::Terminal {
                outcome: Box::new(outcome),
            },
        );
        fx.drop_vm = true;
        fx.terminal = true;
        fx.wake_waiters = true;
        if let Some(r) = self.limits.retain_terminal_ms {
            fx.timers.push(TimerRequest {
                kind: TimerKind::Retention,
                due_at: now.saturating_add(r as i64),
                version: self.version,
            });
        }
    }

    fn arm_idle(&self, fx: &mut Effects, now: i64) {
        if let Some(ttl) = self.limits.idle_ttl_ms {
            fx.timers.push(TimerRequest {
                kind: TimerKind::IdleTtl,
                due_at: now.saturating_add(ttl as i64),
                version: self.version,
            });
        }
    }

    // ---- transitions ---------------------------------------------------------------------

    /// T4 / T5.
    fn dispatch(&mut self, now: i64) -> Result<Effects, Rejection> {
        if self.phase != Phase::Queued {
            return Err(Rejection::NotApplicable);
        }
        let mut fx = Effects::default();
        self.touch(now);
        self.in_queue = false;
        self.slot = SlotState::CheckedOut;
        fx.take_resume_input = self.resume_input.take().map(|input| *input);
        self.set_phase(&mut fx, now, Phase::Running);
        Ok(fx)
    }

    /// T6–T12.
    fn step(&mut self, outcome: StepOutcome, now: i64) -> Result<Effects, Rejection> {
        if self.phase != Phase::Running {
            return Err(Rejection::NotApplicable);
        }
        let mut fx = Effects::default();
        self.touch(now);
        let report = match &outcome {
            StepOutcome::Paused { report, .. }
            | StepOutcome::Preempted { report }
            | StepOutcome::Finished { report, .. }
            | StepOutcome::Failed { report, .. }
            | StepOutcome::Aborted { report } => report.clone(),
        };
        self.apply_report(&mut fx, now, report);
        match self.abort {
            Some(AbortCause::Cancel) => {
                let (reason, requested_at) = self
                    .cancel
                    .as_deref()
                    .cloned()
                    .unwrap_or((CancelReason::new(CancelCode::Internal), now));
                let o = Outcome::Cancelled {
                    reason,
                    requested_at,
                    phase_before: Phase::Running,
                };
                self.finish(&mut fx, now, o);
                return Ok(fx);
            }
            Some(AbortCause::Deadline) => {
                let o = Outcome::failed(FailureKind::Timeout, "deadline exceeded");
                self.finish(&mut fx, now, o);
                return Ok(fx);
            }
            Some(AbortCause::CpuLimit) => {
                let o = Outcome::failed(FailureKind::CpuLimit, "cpu limit exceeded");
                self.finish(&mut fx, now, o);
                return Ok(fx);
            }
            None => {}
        }
        match outcome {
            StepOutcome::Paused { queries, .. } => self.pause(&mut fx, now, queries),
            StepOutcome::Preempted { .. } => {
                self.slot = SlotState::Hot;
                self.in_queue = true;
                fx.enqueue = true;
                self.set_phase(&mut fx, now, Phase::Queued);
            }
            StepOutcome::Finished { value, .. } => {
                self.finish(&mut fx, now, Outcome::Completed { value });
            }
            StepOutcome::Failed {
                kind,
                code,
                message,
                traceback,
                ..
            } => {
                let o = Outcome::Failed {
                    kind,
                    code,
                    message,
                    traceback,
                    divergence: None,
                };
                self.finish(&mut fx, now, o);
            }
            StepOutcome::Aborted { .. } => {
                // T12: cannot happen (an abort always has a cause).
                let o = Outcome::failed(FailureKind::EngineError, "step aborted without a cause");
                self.finish(&mut fx, now, o);
            }
        }
        Ok(fx)
    }

    fn apply_report(&mut self, fx: &mut Effects, now: i64, report: StepReport) {
        let m = &mut self.metrics;
        m.cpu_ms += report.cpu_ms;
        m.vm_bytes = report.vm_bytes;
        m.peak_vm_bytes = m.peak_vm_bytes.max(report.vm_bytes);
        for (k, v) in report.custom {
            self.metrics.custom.insert(k.clone(), v.clone());
            self.emit(
                fx,
                now,
                EventBody::Metric {
                    key: k,
                    value: Box::new(v),
                },
            );
        }
        for entry in report.logs {
            let cap = self.limits.log_ring;
            if cap > 0 {
                let logs = &mut self.metrics.recent_logs;
                if logs.len() >= cap {
                    let excess = logs.len() + 1 - cap;
                    logs.drain(..excess);
                }
                logs.push(entry.clone());
            }
            self.emit(
                fx,
                now,
                EventBody::Log {
                    entry: Box::new(entry),
                },
            );
        }
        if let Some(progress) = report.progress {
            self.metrics.progress = Some(progress.clone());
            self.emit(fx, now, EventBody::Progress { progress });
        }
    }

    /// T6 (the caller has checked phase and abort).
    fn pause(&mut self, fx: &mut Effects, now: i64, queries: Vec<PendingQuery>) {
        let ids: BTreeSet<&QueryId> = queries.iter().map(|q| &q.id).collect();
        if queries.is_empty() || ids.len() != queries.len() {
            let o = Outcome::failed(
                FailureKind::EngineError,
                "invalid pause: empty batch or duplicate query ids",
            );
            return self.finish(fx, now, o);
        }
        let k = queries
            .iter()
            .filter(|q| q.request.kind() == QueryKind::Llm)
            .count() as u64;
        if let Some(max) = self.budget.max_llm_calls {
            let used = self.metrics.llm_calls;
            if used + k > max {
                let message = if k == 1 {
                    format!("budget_exceeded: max_llm_calls ({max}) reached ({used} used)")
                } else {
                    format!(
                        "budget_exceeded: max_llm_calls ({max}) would be exceeded by a batch of {k} ({used} used)"
                    )
                };
                return self.finish(
                    fx,
                    now,
                    Outcome::failed(FailureKind::BudgetExceeded, message),
                );
            }
        }
        self.round += 1;
        self.slot = SlotState::Hot;
        let m = &mut self.metrics;
        m.pauses += 1;
        m.llm_calls += k;
        m.human_asks += queries.len() as u64 - k;
        for q in &queries {
            if let QueryRequest::Llm { query } = &q.request {
                let system = query.system.as_deref().unwrap_or("");
                m.total_prompt_chars += (query.prompt.len() + system.len()) as u64;
                m.prompt_tokens.tokens += estimate_parts(&query.prompt, system);
                self.tokens.prompt[TokenSource::Estimated as usize] += 1;
            }
        }
        self.refresh_token_sources();
        for q in &queries {
            if let QueryRequest::Human { question } = &q.request {
                if let Some(t) = question.timeout_ms {
                    fx.timers.push(TimerRequest {
                        kind: TimerKind::AskTimeout {
                            round: self.round,
                            query: q.id.clone(),
                        },
                        due_at: now.saturating_add(t as i64),
                        version: self.version,
                    });
                }
            }
        }
        let queries: Arc<[PendingQuery]> = queries.into();
        self.pending = Some(PendingState {
            round: self.round,
            issued_at: now,
            queries: queries.clone(),
            answers: BTreeMap::new(),
            answered: Vec::new(),
        });
        self.set_phase(fx, now, Phase::Paused);
        let round = self.round;
        self.emit(fx, now, EventBody::Paused { round, queries });
        self.arm_idle(fx, now);
    }

    fn refresh_token_sources(&mut self) {
        let m = &mut self.metrics;
        m.prompt_tokens.source = weakest(&self.tokens.prompt);
        m.response_tokens.source = weakest(&self.tokens.response);
        let mut all = [0u64; 3];
        for (i, slot) in all.iter_mut().enumerate() {
            *slot = self.tokens.prompt[i] + self.tokens.response[i];
        }
        m.total_tokens = TokenCount {
            tokens: m.prompt_tokens.tokens + m.response_tokens.tokens,
            source: weakest(&all),
        };
    }

    /// T13 / T14 / T15 / T24.
    fn resume(&mut self, answers: Answers, now: i64) -> Result<Effects, Rejection> {
        match crate::resume::validate(self, &answers, false).map_err(Rejection::Resume)? {
            crate::resume::Plan::Retry { round } => Ok(Effects {
                ack: Some(Ack::Resume(ResumeAck::Continued { round })),
                ..Effects::default()
            }),
            crate::resume::Plan::Apply { new } => Ok(self.accept(new, now)),
        }
    }

    /// Applies validated new answers (T13 / T14). The session is Paused.
    fn accept(&mut self, new: Vec<Answer>, now: i64) -> Effects {
        let mut fx = Effects::default();
        let Some(p) = self.pending.as_ref() else {
            return fx;
        };
        let round = p.round;
        if new.is_empty() {
            let remaining = p.remaining();
            fx.ack = Some(Ack::Resume(ResumeAck::Accepted { round, remaining }));
            return fx;
        }
        self.touch(now);
        let mut ids = Vec::with_capacity(new.len());
        for a in new {
            let id = a.query_id.clone().expect("validated answers carry an id");
            let request = self
                .pending
                .as_ref()
                .and_then(|p| p.query(&id))
                .map(|q| q.request.clone())
                .expect("validated answers target the round");
            self.account_answer(&request, &a);
            let p = self.pending.as_mut().expect("paused");
            p.answers.insert(id.clone(), a.clone());
            p.answered.push(id.clone());
            fx.accepted.push(a);
            ids.push(id);
        }
        self.refresh_token_sources();
        let remaining = self.pending.as_ref().map_or(0, PendingState::remaining);
        self.emit(
            &mut fx,
            now,
            EventBody::AnswersAccepted {
                round,
                query_ids: ids,
                remaining,
            },
        );
        if remaining > 0 {
            fx.ack = Some(Ack::Resume(ResumeAck::Accepted { round, remaining }));
            self.arm_idle(&mut fx, now);
            return fx;
        }
        // T14: the round is complete.
        let p = self.close_pause(now).expect("paused");
        self.metrics.rounds += 1;
        let input = p
            .queries
            .iter()
            .filter_map(|q| p.answers.get(&q.id).cloned())
            .collect();
        self.resume_input = Some(Box::new(input));
        self.last_round = Some(Box::new(CompletedRound {
            round,
            answers: p.answers,
        }));
        self.in_queue = true;
        fx.enqueue = true;
        self.emit(&mut fx, now, EventBody::Resumed { round });
        self.set_phase(&mut fx, now, Phase::Queued);
        fx.ack = Some(Ack::Resume(ResumeAck::Continued { round }));
        fx
    }

    /// Response metrics of one newly accepted answer (§6.2).
    fn account_answer(&mut self, request: &QueryRequest, a: &Answer) {
        let m = &mut self.metrics;
        let answerer = a.meta.answerer.clone().unwrap_or_else(|| "unknown".into());
        *m.answered_by.entry(answerer).or_default() += 1;
        if let Some(model) = &a.meta.model {
            let provider = a.meta.provider.as_deref().unwrap_or("unknown");
            let mu = m
                .usage_by_model
                .entry(format!("{provider}:{model}"))
                .or_default();
            mu.calls += 1;
            if let Some(u) = &a.usage {
                mu.prompt_tokens += u.prompt_tokens.unwrap_or(0);
                mu.completion_tokens += u.completion_tokens.unwrap_or(0);
                mu.cached_tokens += u.cached_tokens.unwrap_or(0);
                mu.reasoning_tokens += u.reasoning_tokens.unwrap_or(0);
            }
        }
        let QueryRequest::Llm { query } = request else {
            return;
        };
        if let Some(text) = &a.text {
            m.total_response_chars += text.len() as u64;
        }
        let usage = a.usage.as_ref();
        if let Some((pt, src)) = usage.and_then(|u| u.prompt_tokens.map(|t| (t, u.source))) {
            let est = estimate_parts(&query.prompt, query.system.as_deref().unwrap_or(""));
            m.prompt_tokens.tokens = m.prompt_tokens.tokens.saturating_sub(est) + pt;
            let e = &mut self.tokens.prompt[TokenSource::Estimated as usize];
            *e = e.saturating_sub(1);
            self.tokens.prompt[src as usize] += 1;
        }
        if let Some((ct, src)) = usage.and_then(|u| u.completion_tokens.map(|t| (t, u.source))) {
            m.response_tokens.tokens += ct;
            self.tokens.response[src as usize] += 1;
        } else if let Some(text) = &a.text {
            m.response_tokens.tokens += crate::metrics::estimate_tokens(text);
            self.tokens.response[TokenSource::Estimated as usize] += 1;
        }
    }

    /// T16 / T17 / T18 / T19.
    fn cancel(&mut self, reason: CancelReason, now: i64) -> Effects {
        let mut fx = Effects::default();
        match self.phase {
            p if p.is_terminal() => {
                fx.ack = Some(Ack::Cancel(CancelAck::AlreadyTerminal { phase: p }));
            }
            Phase::Running => {
                fx.ack = Some(Ack::Cancel(CancelAck::Requested));
                if self.cancel.is_none() {
                    self.touch(now);
                    self.cancel = Some(Box::new((reason.clone(), now)));
                    self.abort.get_or_insert(AbortCause::Cancel);
                    fx.set_abort_flag = true;
                    self.emit(&mut fx, now, EventBody::CancelRequested { reason });
                }
            }
            _ => {
                self.cancel_now(&mut fx, reason, now);
                fx.ack = Some(Ack::Cancel(CancelAck::Cancelled));
            }
        }
        fx
    }

    /// T16 body (Queued or Paused).
    fn cancel_now(&mut self, fx: &mut Effects, reason: CancelReason, now: i64) {
        self.touch(now);
        let phase_before = self.phase;
        let (reason, requested_at) = *self
            .cancel
            .get_or_insert_with(|| Box::new((reason, now)))
            .clone();
        self.emit(
            fx,
            now,
            EventBody::CancelRequested {
                reason: reason.clone(),
            },
        );
        let o = Outcome::Cancelled {
            reason,
            requested_at,
            phase_before,
        };
        self.finish(fx, now, o);
    }

    /// T20 / T21.
    fn deadline(&mut self, now: i64) -> Result<Effects, Rejection> {
        let mut fx = Effects::default();
        match self.phase {
            Phase::Queued | Phase::Paused => {
                self.touch(now);
                let o = Outcome::failed(FailureKind::Timeout, "deadline exceeded");
                self.finish(&mut fx, now, o);
            }
            Phase::Running if self.abort.is_none() => {
                self.touch(now);
                self.abort = Some(AbortCause::Deadline);
                fx.set_abort_flag = true;
            }
            _ => return Err(Rejection::NotApplicable),
        }
        Ok(fx)
    }

    /// T22.
    fn idle_ttl(&mut self, durable: bool, now: i64) -> Result<Effects, Rejection> {
        if self.phase != Phase::Paused {
            return Err(Rejection::NotApplicable);
        }
        let mut fx = Effects::default();
        if durable {
            self.touch(now);
            self.slot = SlotState::Cold;
            fx.drop_vm = true;
            fx.removed = true;
        } else {
            let reason = CancelReason {
                code: CancelCode::Expired,
                detail: Some("idle ttl expired".into()),
            };
            self.cancel_now(&mut fx, reason, now);
        }
        Ok(fx)
    }

    /// T26.
    fn ask_timeout(&mut self, round: u64, query: QueryId, now: i64) -> Result<Effects, Rejection> {
        let Some(p) = &self.pending else {
            return Err(Rejection::NotApplicable);
        };
        let open_human = p.round == round
            && !p.answers.contains_key(&query)
            && p.query(&query)
                .is_some_and(|q| q.request.kind() == QueryKind::Human);
        if !open_human {
            return Err(Rejection::NotApplicable);
        }
        let mut a = Answer::ask_status(Some(query), AskStatus::Timeout);
        a.meta.answerer = Some("engine".into());
        let answers = Answers {
            round: Some(round),
            answers: vec![a],
        };
        match crate::resume::validate(self, &answers, true) {
            Ok(crate::resume::Plan::Apply { new }) => Ok(self.accept(new, now)),
            _ => Err(Rejection::NotApplicable),
        }
    }

    /// T23.
    fn retention_expired(&mut self, now: i64) -> Result<Effects, Rejection> {
        if !self.phase.is_terminal() {
            return Err(Rejection::NotApplicable);
        }
        self.version += 1;
        self.updated_at = now;
        Ok(Effects {
            removed: true,
            ..Effects::default()
        })
    }

    /// T25.
    fn journal_failed(&mut self, message: String, now: i64) -> Result<Effects, Rejection> {
        if self.phase.is_terminal() {
            return Err(Rejection::NotApplicable);
        }
        let mut fx = Effects::default();
        self.touch(now);
        self.finish(
            &mut fx,
            now,
            Outcome::failed(FailureKind::JournalError, message),
        );
        Ok(fx)
    }
}

fn ms_between(from: i64, to: i64) -> u64 {
    to.saturating_sub(from).max(0) as u64
}

/// Estimate of `a` followed by `b` (as one text).
fn estimate_parts(a: &str, b: &str) -> u64 {
    let (mut ascii, mut other) = (0u64, 0u64);
    for c in a.chars().chain(b.chars()) {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    ascii.div_ceil(4) + (2 * other).div_ceil(3)
}

fn budget_status(limits: &BudgetLimits, m: &SessionMetrics) -> BudgetStatus {
    BudgetStatus {
        limits: limits.clone(),
        remaining: BudgetRemaining {
            llm_calls: limits.max_llm_calls.map(|x| x.saturating_sub(m.llm_calls)),
            tokens: limits
                .max_tokens
                .map(|x| x.saturating_sub(m.total_tokens.tokens)),
            elapsed_ms: limits
                .max_elapsed_ms
                .map(|x| x.saturating_sub(m.elapsed_ms)),
        },
    }
}
