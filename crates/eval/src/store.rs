//! Eval storage in `<home>/alc.db` (§8.6): tables `eval_runs` and `eval_cases`,
//! created when missing. Ids are `<strategy>_<unix_ms>`; on collision the next free
//! millisecond is used (allocated and inserted in one immediate transaction).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{json, Value};

use crate::report::Report;
use crate::EvalError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS eval_runs (
  eval_id       TEXT PRIMARY KEY,
  strategy      TEXT NOT NULL,
  scenario      TEXT NOT NULL,
  scenario_hash TEXT NOT NULL,
  status        TEXT NOT NULL,
  answerer      TEXT,
  model         TEXT,
  repeats       INTEGER NOT NULL,
  started_at    INTEGER NOT NULL,
  finished_at   INTEGER NOT NULL,
  pass_rate     REAL NOT NULL,
  mean_score    REAL NOT NULL,
  total_cases   INTEGER NOT NULL,
  passed        INTEGER NOT NULL,
  llm_calls     INTEGER NOT NULL,
  elapsed_ms    INTEGER NOT NULL,
  summary       TEXT NOT NULL,
  strategy_opts TEXT NOT NULL,
  graders       TEXT NOT NULL,
  report        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eval_runs_strategy ON eval_runs(strategy, finished_at);
CREATE TABLE IF NOT EXISTS eval_cases (
  eval_id    TEXT NOT NULL REFERENCES eval_runs(eval_id) ON DELETE CASCADE,
  case_id    TEXT NOT NULL,
  repeat     INTEGER NOT NULL,
  input      TEXT NOT NULL,
  expected   TEXT NOT NULL,
  output     TEXT,
  score      REAL NOT NULL,
  passed     INTEGER NOT NULL,
  errored    INTEGER NOT NULL,
  grades     TEXT NOT NULL,
  error      TEXT,
  usage      TEXT NOT NULL,
  session_id TEXT,
  PRIMARY KEY (eval_id, case_id, repeat)
);
CREATE TABLE IF NOT EXISTS eval_progress (
  eval_id       TEXT PRIMARY KEY,
  strategy      TEXT NOT NULL,
  scenario      TEXT NOT NULL,
  scenario_hash TEXT NOT NULL,
  plan_hash     TEXT NOT NULL,
  record        TEXT NOT NULL,
  total         INTEGER NOT NULL,
  host          TEXT,
  pid           INTEGER,
  heartbeat_at  INTEGER,
  started_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_progress_cases (
  eval_id    TEXT NOT NULL,
  slot       INTEGER NOT NULL,
  case_id    TEXT NOT NULL,
  repeat     INTEGER NOT NULL,
  session_id TEXT,
  result     TEXT,
  PRIMARY KEY (eval_id, slot)
);
";

/// An owner's heartbeat older than this leaves its unfinished eval free to resume (ms).
pub const EVAL_OWNER_TTL_MS: i64 = 30_000;

/// An eval run that was started and has not finished (it can be resumed).
#[derive(Debug, Clone)]
pub struct Unfinished {
    /// The eval id the finished report will carry.
    pub eval_id: String,
    /// Strategy package.
    pub strategy: String,
    /// Scenario name.
    pub scenario: String,
    /// Content hash of the cases.
    pub scenario_hash: String,
    /// Hash of everything that defines the run (see `durable::RunRecord::plan_hash`).
    pub plan_hash: String,
    /// The stored run record (JSON of `durable::RunRecord`).
    pub record: Value,
    /// Case × repeat slots in total.
    pub total: usize,
    /// Slots with a stored result.
    pub done: usize,
    /// Slots whose session was started but has no result yet.
    pub started: usize,
    /// When the run started (Unix ms).
    pub started_at: i64,
    /// Last heartbeat or progress (Unix ms).
    pub updated_at: i64,
    /// `Some((host, pid))` while a live process works on it.
    pub owner: Option<(String, u32)>,
}

/// The stored state of one case × repeat slot of an unfinished eval.
#[derive(Debug, Clone, Default)]
pub struct SlotRecord {
    /// The session that runs (or ran) the strategy, once started.
    pub session_id: Option<String>,
    /// The graded result, once finished.
    pub result: Option<crate::runner::CaseResult>,
}

const META_COLUMNS: &str = "eval_id, strategy, scenario, finished_at, pass_rate, mean_score, \
     total_cases, passed, llm_calls, elapsed_ms, summary, status, model, answerer";

/// A history meta object from a row of [`META_COLUMNS`].
fn meta_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Value> {
    let finished: i64 = r.get(3)?;
    Ok(json!({
        "eval_id": r.get::<_, String>(0)?,
        "strategy": r.get::<_, String>(1)?,
        "scenario": r.get::<_, String>(2)?,
        "timestamp": finished / 1000,
        "finished_at": finished,
        "pass_rate": r.get::<_, f64>(4)?,
        "mean_score": r.get::<_, f64>(5)?,
        "total_cases": r.get::<_, i64>(6)?,
        "passed": r.get::<_, i64>(7)?,
        "llm_calls": r.get::<_, i64>(8)?,
        "elapsed_ms": r.get::<_, i64>(9)?,
        "summary": r.get::<_, String>(10)?,
        "status": r.get::<_, String>(11)?,
        "model": r.get::<_, Option<String>>(12)?,
        "answerer": r.get::<_, Option<String>>(13)?,
    }))
}

/// The first free id `<strategy>_<ms>` from `now_ms` on (finished and unfinished evals).
fn free_id(tx: &Connection, strategy: &str, now_ms: i64) -> Result<String, EvalError> {
    let mut ms = now_ms;
    loop {
        let candidate = format!("{strategy}_{ms}");
        let taken: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM eval_runs WHERE eval_id = ?1
                 UNION ALL SELECT 1 FROM eval_progress WHERE eval_id = ?1",
                [&candidate],
                |r| r.get(0),
            )
            .optional()
            .map_err(io)?;
        if taken.is_none() {
            return Ok(candidate);
        }
        ms += 1;
    }
}

/// Unfinished evals matching `cond` (over alias `p`), newest first.
fn unfinished_where(
    conn: &Connection,
    cond: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Unfinished>, EvalError> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT p.eval_id, p.strategy, p.scenario, p.scenario_hash, p.plan_hash, p.record, p.total,
                    p.host, p.pid, p.started_at, p.updated_at,
                    (SELECT count(*) FROM eval_progress_cases c WHERE c.eval_id = p.eval_id AND c.result IS NOT NULL),
                    (SELECT count(*) FROM eval_progress_cases c WHERE c.eval_id = p.eval_id AND c.result IS NULL AND c.session_id IS NOT NULL)
             FROM eval_progress p WHERE {cond}
             ORDER BY p.started_at DESC, p.eval_id DESC"
        ))
        .map_err(io)?;
    let rows = stmt
        .query_map(params, |r| {
            let record: String = r.get(5)?;
            let host: Option<String> = r.get(7)?;
            let pid: Option<i64> = r.get(8)?;
            Ok(Unfinished {
                eval_id: r.get(0)?,
                strategy: r.get(1)?,
                scenario: r.get(2)?,
                scenario_hash: r.get(3)?,
                plan_hash: r.get(4)?,
                record: serde_json::from_str(&record).unwrap_or(Value::Null),
                total: r.get::<_, i64>(6)?.max(0) as usize,
                owner: host.zip(pid.map(|p| p as u32)),
                started_at: r.get(9)?,
                updated_at: r.get(10)?,
                done: r.get::<_, i64>(11)?.max(0) as usize,
                started: r.get::<_, i64>(12)?.max(0) as usize,
            })
        })
        .map_err(io)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(io)
}

