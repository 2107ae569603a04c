//! Wire payloads of a session (interfaces.md §2.4): the JSON a run prints and MCP returns.
//!
//! Shared by the MCP tools and the `alc run` command so both emit the same shapes.

use alc_core::{
    FailureKind, Outcome, PendingQuery, QueryRequest, SessionMetrics, Snapshot, Terminal,
};
use serde_json::{json, Map, Value};

/// `stats` of a payload: `auto` counters and `custom` values.
pub fn stats(metrics: &SessionMetrics, budget: Option<Value>) -> Value {
    let mut auto = Map::new();
    auto.insert("elapsed_ms".into(), json!(metrics.elapsed_ms));
    auto.insert("llm_calls".into(), json!(metrics.llm_calls));
    auto.insert("pauses".into(), json!(metrics.pauses));
    auto.insert("rounds".into(), json!(metrics.rounds));
    auto.insert(
        "total_prompt_chars".into(),
        json!(metrics.total_prompt_chars),
    );
    auto.insert(
        "total_response_chars".into(),
        json!(metrics.total_response_chars),
    );
    auto.insert("prompt_tokens".into(), json!(metrics.prompt_tokens));
    auto.insert("response_tokens".into(), json!(metrics.response_tokens));
    auto.insert("total_tokens".into(), json!(metrics.total_tokens));
    auto.insert("answered_by".into(), json!(metrics.answered_by));
    if metrics.human_asks > 0 {
        auto.insert("human_asks".into(), json!(metrics.human_asks));
    }
    if !metrics.usage_by_model.is_empty() {
        auto.insert("usage_by_model".into(), json!(metrics.usage_by_model));
    }
    if let Some(b) = budget {
        auto.insert("budget".into(), b);
    }
    json!({"auto": auto, "custom": metrics.custom})
}

/// The wire code of a failure (engine.md §3.7).
pub fn failure_code(kind: FailureKind, code: Option<&str>) -> String {
    match (kind, code) {
        (FailureKind::AnswerError, Some(c)) => c.to_string(),
        _ => kind.wire_code().to_string(),
    }
}

/// The final payload of a terminal session.
pub fn terminal(t: &Terminal) -> Value {
    let id = t.session_id.as_str();
    let stats = stats(&t.metrics, None);
    match &t.outcome {
        Outcome::Completed { value } => {
            json!({"status": "completed", "session_id": id, "result": value, "stats": stats})
        }
        Outcome::Failed {
            kind,
            code,
            message,
            traceback,
            ..
        } => {
            let mut v = json!({
                "status": "error",
                "session_id": id,
                "code": failure_code(*kind, code.as_deref()),
                "error": message,
                "stats": stats,
            });
            if let Some(tb) = traceback {
                v["traceback"] = json!(tb);
            }
            v
        }
        Outcome::Cancelled {
            reason,
            phase_before,
            ..
        } => json!({
            "status": "cancelled",
            "session_id": id,
            "reason": reason,
            "previous_phase": phase_before.wire_name(),
            "stats": stats,
        }),
    }
}

/// One query as the pause payload shows it (LLM queries carry no `kind`).
pub fn query_fields(q: &PendingQuery, expires_base: i64) -> Map<String, Value> {
    let mut m = Map::new();
    match &q.request {
        QueryRequest::Llm { query } => {
            m.insert("prompt".into(), json!(query.prompt));
            m.insert("system".into(), json!(query.system));
            m.insert("max_tokens".into(), json!(query.max_tokens));
            if let Some(t) = query.temperature {
                m.insert("temperature".into(), json!(t));
            }
            if let Some(model) = &query.model {
                m.insert("model".into(), json!(model));
            }
            if let Some(role) = &query.role {
                m.insert("role".into(), json!(role));
            }
            if query.grounded {
                m.insert("grounded".into(), json!(true));
            }
            if query.underspecified {
                m.insert("underspecified".into(), json!(true));
            }
        }
        QueryRequest::Human { question } => {
            m.insert("kind".into(), json!("human"));
            m.insert("question".into(), json!(question.question));
            if !question.choices.is_empty() {
                m.insert("choices".into(), json!(question.choices));
            }
            if let Some(s) = &question.schema {
                m.insert("schema".into(), s.clone());
            }
            if let Some(d) = &question.default {
                m.insert("default".into(), d.clone());
            }
            if let Some(t) = question.timeout_ms {
                m.insert("timeout_ms".into(), json!(t));
                m.insert("expires_at".into(), json!(expires_base + t as i64));
            }
        }
    }
    m
}

