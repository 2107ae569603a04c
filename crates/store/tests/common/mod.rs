#![allow(dead_code)]

use alc_core::*;
use serde_json::json;

pub fn sid(n: u8) -> SessionId {
    SessionId::from_bytes([n; 16])
}

pub fn rec(s: &SessionId, seq: u64, body: RecordBody) -> JournalRecord {
    JournalRecord {
        session_id: s.clone(),
        seq,
        vm: (seq % 3) as u32,
        at: 1_700_000_000_000 + seq as i64,
        body,
    }
}

pub fn spawned() -> RecordBody {
    RecordBody::Spawned {
        spec: std::sync::Arc::new(SessionSpec::new(Program::Code {
            source: "return alc.llm('hi')".into(),
            name: None,
        })),
        seed: 42,
        engine_version: "0.1.0".into(),
        journal_format: JOURNAL_FORMAT,
    }
}

/// [`all_bodies`] as session `s`'s records, numbered from 1.
pub fn all_records(s: &SessionId) -> Vec<JournalRecord> {
    all_bodies()
        .into_iter()
        .enumerate()
        .map(|(i, b)| rec(s, i as u64 + 1, b))
        .collect()
}

/// One body of every kind, in a plausible order.
pub fn all_bodies() -> Vec<RecordBody> {
    let q = PendingQuery {
        id: QueryId::main(0),
        origin: QueryOrigin::Main,
        digest: "d".into(),
        request: serde_json::from_value(json!({"kind": "llm", "prompt": "hi", "max_tokens": 1024}))
            .unwrap(),
    };
    let answer: Answer = serde_json::from_value(json!({"query_id": "q-0", "text": "A1"})).unwrap();
    vec![
        spawned(),
        RecordBody::Module {
            name: "cot".into(),
            digest: "abc".into(),
        },
        RecordBody::File {
            path: "cot/data.txt".into(),
            digest: "def".into(),
        },
        RecordBody::Clock {
            source: ClockSource::OsTime,
            value: json!(1700000000),
        },
        RecordBody::Effect {
            service: "state".into(),
            op: "get".into(),
            args_digest: "00".into(),
            result: json!({"a": [1, 2.5, "x", null]}),
        },
        RecordBody::EnvRead {
            key: "HOME".into(),
            digest: "11".into(),
        },
        RecordBody::Fork {
            strategies: vec!["cot".into(), "tot".into()],
            ctx_digest: "22".into(),
        },
        RecordBody::Pause {
            round: 1,
            queries: vec![q].into(),
        },
        RecordBody::Answer {
            round: 1,
            answer: Box::new(answer),
        },
        RecordBody::Log {
            entry: LogEntry {
                ts: 5,
                level: "info".into(),
                source: "alc.log".into(),
                message: "m".into(),
            },
        },
        RecordBody::Progress {
            progress: Progress {
                step: 1,
                total: 2,
                message: "x".into(),
            },
        },
        RecordBody::Metric {
            key: "k".into(),
            value: json!(3),
        },
        RecordBody::Outcome {
            outcome: Box::new(Outcome::Completed { value: json!("A1") }),
            metrics: Box::default(),
        },
    ]
}

pub fn append1(
    s: &SessionId,
    records: Vec<JournalRecord>,
    phase: Phase,
    round: u64,
) -> SessionAppend {
    let at = records.last().map_or(1_700_000_000_000, |r| r.at);
    SessionAppend {
        session_id: s.clone(),
        records,
        row: RowUpdate::new(phase, round, at),
    }
}
