//! Property tests: `from_str(to_string(x)) == x` for the main public types (§12.5).

use alc_core::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(x: &T) {
    let s = serde_json::to_string(x).unwrap();
    let back: T = serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}"));
    assert_eq!(&back, x, "{s}");
}

fn text() -> impl Strategy<Value = String> {
    "[a-z é日\"\\\\]{0,8}"
}

/// Finite floats with exact short representations.
fn float() -> impl Strategy<Value = f64> {
    (-4000i32..4000).prop_map(|x| x as f64 / 8.0)
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        float().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(text(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn session_id() -> impl Strategy<Value = SessionId> {
    any::<[u8; 16]>().prop_map(SessionId::from_bytes)
}

fn query_id() -> impl Strategy<Value = QueryId> {
    prop_oneof![
        (0usize..300).prop_map(QueryId::main),
        (0usize..20, 0usize..20).prop_map(|(a, b)| QueryId::child(a, b)),
    ]
}

fn phase() -> impl Strategy<Value = Phase> {
    prop_oneof![
        Just(Phase::Queued),
        Just(Phase::Running),
        Just(Phase::Paused),
        Just(Phase::Completed),
        Just(Phase::Failed),
        Just(Phase::Cancelled),
    ]
}

fn source() -> impl Strategy<Value = TokenSource> {
    prop_oneof![
        Just(TokenSource::Estimated),
        Just(TokenSource::Provided),
        Just(TokenSource::Definite)
    ]
}

fn request() -> impl Strategy<Value = QueryRequest> {
    let llm = (
        text(),
        option::of(text()),
        any::<u32>(),
        option::of(float()),
        option::of(text()),
        any::<bool>(),
        any::<bool>(),
        option::of(text()),
    )
        .prop_map(
            |(prompt, system, max_tokens, temperature, model, g, u, role)| QueryRequest::Llm {
                query: LlmQuery {
                    prompt,
                    system,
                    max_tokens,
                    temperature,
                    model,
                    grounded: g,
                    underspecified: u,
                    role,
                },
            },
        );
    let human = (
        text(),
        vec(text(), 0..3),
        option::of(json()),
        option::of(json()),
        option::of(any::<u64>()),
    )
        .prop_map(
            |(question, choices, schema, default, timeout_ms)| QueryRequest::Human {
                question: HumanQuestion {
                    question,
                    choices,
                    schema,
                    default,
                    timeout_ms,
                },
            },
        );
    prop_oneof![llm, human]
}

fn origin() -> impl Strategy<Value = QueryOrigin> {
    prop_oneof![
        Just(QueryOrigin::Main),
        (0usize..16, text()).prop_map(|(index, strategy)| QueryOrigin::Child { index, strategy }),
    ]
}

fn pending_query() -> impl Strategy<Value = PendingQuery> {
    (query_id(), origin(), request()).prop_map(|(id, origin, request)| PendingQuery {
        digest: digest_request(&request),
        id,
        origin,
        request,
    })
}

fn batch() -> impl Strategy<Value = PendingBatch> {
    (
        any::<u64>(),
        any::<i64>(),
        vec(pending_query(), 0..4),
        vec(query_id(), 0..3),
    )
        .prop_map(|(round, issued_at, queries, answered)| PendingBatch {
            round,
            issued_at,
            queries: queries.into(),
            answered,
        })
}

fn usage() -> impl Strategy<Value = TokenUsage> {
    (
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        source(),
    )
        .prop_map(|(p, c, ca, r, source)| TokenUsage {
            prompt_tokens: p,
            completion_tokens: c,
            cached_tokens: ca,
            reasoning_tokens: r,
            source,
        })
}

fn answer() -> impl Strategy<Value = Answer> {
    (
        option::of(query_id()),
        option::of(text()),
        option::of((text(), text())),
        option::of(prop_oneof![
            Just(AskStatus::Declined),
            Just(AskStatus::Cancelled),
            Just(AskStatus::Timeout)
        ]),
        option::of(usage()),
        (
            option::of(text()),
            option::of(text()),
            option::of(any::<u64>()),
            option::of(any::<u32>()),
        ),
    )
        .prop_map(
            |(
                query_id,
                text,
                error,
                ask_status,
                usage,
                (answerer, model, latency_ms, attempts),
            )| Answer {
                query_id,
                text,
                error: error.map(|(code, message)| AnswerError { code, message }),
                ask_status,
                usage,
                meta: AnswerMeta {
                    answerer,
                    provider: None,
                    model,
                    stop_reason: None,
                    latency_ms,
                    attempts,
                },
            },
        )
}

fn cancel_reason() -> impl Strategy<Value = CancelReason> {
    (
        prop_oneof![
            Just(CancelCode::User),
            Just(CancelCode::ClientCancelled),
            Just(CancelCode::Timeout),
            Just(CancelCode::Expired),
            Just(CancelCode::Shutdown),
            Just(CancelCode::Internal)
        ],
        option::of(text()),
    )
        .prop_map(|(code, detail)| CancelReason { code, detail })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    let kind = prop_oneof![
        Just(FailureKind::LuaError),
        Just(FailureKind::BudgetExceeded),
        Just(FailureKind::AnswerError),
        Just(FailureKind::OutOfMemory),
        Just(FailureKind::CpuLimit),
        Just(FailureKind::Timeout),
        Just(FailureKind::InvalidResult),
        Just(FailureKind::Divergence),
        Just(FailureKind::JournalError),
        Just(FailureKind::EngineError),
    ];
    let div = (
        any::<u32>(),
        any::<u64>(),
        text(),
        text(),
        option::of(text()),
        text(),
    )
        .prop_map(|(vm, seq, expected, actual, d, diff)| DivergenceReport {
            vm,
            seq,
            expected,
            actual,
            expected_digest: d.clone(),
            actual_digest: d,
            diff,
        });
    prop_oneof![
        json().prop_map(|value| Outcome::Completed { value }),
        (
            kind,
            option::of(text()),
            text(),
            option::of(text()),
            option::of(div)
        )
            .prop_map(
                |(kind, code, message, traceback, divergence)| Outcome::Failed {
                    kind,
                    code,
                    message,
                    traceback,
                    divergence
                }
            ),
        (cancel_reason(), any::<i64>(), phase()).prop_map(
            |(reason, requested_at, phase_before)| {
                Outcome::Cancelled {
                    reason,
                    requested_at,
                    phase_before,
                }
            }
        ),
    ]
}

fn metrics() -> impl Strategy<Value = SessionMetrics> {
    (
        vec(any::<u64>(), 11),
        vec((any::<u64>(), source()), 3),
        btree_map(text(), any::<u64>(), 0..3),
        btree_map(text(), vec(any::<u64>(), 5), 0..2),
        btree_map(text(), json(), 0..3),
        option::of((any::<u64>(), any::<u64>(), text())),
        vec((any::<i64>(), text(), text(), text()), 0..3),
    )
        .prop_map(|(n, t, answered_by, ubm, custom, progress, logs)| {
            let tc = |i: usize| TokenCount {
                tokens: t[i].0,
                source: t[i].1,
            };
            SessionMetrics {
                elapsed_ms: n[0],
                paused_ms: n[1],
                cpu_ms: n[2],
                llm_calls: n[3],
                human_asks: n[4],
                pauses: n[5],
                rounds: n[6],
                total_prompt_chars: n[7],
                total_response_chars: n[8],
                prompt_tokens: tc(0),
                response_tokens: tc(1),
                total_tokens: tc(2),
                answered_by,
                usage_by_model: ubm
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            ModelUsage {
                                calls: v[0],
                                prompt_tokens: v[1],
                                completion_tokens: v[2],
                                cached_tokens: v[3],
                                reasoning_tokens: v[4],
                            },
                        )
                    })
                    .collect(),
                vm_bytes: n[9],
                peak_vm_bytes: n[10],
                custom,
                progress: progress.map(|(step, total, message)| Progress {
                    step,
                    total,
                    message,
                }),
                recent_logs: logs
                    .into_iter()
                    .map(|(ts, level, source, message)| LogEntry {
                        ts,
                        level,
                        source,
                        message,
                    })
                    .collect(),
            }
        })
}

