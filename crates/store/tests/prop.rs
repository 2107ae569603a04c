//! Property: any `JournalRecord` survives append + read (SQLite and memory).

mod common;

use alc_core::*;
use alc_store::*;
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde_json::Value;

fn text() -> impl Strategy<Value = String> {
    "[a-z é日\"\\\\\u{0}']{0,8}"
}

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

fn query_id() -> impl Strategy<Value = QueryId> {
    prop_oneof![
        (0usize..300).prop_map(QueryId::main),
        (0usize..20, 0usize..20).prop_map(|(a, b)| QueryId::child(a, b)),
    ]
}

fn request() -> impl Strategy<Value = QueryRequest> {
    (
        text(),
        option::of(text()),
        any::<u32>(),
        option::of(float()),
        any::<bool>(),
    )
        .prop_map(
            |(prompt, system, max_tokens, temperature, g)| QueryRequest::Llm {
                query: LlmQuery {
                    prompt,
                    system,
                    max_tokens,
                    temperature,
                    model: None,
                    grounded: g,
                    underspecified: false,
                    role: None,
                },
            },
        )
}

fn body() -> impl Strategy<Value = RecordBody> {
    let clock = prop_oneof![
        Just(ClockSource::OsTime),
        Just(ClockSource::OsClock),
        Just(ClockSource::OsDate),
        Just(ClockSource::AlcTime),
        Just(ClockSource::Elapsed)
    ];
    prop_oneof![
        (any::<u64>(), text(), json()).prop_map(|(seed, v, ctx)| {
            let mut spec = SessionSpec::new(Program::Code {
                source: v.clone(),
                name: Some(v.clone()),
            });
            spec.ctx = ctx;
            spec.labels.insert("kind".into(), v.clone());
            RecordBody::Spawned {
                spec: std::sync::Arc::new(spec),
                seed,
                engine_version: v,
                journal_format: 1,
            }
        }),
        (text(), text()).prop_map(|(name, digest)| RecordBody::Module { name, digest }),
        (text(), text()).prop_map(|(path, digest)| RecordBody::File { path, digest }),
        (clock, json()).prop_map(|(source, value)| RecordBody::Clock { source, value }),
        (text(), text(), text(), json()).prop_map(|(service, op, args_digest, result)| {
            RecordBody::Effect {
                service,
                op,
                args_digest,
                result,
            }
        }),
        (text(), text()).prop_map(|(key, digest)| RecordBody::EnvRead { key, digest }),
        (vec(text(), 0..3), text()).prop_map(|(strategies, ctx_digest)| RecordBody::Fork {
            strategies,
            ctx_digest
        }),
        (any::<u64>(), vec((query_id(), request()), 0..3)).prop_map(|(round, qs)| {
            RecordBody::Pause {
                round,
                queries: qs
                    .into_iter()
                    .map(|(id, request)| PendingQuery {
                        digest: digest_request(&request),
                        id,
                        origin: QueryOrigin::Main,
                        request,
                    })
                    .collect(),
            }
        }),
        (any::<u64>(), option::of(query_id()), option::of(text())).prop_map(
            |(round, query_id, text)| {
                RecordBody::Answer {
                    round,
                    answer: Box::new(Answer {
                        query_id,
                        text,
                        ..Default::default()
                    }),
                }
            }
        ),
        (any::<i64>(), text(), text()).prop_map(|(ts, level, message)| RecordBody::Log {
            entry: LogEntry {
                ts,
                level,
                source: "alc.log".into(),
                message
            }
        }),
        (any::<u64>(), any::<u64>(), text()).prop_map(|(step, total, message)| {
            RecordBody::Progress {
                progress: Progress {
                    step,
                    total,
                    message,
                },
            }
        }),
        (text(), json()).prop_map(|(key, value)| RecordBody::Metric { key, value }),
        (json(), any::<u64>()).prop_map(|(value, llm_calls)| RecordBody::Outcome {
            outcome: Box::new(Outcome::Completed { value }),
            metrics: Box::new(SessionMetrics {
                llm_calls,
                ..Default::default()
            }),
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_record_survives_append_and_read(
        bodies in vec((body(), any::<u32>(), any::<i64>()), 1..6),
        id in any::<[u8; 16]>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = SqliteJournal::open(dir.path().join("alc.db"), Durability::Normal).unwrap();
        let memory = MemoryJournal::new();
        let s = SessionId::from_bytes(id);
        let recs: Vec<JournalRecord> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, (body, vm, at))| JournalRecord { session_id: s.clone(), seq: i as u64 + 1, vm, at, body })
            .collect();
        for j in [&sqlite as &dyn Journal, &memory] {
            j.append(&[SessionAppend {
                session_id: s.clone(),
                records: recs.clone(),
                row: RowUpdate::new(Phase::Running, 0, 0),
            }]).unwrap();
            prop_assert_eq!(j.read(&s, 1).unwrap(), recs.clone());
        }
    }
}
