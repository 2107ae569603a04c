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
";

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
        let mut ms = now_ms;
        let id = loop {
            let candidate = format!("{}_{ms}", report.strategy);
            let taken: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM eval_runs WHERE eval_id = ?1",
                    [&candidate],
                    |r| r.get(0),
                )
                .optional()
                .map_err(io)?;
            if taken.is_none() {
                break candidate;
            }
            ms += 1;
        };
        report.eval_id = id.clone();
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
        tx.commit().map_err(io)?;
        Ok(id)
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
