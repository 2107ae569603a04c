//! The `sampling` answerer (interfaces.md §3.9): the server asks the legacy client that
//! started the session to answer each open LLM query through `sampling/createMessage`,
//! while the tool call is in flight.

// Sampling is deprecated by the protocol (SEP-2577); it is offered here as an opt-in.
#![allow(deprecated)]

use std::sync::Arc;
use std::time::Instant;

use alc_core::{Answer, PendingQuery, QueryRequest};
use rmcp::model::CreateMessageRequestParams;
use rmcp::service::ServiceError;
use rmcp::{Peer, RoleServer};
use tokio::sync::Semaphore;

use crate::auto::{answered_message, Listener};
use crate::mrtr;

/// Label of answers given through sampling.
pub const ANSWERER: &str = "sampling";

/// Outcome of one sampling request.
enum Asked {
    /// The client answered (or refused: an error answer for the script).
    Answer(Box<Answer>),
    /// The connection is gone; the query stays open for a later caller.
    Unreachable,
}

async fn ask(
    peer: Peer<RoleServer>,
    q: PendingQuery,
    model: Option<String>,
    limit: Arc<Semaphore>,
) -> Asked {
    let QueryRequest::Llm { query } = &q.request else {
        return Asked::Unreachable;
    };
    let params = mrtr::create_message_params(query, model.as_deref());
    let params: CreateMessageRequestParams = match serde_json::from_value(params) {
        Ok(p) => p,
        Err(e) => {
            return Asked::Answer(Box::new(failed(
                &q,
                format!("cannot build the sampling request: {e}"),
            )))
        }
    };
    let Ok(_permit) = limit.acquire_owned().await else {
        return Asked::Unreachable;
    };
    let started = Instant::now();
    let outcome = peer.create_message(params).await;
    let latency = started.elapsed().as_millis() as u64;
    let result = match outcome {
        Ok(r) => r,
        Err(ServiceError::McpError(e)) => {
            let mut a = failed(
                &q,
                format!("the client refused the sampling request: {}", e.message),
            );
            a.meta.latency_ms = Some(latency);
            return Asked::Answer(Box::new(a));
        }
        Err(_) => return Asked::Unreachable,
    };
    let value = serde_json::to_value(&result).unwrap_or_default();
    let mut a = match mrtr::result_text(&value) {
        Ok((text, model)) => {
            let mut a = Answer::text(Some(q.id.clone()), text.clone());
            a.usage = Some(alc_llm::adapter::estimate_usage(query, &text));
            a.meta.model = model;
            a
        }
        Err(e) => failed(&q, format!("the sampling result {e}")),
    };
    a.meta.answerer = Some(ANSWERER.into());
    a.meta.latency_ms = Some(latency);
    Asked::Answer(Box::new(a))
}

fn failed(q: &PendingQuery, message: String) -> Answer {
    let mut a = Answer::error(Some(q.id.clone()), "provider_error", message);
    a.meta.answerer = Some(ANSWERER.into());
    a
}

/// Answers the open LLM queries through `sampling/createMessage` on `peer`, at most as
/// many at once as `limit` allows (the process-wide concurrency limit). Usage is
/// estimated. Human questions, and queries whose request could not reach the client,
/// are left open.
pub async fn answers(
    peer: &Peer<RoleServer>,
    open: &[PendingQuery],
    model: Option<&str>,
    limit: Arc<Semaphore>,
    progress: &Listener,
) -> Vec<Answer> {
    let mut set = tokio::task::JoinSet::new();
    for q in open
        .iter()
        .filter(|q| matches!(q.request, QueryRequest::Llm { .. }))
    {
        set.spawn(ask(
            peer.clone(),
            q.clone(),
            model.map(str::to_string),
            limit.clone(),
        ));
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Asked::Answer(a)) => {
                if let Some(tx) = progress.lock().expect("listener lock").as_ref() {
                    let _ = tx.send(answered_message(&a, ANSWERER));
                }
                out.push(*a);
            }
            Ok(Asked::Unreachable) => {}
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
    }
    out
}