/// The terminal record of a snapshot that reached a terminal phase (`None` otherwise).
pub fn terminal_of(snapshot: &Snapshot) -> Option<Terminal> {
    let outcome = snapshot.outcome.clone()?;
    Some(Terminal {
        session_id: snapshot.session_id.clone(),
        outcome,
        metrics: snapshot.metrics.clone(),
        ended_at: snapshot.updated_at,
    })
}

/// The `running` payload: the session is still executing.
pub fn running(snapshot: &Snapshot) -> Value {
    json!({"status": "running", "session_id": snapshot.session_id.as_str(), "round": snapshot.round})
}

/// The current payload of a session: its pause, its final payload, or `running`.
pub fn current(snapshot: &Snapshot) -> Value {
    if let Some(t) = terminal_of(snapshot) {
        return terminal(&t);
    }
    if snapshot.phase == alc_core::Phase::Paused {
        return pause(snapshot);
    }
    running(snapshot)
}

/// The `needs_response` payload of a paused session (single or batch form).
pub fn pause(snapshot: &Snapshot) -> Value {
    let Some(p) = &snapshot.pending else {
        return json!({"status": "running", "session_id": snapshot.session_id.as_str(), "round": snapshot.round});
    };
    let open: Vec<&PendingQuery> = p
        .queries
        .iter()
        .filter(|q| !p.answered.contains(&q.id))
        .collect();
    let mut out = Map::new();
    out.insert("status".into(), json!("needs_response"));
    out.insert("session_id".into(), json!(snapshot.session_id.as_str()));
    out.insert("round".into(), json!(p.round));
    if p.queries.len() == 1 && open.len() == 1 {
        out.insert("query_id".into(), json!(open[0].id.as_str()));
        out.extend(query_fields(open[0], p.issued_at));
    } else {
        let queries: Vec<Value> = open
            .iter()
            .map(|q| {
                let mut m = Map::new();
                m.insert("id".into(), json!(q.id.as_str()));
                m.extend(query_fields(q, p.issued_at));
                Value::Object(m)
            })
            .collect();
        out.insert("queries".into(), Value::Array(queries));
    }
    Value::Object(out)
}

/// The listing status of a journal row not hosted by the caller: `resumable` for an
/// open session whose lease is void (no live process hosts it), else its phase.
pub fn row_status(row: &alc_core::SessionRow) -> &'static str {
    if row.status == alc_core::SessionStatus::Open && row.owner.is_none() {
        "resumable"
    } else {
        row.phase.wire_name()
    }
}

/// The first prompt (or question) of a session, from its first `pause` record.
pub fn first_prompt(records: &[alc_core::JournalRecord]) -> Option<String> {
    records.iter().find_map(|r| match &r.body {
        alc_core::RecordBody::Pause { queries, .. } => queries.first().map(|q| match &q.request {
            QueryRequest::Llm { query } => query.prompt.clone(),
            QueryRequest::Human { question } => question.question.clone(),
        }),
        _ => None,
    })
}

/// An `alc_sessions` entry (interfaces.md §2.9) of a journal row not hosted by the
/// caller; `task_hint` falls back to the first prompt read from `journal`.
pub fn row_entry(row: &alc_core::SessionRow, journal: Option<&dyn alc_core::Journal>) -> Value {
    let status = row_status(row);
    let task_hint = match row.labels.get("task_hint") {
        Some(h) => Some(h.clone()),
        None => journal
            .and_then(|j| j.read(&row.session_id, 1).ok())
            .and_then(|records| first_prompt(&records))
            .map(|p| p.chars().take(100).collect::<String>()),
    };
    let owner = if row.status == alc_core::SessionStatus::Open && row.owner.is_some() {
        "other_process"
    } else {
        "none"
    };
    let mut v = json!({
        "session_id": row.session_id.as_str(),
        "kind": row.labels.get("kind").map(String::as_str).unwrap_or("run"),
        "strategy": row.labels.get("strategy"),
        "status": status,
        "round": row.round,
        "answerer": row.labels.get("answerer").map(String::as_str).unwrap_or("host"),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "llm_calls": row.metrics.as_ref().map_or(0, |m| m.llm_calls),
        "task_hint": task_hint,
        "owner": owner,
        "resumable": status == "resumable",
    });
    if let Some(Outcome::Cancelled { reason, .. }) = &row.outcome {
        v["reason"] = json!(reason);
    }
    v
}
