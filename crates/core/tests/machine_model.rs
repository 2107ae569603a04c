//! §12.1: a deliberately simple reference model and `SessionMachine::apply` are driven by the
//! same random input sequences; replies, phase, round and pending ids must agree, and the
//! invariants I1–I4, I6–I8 and I10 must hold after every input.

use alc_core::*;
use proptest::collection::vec;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const MAX_LLM: u64 = 12;
const TEXTS: [&str; 3] = ["yes", "no", "maybe"];

// ---- plain-data inputs ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct TQuery {
    llm: bool,
    child: bool,
    choices: bool,
    timeout: bool,
}

#[derive(Debug, Clone, Copy)]
enum TRound {
    Omitted,
    Current,
    Prev,
    Next,
}

#[derive(Debug, Clone, Copy)]
enum TTarget {
    NoId,
    Idx(usize),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum TContent {
    Text(usize),
    Error(usize),
    Ask(usize),
    Both,
    Long,
    /// The content already recorded for the target (pending round or last completed round).
    Same,
}

#[derive(Debug, Clone)]
enum TIn {
    Dispatch,
    Pause(Vec<TQuery>),
    Preempt,
    Finish,
    Fail,
    Abort,
    Resume(TRound, Vec<(TTarget, TContent)>),
    Cancel(usize),
    Deadline,
    IdleTtl(bool),
    AskTimeout(TRound, usize),
    Retention,
    JournalFailed,
}

fn t_query() -> impl Strategy<Value = TQuery> {
    (any::<u8>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(l, child, choices, timeout)| TQuery {
            llm: l % 3 != 0,
            child,
            choices,
            timeout,
        },
    )
}

fn t_round() -> impl Strategy<Value = TRound> {
    prop_oneof![
        4 => Just(TRound::Omitted),
        4 => Just(TRound::Current),
        1 => Just(TRound::Prev),
        1 => Just(TRound::Next),
    ]
}

fn t_answer() -> impl Strategy<Value = (TTarget, TContent)> {
    let target = prop_oneof![
        1 => Just(TTarget::NoId),
        8 => (0usize..6).prop_map(TTarget::Idx),
        1 => Just(TTarget::Unknown),
    ];
    let content = prop_oneof![
        8 => (0usize..3).prop_map(TContent::Text),
        2 => (0usize..2).prop_map(TContent::Error),
        2 => (0usize..3).prop_map(TContent::Ask),
        1 => Just(TContent::Both),
        1 => Just(TContent::Long),
        4 => Just(TContent::Same),
    ];
    (target, content)
}

fn t_input() -> impl Strategy<Value = TIn> {
    prop_oneof![
        6 => Just(TIn::Dispatch),
        5 => vec(t_query(), 1..=5).prop_map(TIn::Pause),
        2 => Just(TIn::Preempt),
        1 => Just(TIn::Finish),
        1 => Just(TIn::Fail),
        1 => Just(TIn::Abort),
        10 => (t_round(), vec(t_answer(), 0..4)).prop_map(|(r, a)| TIn::Resume(r, a)),
        1 => (0usize..3).prop_map(TIn::Cancel),
        1 => Just(TIn::Deadline),
        1 => any::<bool>().prop_map(TIn::IdleTtl),
        1 => (t_round(), 0usize..6).prop_map(|(r, i)| TIn::AskTimeout(r, i)),
        1 => Just(TIn::Retention),
        1 => Just(TIn::JournalFailed),
    ]
}

// ---- translation to real inputs (depends only on the model's state) ---------------------------

fn qid(i: usize, q: &TQuery) -> QueryId {
    if q.child {
        QueryId::child(i % 2, i)
    } else {
        QueryId::main(i)
    }
}

fn request(q: &TQuery) -> QueryRequest {
    if q.llm {
        let mut l = LlmQuery::new("Say A");
        l.system = Some("日本".into());
        l.into()
    } else {
        let mut h = HumanQuestion::new("ship?");
        if q.choices {
            h.choices = vec!["yes".into(), "no".into()];
        }
        if q.timeout {
            h.timeout_ms = Some(100);
        }
        h.into()
    }
}

fn round_of(r: TRound, current: u64) -> Option<u64> {
    match r {
        TRound::Omitted => None,
        TRound::Current => Some(current),
        TRound::Prev => Some(current.saturating_sub(1)),
        TRound::Next => Some(current + 1),
    }
}

fn cancel_reason(i: usize) -> CancelReason {
    let code = [
        CancelCode::User,
        CancelCode::Shutdown,
        CancelCode::ClientCancelled,
    ][i];
    CancelReason {
        code,
        detail: Some(format!("r{i}")),
    }
}

fn content_answer(id: Option<QueryId>, c: TContent) -> Answer {
    match c {
        TContent::Text(i) => Answer::text(id, TEXTS[i]),
        TContent::Error(i) => Answer::error(id, "provider_error", format!("e{i}")),
        TContent::Ask(i) => Answer::ask_status(
            id,
            [
                AskStatus::Declined,
                AskStatus::Cancelled,
                AskStatus::Timeout,
            ][i],
        ),
        TContent::Both => {
            let mut a = Answer::text(id, "yes");
            a.ask_status = Some(AskStatus::Declined);
            a
        }
        TContent::Long => Answer::text(id, "x".repeat(100)),
        TContent::Same => Answer::text(id, "yes"),
    }
}

fn recorded(m: &Model, id: Option<&QueryId>) -> Option<Content> {
    let id = id?;
    match (&m.pending, &m.last) {
        (Some(p), _) => p.answers.get(id).cloned(),
        (None, Some((_, answers, _))) => answers.get(id).cloned(),
        _ => None,
    }
}

fn to_input(t: &TIn, m: &Model) -> Input {
    let report = StepReport {
        cpu_ms: 1,
        vm_bytes: 10,
        ..StepReport::default()
    };
    let ids: Vec<QueryId> = m
        .pending
        .as_ref()
        .map_or(vec![], |p| p.queries.iter().map(|q| q.0.clone()).collect());
    // Targets resolve against the pending round, else against the last completed round (retries).
    let target_ids: Vec<QueryId> = if ids.is_empty() {
        m.last
            .as_ref()
            .map_or(vec![], |(_, a, _)| a.keys().cloned().collect())
    } else {
        ids.clone()
    };
    let current = if m.pending.is_some() {
        m.round
    } else {
        m.last.as_ref().map_or(m.round, |l| l.0)
    };
    match t {
        TIn::Dispatch => Input::Dispatch,
        TIn::Pause(qs) => Input::Step(StepOutcome::Paused {
            queries: qs
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let request = request(q);
                    PendingQuery {
                        id: qid(i, q),
                        origin: if q.child {
                            QueryOrigin::Child {
                                index: i % 2,
                                strategy: "s".into(),
                            }
                        } else {
                            QueryOrigin::Main
                        },
                        digest: digest_request(&request),
                        request,
                    }
                })
                .collect(),
            report,
        }),
        TIn::Preempt => Input::Step(StepOutcome::Preempted { report }),
        TIn::Finish => Input::Step(StepOutcome::Finished {
            value: serde_json::json!(1),
            report,
        }),
        TIn::Fail => Input::Step(StepOutcome::Failed {
            kind: FailureKind::LuaError,
            code: None,
            message: "boom".into(),
            traceback: None,
            report,
        }),
        TIn::Abort => Input::Step(StepOutcome::Aborted { report }),
        TIn::Resume(r, answers) => Input::Resume(Answers {
            round: round_of(*r, current),
            answers: answers
                .iter()
                .map(|(target, c)| {
                    let id = match target {
                        TTarget::NoId => None,
                        TTarget::Unknown => Some(QueryId::main(99)),
                        TTarget::Idx(i) if target_ids.is_empty() => Some(QueryId::main(*i)),
                        TTarget::Idx(i) => Some(target_ids[i % target_ids.len()].clone()),
                    };
                    match (c, recorded(m, id.as_ref())) {
                        (TContent::Same, Some(content)) => {
                            let mut a = Answer {
                                query_id: id,
                                ..Answer::default()
                            };
                            match content {
                                Content::Text(t) => a.text = Some(t),
                                Content::Error(code, message) => {
                                    a.error = Some(AnswerError { code, message })
                                }
                                Content::Ask(s) => a.ask_status = Some(s),
                            }
                            a
                        }
                        _ => content_answer(id, *c),
                    }
                })
                .collect(),
        }),
        TIn::Cancel(i) => Input::Cancel(cancel_reason(*i)),
        TIn::Deadline => Input::Deadline,
        TIn::IdleTtl(d) => Input::IdleTtl { durable: *d },
        TIn::AskTimeout(r, i) => Input::AskTimeout {
            round: round_of(*r, m.round).unwrap_or(m.round),
            query: if ids.is_empty() {
                QueryId::main(*i)
            } else {
                ids[i % ids.len()].clone()
            },
        },
        TIn::Retention => Input::RetentionExpired,
        TIn::JournalFailed => Input::JournalFailed {
            message: "disk".into(),
        },
    }
}

