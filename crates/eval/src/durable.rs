//! Durable, resumable evals.
//!
//! Before any case runs, [`DurableRun::begin`] stores the run record (plan, answerer,
//! scenario hash) and allocates the eval id; every case × repeat slot then records the
//! session it runs in before any of its queries is answered, and its graded result when
//! done (`eval_progress`, `eval_progress_cases` in `<home>/alc.db`). The case sessions are
//! ordinary durable sessions of the engine's journal.
//!
//! If the process dies, [`DurableRun::resume`] takes the run over: slots with a result keep
//! it, slots with a session continue that session — the engine adopts it and replays its
//! journal, so no answered query is asked again — and untouched slots start. When every
//! slot has a result, [`DurableRun::finish`] stores the report under the same eval id and
//! forgets the progress rows.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::report::{self, Report, ReportMeta};
use crate::runner::{CaseResult, EvalPlan};
use crate::store::{EvalStore, SlotRecord, Unfinished};
use crate::EvalError;

/// Heartbeat period of a durable run's owner (ms); see `store::EVAL_OWNER_TTL_MS`.
pub const HEARTBEAT_MS: u64 = 10_000;

/// What a durable eval stores to be resumed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The plan (strategy, options, cases, graders, repeats, models).
    pub plan: EvalPlan,
    /// Answerer name (`provider`, `scripted:FILE`, `scripted`).
    pub answerer: String,
    /// Judge answerer name when it differs from the answerer.
    #[serde(default)]
    pub judge_answerer: Option<String>,
    /// Content hash of the cases.
    pub scenario_hash: String,
    /// Warnings carried into the report.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// When the run started (Unix ms).
    pub started_at: i64,
}

impl RunRecord {
    /// A hash of everything that defines the results (not concurrency or start time): two
    /// runs with the same plan hash are runs of the same eval.
    pub fn plan_hash(&self) -> String {
        let mut plan = serde_json::to_value(&self.plan).unwrap_or(Value::Null);
        if let Some(o) = plan.as_object_mut() {
            o.remove("concurrency");
        }
        let text = serde_json::json!({
            "plan": plan,
            "answerer": self.answerer,
            "judge_answerer": self.judge_answerer,
        })
        .to_string();
        Sha256::digest(text.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// `(case id, repeat)` of every slot, in slot order.
    pub fn slots(&self) -> Vec<(String, u32)> {
        let repeats = self.plan.repeats.max(1);
        self.plan
            .scenario
            .cases
            .iter()
            .flat_map(|c| (0..repeats).map(move |r| (c.id.clone(), r)))
            .collect()
    }
}

/// A durable eval run owned by this process.
pub struct DurableRun {
    store: Mutex<EvalStore>,
    eval_id: String,
    record: RunRecord,
    prior: Vec<SlotRecord>,
    errors: Mutex<Vec<String>>,
}

impl std::fmt::Debug for DurableRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableRun")
            .field("eval_id", &self.eval_id)
            .finish_non_exhaustive()
    }
}

fn now() -> i64 {
    crate::now_ms()
}

impl DurableRun {
    /// Records a new run (its id allocated from `record.started_at`) before any case runs.
    pub fn begin(mut store: EvalStore, record: RunRecord) -> Result<DurableRun, EvalError> {
        let slots = record.slots();
        let value = serde_json::to_value(&record)
            .map_err(|e| EvalError::internal(format!("cannot encode the eval plan: {e}")))?;
        let eval_id = store.begin(
            &record.plan.strategy,
            &record.plan.scenario.name,
            &record.scenario_hash,
            &record.plan_hash(),
            &value,
            &slots,
            record.started_at,
        )?;
        Ok(DurableRun {
            store: Mutex::new(store),
            eval_id,
            prior: vec![SlotRecord::default(); slots.len()],
            record,
            errors: Mutex::new(Vec::new()),
        })
    }

