//! The transcript tables kept in step with the journal: every journal append writes its
//! session's transcript rows in its own transaction ([`alc_store::AppendMirror`]). A
//! call that waits for a durable journal write (a pause, an end, accepted answers) thus
//! finds the transcript written too, and recording costs no commit, thread or event
//! stream of its own.

use alc_core::{QueryRequest, RecordBody, SessionAppend, SessionStatus};
use rusqlite::{params, Connection};

use super::{
    exchange_queries, redact, upsert_session, write_answer, write_round, AnswerValues,
    SessionValues, TranscriptMode, MAX_LOGS,
};
use crate::args::preview;
use crate::wire;

/// Writes the transcript rows of each journal append ([`super::Transcripts::mirror`]).
#[derive(Debug)]
pub struct TranscriptMirror {
    pub(super) mode: TranscriptMode,
}

impl alc_store::AppendMirror for TranscriptMirror {
    fn mirror(&self, tx: &Connection, a: &SessionAppend) -> rusqlite::Result<()> {
        let sid = a.session_id.as_str();
        // The task hint: the `task_hint` label, else a preview of the first question.
        let first_question = a.records.iter().find_map(|r| match &r.body {
            RecordBody::Pause { queries, .. } => queries.first().map(|q| match &q.request {
                QueryRequest::Llm { query } => preview(&query.prompt, 100),
                QueryRequest::Human { question } => preview(&question.question, 100),
            }),
            _ => None,
        });
        let metrics = a.row.metrics.as_ref().map(|m| {
            (
                serde_json::to_string(m).unwrap_or_else(|_| "{}".into()),
                wire::stats(m, None).to_string(),
            )
        });
        let spawned = a.records.iter().find_map(|r| match &r.body {
            RecordBody::Spawned { spec, .. } => Some((spec, r.at)),
            _ => None,
        });
        let status = a.row.phase.wire_name();
        match spawned {
            Some((spec, at)) => {
                let labels = &spec.labels;
                let (metrics, stats) = metrics.unwrap_or_else(|| ("{}".into(), "{}".into()));
                upsert_session(
                    tx,
                    &SessionValues {
                        session_id: sid.to_string(),
                        kind: labels.get("kind").cloned().unwrap_or_else(|| "run".into()),
                        strategy: labels.get("strategy").cloned(),
                        task_hint: labels.get("task_hint").cloned().or(first_question),
                        status,
                        answerer: labels.get("answerer").cloned(),
                        started_at: at,
                        updated_at: a.row.updated_at,
                        metrics,
                        stats,
                    },
                )?;
            }
            None => {
                let (metrics, stats) = metrics.unzip();
                tx.prepare_cached(
                    "UPDATE transcript_sessions SET
                       status = ?2, updated_at = MAX(updated_at, ?3),
                       metrics = COALESCE(?4, metrics), stats = COALESCE(?5, stats),
                       task_hint = COALESCE(task_hint, ?6)
                     WHERE session_id = ?1",
                )?
                .execute(params![
                    sid,
                    status,
                    a.row.updated_at,
                    metrics,
                    stats,
                    first_question
                ])?;
            }
        }
        let mut logs = Vec::new();
        for r in &a.records {
            match &r.body {
                RecordBody::Pause { round, queries } => {
                    write_round(tx, sid, *round, r.at, &exchange_queries(queries))?
                }
                RecordBody::Answer { round, answer } => {
                    if let Some(v) = AnswerValues::of(answer) {
                        write_answer(tx, sid, *round, r.at, &v)?;
                    }
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