// ---- the reference model ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Content {
    Text(String),
    Error(String, String),
    Ask(AskStatus),
}

#[derive(Debug, Clone)]
struct MRound {
    /// (id, is_llm, has_choices)
    queries: Vec<(QueryId, bool, bool)>,
    answers: BTreeMap<QueryId, Content>,
}

#[derive(Debug, Clone)]
struct Model {
    phase: Phase,
    round: u64,
    pending: Option<MRound>,
    /// (round, answers, issue order)
    last: Option<(u64, BTreeMap<QueryId, Content>, Vec<QueryId>)>,
    cancel: Option<CancelReason>,
    abort: Option<&'static str>,
    cancelled_with: Option<CancelReason>,
    llm_calls: u64,
    pauses: u64,
    rounds: u64,
}

/// What a caller sees.
#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Ok(Option<Ack>),
    Err(ResumeError),
    NotApplicable,
}

fn normalize(e: ResumeError) -> ResumeError {
    match e {
        ResumeError::InvalidAnswer { query_id, .. } => ResumeError::InvalidAnswer {
            query_id,
            message: String::new(),
        },
        e => e,
    }
}

fn invalid(id: &QueryId) -> ResumeError {
    ResumeError::InvalidAnswer {
        query_id: Some(id.to_string()),
        message: String::new(),
    }
}

