//! Tool definitions: names, descriptions, input and output schemas (interfaces.md §2, §3.3).

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{json, Value};

/// Tool names in the documented order.
pub const TOOL_NAMES: &[&str] = &[
    "alc_run",
    "alc_advice",
    "alc_continue",
    "alc_status",
    "alc_cancel",
    "alc_sessions",
    "alc_info",
];

fn obj(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => unreachable!("schemas are objects"),
    }
}

fn error_branch() -> Value {
    json!({
        "type": "object",
        "properties": {
            "status": {"const": "error"},
            "code": {"type": "string"},
            "error": {"type": "string"},
            "session_id": {"type": "string"},
            "traceback": {"type": "string"},
            "stats": {"type": "object"}
        },
        "required": ["status", "code", "error"]
    })
}

fn stats_schema() -> Value {
    json!({
        "type": "object",
        "properties": {"auto": {"type": "object"}, "custom": {"type": "object"}},
        "required": ["auto", "custom"]
    })
}

/// Output schema of the execution tools: one branch per `status`.
fn execution_output() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "oneOf": [
            {
                "type": "object",
                "description": "Paused: answer every query with alc_continue (single form: query_id; batch form: queries[].id).",
                "properties": {
                    "status": {"const": "needs_response"},
                    "session_id": {"type": "string"},
                    "round": {"type": "integer"},
                    "query_id": {"type": "string"},
                    "prompt": {"type": "string"},
                    "system": {"type": ["string", "null"]},
                    "max_tokens": {"type": "integer"},
                    "kind": {"const": "human"},
                    "question": {"type": "string"},
                    "queries": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"id": {"type": "string"}},
                            "required": ["id"]
                        }
                    }
                },
                "required": ["status", "session_id", "round"],
                "anyOf": [{"required": ["query_id"]}, {"required": ["queries"]}]
            },
            {
                "type": "object",
                "properties": {
                    "status": {"const": "accepted"},
                    "session_id": {"type": "string"},
                    "round": {"type": "integer"},
                    "remaining": {"type": "integer"},
                    "pending": {"type": "array", "items": {"type": "string"}}
                },
                "required": ["status", "session_id", "round", "remaining", "pending"]
            },
            {
                "type": "object",
                "properties": {
                    "status": {"const": "completed"},
                    "session_id": {"type": "string"},
                    "result": {},
                    "stats": stats_schema()
                },
                "required": ["status", "session_id", "stats"]
            },
            error_branch(),
            {
                "type": "object",
                "properties": {
                    "status": {"const": "cancelled"},
                    "session_id": {"type": "string"},
                    "reason": {"type": "object"},
                    "previous_phase": {"type": "string"},
                    "stats": stats_schema()
                },
                "required": ["status", "session_id"]
            },
            {
                "type": "object",
                "properties": {
                    "status": {"const": "running"},
                    "session_id": {"type": "string"},
                    "round": {"type": "integer"}
                },
                "required": ["status", "session_id", "round"]
            }
        ]
    })
}

fn with_error(ok: Value) -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "anyOf": [ok, error_branch()]
    })
}

fn execution_params(props: &mut serde_json::Map<String, Value>) {
    let extra = json!({
        "answerer": {"type": "string", "description": "Who answers LLM queries: `host` (default: you, through alc_continue)."},
        "script": {"type": ["array", "string"], "description": "Inline scripted rules (not supported yet by this server)."},
        "model": {"type": "string", "description": "Model selector for provider answerers."},
        "wait_ms": {"type": "integer", "minimum": 0, "description": "Longest time this call waits for the next pause or the end (0 = no limit); on expiry the result is `running`."},
        "timeout_ms": {"type": "integer", "minimum": 0, "description": "Hard wall-clock deadline for the whole session."},
        "project_root": {"type": "string", "description": "Project root (alc.toml)."}
    });
    if let Value::Object(m) = extra {
        props.extend(m);
    }
}

fn input(mut props: serde_json::Map<String, Value>, required: &[&str], exec: bool) -> Value {
    if exec {
        execution_params(&mut props);
    }
    json!({"type": "object", "properties": props, "required": required})
}

