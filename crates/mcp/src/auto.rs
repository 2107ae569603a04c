//! Answerers the server drives itself (interfaces.md §1, §1.2, §2.4, §3.4): `provider`
//! (an LLM API through `alc_llm`) and `scripted` (JSONL rules, inline or from a file).

use std::sync::{Arc, Mutex};

use alc_core::{Answer, PendingQuery, QueryRequest, Snapshot, TokenUsage};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::args::ToolError;
use crate::scripted::ScriptedAnswerer;

/// Where per-call progress lines go: the in-flight call's reporter, if any.
pub type Listener = Arc<Mutex<Option<UnboundedSender<String>>>>;

/// Who answers a session's queries.
#[derive(Clone)]
pub enum AnswererKind {
    /// The MCP caller (pauses are returned).
    Host,
    /// An LLM API.
    Provider,
    /// Scripted rules; the state (rule use counts) lives as long as the session.
    Scripted(Arc<Mutex<ScriptedAnswerer>>),
    /// A legacy client through `sampling/createMessage` requests on its connection
    /// (interfaces.md §3.9).
    Sampling(rmcp::Peer<rmcp::RoleServer>),
}

/// The answerer of one session.
#[derive(Clone)]
pub struct SessionAnswerer {
    /// Label as recorded (`host`, `provider`, `scripted`, `scripted:<path>`, `mrtr`,
    /// `sampling`).
    pub name: String,
    /// Behaviour.
    pub kind: AnswererKind,
    /// Model selector for the provider (`model` argument).
    pub model: Option<String>,
}

impl SessionAnswerer {
    /// The host answerer.
    pub fn host() -> SessionAnswerer {
        SessionAnswerer {
            name: "host".into(),
            kind: AnswererKind::Host,
            model: None,
        }
    }

    /// True for the host answerer.
    pub fn is_host(&self) -> bool {
        matches!(self.kind, AnswererKind::Host)
    }

    /// Whether a session started with this answerer has a channel to a person (§1.2, MCP).
    pub fn human_channel(&self) -> bool {
        match &self.kind {
            AnswererKind::Host | AnswererKind::Provider | AnswererKind::Sampling(_) => true,
            AnswererKind::Scripted(s) => s.lock().map(|s| s.has_human_rules()).unwrap_or(false),
        }
    }
}

/// Parses the inline `script` argument: an array of rule objects or a JSONL string.
pub fn parse_inline_script(v: &Value) -> Result<ScriptedAnswerer, ToolError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let mut lines = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                if !item.is_object() {
                    return Err(ToolError::invalid(format!(
                        "`script[{i}]` must be a rule object"
                    )));
                }
                lines.push(item.to_string());
            }
            lines.join("\n")
        }
        _ => {
            return Err(ToolError::invalid(
                "`script` must be an array of rule objects or a JSONL string",
            ))
        }
    };
    ScriptedAnswerer::parse(&text).map_err(|e| ToolError::invalid(format!("`script`: {e}")))
}