fn limits() -> impl Strategy<Value = BudgetLimits> {
    (
        option::of(any::<u64>()),
        option::of(any::<u64>()),
        option::of(any::<u64>()),
    )
        .prop_map(|(a, b, c)| BudgetLimits {
            max_llm_calls: a,
            max_tokens: b,
            max_elapsed_ms: c,
        })
}

fn event_body() -> impl Strategy<Value = EventBody> {
    prop_oneof![
        text().prop_map(|program_kind| EventBody::Created { program_kind }),
        any::<u64>().prop_map(|records| EventBody::Recovered { records }),
        (phase(), phase()).prop_map(|(from, to)| EventBody::PhaseChanged { from, to }),
        (any::<u64>(), vec(pending_query(), 0..3)).prop_map(|(round, queries)| EventBody::Paused {
            round,
            queries: queries.into(),
        }),
        (any::<u64>(), vec(query_id(), 0..3), 0usize..9).prop_map(
            |(round, query_ids, remaining)| EventBody::AnswersAccepted {
                round,
                query_ids,
                remaining
            }
        ),
        any::<u64>().prop_map(|round| EventBody::Resumed { round }),
        vec(text(), 0..3).prop_map(|strategies| EventBody::ForkStarted { strategies }),
        (0usize..9, text(), any::<bool>()).prop_map(|(index, strategy, ok)| {
            EventBody::ForkChildFinished {
                index,
                strategy,
                ok,
            }
        }),
        (text(), json()).prop_map(|(key, value)| EventBody::Metric {
            key,
            value: Box::new(value),
        }),
        cancel_reason().prop_map(|reason| EventBody::CancelRequested { reason }),
        outcome().prop_map(|outcome| EventBody::Terminal {
            outcome: Box::new(outcome)
        }),
    ]
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        session_id(),
        phase(),
        vec(any::<u64>(), 3),
        vec(any::<i64>(), 3),
        option::of(batch()),
        option::of(cancel_reason()),
        option::of(outcome()),
        metrics(),
        limits(),
        option::of(vec(
            (
                query_id(),
                option::of(text()),
                option::of(usage()),
                option::of(any::<i64>()),
            ),
            0..2,
        )),
    )
        .prop_map(
            |(id, phase, n, t, pending, cancel, outcome, metrics, limits, history)| Snapshot {
                session_id: id,
                phase,
                version: n[0],
                round: n[1],
                created_at: t[0],
                updated_at: t[1],
                last_activity_at: t[2],
                program_kind: "code".into(),
                labels: Default::default(),
                pending,
                cancel,
                outcome,
                metrics,
                budget: BudgetStatus {
                    remaining: BudgetRemaining {
                        llm_calls: limits.max_llm_calls,
                        tokens: None,
                        elapsed_ms: limits.max_elapsed_ms,
                    },
                    limits,
                },
                last_event_seq: n[2],
                residency: Residency::Unhosted,
                owner: Owner::OtherProcess,
                history: history.map(|h| {
                    h.into_iter()
                        .map(|(query_id, response, usage, answered_at)| Exchange {
                            round: 1,
                            query_id,
                            kind: QueryKind::Human,
                            prompt: "p".into(),
                            system: None,
                            response,
                            error: None,
                            usage,
                            asked_at: 0,
                            answered_at,
                        })
                        .collect()
                }),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn spec_roundtrips(ctx in json(), seed in option::of(any::<u64>()), name in option::of(text()),
                       pkg in any::<bool>(), deadline in option::of(any::<u64>()), hc in any::<bool>()) {
        let program = if pkg { Program::Package { name: "p".into(), entry: "run".into() } }
                      else { Program::Code { source: "return 1".into(), name } };
        let mut s = SessionSpec::new(program);
        s.ctx = ctx;
        s.seed = seed;
        s.limits.deadline_ms = deadline;
        s.human_channel = hc;
        s.labels.insert("kind".into(), "advice".into());
        roundtrip(&s);
    }

    #[test]
    fn queries_roundtrip(b in batch()) {
        roundtrip(&b);
        for q in b.queries.iter() { roundtrip(q); roundtrip(&q.request); }
    }

    #[test]
    fn answers_roundtrip(round in option::of(any::<u64>()), answers in vec(answer(), 0..4)) {
        roundtrip(&Answers { round, answers });
    }

    #[test]
    fn outcomes_roundtrip(o in outcome(), id in session_id(), m in metrics(), at in any::<i64>()) {
        roundtrip(&o);
        let t = Terminal { session_id: id, outcome: o, metrics: m, ended_at: at };
        roundtrip(&t);
        roundtrip(&UntilPause::Terminal { terminal: Box::new(t) });
    }

    #[test]
    fn events_roundtrip(id in session_id(), seq in any::<u64>(), at in any::<i64>(), body in event_body()) {
        let e = Event { session_id: id, seq, at, body };
        roundtrip(&e);
        roundtrip(&ObserveItem::Event { event: e });
        roundtrip(&ObserveItem::Gap { from_seq: seq / 2, to_seq: seq });
    }

    #[test]
    fn snapshots_roundtrip(s in snapshot()) {
        roundtrip(&s);
        roundtrip(&UntilPause::Running { snapshot: Box::new(s) });
    }

    #[test]
    fn acks_and_errors_roundtrip(round in any::<u64>(), remaining in 0usize..100, p in phase(),
                                 msg in text(), q in query_id(), id in session_id()) {
        roundtrip(&ResumeAck::Accepted { round, remaining });
        roundtrip(&ResumeAck::Continued { round });
        roundtrip(&CancelAck::AlreadyTerminal { phase: p });
        for e in [
            ResumeError::NotFound { session_id: id.clone() },
            ResumeError::NotPaused { phase: p },
            ResumeError::StaleRound { given: round, current: round / 2 },
            ResumeError::EmptyAnswers,
            ResumeError::AmbiguousTarget { unanswered: remaining },
            ResumeError::UnknownQuery { query_id: msg.clone() },
            ResumeError::ConflictingAnswer { query_id: q.clone() },
            ResumeError::InvalidAnswer { query_id: Some(q.to_string()), message: msg.clone() },
            ResumeError::InvalidAnswer { query_id: None, message: msg.clone() },
        ] { roundtrip(&e); }
        roundtrip(&JournalError::Corrupt { session_id: id.clone(), seq: round, message: msg.clone() });
        roundtrip(&ObserveError::FutureSeq { requested: round, next: 1 });
        roundtrip(&AdoptError::AlreadyTerminal { phase: p });
        roundtrip(&SpawnError::Capacity { limit: round });
        roundtrip(&CancelError::Busy { session_id: id.clone() });
        roundtrip(&WaitError::ShuttingDown);
        roundtrip(&StateError::Journal { message: msg.clone() });
        roundtrip(&StartError::Config { message: msg });
    }

    #[test]
    fn config_roundtrips(workers in 0usize..64, d in option::of(any::<u64>()), b in limits(), full in any::<bool>()) {
        let c = EngineConfig {
            workers,
            deadline_ms: d,
            budget_ceiling: b,
            durability: if full { Durability::Full } else { Durability::Normal },
            ..EngineConfig::default()
        };
        roundtrip(&c);
        roundtrip(&SnapshotOptions { include_history: full, history_limit: workers as u32 });
    }

    #[test]
    fn ids_roundtrip(id in session_id(), q in query_id()) {
        roundtrip(&id);
        roundtrip(&q);
        prop_assert_eq!(SessionId::parse(&id.as_str().to_uppercase().replacen("S-", "s-", 1)).unwrap(), id);
        prop_assert_eq!(QueryId::parse(q.as_str()), Some(q));
    }
}