fn content_of(a: &Answer) -> Option<Content> {
    match (&a.text, &a.error, a.ask_status) {
        (Some(t), None, None) => Some(Content::Text(t.clone())),
        (None, Some(e), None) => Some(Content::Error(e.code.clone(), e.message.clone())),
        (None, None, Some(s)) => Some(Content::Ask(s)),
        _ => None,
    }
}

impl Model {
    fn new() -> Model {
        Model {
            phase: Phase::Queued,
            round: 0,
            pending: None,
            last: None,
            cancel: None,
            abort: None,
            cancelled_with: None,
            llm_calls: 0,
            pauses: 0,
            rounds: 0,
        }
    }

    fn end(&mut self, phase: Phase) {
        self.phase = phase;
        self.pending = None;
    }

    fn cancel_now(&mut self, reason: CancelReason) {
        self.cancelled_with = Some(reason);
        self.end(Phase::Cancelled);
    }

    fn step(&mut self, input: &Input) -> Reply {
        if self.phase != Phase::Running {
            return Reply::NotApplicable;
        }
        match self.abort {
            Some("cancel") => {
                let r = self.cancel.clone().unwrap();
                self.cancel_now(r);
                return Reply::Ok(None);
            }
            Some(_) => {
                self.end(Phase::Failed);
                return Reply::Ok(None);
            }
            None => {}
        }
        match input {
            Input::Step(StepOutcome::Paused { queries, .. }) => {
                let k = queries
                    .iter()
                    .filter(|q| q.request.kind() == QueryKind::Llm)
                    .count() as u64;
                if self.llm_calls + k > MAX_LLM {
                    self.end(Phase::Failed);
                } else {
                    self.llm_calls += k;
                    self.pauses += 1;
                    self.round += 1;
                    self.phase = Phase::Paused;
                    self.pending = Some(MRound {
                        queries: queries
                            .iter()
                            .map(|q| {
                                let choices = matches!(&q.request, QueryRequest::Human { question } if !question.choices.is_empty());
                                (q.id.clone(), q.request.kind() == QueryKind::Llm, choices)
                            })
                            .collect(),
                        answers: BTreeMap::new(),
                    });
                }
            }
            Input::Step(StepOutcome::Preempted { .. }) => self.phase = Phase::Queued,
            Input::Step(StepOutcome::Finished { .. }) => self.end(Phase::Completed),
            _ => self.end(Phase::Failed),
        }
        Reply::Ok(None)
    }