/// Inserts `report` (its `eval_id` set) into `eval_runs` and `eval_cases`.
fn insert_report(tx: &Connection, report: &Report) -> Result<(), EvalError> {
    let id = &report.eval_id;
    let report_json = serde_json::to_string(report).map_err(io)?;
    let a = &report.aggregated;
    tx.execute(
        "INSERT INTO eval_runs (eval_id, strategy, scenario, scenario_hash, status, answerer, model,
           repeats, started_at, finished_at, pass_rate, mean_score, total_cases, passed, llm_calls,
           elapsed_ms, summary, strategy_opts, graders, report)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        params![
            id,
            report.strategy,
            report.scenario,
            report.scenario_hash,
            report.status,
            report.answerer,
            report.model,
            report.repeats,
            report.started_at,
            report.finished_at,
            a.pass_rate,
            a.scores.mean,
            a.total as i64,
            a.passed as i64,
            report.usage.llm_calls as i64,
            (report.finished_at - report.started_at).max(0),
            report.summary,
            report.strategy_opts.to_string(),
            report.graders.to_string(),
            report_json,
        ],
    )
    .map_err(io)?;
    for c in &report.cases {
        tx.execute(
            "INSERT OR REPLACE INTO eval_cases (eval_id, case_id, repeat, input, expected, output, score,
               passed, errored, grades, error, usage, session_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                id,
                c.case_id,
                c.repeat,
                c.input.to_string(),
                c.expected.to_string(),
                c.output,
                c.score,
                c.passed,
                c.errored,
                serde_json::to_string(&c.grades).map_err(io)?,
                c.error,
                json!({"llm_calls": c.llm_calls, "tokens": c.tokens, "cost_usd": c.cost_usd, "elapsed_ms": c.elapsed_ms}).to_string(),
                c.session_id,
            ],
        )
        .map_err(io)?;
    }
    Ok(())
}

