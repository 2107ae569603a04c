//! Every JSON example of engine.md §3 parses into its type and re-serializes to the same value.

use alc_core::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(json: &str) -> T {
    let parsed: T = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let back = serde_json::to_value(&parsed).unwrap();
    let orig: Value = serde_json::from_str(json).unwrap();
    assert_eq!(back, orig, "re-serialized value differs for {json}");
    let again: T = serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
    assert_eq!(again, parsed);
    parsed
}

#[test]
fn session_spec() {
    let s: SessionSpec = check(
        r#"{"program":{"kind":"package","name":"sc","entry":"run"},"ctx":{"task":"What is 17 * 23?","budget":{"max_llm_calls":8}},
 "env":{},"resolver":"project:demo","limits":{"memory_bytes":null,"cpu_ms":null,"deadline_ms":600000,"idle_ttl_ms":null},
 "labels":{"kind":"advice","strategy":"sc"},"seed":null,"human_channel":true}"#,
    );
    assert_eq!(s.limits.deadline_ms, Some(600000));
    let d: SessionSpec =
        serde_json::from_str(r#"{"program":{"kind":"package","name":"x"},"unknown":1}"#).unwrap();
    assert_eq!(d.resolver, "default");
    assert!(d.human_channel);
    assert_eq!(d.ctx, serde_json::json!({}));
    assert_eq!(
        d.program,
        Program::Package {
            name: "x".into(),
            entry: "run".into()
        }
    );
}

#[test]
fn queries() {
    let b: PendingBatch = check(
        r#"{"round":2,"issued_at":1795686058624,"answered":["q-1"],"queries":[
 {"id":"q-0","origin":{"vm":"main"},"digest":"9c1e0a7d3b5f42e8a16c0d9b7e3f5a21",
  "request":{"kind":"llm","prompt":"Give one argument for A.","system":"One sentence.","max_tokens":256}},
 {"id":"q-1","origin":{"vm":"main"},"digest":"47b2e9c0f1a35d6e8b0c2a4f6e8d1b3c",
  "request":{"kind":"llm","prompt":"Give one argument for B.","system":null,"max_tokens":1024,"temperature":0.9,"role":"grader"}}]}"#,
    );
    assert_eq!(b.remaining(), 1);
    let q: PendingQuery = check(
        r#"{"id":"q-0","origin":{"vm":"main"},"digest":"5e0f2b4d6a8c1e3f5a7b9d0c2e4f6a8b","request":{"kind":"human","question":"Ship it?","choices":["yes","no"]}}"#,
    );
    assert_eq!(q.request.kind(), QueryKind::Human);
    check::<QueryOrigin>(r#"{"vm":"child","index":1,"strategy":"cot"}"#);
    let l: LlmQuery = serde_json::from_str(r#"{"prompt":"p"}"#).unwrap();
    assert_eq!(l, LlmQuery::new("p"));
    // A present null default is kept as Some(Null).
    check::<QueryRequest>(r#"{"kind":"human","question":"q","default":null}"#);
}

#[test]
fn answers() {
    let a: Answers = check(
        r#"{"round":2,"answers":[
 {"query_id":"q-0","text":"A is cheaper."},
 {"query_id":"q-1","text":"B is faster.","usage":{"prompt_tokens":21,"completion_tokens":4,"source":"definite"},
  "meta":{"answerer":"provider","provider":"openai","model":"gpt-4o-mini","latency_ms":812,"attempts":1}},
 {"query_id":"f-1-0","error":{"code":"provider_error","message":"provider_error[rate_limited]: 429 too many requests"}}]}"#,
    );
    assert_eq!(a.answers.len(), 3);
    let u: TokenUsage = serde_json::from_str(r#"{"prompt_tokens":1}"#).unwrap();
    assert_eq!(u.source, TokenSource::Provided);
    assert!(TokenSource::Estimated < TokenSource::Provided);
    assert!(TokenSource::Provided < TokenSource::Definite);
}

const METRICS: &str = r#"{"elapsed_ms":8624,"paused_ms":8100,"cpu_ms":3,"llm_calls":3,"human_asks":0,"pauses":2,
   "rounds":1,"total_prompt_chars":140,"total_response_chars":36,"prompt_tokens":{"tokens":35,"source":"estimated"},
   "response_tokens":{"tokens":9,"source":"provided"},"total_tokens":{"tokens":44,"source":"estimated"},"answered_by":{"host":2},
   "usage_by_model":{},"vm_bytes":29104,"peak_vm_bytes":33210,"custom":{},"progress":null,"recent_logs":[]}"#;