    fn resume(&mut self, answers: &Answers, engine: bool) -> Reply {
        if answers.answers.is_empty() {
            return Reply::Err(ResumeError::EmptyAnswers);
        }
        let Some(p) = self.pending.clone() else {
            if let (Some(r), Some((lr, la, _))) = (answers.round, &self.last) {
                if r == *lr
                    && answers.answers.iter().all(|a| {
                        a.query_id.as_ref().and_then(|id| la.get(id)).cloned() == content_of(a)
                            && content_of(a).is_some()
                    })
                {
                    return Reply::Ok(Some(Ack::Resume(ResumeAck::Continued { round: r })));
                }
            }
            return Reply::Err(ResumeError::NotPaused { phase: self.phase });
        };
        if let Some(r) = answers.round {
            if r != self.round {
                return Reply::Err(ResumeError::StaleRound {
                    given: r,
                    current: self.round,
                });
            }
        }
        let unanswered: Vec<&QueryId> = p
            .queries
            .iter()
            .map(|q| &q.0)
            .filter(|id| !p.answers.contains_key(*id))
            .collect();
        let mut list = answers.answers.clone();
        if list.iter().any(|a| a.query_id.is_none()) {
            if list.len() != 1 || unanswered.len() != 1 {
                return Reply::Err(ResumeError::AmbiguousTarget {
                    unanswered: unanswered.len(),
                });
            }
            list[0].query_id = Some(unanswered[0].clone());
        }
        let mut seen = BTreeSet::new();
        let mut new: Vec<(QueryId, Content)> = vec![];
        for a in &list {
            let id = a.query_id.clone().unwrap();
            let Some(&(_, is_llm, choices)) = p.queries.iter().find(|q| q.0 == id) else {
                return Reply::Err(ResumeError::UnknownQuery {
                    query_id: id.to_string(),
                });
            };
            let Some(c) = content_of(a) else {
                return Reply::Err(invalid(&id));
            };
            if let Content::Ask(s) = &c {
                if is_llm || (*s == AskStatus::Timeout && !engine) {
                    return Reply::Err(invalid(&id));
                }
            }
            if let Content::Text(t) = &c {
                if !is_llm && choices && t != "yes" && t != "no" {
                    return Reply::Err(invalid(&id));
                }
                if t.len() > 64 {
                    return Reply::Err(invalid(&id));
                }
            }
            if !seen.insert(id.clone()) {
                return Reply::Err(invalid(&id));
            }
            match p.answers.get(&id) {
                Some(prev) if *prev == c => {}
                Some(_) => return Reply::Err(ResumeError::ConflictingAnswer { query_id: id }),
                None => new.push((id, c)),
            }
        }
        let round = self.round;
        let p = self.pending.as_mut().unwrap();
        for (id, c) in new {
            p.answers.insert(id, c);
        }
        let remaining = p.queries.len() - p.answers.len();
        if remaining > 0 {
            return Reply::Ok(Some(Ack::Resume(ResumeAck::Accepted { round, remaining })));
        }
        let p = self.pending.take().unwrap();
        self.last = Some((
            round,
            p.answers,
            p.queries.iter().map(|q| q.0.clone()).collect(),
        ));
        self.rounds += 1;
        self.phase = Phase::Queued;
        Reply::Ok(Some(Ack::Resume(ResumeAck::Continued { round })))
    }

    fn apply(&mut self, input: &Input) -> Reply {
        let terminal = self.phase.is_terminal();
        match input {
            Input::Dispatch if self.phase == Phase::Queued => {
                self.phase = Phase::Running;
                Reply::Ok(None)
            }
            Input::Dispatch => Reply::NotApplicable,
            Input::Step(_) => self.step(input),
            Input::Resume(a) => self.resume(a, false),
            Input::Cancel(_) if terminal => {
                Reply::Ok(Some(Ack::Cancel(CancelAck::AlreadyTerminal {
                    phase: self.phase,
                })))
            }
            Input::Cancel(r) if self.phase == Phase::Running => {
                if self.cancel.is_none() {
                    self.cancel = Some(r.clone());
                    self.abort.get_or_insert("cancel");
                }
                Reply::Ok(Some(Ack::Cancel(CancelAck::Requested)))
            }
            Input::Cancel(r) => {
                self.cancel = Some(r.clone());
                self.cancel_now(r.clone());
                Reply::Ok(Some(Ack::Cancel(CancelAck::Cancelled)))
            }
            Input::Deadline if matches!(self.phase, Phase::Queued | Phase::Paused) => {
                self.end(Phase::Failed);
                Reply::Ok(None)
            }
            Input::Deadline if self.phase == Phase::Running && self.abort.is_none() => {
                self.abort = Some("deadline");
                Reply::Ok(None)
            }
            Input::Deadline => Reply::NotApplicable,
            Input::IdleTtl { durable } if self.phase == Phase::Paused => {
                if !durable {
                    self.cancel_now(CancelReason {
                        code: CancelCode::Expired,
                        detail: Some("idle ttl expired".into()),
                    });
                }
                Reply::Ok(None)
            }
            Input::IdleTtl { .. } => Reply::NotApplicable,
            Input::AskTimeout { round, query } => {
                let open = self.pending.as_ref().is_some_and(|p| {
                    *round == self.round
                        && !p.answers.contains_key(query)
                        && p.queries.iter().any(|q| &q.0 == query && !q.1)
                });
                if !open {
                    return Reply::NotApplicable;
                }
                let a = Answers {
                    round: Some(*round),
                    answers: vec![Answer::ask_status(Some(query.clone()), AskStatus::Timeout)],
                };
                self.resume(&a, true)
            }
            Input::RetentionExpired if terminal => Reply::Ok(None),
            Input::RetentionExpired => Reply::NotApplicable,
            Input::JournalFailed { .. } if !terminal => {
                self.end(Phase::Failed);
                Reply::Ok(None)
            }
            Input::JournalFailed { .. } => Reply::NotApplicable,
        }
    }
}

