//! All-or-nothing validation of a `resume` call (§2.4). Pure: reads the core, never changes it.

use crate::answer::{Answer, Answers, AskStatus};
use crate::error::ResumeError;
use crate::human::check_human_answer;
use crate::ids::QueryId;
use crate::machine::SessionCore;
use crate::phase::Phase;
use crate::query::QueryRequest;
use std::collections::BTreeSet;

/// What a valid call does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Rule 6: a safe retry of the completing call; no effect.
    Retry { round: u64 },
    /// Apply these new answers (ids resolved); idempotent duplicates removed.
    Apply { new: Vec<Answer> },
}

fn invalid(id: Option<&QueryId>, message: impl Into<String>) -> ResumeError {
    ResumeError::InvalidAnswer {
        query_id: id.map(|q| q.to_string()),
        message: message.into(),
    }
}

/// Validates `answers` against `core` in the order of §2.4. `engine` allows `ask_status: timeout`.
pub(crate) fn validate(
    core: &SessionCore,
    answers: &Answers,
    engine: bool,
) -> Result<Plan, ResumeError> {
    // 1.
    if answers.answers.is_empty() {
        return Err(ResumeError::EmptyAnswers);
    }
    // 2. (and rule 6)
    let Some(p) = core
        .pending
        .as_ref()
        .filter(|_| core.phase == Phase::Paused)
    else {
        if let (Some(given), Some(last)) = (answers.round, &core.last_round) {
            let identical = answers.answers.iter().all(|a| {
                a.query_id
                    .as_ref()
                    .and_then(|id| last.answers.get(id))
                    .is_some_and(|prev| prev.same_content(a))
            });
            if given == last.round && identical {
                return Ok(Plan::Retry { round: given });
            }
        }
        return Err(ResumeError::NotPaused { phase: core.phase });
    };
    if let Some(given) = answers.round {
        if given != p.round {
            return Err(ResumeError::StaleRound {
                given,
                current: p.round,
            });
        }
    }
    // 3.
    let mut resolved: Vec<Answer> = answers.answers.clone();
    if resolved.iter().any(|a| a.query_id.is_none()) {
        let unanswered = p.remaining();
        if resolved.len() != 1 || unanswered != 1 {
            return Err(ResumeError::AmbiguousTarget { unanswered });
        }
        let target = p
            .queries
            .iter()
            .find(|q| !p.answers.contains_key(&q.id))
            .map(|q| q.id.clone());
        resolved[0].query_id = target;
    }
    // 4.
    let mut seen: BTreeSet<QueryId> = BTreeSet::new();
    let mut new = Vec::new();
    for a in resolved {
        let id = a.query_id.clone().expect("resolved above");
        let Some(q) = p.query(&id) else {
            return Err(ResumeError::UnknownQuery {
                query_id: id.to_string(),
            });
        };
        let set = [a.text.is_some(), a.error.is_some(), a.ask_status.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if set != 1 {
            return Err(invalid(
                Some(&id),
                "exactly one of text, error, ask_status must be set",
            ));
        }
        if let Some(status) = a.ask_status {
            if matches!(q.request, QueryRequest::Llm { .. }) {
                return Err(invalid(
                    Some(&id),
                    "ask_status is only valid for human questions",
                ));
            }
            if status == AskStatus::Timeout && !engine {
                return Err(invalid(
                    Some(&id),
                    "ask_status must be declined or cancelled",
                ));
            }
        }
        if let (Some(text), QueryRequest::Human { question }) = (&a.text, &q.request) {
            check_human_answer(question, text).map_err(|m| invalid(Some(&id), m))?;
        }
        if let Some(text) = &a.text {
            if text.len() > core.limits.max_answer_bytes {
                return Err(invalid(
                    Some(&id),
                    format!(
                        "answer text of {} bytes exceeds max_answer_bytes ({})",
                        text.len(),
                        core.limits.max_answer_bytes
                    ),
                ));
            }
        }
        if !seen.insert(id.clone()) {
            return Err(invalid(
                Some(&id),
                "the same query is answered twice in one call",
            ));
        }
        match p.answers.get(&id) {
            Some(prev) if prev.same_content(&a) => {}
            Some(_) => return Err(ResumeError::ConflictingAnswer { query_id: id }),
            None => new.push(a),
        }
    }
    Ok(Plan::Apply { new })
}
