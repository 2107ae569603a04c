//! Durable eval records: begin, progress per slot, ownership (claim, busy), finish.

use alc_eval::dataset::{Case, Scenario};
use alc_eval::durable::{DurableRun, RunRecord};
use alc_eval::grader::GraderSpec;
use alc_eval::runner::{CaseResult, EvalPlan};
use alc_eval::store::EvalStore;
use serde_json::json;

fn record(concurrency: usize) -> RunRecord {
    let cases = ["a", "b"]
        .iter()
        .map(|id| Case {
            id: id.to_string(),
            input: json!(format!("question {id}")),
            expected: json!("x"),
            graders: None,
            tags: Vec::new(),
            meta: None,
        })
        .collect();
    let scenario = Scenario {
        name: "tiny".into(),
        cases,
        graders: vec![GraderSpec::exact()],
        pass_threshold: 1.0,
        output_field: None,
        skipped: Vec::new(),
    };
    RunRecord {
        scenario_hash: scenario.content_hash(),
        plan: EvalPlan {
            strategy: "cot".into(),
            strategy_opts: Default::default(),
            scenario,
            repeats: 2,
            concurrency,
            model: None,
            judge_model: None,
            case_timeout_ms: None,
        },
        answerer: "provider".into(),
        judge_answerer: None,
        warnings: Vec::new(),
        started_at: 1_795_000_000_000,
    }
}

fn result(case_id: &str, repeat: u32, passed: bool) -> CaseResult {
    CaseResult {
        case_id: case_id.into(),
        repeat,
        score: if passed { 1.0 } else { 0.0 },
        passed,
        errored: false,
        output: Some("x".into()),
        grades: Vec::new(),
        error: None,
        input: json!("q"),
        expected: json!("x"),
        tags: Vec::new(),
        llm_calls: 1,
        tokens: 15,
        cost_usd: None,
        elapsed_ms: 3,
        session_id: None,
        cache_hits: 0,
    }
}

#[test]
fn plan_hash_ignores_concurrency_only() {
    assert_eq!(record(1).plan_hash(), record(8).plan_hash());
    let mut other = record(1);
    other.plan.repeats = 3;
    assert_ne!(other.plan_hash(), record(1).plan_hash());
    let mut scripted = record(1);
    scripted.answerer = "scripted:a.jsonl".into();
    assert_ne!(scripted.plan_hash(), record(1).plan_hash());
    assert_eq!(
        record(1).slots(),
        vec![
            ("a".to_string(), 0),
            ("a".to_string(), 1),
            ("b".to_string(), 0),
            ("b".to_string(), 1)
        ]
    );
}

#[test]
fn progress_survives_the_process_and_finishes_under_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let run = DurableRun::begin(EvalStore::open(&db).unwrap(), record(2)).unwrap();
    let id = run.eval_id().to_string();
    assert_eq!(id, "cot_1795000000000");
    run.record_session(0, "s-0").unwrap();
    run.record_result(0, &result("a", 0, true));
    run.record_session(1, "s-1").unwrap();
    assert!(run.errors().is_empty());

    // Another handle sees the unfinished run, owned by this (live) process.
    let store = EvalStore::open(&db).unwrap();
    let unfinished = store.unfinished(Some(&record(1).plan_hash())).unwrap();
    assert_eq!(unfinished.len(), 1);
    let u = &unfinished[0];
    assert_eq!(
        (u.eval_id.as_str(), u.total, u.done, u.started),
        (id.as_str(), 4, 1, 1)
    );
    assert_eq!(u.owner.as_ref().map(|o| o.1), Some(std::process::id()));
    assert!(store.unfinished(Some("other")).unwrap().is_empty());

    // The same process may take it over; the slots come back as recorded.
    let resumed = DurableRun::resume(EvalStore::open(&db).unwrap(), &id).unwrap();
    assert_eq!(resumed.done_before(), 1);
    assert_eq!(resumed.interrupted_before(), 1);
    assert_eq!(resumed.prior(1).unwrap().session_id.as_deref(), Some("s-1"));
    assert_eq!(
        resumed.prior(0).unwrap().result.as_ref().unwrap().case_id,
        "a"
    );

    // Finishing needs every slot.
    let err = resumed
        .finish(vec![result("a", 0, true)], 1_795_000_000_500)
        .unwrap_err();
    assert_eq!(err.code, "internal");
    let rep = resumed
        .finish(
            vec![
                result("a", 0, true),
                result("a", 1, true),
                result("b", 0, false),
                result("b", 1, true),
            ],
            1_795_000_000_500,
        )
        .unwrap();
    assert_eq!(rep.eval_id, id);
    assert_eq!(rep.aggregated.passed, 3);

    let store = EvalStore::open(&db).unwrap();
    assert!(store.unfinished(None).unwrap().is_empty());
    assert_eq!(store.get(&id).unwrap().aggregated.total, 4);
    let again = DurableRun::resume(EvalStore::open(&db).unwrap(), &id).unwrap_err();
    assert_eq!(again.code, "invalid_params");
    assert!(
        again.message.contains("already finished"),
        "{}",
        again.message
    );
    let missing = DurableRun::resume(EvalStore::open(&db).unwrap(), "cot_1").unwrap_err();
    assert_eq!(missing.code, "eval_not_found");
}

#[test]
fn a_live_owner_makes_the_eval_busy_and_a_dead_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let run = DurableRun::begin(EvalStore::open(&db).unwrap(), record(1)).unwrap();
    let id = run.eval_id().to_string();
    let now = alc_eval::now_ms();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let set_owner = |pid: i64, at: i64| {
        conn.execute(
            "UPDATE eval_progress SET pid = ?2, heartbeat_at = ?3, updated_at = ?3 WHERE eval_id = ?1",
            rusqlite::params![id, pid, at],
        )
        .unwrap();
    };
    // pid 1 is alive on every Linux host: a fresh heartbeat from it means busy.
    set_owner(1, now);
    let busy = EvalStore::open(&db).unwrap().claim(&id, now).unwrap_err();
    assert_eq!(busy.code, "busy");
    assert!(busy.message.contains("process 1"), "{}", busy.message);
    // A stale heartbeat frees it.
    set_owner(1, now - 60_000);
    EvalStore::open(&db).unwrap().claim(&id, now).unwrap();
    // So does a process that no longer exists.
    set_owner(i64::from(u32::MAX - 7), now);
    EvalStore::open(&db).unwrap().claim(&id, now).unwrap();
}
