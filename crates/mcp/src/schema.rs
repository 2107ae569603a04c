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
    "alc_log_view",
    "alc_stats",
    "alc_note",
    "alc_pkg_list",
    "alc_pkg_install",
    "alc_pkg_remove",
    "alc_pkg_link",
    "alc_pkg_unlink",
    "alc_init",
    "alc_eval",
    "alc_eval_history",
    "alc_eval_detail",
    "alc_eval_compare",
    "alc_scenario_list",
    "alc_scenario_show",
    "alc_scenario_install",
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

/// Output schema of the execution tools: one branch per `status` (the pause has two,
/// its single and batch forms).
///
/// The branches are disjoint (each fixes `status`, and the two pause forms differ in the
/// required `query_id` or `queries`), so `anyOf` accepts exactly what `oneOf` would; but
/// a validator can stop at the first branch that matches instead of trying all of them,
/// which client libraries do on every call. Branches are ordered by how often they end a
/// call: `completed` first, then the pauses.
fn execution_output() -> Value {
    let pause = |form: &str, description: &str| {
        json!({
            "type": "object",
            "description": description,
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
            "required": ["status", "session_id", "round", form]
        })
    };
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "lib_path_warnings": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Project package problems found at start (expected version differs from M.meta.version, alc.toml and alc.lock disagree); the session ran anyway."
            }
        },
        "anyOf": [
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
            pause("query_id", "Paused on one query: answer it with alc_continue (session_id, query_id, response)."),
            pause("queries", "Paused on a batch: answer with alc_continue, queries[].id (all at once or in parts)."),
            error_branch(),
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
        "answerer": {"type": "string", "description": "Who answers LLM queries: `host` (default: you, through alc_continue), `provider` (the server calls its configured LLM API and returns only at the end), `scripted:<path>` (JSONL rules file on the server), `mrtr` (2026-07-28 clients that declare sampling: pauses come back as input_required results answered by retrying the call), `sampling` (2025-11-25 clients that declare sampling: the server sends sampling/createMessage requests during the call)."},
        "script": {"type": ["array", "string"], "description": "Inline scripted rules (array of rule objects or a JSONL string); implies answerer `scripted`."},
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
                    "answerer": {"type": "string", "description": "Switch the session's answerer from now on (e.g. `provider` to finish it through the LLM API)."},
                    "model": {"type": "string", "description": "Model selector for the provider answerer."},
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
        .with_annotations(read_only.clone()),
        Tool::new(
            "alc_log_view",
            "Session transcripts: without session_id the newest sessions (meta), with session_id the exchanges, notes and logs of that session (oldest rounds dropped beyond max_chars).",
            obj(input(
                props(json!({
                    "session_id": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 0, "description": "List mode: number of sessions (default 50)."},
                    "max_chars": {"type": "integer", "minimum": 0, "description": "Detail mode: character budget of the transcript (default 100000, 0 = unlimited)."}
                })),
                &[],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "sessions": {"type": "array", "items": {"type": "object"}},
                "session_id": {"type": "string"},
                "transcript": {"type": "array", "items": {"type": "object"}},
                "notes": {"type": "array", "items": {"type": "object"}},
                "logs": {"type": "array", "items": {"type": "object"}},
                "truncated": {"type": "boolean"}
            }
        }))))
        .with_annotations(read_only.clone()),
        Tool::new(
            "alc_stats",
            "Aggregate statistics over recorded sessions, per strategy and per status.",
            obj(input(
                props(json!({
                    "strategy": {"type": "string"},
                    "days": {"type": "integer", "minimum": 0, "description": "Only sessions started in the last N days."}
                })),
                &[],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "total_sessions": {"type": "integer"},
                "strategies": {"type": "object"},
                "by_status": {"type": "object"}
            },
            "required": ["total_sessions", "strategies", "by_status"]
        }))))
        .with_annotations(read_only.clone()),
        Tool::new(
            "alc_note",
            "Attach a note to a session's transcript (any phase).",
            obj(input(
                props(json!({
                    "session_id": {"type": "string"},
                    "content": {"type": "string"},
                    "title": {"type": "string"}
                })),
                &["session_id", "content"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {"session_id": {"type": "string"}, "notes_count": {"type": "integer"}},
            "required": ["session_id", "notes_count"]
        }))))
        .with_annotations(ToolAnnotations::new()),
        Tool::new(
            "alc_pkg_list",
            "List strategy packages across all sources (variant, project, ALC_PACKAGES_PATH, home, bundled) without executing package code.",
            obj(input(
                props(json!({
                    "project_root": {"type": "string"},
                    "limit": {"type": "integer", "description": "Default 50; <= 0 = all."},
                    "sort": {"type": "string", "description": "Comma-separated keys, `-` = descending (default `-active,-installed_at`)."},
                    "filter": {"type": "object", "description": "Exact match per key."},
                    "fields": {"type": "array", "items": {"type": "string"}},
                    "verbose": {"type": "string", "enum": ["summary", "full"]}
                })),
                &[],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "packages": {"type": "array", "items": {"type": "object"}},
                "search_paths": {"type": "array", "items": {"type": "object"}},
                "project_root": {"type": "string"},
                "lockfile_path": {"type": "string"},
                "warnings": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["packages", "search_paths"]
        }))))
        .with_annotations(read_only),
        Tool::new(
            "alc_pkg_install",
            "Install packages from a git URL or a local directory (a single package or a collection) into the home, or the project with scope `project`.",
            obj(input(
                props(json!({
                    "url": {"type": "string", "description": "Git URL or local path."},
                    "name": {"type": "string", "description": "Package name (single-package sources only)."},
                    "ref": {"type": "string", "description": "Branch, tag or commit (git only)."},
                    "force": {"type": "boolean"},
                    "scope": {"type": "string", "enum": ["global", "project"]},
                    "project_root": {"type": "string"}
                })),
                &["url"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "mode": {"type": "string"},
                "source": {"type": "string"},
                "installed": {"type": "array"},
                "updated": {"type": "array"},
                "skipped": {"type": "array"},
                "skipped_symlinks": {"type": "array"},
                "rejected_paths": {"type": "array"}
            },
            "required": ["mode", "installed"]
        }))))
        .with_annotations(
            ToolAnnotations::new()
                .destructive(true)
                .open_world(true),
        ),
        Tool::new(
            "alc_pkg_remove",
            "Remove a package: `global` deletes <home>/packages/<name> (a link only, never its target), `project` removes it from alc.toml/alc.lock, `all` both, `auto` (default) picks.",
            obj(input(
                props(json!({
                    "name": {"type": "string"},
                    "scope": {"type": "string", "enum": ["auto", "project", "global", "all"]},
                    "project_root": {"type": "string"},
                    "version": {"type": "string"}
                })),
                &["name"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "removed": {"type": "string"},
                "scope": {"type": "string"},
                "files_removed": {"type": "boolean"},
                "path": {"type": "string"}
            },
            "required": ["removed", "scope", "files_removed"]
        }))))
        .with_annotations(ToolAnnotations::new().destructive(true)),
        Tool::new(
            "alc_pkg_link",
            "Link a package (or collection) directory for development: `global` symlinks it into <home>/packages, `variant` writes alc.local.toml.",
            obj(input(
                props(json!({
                    "path": {"type": "string"},
                    "name": {"type": "string"},
                    "force": {"type": "boolean"},
                    "scope": {"type": "string", "enum": ["global", "variant"]},
                    "project_root": {"type": "string"}
                })),
                &["path"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "linked": {"type": "array", "items": {"type": "string"}},
                "mode": {"type": "string"},
                "targets": {"type": "object"},
                "scope": {"type": "string"}
            },
            "required": ["linked", "mode", "targets", "scope"]
        }))))
        .with_annotations(ToolAnnotations::new().idempotent(true)),
        Tool::new(
            "alc_pkg_unlink",
            "Remove a development link (`global`) or a variant entry of alc.local.toml (`variant`).",
            obj(input(
                props(json!({
                    "name": {"type": "string"},
                    "scope": {"type": "string", "enum": ["global", "variant"]},
                    "project_root": {"type": "string"}
                })),
                &["name"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {"unlinked": {"type": "string"}, "scope": {"type": "string"}},
            "required": ["unlinked", "scope"]
        }))))
        .with_annotations(ToolAnnotations::new().destructive(true)),
        Tool::new(
            "alc_init",
            "Create alc.toml in the project root and add alc.local.toml and .alc-install.lock to .gitignore; `bundled: true` also installs the bundled packages into the home.",
            obj(input(
                props(json!({
                    "project_root": {"type": "string"},
                    "bundled": {"type": "boolean"}
                })),
                &[],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "created": {"type": "string"},
                "gitignore_path": {"type": "string"},
                "gitignore_updated": {"type": "boolean"},
                "bundled_installed": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["created", "gitignore_path", "gitignore_updated"]
        }))))
        .with_annotations(ToolAnnotations::new().idempotent(true)),
        Tool::new(
            "alc_eval",
            "Evaluate a strategy package over cases: exactly one of `scenario` (inline Lua, simple form), `scenario_file`, `scenario_name` (installed, see alc_scenario_list) or `dataset` (array of {id?, input, expected}). Answered by `provider`, inline `script` rules, or you (`host`, the default without a provider: each case's queries come back as pauses, one case at a time, answered with alc_continue; the alc_continue that finishes the last case returns the eval). Returns the report with `eval_id` (stored; see alc_eval_history). Evals are durable: `resume` finishes one cut short by a restart.",
            obj(input(
                props(json!({
                    "strategy": {"type": "string", "description": "Strategy package name."},
                    "scenario": {"type": "string", "description": "Inline Lua scenario returning {cases = …, graders = {…}}."},
                    "scenario_file": {"type": "string", "description": "Path of a .lua, .jsonl or .eval.toml file on the server."},
                    "scenario_name": {"type": "string", "description": "Name of an installed scenario (<home>/scenarios)."},
                    "dataset": {"type": "array", "items": {"type": "object"}, "description": "Cases: {id?, input (string → ctx.task, or object merged into ctx), expected, graders?, tags?}."},
                    "strategy_opts": {"type": "object", "description": "Merged into every case's ctx."},
                    "graders": {"type": "array", "description": "Graders replacing the scenario's: exact, contains, regex, numeric, llm_judge (objects with `type`, or names)."},
                    "pass_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                    "output_field": {"type": "string", "description": "Dot path of the output in the strategy's result."},
                    "repeats": {"type": "integer", "minimum": 1},
                    "limit": {"type": "integer", "minimum": 0, "description": "Only the first N cases."},
                    "concurrency": {"type": "integer", "minimum": 1},
                    "judge_answerer": {"type": "string", "description": "Answerer of llm_judge graders (default: the eval's)."},
                    "judge_model": {"type": "string"},
                    "auto_card": {"type": "boolean", "description": "Accepted; no effect."},
                    "resume": {"type": "string", "description": "Eval id of an unfinished eval (interrupted by a crash or restart) to finish: finished cases are kept, interrupted ones replay from the journal; the case arguments are then taken from the stored eval."},
                    "resample": {"type": "boolean", "description": "Ask the provider again instead of reading cached answers (the cache is refreshed). Default false."},
                    "cache": {"type": "boolean", "description": "Use the response cache of provider answers (default true)."}
                })),
                &["strategy"],
                true,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "anyOf": [
                {
                    "type": "object",
                    "properties": {
                        "status": {"const": "completed"},
                        "session_id": {"type": "string"},
                        "eval_id": {"type": "string"},
                        "result": {"type": "object"},
                        "stats": stats_schema(),
                        "warnings": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["status", "eval_id", "result"]
                },
                // Host-answered evals: the current case's pause (answered with alc_continue).
                execution_output()
            ]
        }))))
        .with_annotations(ToolAnnotations::new().open_world(true)),
        Tool::new(
            "alc_eval_history",
            "Stored evals, newest first.",
            obj(input(
                props(json!({
                    "strategy": {"type": "string"},
                    "scenario": {"type": "string"},
                    "limit": {"type": "integer", "minimum": 1, "description": "Default 20."}
                })),
                &[],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "evals": {"type": "array", "items": {"type": "object"}},
                "warnings": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["evals"]
        }))))
        .with_annotations(ToolAnnotations::new().read_only(true)),
        Tool::new(
            "alc_eval_detail",
            "The stored result of one eval (report with every case).",
            obj(input(
                props(json!({"eval_id": {"type": "string"}})),
                &["eval_id"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "eval_id": {"type": "string"},
                "meta": {"type": "object"},
                "status": {"type": "string"},
                "result": {"type": "object"},
                "stats": {"type": "object"}
            },
            "required": ["eval_id", "meta", "status", "result"]
        }))))
        .with_annotations(ToolAnnotations::new().read_only(true)),
        Tool::new(
            "alc_eval_compare",
            "Compare two stored evals: Welch t-test, seeded bootstrap interval of the mean difference, paired statistics when the cases match.",
            obj(input(
                props(json!({
                    "eval_id_a": {"type": "string"},
                    "eval_id_b": {"type": "string"},
                    "alpha": {"type": "number", "description": "Significance level (0.05)."},
                    "resamples": {"type": "integer", "minimum": 1, "description": "Bootstrap resamples (10000)."},
                    "seed": {"type": "integer", "minimum": 0, "description": "Bootstrap seed (42)."}
                })),
                &["eval_id_a", "eval_id_b"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {"status": {"const": "completed"}, "result": {"type": "object"}},
            "required": ["status", "result"]
        }))))
        .with_annotations(ToolAnnotations::new().read_only(true)),
        Tool::new(
            "alc_scenario_list",
            "Installed scenarios (<home>/scenarios), by name.",
            obj(json!({"type": "object", "properties": {}})),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "scenarios": {"type": "array", "items": {"type": "object"}},
                "failures": {"type": "array"}
            },
            "required": ["scenarios", "failures"]
        }))))
        .with_annotations(ToolAnnotations::new().read_only(true)),
        Tool::new(
            "alc_scenario_show",
            "The content of an installed scenario.",
            obj(input(
                props(json!({"name": {"type": "string"}})),
                &["name"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "path": {"type": "string"},
                "format": {"type": "string"},
                "content": {"type": "string"}
            },
            "required": ["name", "path", "format", "content"]
        }))))
        .with_annotations(ToolAnnotations::new().read_only(true)),
        Tool::new(
            "alc_scenario_install",
            "Install scenario files (*.lua, *.jsonl, *.eval.toml, also under scenarios/) from a local directory or a git URL into <home>/scenarios.",
            obj(input(
                props(json!({
                    "url": {"type": "string", "description": "Local directory or git URL."},
                    "force": {"type": "boolean", "description": "Replace existing files."}
                })),
                &["url"],
                false,
            )),
        )
        .with_raw_output_schema(obj(with_error(json!({
            "type": "object",
            "properties": {
                "installed": {"type": "array", "items": {"type": "string"}},
                "skipped": {"type": "array", "items": {"type": "string"}},
                "failures": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["installed", "skipped", "failures"]
        }))))
        .with_annotations(ToolAnnotations::new().open_world(true)),
    ]
}
