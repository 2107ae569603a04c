//! Scenario tests for the rows of the transition table (§2.3), resume validation (§2.4)
//! and the metrics of §6.2.

use alc_core::*;
use serde_json::json;
use std::collections::BTreeMap;

fn sid() -> SessionId {
    SessionId::from_bytes([7; 16])
}

fn limits() -> MachineLimits {
    MachineLimits {
        max_answer_bytes: 64,
        event_ring: 1000,
        event_ring_bytes: usize::MAX,
        log_ring: 2,
        deadline_ms: Some(1_000_000),
        idle_ttl_ms: Some(5_000),
        retain_terminal_ms: Some(60_000),
    }
}

fn spawn() -> SessionCore {
    let budget = BudgetLimits {
        max_llm_calls: Some(10),
        ..BudgetLimits::default()
    };
    let (core, fx) = SessionCore::spawn(sid(), "code", BTreeMap::new(), budget, limits(), 1000);
    assert!(fx.enqueue);
    assert_eq!(fx.events[0].seq, 1);
    assert!(matches!(fx.events[0].body, EventBody::Created { .. }));
    assert_eq!(fx.timers[0].kind, TimerKind::Deadline);
    assert_eq!(core.phase, Phase::Queued);
    assert_eq!(core.slot, SlotState::Cold);
    core
}

fn llm(id: QueryId, prompt: &str) -> PendingQuery {
    let request: QueryRequest = LlmQuery::new(prompt).into();
    PendingQuery {
        digest: digest_request(&request),
        id,
        origin: QueryOrigin::Main,
        request,
    }
}

fn human(id: QueryId, choices: &[&str], timeout_ms: Option<u64>) -> PendingQuery {
    let mut q = HumanQuestion::new("which?");
    q.choices = choices.iter().map(|c| c.to_string()).collect();
    q.timeout_ms = timeout_ms;
    let request: QueryRequest = q.into();
    PendingQuery {
        digest: digest_request(&request),
        id,
        origin: QueryOrigin::Child {
            index: 0,
            strategy: "cot".into(),
        },
        request,
    }
}

fn apply(core: &mut SessionCore, input: Input, now: i64) -> Result<Effects, Rejection> {
    let before = core.clone();
    let r = SessionMachine::apply(core, input, now);
    match &r {
        Err(_) => assert_eq!(*core, before, "rejected input changed the core"),
        Ok(_) if *core != before => assert!(core.version > before.version),
        Ok(_) => {}
    }
    r
}

fn pause(core: &mut SessionCore, queries: Vec<PendingQuery>, now: i64) -> Effects {
    apply(core, Input::Dispatch, now).unwrap();
    let report = StepReport {
        cpu_ms: 2,
        vm_bytes: 100,
        ..StepReport::default()
    };
    apply(
        core,
        Input::Step(StepOutcome::Paused { queries, report }),
        now,
    )
    .unwrap()
}

fn resume(
    core: &mut SessionCore,
    round: Option<u64>,
    answers: Vec<Answer>,
    now: i64,
) -> Result<Effects, Rejection> {
    apply(core, Input::Resume(Answers { round, answers }), now)
}

fn resume_err(r: Result<Effects, Rejection>) -> ResumeError {
    match r {
        Err(Rejection::Resume(e)) => e,
        other => panic!("expected resume error, got {other:?}"),
    }
}

fn q(i: usize) -> QueryId {
    QueryId::main(i)
}