// ---- the harness ------------------------------------------------------------------------------

fn allowed(from: Phase, to: Phase) -> bool {
    use Phase::*;
    from == to
        || matches!(
            (from, to),
            (Queued, Running)
                | (Queued, Cancelled)
                | (Queued, Failed)
                | (Running, Paused)
                | (Running, Queued)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
                | (Paused, Queued)
                | (Paused, Cancelled)
                | (Paused, Failed)
        )
}

fn counters(m: &SessionMetrics) -> [u64; 9] {
    [
        m.llm_calls,
        m.human_asks,
        m.pauses,
        m.rounds,
        m.total_prompt_chars,
        m.total_response_chars,
        m.cpu_ms,
        m.paused_ms,
        m.peak_vm_bytes,
    ]
}

/// Event-stream checks of I6 (and the `paused` side of I8).
struct EventCheck {
    next_seq: u64,
    last_to: Phase,
    terminal_seen: bool,
    paused_llm: u64,
}

impl EventCheck {
    fn check(&mut self, events: &[Event]) -> Result<(), TestCaseError> {
        for e in events {
            prop_assert_eq!(e.seq, self.next_seq, "seqs contiguous");
            self.next_seq += 1;
            prop_assert!(!self.terminal_seen, "event after terminal: {:?}", e);
            match &e.body {
                EventBody::PhaseChanged { from, to } => {
                    prop_assert_eq!(*from, self.last_to);
                    self.last_to = *to;
                }
                EventBody::Terminal { .. } => self.terminal_seen = true,
                EventBody::Paused { queries, .. } => {
                    self.paused_llm += queries
                        .iter()
                        .filter(|q| q.request.kind() == QueryKind::Llm)
                        .count() as u64
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn run(inputs: Vec<(TIn, u16)>) -> Result<(), TestCaseError> {
    let limits = MachineLimits {
        max_answer_bytes: 64,
        event_ring: 16,
        event_ring_bytes: usize::MAX,
        log_ring: 4,
        deadline_ms: Some(10_000_000),
        idle_ttl_ms: Some(1000),
        retain_terminal_ms: Some(1000),
    };
    let budget = BudgetLimits {
        max_llm_calls: Some(MAX_LLM),
        ..BudgetLimits::default()
    };
    let mut now = 1_000_000i64;
    let id = SessionId::from_bytes([1; 16]);
    let (mut core, fx) = SessionCore::spawn(id, "code", BTreeMap::new(), budget, limits, now);
    let mut model = Model::new();
    let mut ev = EventCheck {
        next_seq: 1,
        last_to: Phase::Queued,
        terminal_seen: false,
        paused_llm: 0,
    };
    ev.check(&fx.events)?;
    let mut first_cancel: Option<CancelReason> = None;

    for (t, dt) in inputs {
        now += dt as i64;
        let input = to_input(&t, &model);
        let before = core.clone();
        let expected = model.apply(&input);
        let result = SessionMachine::apply(&mut core, input.clone(), now);
        let (reply, fx) = match result {
            Ok(fx) => (Reply::Ok(fx.ack.clone()), Some(fx)),
            Err(Rejection::Resume(e)) => (Reply::Err(normalize(e)), None),
            Err(Rejection::NotApplicable) => (Reply::NotApplicable, None),
        };
        prop_assert_eq!(&reply, &expected, "input {:?}", input);
        // I10 / rejections leave the core bit-identical.
        let Some(fx) = fx else {
            prop_assert_eq!(&core, &before);
            continue;
        };
        // I6 version.
        if core != before {
            prop_assert!(core.version > before.version);
        } else {
            prop_assert!(fx.events.is_empty());
        }
        ev.check(&fx.events)?;
        // I7 bookkeeping: first reason that took effect.
        if first_cancel.is_none() {
            for e in &fx.events {
                if let EventBody::CancelRequested { reason } = &e.body {
                    first_cancel = Some(reason.clone());
                }
            }
        }
        // Model agreement.
        prop_assert_eq!(core.phase, model.phase);
        prop_assert_eq!(core.round, model.round);
        let real_ids = core.pending.as_ref().map(|p| {
            (
                p.queries.iter().map(|q| q.id.clone()).collect::<Vec<_>>(),
                p.answers.keys().cloned().collect::<Vec<_>>(),
            )
        });
        let model_ids = model.pending.as_ref().map(|p| {
            (
                p.queries.iter().map(|q| q.0.clone()).collect::<Vec<_>>(),
                p.answers.keys().cloned().collect::<Vec<_>>(),
            )
        });
        prop_assert_eq!(real_ids, model_ids);
        prop_assert_eq!(core.metrics.llm_calls, model.llm_calls);
        prop_assert_eq!(core.metrics.pauses, model.pauses);
        prop_assert_eq!(core.metrics.rounds, model.rounds);
        // I1.
        prop_assert!(
            allowed(before.phase, core.phase),
            "{:?} -> {:?}",
            before.phase,
            core.phase
        );
        if before.phase.is_terminal() {
            prop_assert_eq!(&core.outcome, &before.outcome);
        }
        // I2.
        prop_assert_eq!(core.pending.is_some(), core.phase == Phase::Paused);
        prop_assert_eq!(core.outcome.is_some(), core.phase.is_terminal());
        prop_assert_eq!(
            fx.terminal,
            core.phase.is_terminal() && !before.phase.is_terminal()
        );
        // I3.
        let slot_ok = match core.phase {
            Phase::Queued | Phase::Paused => matches!(core.slot, SlotState::Hot | SlotState::Cold),
            Phase::Running => core.slot == SlotState::CheckedOut,
            _ => core.slot == SlotState::Dropped,
        };
        prop_assert!(slot_ok, "slot {:?} in {:?}", core.slot, core.phase);
        // I4.
        prop_assert!(core.round == before.round || core.round == before.round + 1);
        prop_assert_eq!(core.round, core.metrics.pauses);
        if let Some(p) = &core.pending {
            let qids: BTreeSet<&QueryId> = p.queries.iter().map(|q| &q.id).collect();
            prop_assert!(p.answers.keys().all(|k| qids.contains(k)));
            let answered: BTreeSet<&QueryId> = p.answered.iter().collect();
            prop_assert_eq!(answered.len(), p.answered.len());
            prop_assert_eq!(answered, p.answers.keys().collect::<BTreeSet<_>>());
        }
        if let Some(input) = &fx.take_resume_input {
            let order = &model.last.as_ref().unwrap().2;
            let got: Vec<QueryId> = input.iter().map(|a| a.query_id.clone().unwrap()).collect();
            prop_assert_eq!(&got, order);
        }
        // I6 terminal event exactly once and last.
        prop_assert_eq!(ev.terminal_seen, core.phase.is_terminal());
        // I7.
        if let Some(Outcome::Cancelled { reason, .. }) = core.outcome.as_deref() {
            prop_assert_eq!(Some(reason), first_cancel.as_ref());
            prop_assert_eq!(Some(reason), model.cancelled_with.as_ref());
        }
        // I8.
        let (b, a) = (counters(&before.metrics), counters(&core.metrics));
        prop_assert!(
            b.iter().zip(a.iter()).all(|(x, y)| x <= y),
            "{:?} -> {:?}",
            b,
            a
        );
        prop_assert_eq!(core.metrics.llm_calls, ev.paused_llm);
        prop_assert!(core.metrics.llm_calls <= MAX_LLM);
        let m = &core.metrics;
        prop_assert!(m.rounds <= m.pauses && m.pauses <= m.rounds + 1);
        if fx.removed {
            break;
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn machine_matches_model(inputs in vec((t_input(), 0u16..2000), 0..60)) {
        run(inputs)?;
    }
}