/// The open (unanswered) queries of a paused snapshot.
pub fn open_queries(s: &Snapshot) -> Vec<PendingQuery> {
    s.pending
        .as_ref()
        .map(|p| {
            p.queries
                .iter()
                .filter(|q| !p.answered.contains(&q.id))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn seconds(ms: u64) -> String {
    format!("{:.1}", ms as f64 / 1000.0)
}

fn tokens_of(u: Option<&TokenUsage>) -> Option<u64> {
    let u = u?;
    match (u.prompt_tokens, u.completion_tokens) {
        (None, None) => None,
        (p, c) => Some(p.unwrap_or(0) + c.unwrap_or(0)),
    }
}

/// The progress line of one answered LLM call (§3.4).
pub fn answered_message(a: &Answer, fallback_who: &str) -> String {
    let qid = a
        .query_id
        .as_ref()
        .map(|q| q.to_string())
        .unwrap_or_else(|| "llm".into());
    let who = match (&a.meta.provider, &a.meta.model) {
        (Some(p), Some(m)) => format!("{p}:{m}"),
        (Some(p), None) => p.clone(),
        _ => fallback_who.to_string(),
    };
    let time = seconds(a.meta.latency_ms.unwrap_or(0));
    if let Some(err) = &a.error {
        return format!("{qid} failed at {who} after {time} s: {}", err.code);
    }
    match tokens_of(a.usage.as_ref()) {
        Some(t) => format!("{qid} answered by {who} in {time} s ({t} tokens)"),
        None => format!("{qid} answered by {who} in {time} s"),
    }
}

/// Answers the open LLM queries through the provider, one task per query so progress
/// is reported as each call finishes. Human questions are left for the caller.
pub async fn provider_answers(
    client: alc_llm::Client,
    open: &[PendingQuery],
    model: Option<&str>,
    progress: &Listener,
) -> Vec<Answer> {
    let llm: Vec<(usize, PendingQuery)> = open
        .iter()
        .filter(|q| matches!(q.request, QueryRequest::Llm { .. }))
        .cloned()
        .enumerate()
        .collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, q) in llm.iter().cloned() {
        let client = client.clone();
        let model = model.map(str::to_string);
        set.spawn(async move {
            let mut items = client
                .answer_batch_detailed(std::slice::from_ref(&q), model.as_deref())
                .await;
            (i, items.pop().map(|it| it.answer))
        });
    }
    let mut out: Vec<Option<Answer>> = vec![None; llm.len()];
    while let Some(r) = set.join_next().await {
        match r {
            Ok((i, Some(a))) => {
                if let Some(tx) = progress.lock().expect("listener lock").as_ref() {
                    let _ = tx.send(answered_message(&a, "provider"));
                }
                out[i] = Some(a);
            }
            Ok((_, None)) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    out.into_iter()
        .zip(llm)
        .map(|(a, (_, q))| {
            a.unwrap_or_else(|| {
                let mut a = Answer::error(
                    Some(q.id.clone()),
                    "provider_error",
                    "provider request task ended without an answer",
                );
                a.meta.answerer = Some("provider".into());
                a
            })
        })
        .collect()
}

/// Answers the open queries a scripted answerer can take: every LLM query, and human
/// questions only when the rules hold `kind: "human"` lines.
pub fn scripted_answers(
    s: &Mutex<ScriptedAnswerer>,
    open: &[PendingQuery],
    progress: &Listener,
) -> Vec<Answer> {
    let mut s = match s.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let humans = s.has_human_rules();
    let mut out = Vec::new();
    for q in open {
        let is_llm = matches!(q.request, QueryRequest::Llm { .. });
        if !is_llm && !humans {
            continue;
        }
        let mut a = s.answer_pending(q);
        a.meta.latency_ms = Some(0);
        if is_llm {
            if let Some(tx) = progress.lock().expect("listener lock").as_ref() {
                let _ = tx.send(answered_message(&a, "scripted"));
            }
        }
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alc_core::QueryId;
    use serde_json::json;

    #[test]
    fn progress_line_format() {
        let mut a = Answer::text(QueryId::parse("q-0"), "4");
        a.usage = Some(TokenUsage {
            prompt_tokens: Some(400),
            completion_tokens: Some(12),
            cached_tokens: None,
            reasoning_tokens: None,
            source: alc_core::TokenSource::Definite,
        });
        a.meta.provider = Some("openai".into());
        a.meta.model = Some("gpt-4o-mini".into());
        a.meta.latency_ms = Some(1234);
        assert_eq!(
            answered_message(&a, "provider"),
            "q-0 answered by openai:gpt-4o-mini in 1.2 s (412 tokens)"
        );
        let b = Answer::text(QueryId::parse("q-1"), "x");
        assert_eq!(
            answered_message(&b, "scripted"),
            "q-1 answered by scripted in 0.0 s"
        );
    }

    #[test]
    fn inline_scripts_parse() {
        let s = parse_inline_script(&json!([{"match": "a", "response": "b"}, {"default": "d"}]))
            .unwrap();
        assert!(!s.has_human_rules());
        let s = parse_inline_script(&json!("{\"kind\":\"human\",\"response\":\"yes\"}")).unwrap();
        assert!(s.has_human_rules());
        assert_eq!(
            parse_inline_script(&json!([1])).unwrap_err().code,
            "invalid_params"
        );
        assert_eq!(
            parse_inline_script(&json!(3)).unwrap_err().code,
            "invalid_params"
        );
    }
}