#[test]
fn full_round_trip_and_metrics() {
    let mut c = spawn();
    let fx = pause(
        &mut c,
        vec![llm(q(0), "abcdefgh"), llm(q(1), "日本語")],
        2000,
    );
    assert_eq!(c.phase, Phase::Paused);
    assert_eq!(c.slot, SlotState::Hot);
    assert_eq!(c.round, 1);
    assert!(fx.timers.iter().any(|t| t.kind == TimerKind::IdleTtl));
    assert_eq!(c.metrics.llm_calls, 2);
    assert_eq!(c.metrics.pauses, 1);
    assert_eq!(c.metrics.total_prompt_chars, 8 + 9);
    assert_eq!(c.metrics.prompt_tokens.tokens, 2 + 2);
    assert_eq!(c.metrics.cpu_ms, 2);

    let mut a0 = Answer::text(Some(q(0)), "abcd");
    a0.usage = Some(TokenUsage {
        prompt_tokens: Some(10),
        completion_tokens: Some(3),
        cached_tokens: None,
        reasoning_tokens: None,
        source: TokenSource::Definite,
    });
    a0.meta.answerer = Some("provider".into());
    a0.meta.provider = Some("openai".into());
    a0.meta.model = Some("m".into());
    let fx = resume(&mut c, Some(1), vec![a0.clone()], 2500).unwrap();
    assert_eq!(
        fx.ack,
        Some(Ack::Resume(ResumeAck::Accepted {
            round: 1,
            remaining: 1
        }))
    );
    assert_eq!(fx.accepted.len(), 1);
    assert_eq!(c.metrics.prompt_tokens.tokens, 10 + 2);
    assert_eq!(c.metrics.prompt_tokens.source, TokenSource::Estimated);
    assert_eq!(
        c.metrics.response_tokens,
        TokenCount {
            tokens: 3,
            source: TokenSource::Definite
        }
    );
    assert_eq!(c.metrics.usage_by_model["openai:m"].calls, 1);
    assert_eq!(c.metrics.answered_by["provider"], 1);

    // Identical duplicate: same reply shape, nothing changes.
    let before = c.clone();
    let fx = resume(&mut c, None, vec![Answer::text(Some(q(0)), "abcd")], 2600).unwrap();
    assert_eq!(
        fx.ack,
        Some(Ack::Resume(ResumeAck::Accepted {
            round: 1,
            remaining: 1
        }))
    );
    assert_eq!(c, before);

    // Id-less answer targets the one unanswered query and completes the round.
    let fx = resume(&mut c, None, vec![Answer::text(None, "xyz")], 3000).unwrap();
    assert_eq!(fx.ack, Some(Ack::Resume(ResumeAck::Continued { round: 1 })));
    assert!(fx.enqueue);
    assert_eq!(c.phase, Phase::Queued);
    assert_eq!(c.metrics.rounds, 1);
    assert_eq!(c.metrics.paused_ms, 1000);
    assert_eq!(c.metrics.total_response_chars, 7);
    assert_eq!(c.metrics.answered_by["unknown"], 1);
    assert_eq!(c.metrics.response_tokens.source, TokenSource::Estimated);
    assert_eq!(c.metrics.total_tokens.tokens, 12 + 3 + 1);

    // Rule 6: retry of the completing call.
    let fx = resume(&mut c, Some(1), vec![Answer::text(Some(q(1)), "xyz")], 3100).unwrap();
    assert_eq!(fx.ack, Some(Ack::Resume(ResumeAck::Continued { round: 1 })));
    // Not identical: not paused.
    let e = resume_err(resume(
        &mut c,
        Some(1),
        vec![Answer::text(Some(q(1)), "other")],
        3100,
    ));
    assert_eq!(
        e,
        ResumeError::NotPaused {
            phase: Phase::Queued
        }
    );

    // Dispatch hands over the answers in issue order.
    let fx = apply(&mut c, Input::Dispatch, 3200).unwrap();
    let input = fx.take_resume_input.unwrap();
    assert_eq!(input[0].text.as_deref(), Some("abcd"));
    assert_eq!(input[1].query_id, Some(q(1)));
    assert_eq!(c.slot, SlotState::CheckedOut);

    let report = StepReport {
        cpu_ms: 5,
        vm_bytes: 50,
        logs: (0..3)
            .map(|i| LogEntry {
                ts: i,
                level: "info".into(),
                source: "alc.log".into(),
                message: format!("m{i}"),
            })
            .collect(),
        progress: Some(Progress {
            step: 1,
            total: 2,
            message: "x".into(),
        }),
        custom: [("k".to_string(), json!(1))].into_iter().collect(),
    };
    let fx = apply(
        &mut c,
        Input::Step(StepOutcome::Finished {
            value: json!(391),
            report,
        }),
        4000,
    )
    .unwrap();
    assert!(fx.terminal && fx.drop_vm && fx.wake_waiters);
    assert!(matches!(
        fx.events.last().unwrap().body,
        EventBody::Terminal { .. }
    ));
    assert_eq!(c.phase, Phase::Completed);
    assert_eq!(c.slot, SlotState::Dropped);
    assert_eq!(c.metrics.recent_logs.len(), 2);
    assert_eq!(c.metrics.recent_logs[1].message, "m2");
    assert_eq!(c.metrics.cpu_ms, 7);
    assert_eq!(c.metrics.peak_vm_bytes, 100);
    assert_eq!(c.metrics.vm_bytes, 50);
    assert_eq!(c.metrics.elapsed_ms, 3000);
    assert_eq!(c.terminal().unwrap().ended_at, 4000);
    let snap = c.snapshot(&SnapshotOptions::default());
    assert_eq!(snap.budget.remaining.llm_calls, Some(8));
    assert_eq!(snap.last_event_seq, c.events.last_seq());
    // Seqs contiguous.
    let seqs: Vec<u64> = c.events.events().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    // Absorbing; retention removes.
    let fx = apply(
        &mut c,
        Input::Cancel(CancelReason::new(CancelCode::User)),
        5000,
    )
    .unwrap();
    assert_eq!(
        fx.ack,
        Some(Ack::Cancel(CancelAck::AlreadyTerminal {
            phase: Phase::Completed
        }))
    );
    assert_eq!(
        apply(&mut c, Input::Dispatch, 5000),
        Err(Rejection::NotApplicable)
    );
    assert!(
        apply(&mut c, Input::RetentionExpired, 6000)
            .unwrap()
            .removed
    );
}

