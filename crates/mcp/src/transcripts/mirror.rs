//! The transcript tables kept in step with the journal: every journal append writes its
//! session's transcript rows in its own transaction ([`alc_store::AppendMirror`]). A
//! call that waits for a durable journal write (a pause, an end, accepted answers) thus
//! finds the transcript written too, and recording costs no commit, thread or event
//! stream of its own.

use alc_core::{Answer, PendingQuery, QueryRequest, RecordBody, SessionAppend, SessionStatus};
use rusqlite::{params, Connection};
use serde_json::json;

use super::{redact, TranscriptMode, MAX_LOGS};
use crate::args::task_hint;

/// Writes the transcript rows of each journal append ([`super::Transcripts::mirror`]).
#[derive(Debug)]
pub struct TranscriptMirror {
    pub(super) mode: TranscriptMode,
}

impl alc_store::AppendMirror for TranscriptMirror {
    fn mirror(
        &self,
        tx: &Connection,
        a: &SessionAppend,
        metrics: Option<&str>,
    ) -> rusqlite::Result<()> {
        let sid = a.session_id.as_str();
        // The task hint: the `task_hint` label, else a preview of the first question.
        let first_question = a.records.iter().find_map(|r| match &r.body {
            RecordBody::Pause { queries, .. } => {
                queries.first().map(|q| task_hint(q.request.text()))
            }
            _ => None,
        });
        let status = a.row.phase.wire_name();
        let spawned = a.records.iter().find_map(|r| match &r.body {
            RecordBody::Spawned { spec, .. } => Some((&spec.labels, r.at)),
            _ => None,
        });
        match spawned {
            // (`stats` is derived from `metrics` when read.)
            Some((labels, at)) => tx
                .prepare_cached(
                    "INSERT INTO transcript_sessions
                   (session_id, kind, strategy, task_hint, status, answerer, started_at,
                    updated_at, metrics, stats)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, COALESCE(?9, '{}'), '{}')
                 ON CONFLICT(session_id) DO UPDATE SET
                   status = excluded.status,
                   updated_at = MAX(transcript_sessions.updated_at, excluded.updated_at),
                   metrics = excluded.metrics",
                )?
                .execute(params![
                    sid,
                    labels.get("kind").map_or("run", String::as_str),
                    labels.get("strategy"),
                    labels.get("task_hint").or(first_question.as_ref()),
                    status,
                    labels.get("answerer"),
                    at,
                    a.row.updated_at,
                    metrics,
                ])?,
            None => {
                let updated = tx
                    .prepare_cached(
                        "UPDATE transcript_sessions SET
                           status = ?2, updated_at = MAX(updated_at, ?3),
                           metrics = COALESCE(?4, metrics), task_hint = COALESCE(task_hint, ?5)
                         WHERE session_id = ?1",
                    )?
                    .execute(params![
                        sid,
                        status,
                        a.row.updated_at,
                        metrics,
                        first_question
                    ])?;
                if updated == 0 {
                    // A session begun before its journal recorded transcripts (by an
                    // earlier version, say): its row starts from the journal's, which
                    // this append has just brought up to date.
                    tx.prepare_cached(
                        "INSERT INTO transcript_sessions
                           (session_id, kind, strategy, task_hint, status, answerer, started_at,
                            updated_at, metrics, stats)
                         SELECT session_id, COALESCE(json_extract(labels, '$.kind'), 'run'),
                                json_extract(labels, '$.strategy'),
                                COALESCE(json_extract(labels, '$.task_hint'), ?3), ?2,
                                json_extract(labels, '$.answerer'), created_at, updated_at,
                                COALESCE(metrics, '{}'), '{}'
                         FROM sessions WHERE session_id = ?1",
                    )?
                    .execute(params![sid, status, first_question])?;
                }
                updated
            }
        };
        let mut logs = Vec::new();
        for r in &a.records {
            match &r.body {
                RecordBody::Pause { round, queries } => {
                    write_round(tx, sid, *round, r.at, queries)?
                }
                RecordBody::Answer { round, answer } => {
                    write_answer(tx, sid, *round, r.at, answer)?
                }
                RecordBody::Log { entry } => logs.push(entry),
                _ => {}
            }
        }
        if !logs.is_empty() {
            let kept: u64 = tx
                .prepare_cached("SELECT COUNT(*) FROM transcript_logs WHERE session_id = ?1")?
                .query_row([sid], |r| r.get(0))?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO transcript_logs (session_id, ts, level, source, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in logs.iter().take(MAX_LOGS.saturating_sub(kept) as usize) {
                insert.execute(params![sid, e.ts, e.level, e.source, e.message])?;
            }
        }
        if self.mode != TranscriptMode::Full && a.row.status() == SessionStatus::Terminal {
            redact(tx, sid, self.mode)?;
        }
        Ok(())
    }

    fn failed(&self, a: &SessionAppend, error: rusqlite::Error) {
        tracing::warn!(session_id = %a.session_id, %error, "transcript rows not written");
    }
}

/// Writes the questions of one round (their answers come later).
fn write_round(
    tx: &Connection,
    session_id: &str,
    round: u64,
    issued_at: i64,
    queries: &[PendingQuery],
) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO transcript_exchanges (session_id, round, query_id, kind, prompt, system, started_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(session_id, round, query_id) DO UPDATE SET
           kind = excluded.kind, prompt = excluded.prompt, system = excluded.system,
           started_at = COALESCE(transcript_exchanges.started_at, excluded.started_at)",
    )?;
    for q in queries {
        let (kind, prompt, system) = match &q.request {
            QueryRequest::Llm { query } => ("llm", &query.prompt, query.system.as_ref()),
            QueryRequest::Human { question } => ("human", &question.question, None),
        };
        st.execute(params![
            session_id,
            round as i64,
            q.id.as_str(),
            kind,
            prompt,
            system,
            issued_at
        ])?;
    }
    Ok(())
}

/// Writes an accepted answer into its question's row (an answer without a query id has
/// none and is skipped).
pub(super) fn write_answer(
    tx: &Connection,
    session_id: &str,
    round: u64,
    at: i64,
    a: &Answer,
) -> rusqlite::Result<()> {
    let Some(qid) = a.query_id.as_ref() else {
        return Ok(());
    };
    let response = a.text.clone().or_else(|| {
        a.ask_status.and_then(|s| {
            serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(|x| format!("[{x}]")))
        })
    });
    let model = match (&a.meta.provider, &a.meta.model) {
        (Some(p), Some(m)) => Some(format!("{p}:{m}")),
        (None, Some(m)) => Some(m.clone()),
        _ => None,
    };
    tx.prepare_cached(
        "INSERT INTO transcript_exchanges
           (session_id, round, query_id, response, error, usage, answered_by, model, answered_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(session_id, round, query_id) DO UPDATE SET
           response = excluded.response, error = excluded.error, usage = excluded.usage,
           answered_by = excluded.answered_by, model = excluded.model,
           answered_at = excluded.answered_at",
    )?
    .execute(params![
        session_id,
        round as i64,
        qid.as_str(),
        response,
        a.error.as_ref().map(|e| json!(e).to_string()),
        a.usage.as_ref().map(|u| json!(u).to_string()),
        a.meta.answerer,
        model,
        at
    ])?;
    Ok(())
}