/// The eval store.
pub struct EvalStore {
    conn: Connection,
    path: PathBuf,
}

fn io(e: impl std::fmt::Display) -> EvalError {
    EvalError::io(format!("eval storage: {e}"))
}

impl EvalStore {
    /// Opens (creating when needed) `<home>/alc.db` and the eval tables.
    pub fn open_home(home: &Path) -> Result<Self, EvalError> {
        std::fs::create_dir_all(home)
            .map_err(|e| EvalError::io(format!("cannot create {}: {e}", home.display())))?;
        Self::open(&home.join("alc.db"))
    }

    /// Opens the database file at `path`.
    pub fn open(path: &Path) -> Result<Self, EvalError> {
        let conn = Connection::open(path).map_err(io)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(io)?;
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        conn.execute_batch(SCHEMA).map_err(io)?;
        Ok(EvalStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `report` with a fresh id `<strategy>_<ms>` (ms from `now_ms`, bumped to
    /// the next free millisecond), writes the id into the report and returns it.
    pub fn save(&mut self, report: &mut Report, now_ms: i64) -> Result<String, EvalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io)?;
        let id = free_id(&tx, &report.strategy, now_ms)?;
        report.eval_id = id.clone();
        insert_report(&tx, report)?;
        tx.commit().map_err(io)?;
        Ok(id)
    }

    /// Records the start of a durable eval run: allocates its id (`<strategy>_<ms>`), stores
    /// the run record and one slot per case × repeat, and marks this process as its owner.
    #[allow(clippy::too_many_arguments)]
    pub fn begin(
        &mut self,
        strategy: &str,
        scenario: &str,
        scenario_hash: &str,
        plan_hash: &str,
        record: &Value,
        slots: &[(String, u32)],
        now_ms: i64,
    ) -> Result<String, EvalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io)?;
        let id = free_id(&tx, strategy, now_ms)?;
        tx.execute(
            "INSERT INTO eval_progress (eval_id, strategy, scenario, scenario_hash, plan_hash, record,
               total, host, pid, heartbeat_at, started_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?10)",
            params![
                id,
                strategy,
                scenario,
                scenario_hash,
                plan_hash,
                record.to_string(),
                slots.len() as i64,
                alc_store::current_host(),
                std::process::id(),
                now_ms,
            ],
        )
        .map_err(io)?;
        for (slot, (case_id, repeat)) in slots.iter().enumerate() {
            tx.execute(
                "INSERT INTO eval_progress_cases (eval_id, slot, case_id, repeat) VALUES (?1, ?2, ?3, ?4)",
                params![id, slot as i64, case_id, repeat],
            )
            .map_err(io)?;
        }
        tx.commit().map_err(io)?;
        Ok(id)
    }

    /// Takes over an unfinished eval for this process. Another live owner (fresh heartbeat,
    /// and a running process when on this host) → `busy`; a finished eval → `invalid_params`
    /// naming it; unknown → `eval_not_found`.
    pub fn claim(&mut self, eval_id: &str, now_ms: i64) -> Result<Unfinished, EvalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io)?;
        let Some(u) = unfinished_where(&tx, "p.eval_id = ?1", params![eval_id])?
            .into_iter()
            .next()
        else {
            let finished: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM eval_runs WHERE eval_id = ?1",
                    [eval_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(io)?;
            return Err(match finished {
                Some(_) => EvalError::invalid(format!("eval {eval_id} has already finished"))
                    .with_hint(format!("`alc eval show {eval_id}` prints its report")),
                None => EvalError::eval_not_found(eval_id),
            });
        };
        if let Some((host, pid)) = &u.owner {
            let me = *pid == std::process::id() && *host == alc_store::current_host();
            let fresh = now_ms - u.updated_at <= EVAL_OWNER_TTL_MS;
            let alive = *host != alc_store::current_host() || alc_store::pid_alive(*pid);
            if !me && fresh && alive {
                return Err(EvalError::busy(format!(
                    "eval {eval_id} is being run by process {pid} on {host}"
                ))
                .with_hint("wait for it to finish, or stop that process first"));
            }
        }
        tx.execute(
            "UPDATE eval_progress SET host = ?2, pid = ?3, heartbeat_at = ?4, updated_at = ?4
             WHERE eval_id = ?1",
            params![
                eval_id,
                alc_store::current_host(),
                std::process::id(),
                now_ms
            ],
        )
        .map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(u)
    }

    /// Refreshes this process's ownership of an unfinished eval.
    pub fn heartbeat(&self, eval_id: &str, now_ms: i64) -> Result<(), EvalError> {
        self.conn
            .execute(
                "UPDATE eval_progress SET heartbeat_at = ?2, updated_at = ?2 WHERE eval_id = ?1",
                params![eval_id, now_ms],
            )
            .map_err(io)?;
        Ok(())
    }

    /// Gives up ownership of an unfinished eval (it stays resumable at once).
    pub fn release(&self, eval_id: &str) -> Result<(), EvalError> {
        self.conn
            .execute(
                "UPDATE eval_progress SET host = NULL, pid = NULL WHERE eval_id = ?1",
                [eval_id],
            )
            .map_err(io)?;
        Ok(())
    }

    /// Records the session started for `slot` (before any of its queries is answered).
    pub fn record_session(
        &self,
        eval_id: &str,
        slot: usize,
        session_id: &str,
    ) -> Result<(), EvalError> {
        self.conn
            .execute(
                "UPDATE eval_progress_cases SET session_id = ?3 WHERE eval_id = ?1 AND slot = ?2",
                params![eval_id, slot as i64, session_id],
            )
            .map_err(io)?;
        Ok(())
    }

    /// Records the graded result of `slot`.
    pub fn record_result(
        &self,
        eval_id: &str,
        slot: usize,
        result: &crate::runner::CaseResult,
    ) -> Result<(), EvalError> {
        let text = serde_json::to_string(result).map_err(io)?;
        self.conn
            .execute(
                "UPDATE eval_progress_cases SET result = ?3, session_id = COALESCE(session_id, ?4)
                 WHERE eval_id = ?1 AND slot = ?2",
                params![eval_id, slot as i64, text, result.session_id],
            )
            .map_err(io)?;
        Ok(())
    }

    /// The slots of an unfinished eval, in slot order.
    pub fn slots(&self, eval_id: &str) -> Result<Vec<SlotRecord>, EvalError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT session_id, result FROM eval_progress_cases WHERE eval_id = ?1 ORDER BY slot",
            )
            .map_err(io)?;
        let rows = stmt
            .query_map([eval_id], |r| {
                Ok((
                    r.get::<_, Option<String>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                ))
            })
            .map_err(io)?;
        let mut out = Vec::new();
        for row in rows {
            let (session_id, result) = row.map_err(io)?;
            let result = match result {
                Some(t) => Some(serde_json::from_str(&t).map_err(|e| {
                    EvalError::io(format!(
                        "stored case result of eval {eval_id} is unreadable: {e}"
                    ))
                })?),
                None => None,
            };
            out.push(SlotRecord { session_id, result });
        }
        Ok(out)
    }

    /// Unfinished evals, newest first; `plan_hash` keeps only runs of that exact plan.
    pub fn unfinished(&self, plan_hash: Option<&str>) -> Result<Vec<Unfinished>, EvalError> {
        unfinished_where(
            &self.conn,
            "(?1 IS NULL OR p.plan_hash = ?1)",
            params![plan_hash],
        )
    }

    /// Stores the finished report of an unfinished eval under its id and forgets its
    /// progress, in one transaction.
    pub fn finish(&mut self, report: &Report) -> Result<(), EvalError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(io)?;
        insert_report(&tx, report)?;
        tx.execute(
            "DELETE FROM eval_progress_cases WHERE eval_id = ?1",
            [&report.eval_id],
        )
        .map_err(io)?;
        tx.execute(
            "DELETE FROM eval_progress WHERE eval_id = ?1",
            [&report.eval_id],
        )
        .map_err(io)?;
        tx.commit().map_err(io)
    }

    /// The stored report of `eval_id`; unknown → `eval_not_found`.
    pub fn get(&self, eval_id: &str) -> Result<Report, EvalError> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT report FROM eval_runs WHERE eval_id = ?1",
                [eval_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(io)?;
        let text = text.ok_or_else(|| EvalError::eval_not_found(eval_id))?;
        serde_json::from_str(&text)
            .map_err(|e| EvalError::io(format!("stored eval {eval_id} is unreadable: {e}")))
    }

    /// History meta rows (§8.6), newest first.
    pub fn history(
        &self,
        strategy: Option<&str>,
        scenario: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Value>, EvalError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {META_COLUMNS}
                 FROM eval_runs
                 WHERE (?1 IS NULL OR strategy = ?1) AND (?2 IS NULL OR scenario = ?2)
                 ORDER BY finished_at DESC, eval_id DESC LIMIT ?3"
            ))
            .map_err(io)?;
        let rows = stmt
            .query_map(params![strategy, scenario, limit as i64], meta_row)
            .map_err(io)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(io)
    }

    /// The history meta row (§8.6) of one stored eval; unknown → `eval_not_found`.
    pub fn meta(&self, eval_id: &str) -> Result<Value, EvalError> {
        self.conn
            .query_row(
                &format!("SELECT {META_COLUMNS} FROM eval_runs WHERE eval_id = ?1"),
                [eval_id],
                meta_row,
            )
            .optional()
            .map_err(io)?
            .ok_or_else(|| EvalError::eval_not_found(eval_id))
    }

    /// Other stored reports of the same scenario (by hash or name; latest per other
    /// strategy), for the HTML chart.
    pub fn peers(&self, report: &Report, limit: usize) -> Result<Vec<Report>, EvalError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT report FROM eval_runs
                 WHERE (scenario_hash = ?1 OR scenario = ?4) AND eval_id <> ?2
                 ORDER BY finished_at DESC LIMIT ?3",
            )
            .map_err(io)?;
        let rows = stmt
            .query_map(
                params![
                    report.scenario_hash,
                    report.eval_id,
                    (limit * 4) as i64,
                    report.scenario
                ],
                |r| r.get::<_, String>(0),
            )
            .map_err(io)?;
        let mut out: Vec<Report> = Vec::new();
        for text in rows {
            let text = text.map_err(io)?;
            if let Ok(r) = serde_json::from_str::<Report>(&text) {
                if r.strategy != report.strategy && !out.iter().any(|o| o.strategy == r.strategy) {
                    out.push(r);
                }
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }
}