#[test]
fn validation_order_and_errors() {
    let mut c = spawn();
    pause(
        &mut c,
        vec![
            llm(q(0), "p"),
            llm(q(1), "p"),
            human(q(2), &["yes", "no"], None),
        ],
        2000,
    );
    let e = resume_err(resume(&mut c, Some(1), vec![], 2100));
    assert_eq!(e, ResumeError::EmptyAnswers);
    let e = resume_err(resume(
        &mut c,
        Some(2),
        vec![Answer::text(Some(q(0)), "a")],
        2100,
    ));
    assert_eq!(
        e,
        ResumeError::StaleRound {
            given: 2,
            current: 1
        }
    );
    let e = resume_err(resume(&mut c, None, vec![Answer::text(None, "a")], 2100));
    assert_eq!(e, ResumeError::AmbiguousTarget { unanswered: 3 });
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::text(Some(q(9)), "a")],
        2100,
    ));
    assert!(matches!(e, ResumeError::UnknownQuery { .. }));
    let mut both = Answer::text(Some(q(0)), "a");
    both.error = Some(AnswerError {
        code: "x".into(),
        message: "y".into(),
    });
    let e = resume_err(resume(&mut c, None, vec![both], 2100));
    assert!(matches!(e, ResumeError::InvalidAnswer { .. }));
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::ask_status(Some(q(0)), AskStatus::Declined)],
        2100,
    ));
    assert!(
        matches!(e, ResumeError::InvalidAnswer { .. }),
        "ask_status on llm"
    );
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::ask_status(Some(q(2)), AskStatus::Timeout)],
        2100,
    ));
    assert!(
        matches!(e, ResumeError::InvalidAnswer { .. }),
        "caller timeout"
    );
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::text(Some(q(2)), "maybe")],
        2100,
    ));
    assert!(e.to_string().contains("choices"), "{e}");
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::text(Some(q(0)), "x".repeat(65))],
        2100,
    ));
    assert!(e.to_string().contains("max_answer_bytes"), "{e}");
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::text(Some(q(0)), "a"), Answer::text(Some(q(0)), "a")],
        2100,
    ));
    assert!(e.to_string().contains("twice"), "{e}");
    // All-or-nothing: a valid first answer does not survive an invalid second one.
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::text(Some(q(0)), "a"), Answer::text(Some(q(9)), "a")],
        2100,
    ));
    assert!(matches!(e, ResumeError::UnknownQuery { .. }));
    assert!(c.pending.as_ref().unwrap().answers.is_empty());
    resume(
        &mut c,
        None,
        vec![Answer::ask_status(Some(q(2)), AskStatus::Declined)],
        2200,
    )
    .unwrap();
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::ask_status(Some(q(2)), AskStatus::Cancelled)],
        2300,
    ));
    assert_eq!(e, ResumeError::ConflictingAnswer { query_id: q(2) });
    // Error answers: identical = same code and message.
    resume(
        &mut c,
        None,
        vec![Answer::error(Some(q(0)), "provider_error", "boom")],
        2400,
    )
    .unwrap();
    resume(
        &mut c,
        None,
        vec![Answer::error(Some(q(0)), "provider_error", "boom")],
        2400,
    )
    .unwrap();
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::error(Some(q(0)), "provider_error", "other")],
        2400,
    ));
    assert!(matches!(e, ResumeError::ConflictingAnswer { .. }));
    assert_eq!(c.metrics.human_asks, 1);
}