    /// Takes over the unfinished run `eval_id` (see [`EvalStore::claim`]).
    pub fn resume(mut store: EvalStore, eval_id: &str) -> Result<DurableRun, EvalError> {
        let u: Unfinished = store.claim(eval_id, now())?;
        let record: RunRecord = serde_json::from_value(u.record).map_err(|e| {
            EvalError::io(format!(
                "the stored plan of eval {eval_id} is unreadable: {e}"
            ))
        })?;
        let prior = store.slots(eval_id)?;
        if prior.len() != record.slots().len() {
            return Err(EvalError::io(format!(
                "eval {eval_id}: {} stored slots for {} cases × repeats",
                prior.len(),
                record.slots().len()
            )));
        }
        Ok(DurableRun {
            store: Mutex::new(store),
            eval_id: eval_id.to_string(),
            record,
            prior,
            errors: Mutex::new(Vec::new()),
        })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, EvalStore> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, e: EvalError) {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e.message);
    }

    /// The eval id (the finished report carries it too).
    pub fn eval_id(&self) -> &str {
        &self.eval_id
    }

    /// The run record.
    pub fn record(&self) -> &RunRecord {
        &self.record
    }

    /// Overrides the number of cases run at once (not part of the plan hash).
    pub fn set_concurrency(&mut self, n: usize) {
        self.record.plan.concurrency = n.max(1);
    }

    /// Slots in total.
    pub fn total(&self) -> usize {
        self.prior.len()
    }

    /// Slots finished before this process took the run over.
    pub fn done_before(&self) -> usize {
        self.prior.iter().filter(|p| p.result.is_some()).count()
    }

    /// Slots whose session was started, but not finished, before this process took over.
    pub fn interrupted_before(&self) -> usize {
        self.prior
            .iter()
            .filter(|p| p.result.is_none() && p.session_id.is_some())
            .count()
    }

    /// What was stored for `slot` before this process took over.
    pub fn prior(&self, slot: usize) -> Option<&SlotRecord> {
        self.prior.get(slot)
    }

    /// Records the session of `slot`.
    pub fn record_session(&self, slot: usize, session_id: &str) -> Result<(), EvalError> {
        self.store().record_session(&self.eval_id, slot, session_id)
    }

    /// Records the result of `slot`; a storage failure is kept for [`DurableRun::errors`]
    /// (the result still counts in this process).
    pub fn record_result(&self, slot: usize, result: &CaseResult) {
        let r = self.store().record_result(&self.eval_id, slot, result);
        if let Err(e) = r {
            self.note(e);
        }
    }

    /// Storage failures met while recording progress.
    pub fn errors(&self) -> Vec<String> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refreshes this process's ownership.
    pub fn heartbeat(&self) {
        let r = self.store().heartbeat(&self.eval_id, now());
        if let Err(e) = r {
            self.note(e);
        }
    }

    /// Gives the run up (it stays resumable by anyone at once).
    pub fn release(&self) {
        let _ = self.store().release(&self.eval_id);
    }

    /// Builds the report of `results` (one per slot), stores it under the eval id and
    /// forgets the progress rows. Fewer results than slots → `internal`.
    pub fn finish(&self, results: Vec<CaseResult>, finished_at: i64) -> Result<Report, EvalError> {
        if results.len() != self.total() {
            return Err(EvalError::internal(format!(
                "eval {}: {} of {} cases have a result",
                self.eval_id,
                results.len(),
                self.total()
            )));
        }
        let r = &self.record;
        let mut rep = report::build(
            ReportMeta {
                strategy: r.plan.strategy.clone(),
                scenario: r.plan.scenario.name.clone(),
                scenario_hash: r.scenario_hash.clone(),
                answerer: r.answerer.clone(),
                model: r.plan.model.clone(),
                repeats: r.plan.repeats,
                pass_threshold: r.plan.scenario.pass_threshold,
                strategy_opts: Value::Object(r.plan.strategy_opts.clone()),
                graders: serde_json::to_value(&r.plan.scenario.graders).unwrap_or(Value::Null),
                started_at: r.started_at,
                finished_at,
                warnings: r.warnings.clone(),
            },
            results,
        );
        rep.eval_id = self.eval_id.clone();
        self.store().finish(&rep)?;
        Ok(rep)
    }
}

/// Refreshes `run`'s ownership every [`HEARTBEAT_MS`] until the returned task is aborted.
pub fn spawn_heartbeat(run: Arc<DurableRun>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(HEARTBEAT_MS)).await;
            let r = run.clone();
            let _ = tokio::task::spawn_blocking(move || r.heartbeat()).await;
        }
    })
}