#[test]
fn snapshot() {
    let json = format!(
        r#"{{"session_id":"s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f","phase":"paused","version":9,"round":2,"created_at":1795686050000,
 "updated_at":1795686058624,"last_activity_at":1795686058624,"program_kind":"package","labels":{{"kind":"advice","strategy":"sc"}},
 "pending":{{"round":2,"issued_at":1795686058624,"answered":[],"queries":[{{"id":"q-0","origin":{{"vm":"main"}},
   "digest":"9c1e0a7d3b5f42e8a16c0d9b7e3f5a21","request":{{"kind":"llm","prompt":"Say A","system":null,"max_tokens":1024}}}}]}},
 "cancel":null,"outcome":null,"metrics":{METRICS},
 "budget":{{"limits":{{"max_llm_calls":8,"max_tokens":null,"max_elapsed_ms":null}},"remaining":{{"llm_calls":5,"tokens":null,"elapsed_ms":null}}}},
 "last_event_seq":12,"residency":"hot","owner":"this_process","history":null}}"#
    );
    let s: Snapshot = check(&json);
    assert_eq!(s.phase, Phase::Paused);
    check::<SessionMetrics>(METRICS);
    check::<LogEntry>(
        r#"{"ts":1795686058600,"level":"info","source":"alc.lua.print","message":"sampling 2 drafts"}"#,
    );
    check::<SnapshotOptions>(r#"{"include_history":true,"history_limit":10}"#);
    check::<Exchange>(
        r#"{"round":1,"query_id":"q-0","kind":"llm","prompt":"Say A","system":null,"response":"A","error":null,"usage":null,"asked_at":1795686050100,"answered_at":1795686052100}"#,
    );
    check::<ModelUsage>(
        r#"{"calls":6,"prompt_tokens":1480,"completion_tokens":402,"cached_tokens":0,"reasoning_tokens":0}"#,
    );
    check::<Progress>(r#"{"step":2,"total":5,"message":"drafting"}"#);
}

#[test]
fn outcomes() {
    check::<Outcome>(
        r#"{"status":"completed","value":{"task":"What is 17 * 23?","result":"391"}}"#,
    );
    check::<Outcome>(
        r#"{"status":"failed","kind":"lua_error","code":null,"message":"session:3: intentional failure","traceback":"stack traceback:\n\tsession:3: in main chunk","divergence":null}"#,
    );
    let d: Outcome = check(
        r#"{"status":"failed","kind":"divergence","code":null,"message":"replay diverged at round 3 (q-0)","traceback":null,
 "divergence":{"vm":0,"seq":17,"expected":"pause","actual":"pause","expected_digest":"9c1e0a7d3b5f42e8a16c0d9b7e3f5a21",
  "actual_digest":"0d4f6a8c1e3b5d7f9a2c4e6b8d0f1a3c","diff":"-Say A\n+Say B"}}"#,
    );
    assert_eq!(d.failure_wire_code(), Some("replay_divergence"));
    check::<Outcome>(
        r#"{"status":"cancelled","reason":{"code":"user","detail":"no longer needed"},"requested_at":1795686059000,"phase_before":"paused"}"#,
    );
    let t = format!(
        r#"{{"session_id":"s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f","outcome":{{"status":"completed","value":391}},"metrics":{METRICS},"ended_at":1795686059310}}"#
    );
    check::<Terminal>(&t);
    check::<UntilPause>(&format!(r#"{{"status":"terminal","terminal":{t}}}"#));
    let a = Outcome::Failed {
        kind: FailureKind::AnswerError,
        code: Some("provider_error".into()),
        message: "m".into(),
        traceback: None,
        divergence: None,
    };
    assert_eq!(a.failure_wire_code(), Some("provider_error"));
    assert_eq!(FailureKind::CpuLimit.wire_code(), "timeout");
    assert_eq!(FailureKind::JournalError.wire_code(), "io_error");
    assert_eq!(FailureKind::EngineError.wire_code(), "internal");
    assert_eq!(
        FailureKind::InvalidResult.wire_code(),
        "result_not_serializable"
    );
    assert_eq!(FailureKind::LuaError.wire_code(), "lua_error");
}

#[test]
fn events_and_acks() {
    check::<Event>(
        r#"{"session_id":"s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f","seq":5,"at":1795686058624,"body":{"kind":"answers_accepted","round":2,"query_ids":["q-1"],"remaining":1}}"#,
    );
    check::<ObserveItem>(r#"{"item":"gap","from_seq":1,"to_seq":40}"#);
    check::<ResumeAck>(r#"{"status":"accepted","round":2,"remaining":1}"#);
    check::<ResumeAck>(r#"{"status":"continued","round":2}"#);
    check::<CancelAck>(r#"{"status":"already_terminal","phase":"completed"}"#);
    check::<CancelAck>(r#"{"status":"requested"}"#);
}

#[test]
fn errors() {
    let e: ResumeError = check(r#"{"code":"not_paused","phase":"running"}"#);
    assert_eq!(e.to_string(), "not paused (phase running)");
    let e: ResumeError = check(r#"{"code":"stale_round","given":1,"current":2}"#);
    assert_eq!(e.to_string(), "stale round: given 1, current 2");
    let e: ResumeError = check(r#"{"code":"empty_answers"}"#);
    assert!(e.to_string().starts_with("empty answers"));
    let e: StateError =
        check(r#"{"code":"not_found","session_id":"s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f"}"#);
    assert_eq!(
        e.to_string(),
        "session not found: s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f"
    );
    let e: ResumeError =
        check(r#"{"code":"invalid_answer","query_id":"q-0","message":"not one of the choices"}"#);
    assert_eq!(
        e.to_string(),
        "invalid answer for q-0: not one of the choices"
    );
    check::<JournalError>(r#"{"code":"schema","found":2,"supported":1}"#);
    check::<SpawnError>(r#"{"code":"shutting_down"}"#);
}

#[test]
fn config_defaults() {
    let json = r#"{"workers":8,"hook_interval":1000,"slice_ms":5,"memory_limit_bytes":67108864,"max_memory_limit_bytes":1073741824,"cpu_limit_ms":300000,"deadline_ms":null,"idle_ttl_ms":10800000,"retain_terminal_ms":3600000,"recovery":"on_demand","max_live_sessions":250000,"max_retained_terminal":10000,"event_ring":128,"event_ring_bytes":16384,"log_ring":20,"max_fork_children":16,"max_batch":256,"max_request_bytes":1048576,"max_answer_bytes":4194304,"max_result_bytes":16777216,"max_code_bytes":1048576,"default_budget":{"max_llm_calls":10000,"max_tokens":null,"max_elapsed_ms":null},"budget_ceiling":{"max_llm_calls":null,"max_tokens":null,"max_elapsed_ms":null},"durability":"normal","gc_park_growth_bytes":16384}"#;
    let c: EngineConfig = check(json);
    assert_eq!(
        c,
        EngineConfig {
            workers: 8,
            ..EngineConfig::default()
        }
    );
    let empty: EngineConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, EngineConfig::default());
}

#[test]
fn sorted_keys() {
    let s = serde_json::to_string(&serde_json::json!({"b":1,"a":2})).unwrap();
    assert_eq!(s, r#"{"a":2,"b":1}"#);
}

#[test]
fn journal_record() {
    let r: JournalRecord = check(
        r#"{"session_id":"s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f","seq":7,"vm":0,"at":1795686058624,"body":{"kind":"clock","source":"os_time","value":1795686058}}"#,
    );
    assert!(r.body.is_input());
    check::<RecordBody>(r#"{"kind":"answer","round":2,"answer":{"query_id":"q-0","text":"A"}}"#);
    check::<RecordBody>(r#"{"kind":"env_read","key":"K","digest":"00"}"#);
}

/// §12.5: no newtype variant inside a tagged enum (scan of the crate's sources).
#[test]
fn no_newtype_variants_in_tagged_enums() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let src = std::fs::read_to_string(&path).unwrap();
        let mut in_tagged = false;
        let mut depth = 0i32;
        let mut pending_tag = false;
        for line in src.lines() {
            let t = line.trim();
            if t.starts_with("#[serde(tag =") {
                pending_tag = true;
            }
            if pending_tag && t.starts_with("pub enum") {
                in_tagged = true;
                pending_tag = false;
                depth = 0;
            }
            if in_tagged {
                depth += t.matches('{').count() as i32 - t.matches('}').count() as i32;
                if depth == 1 {
                    let first = t.chars().next().unwrap_or(' ');
                    assert!(
                        !(first.is_ascii_uppercase() && t.contains('(')),
                        "newtype variant in tagged enum in {}: {t}",
                        path.display()
                    );
                }
                if depth == 0 && t.ends_with('}') {
                    in_tagged = false;
                }
            }
        }
    }
}