#[test]
fn cancel_rows() {
    // T16 in Paused.
    let mut c = spawn();
    pause(&mut c, vec![llm(q(0), "p")], 2000);
    let fx = apply(
        &mut c,
        Input::Cancel(CancelReason::new(CancelCode::User)),
        3000,
    )
    .unwrap();
    assert_eq!(fx.ack, Some(Ack::Cancel(CancelAck::Cancelled)));
    assert!(fx.drop_vm);
    match c.outcome.as_deref().unwrap() {
        Outcome::Cancelled {
            phase_before,
            requested_at,
            ..
        } => {
            assert_eq!(*phase_before, Phase::Paused);
            assert_eq!(*requested_at, 3000);
        }
        o => panic!("{o:?}"),
    }
    assert_eq!(c.metrics.paused_ms, 1000);
    assert!(c.pending.is_none());

    // T17/T18/T10: first reason wins, cancel wins over Finished.
    let mut c = spawn();
    apply(&mut c, Input::Dispatch, 1100).unwrap();
    let fx = apply(
        &mut c,
        Input::Cancel(CancelReason::new(CancelCode::User)),
        1200,
    )
    .unwrap();
    assert_eq!(fx.ack, Some(Ack::Cancel(CancelAck::Requested)));
    assert!(fx.set_abort_flag);
    let before = c.clone();
    let fx = apply(
        &mut c,
        Input::Cancel(CancelReason::new(CancelCode::Shutdown)),
        1300,
    )
    .unwrap();
    assert_eq!(fx.ack, Some(Ack::Cancel(CancelAck::Requested)));
    assert_eq!(c, before);
    apply(
        &mut c,
        Input::Step(StepOutcome::Finished {
            value: json!(1),
            report: StepReport::default(),
        }),
        1400,
    )
    .unwrap();
    match c.outcome.as_deref().unwrap() {
        Outcome::Cancelled {
            reason,
            phase_before,
            ..
        } => {
            assert_eq!(reason.code, CancelCode::User);
            assert_eq!(*phase_before, Phase::Running);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn deadline_and_cpu_rows() {
    // T21 then T11.
    let mut c = spawn();
    apply(&mut c, Input::Dispatch, 1100).unwrap();
    assert!(apply(&mut c, Input::Deadline, 1200).unwrap().set_abort_flag);
    assert_eq!(
        apply(&mut c, Input::Deadline, 1300),
        Err(Rejection::NotApplicable)
    );
    apply(
        &mut c,
        Input::Step(StepOutcome::Aborted {
            report: StepReport::default(),
        }),
        1400,
    )
    .unwrap();
    assert!(matches!(
        c.outcome.as_deref(),
        Some(Outcome::Failed {
            kind: FailureKind::Timeout,
            ..
        })
    ));
    // T20.
    let mut c = spawn();
    apply(&mut c, Input::Deadline, 1200).unwrap();
    assert!(matches!(
        c.outcome.as_deref(),
        Some(Outcome::Failed {
            kind: FailureKind::Timeout,
            ..
        })
    ));
    // T12.
    let mut c = spawn();
    apply(&mut c, Input::Dispatch, 1100).unwrap();
    apply(
        &mut c,
        Input::Step(StepOutcome::Aborted {
            report: StepReport::default(),
        }),
        1400,
    )
    .unwrap();
    assert!(matches!(
        c.outcome.as_deref(),
        Some(Outcome::Failed {
            kind: FailureKind::EngineError,
            ..
        })
    ));
    // T25.
    let mut c = spawn();
    apply(
        &mut c,
        Input::JournalFailed {
            message: "disk".into(),
        },
        1100,
    )
    .unwrap();
    assert!(matches!(
        c.outcome.as_deref(),
        Some(Outcome::Failed {
            kind: FailureKind::JournalError,
            ..
        })
    ));
    assert_eq!(
        apply(
            &mut c,
            Input::JournalFailed {
                message: "x".into()
            },
            1200
        ),
        Err(Rejection::NotApplicable)
    );
}

#[test]
fn preempt_failed_budget_idle_and_ask_timeout() {
    // T7, T9.
    let mut c = spawn();
    apply(&mut c, Input::Dispatch, 1100).unwrap();
    let fx = apply(
        &mut c,
        Input::Step(StepOutcome::Preempted {
            report: StepReport::default(),
        }),
        1200,
    )
    .unwrap();
    assert!(fx.enqueue && c.in_queue);
    assert_eq!((c.phase, c.slot), (Phase::Queued, SlotState::Hot));
    apply(&mut c, Input::Dispatch, 1300).unwrap();
    apply(
        &mut c,
        Input::Step(StepOutcome::Failed {
            kind: FailureKind::AnswerError,
            code: Some("provider_error".into()),
            message: "boom".into(),
            traceback: None,
            report: StepReport::default(),
        }),
        1400,
    )
    .unwrap();
    assert_eq!(
        c.outcome.as_deref().unwrap().failure_wire_code(),
        Some("provider_error")
    );

    // Budget guard: 11 llm queries over a limit of 10.
    let mut c = spawn();
    pause(&mut c, (0..11).map(|i| llm(q(i), "p")).collect(), 2000);
    assert!(matches!(
        c.outcome.as_deref(),
        Some(Outcome::Failed {
            kind: FailureKind::BudgetExceeded,
            ..
        })
    ));
    assert_eq!(c.metrics.llm_calls, 0);

    // T22 durable and memory.
    let mut c = spawn();
    pause(&mut c, vec![llm(q(0), "p")], 2000);
    let fx = apply(&mut c, Input::IdleTtl { durable: true }, 9000).unwrap();
    assert!(fx.removed && fx.drop_vm);
    assert_eq!(c.phase, Phase::Paused);
    let mut c = spawn();
    pause(&mut c, vec![llm(q(0), "p")], 2000);
    apply(&mut c, Input::IdleTtl { durable: false }, 9000).unwrap();
    assert!(matches!(
        c.outcome.as_deref(),
        Some(Outcome::Cancelled {
            reason: CancelReason {
                code: CancelCode::Expired,
                ..
            },
            ..
        })
    ));

    // T26.
    let mut c = spawn();
    let fx = pause(
        &mut c,
        vec![llm(q(0), "p"), human(q(1), &[], Some(500))],
        2000,
    );
    assert!(fx.timers.iter().any(|t| t.kind
        == TimerKind::AskTimeout {
            round: 1,
            query: q(1)
        }
        && t.due_at == 2500));
    assert_eq!(
        apply(
            &mut c,
            Input::AskTimeout {
                round: 1,
                query: q(0)
            },
            2500
        ),
        Err(Rejection::NotApplicable)
    );
    assert_eq!(
        apply(
            &mut c,
            Input::AskTimeout {
                round: 2,
                query: q(1)
            },
            2500
        ),
        Err(Rejection::NotApplicable)
    );
    apply(
        &mut c,
        Input::AskTimeout {
            round: 1,
            query: q(1),
        },
        2500,
    )
    .unwrap();
    let a = &c.pending.as_ref().unwrap().answers[&q(1)];
    assert_eq!(a.ask_status, Some(AskStatus::Timeout));
    assert_eq!(c.metrics.answered_by["engine"], 1);
    assert_eq!(
        apply(
            &mut c,
            Input::AskTimeout {
                round: 1,
                query: q(1)
            },
            2600
        ),
        Err(Rejection::NotApplicable)
    );
    // A late human answer conflicts.
    let e = resume_err(resume(
        &mut c,
        None,
        vec![Answer::text(Some(q(1)), "late")],
        2700,
    ));
    assert!(matches!(e, ResumeError::ConflictingAnswer { .. }));
}

#[test]
fn event_ring_gap() {
    let mut c = spawn();
    for t in 0..100 {
        apply(&mut c, Input::Dispatch, 1000 + t).unwrap();
        apply(
            &mut c,
            Input::Step(StepOutcome::Preempted {
                report: StepReport::default(),
            }),
            1000 + t,
        )
        .unwrap();
    }
    let mut small = SessionCore::spawn(
        sid(),
        "code",
        BTreeMap::new(),
        BudgetLimits::default(),
        MachineLimits {
            event_ring: 4,
            ..limits()
        },
        0,
    )
    .0;
    for t in 0..5 {
        apply(&mut small, Input::Dispatch, t).unwrap();
        apply(
            &mut small,
            Input::Step(StepOutcome::Preempted {
                report: StepReport::default(),
            }),
            t,
        )
        .unwrap();
    }
    let items = small.events.read_from(1);
    assert_eq!(
        items[0],
        ObserveItem::Gap {
            from_seq: 1,
            to_seq: 7
        }
    );
    assert_eq!(items.len(), 5);
}

#[test]
fn event_ring_bytes_bound() {
    let mut c = SessionCore::spawn(
        sid(),
        "code",
        BTreeMap::new(),
        BudgetLimits::default(),
        MachineLimits {
            event_ring_bytes: 4_000,
            ..limits()
        },
        0,
    )
    .0;
    // An event counts as its record plus its text.
    let weight = |e: &Event| std::mem::size_of::<Event>() + e.body.text_bytes();
    let held = |c: &SessionCore| -> usize { c.events.events().iter().map(weight).sum() };
    for round in 0..10 {
        let now = 100 * (round + 1);
        pause(&mut c, vec![llm(q(0), &"p".repeat(1_000))], now);
        assert!(held(&c) <= 4_000, "round {round}: {} bytes held", held(&c));
        resume(&mut c, None, vec![Answer::text(None, "a")], now + 1).unwrap();
    }
    // Only the last few rounds are still buffered: a late observer starts with a gap.
    let items = c.events.read_from(1);
    assert!(
        matches!(items[0], ObserveItem::Gap { from_seq: 1, .. }),
        "{:?}",
        items[0]
    );
    let paused = c
        .events
        .events()
        .iter()
        .filter(|e| matches!(e.body, EventBody::Paused { .. }))
        .count();
    // Another round's pause would not fit.
    let one_pause = c
        .events
        .events()
        .iter()
        .find(|e| matches!(e.body, EventBody::Paused { .. }))
        .map(weight)
        .expect("a pause is buffered");
    assert!(paused >= 2, "{paused} pauses buffered");
    assert!(
        held(&c) + one_pause > 4_000,
        "the bound is what limits the ring"
    );
    // An event larger than the bound replaces everything before it, and is kept.
    pause(&mut c, vec![llm(q(0), &"p".repeat(10_000))], 5_000);
    let last = c.events.events().back().expect("the newest event is kept");
    assert!(matches!(last.body, EventBody::Paused { .. }));
    assert_eq!(c.events.events().len(), 1);
}

#[test]
fn adopt_paused_and_queued() {
    let mut c = spawn();
    pause(
        &mut c,
        vec![llm(q(0), "p"), human(q(1), &[], Some(500))],
        2000,
    );
    let a = Adopted {
        id: c.id.clone(),
        program_kind: "code".into(),
        labels: BTreeMap::new(),
        budget: c.budget.clone(),
        created_at: c.created_at,
        round: c.round,
        pending: c.pending.clone(),
        last_round: None,
        metrics: c.metrics.clone(),
        records: 3,
    };
    let (mut d, fx) = SessionCore::adopt(a.clone(), limits(), 10_000);
    assert_eq!((d.phase, d.slot), (Phase::Paused, SlotState::Cold));
    assert!(!fx.enqueue);
    assert_eq!(fx.events[0].seq, 1);
    assert_eq!(fx.events[0].body, EventBody::Recovered { records: 3 });
    assert!(fx.timers.iter().any(|t| t.kind
        == TimerKind::AskTimeout {
            round: 1,
            query: q(1)
        }
        && t.due_at == 2500));
    assert_eq!(d.metrics.cpu_ms, 0);
    apply(
        &mut d,
        Input::AskTimeout {
            round: 1,
            query: q(1),
        },
        10_001,
    )
    .unwrap();
    let fx = resume(&mut d, Some(1), vec![Answer::text(Some(q(0)), "a")], 10_002).unwrap();
    assert_eq!(fx.ack, Some(Ack::Resume(ResumeAck::Continued { round: 1 })));
    let (q2, fx) = SessionCore::adopt(Adopted { pending: None, ..a }, limits(), 10_000);
    assert_eq!(q2.phase, Phase::Queued);
    assert!(fx.enqueue && q2.in_queue);
}