fn props(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// The tool list in the documented order.
pub fn tools() -> Vec<Tool> {
    let open = ToolAnnotations::new().open_world(true);
    let read_only = ToolAnnotations::new().read_only(true);
    vec![
        Tool::new(
            "alc_run",
            "Run Lua code (a reasoning strategy) as a session. Returns `needs_response` when the script asks an LLM (answer with alc_continue), `completed`, `error` or `cancelled`.",
            obj(input(
                props(json!({
                    "code": {"type": "string", "description": "Inline Lua source."},
                    "code_file": {"type": "string", "description": "Path of a Lua file on the server."},
                    "ctx": {"type": "object", "description": "Becomes the Lua global `ctx` (a JSON string holding an object is accepted)."},
                    "host_mode": {"type": "boolean", "description": "Accepted for compatibility; ignored."}
                })),
                &[],
                true,
            )),
        )
        .with_raw_output_schema(obj(execution_output()))
        .with_annotations(open.clone()),
        Tool::new(
            "alc_advice",
            "Run an installed strategy package: `require(strategy).run(opts ∪ {task})`. Same result shapes as alc_run.",
            obj(input(
                props(json!({
                    "strategy": {"type": "string", "description": "Package name."},
                    "task": {"type": "string", "description": "The task, passed as `ctx.task`."},
                    "opts": {"type": "object", "description": "Merged into ctx."}
                })),
                &["strategy"],
                true,
            )),
        )
        .with_raw_output_schema(obj(execution_output()))
        .with_annotations(open.clone()),
        Tool::new(
            "alc_continue",
            "Answer pending queries of a paused session (`response` + `query_id`, or `responses`), then continue it. With neither, re-fetch the current payload.",
            obj(input(
                props(json!({
                    "session_id": {"type": "string"},
                    "response": {"type": ["string", "object"], "description": "One answer."},
                    "ask_status": {"type": "string", "enum": ["declined", "cancelled"], "description": "Closes a human question without an answer."},
                    "query_id": {"type": "string", "description": "Which pending query `response` answers."},
                    "responses": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "query_id": {"type": "string"},
                                "response": {"type": ["string", "object"]},
                                "ask_status": {"type": "string", "enum": ["declined", "cancelled"]},
                                "usage": {"type": "object"}
                            },
                            "required": ["query_id"]
                        }
                    },
                    "usage": {"type": "object", "properties": {"prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"}}},
                    "round": {"type": "integer", "description": "Must equal the current round."},
                    "answerer": {"type": "string"},
                    "wait_ms": {"type": "integer", "minimum": 0}
                })),
                &["session_id"],
                false,
            )),
        )
        .with_raw_output_schema(obj(execution_output()))
        .with_annotations(open),
        Tool::new(
            "alc_status",
            "Sessions of this server that are running or paused, or one session's snapshot.",
            obj(input(
                props(json!({
                    "session_id": {"type": "string"},
                    "pending_filter": {"type": ["string", "object"], "description": "`meta` | `preview` | `full`, or an object of field flags."},
                    "include_history": {"type": "boolean"},
                    "wait_ms": {"type": "integer", "minimum": 0}
                })),
                &[],
                false,
            )),
        )
        .with_raw_output_schema(obj(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "oneOf": [
                {
                    "type": "object",
                    "properties": {"active_sessions": {"type": "integer"}, "sessions": {"type": "array", "items": {"type": "object"}}},
                    "required": ["active_sessions", "sessions"]
                },
                {
                    "type": "object",
                    "properties": {"session_id": {"type": "string"}, "phase": {"type": "string"}, "state": {"type": "string"}},
                    "required": ["session_id", "phase", "state"]
                },
                error_branch()
            ]
        })))
        .with_annotations(read_only.clone()),
        Tool::new(
            "alc_cancel",
            "Cancel a running or paused session.",
            obj(input(
                props(json!({
                    "session_id": {"type": "string"},
                    "reason": {"type": "string"}
                })),
                &["session_id"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "status": {"type": "string"},
                "session_id": {"type": "string"},
                "already_terminal": {"type": "boolean"},
                "previous_phase": {"type": "string"},
                "reason": {"type": "object"}
            },
            "required": ["status", "session_id"]
        }))))
        .with_annotations(
            ToolAnnotations::new()
                .destructive(true)
                .idempotent(true),
        ),
        Tool::new(
            "alc_sessions",
            "List sessions (newest first) with status, round, answerer and owner.",
            obj(input(
                props(json!({
                    "status": {"type": "string", "enum": ["active", "paused", "running", "resumable", "completed", "failed", "cancelled", "all"]},
                    "strategy": {"type": "string"},
                    "kind": {"type": "string"},
                    "since": {"type": "integer"},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "offset": {"type": "integer", "minimum": 0}
                })),
                &[],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "sessions": {"type": "array", "items": {"type": "object"}},
                "total": {"type": "integer"},
                "has_more": {"type": "boolean"}
            },
            "required": ["sessions", "total", "has_more"]
        }))))
        .with_annotations(read_only.clone()),
        Tool::new(
            "alc_info",
            "Server identity, home, package search paths and answerers.",
            obj(json!({"type": "object", "properties": {}})),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
            "required": ["name", "version"]
        }))))
        .with_annotations(read_only),
    ]
}
