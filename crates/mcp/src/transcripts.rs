//! Session transcripts in `<home>/alc.db` (interfaces.md §2.10, §9.1, §9.3): rows
//! written from the journal's appends, in the journal's own transactions
//! ([`TranscriptMirror`]), and the queries behind `alc_log_view`, `alc_stats` and
//! `alc_note`.
//!
//! Tables live in their own namespace (`transcript_*`) next to whatever else the
//! database holds (the store's journal); the shared `schema_version` table carries this
//! component's version under `component = 'transcripts'`.
//!
//! What stays once a session ends follows `[log] transcripts` ([`TranscriptMode`]):
//! `full` keeps everything; `metadata` replaces each prompt, system prompt and response
//! by its size and digest (the text is kept while the session runs, for the caller's
//! views); `off` does the same and also deletes the session's logs and notes.
//!
//! Sessions are recorded when the journal is this database and [`Transcripts::mirror`]
//! is installed on it ([`Transcripts::record_journal`]: `alc serve` and the CLI do); a
//! server on an in-memory journal records none.

mod mirror;

pub use mirror::TranscriptMirror;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use alc_core::{digest_bytes, SessionMetrics};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::args::ToolError;
use crate::wire;

/// Schema version of the `transcript_*` tables (2 added the digest and size columns
/// of redacted exchanges and `transcript_sessions.retention`).
pub const SCHEMA_VERSION: i64 = 2;

/// Row of the shared `schema_version` table.
pub const COMPONENT: &str = "transcripts";

/// Per-session cap on stored log lines (§9.1).
pub const MAX_LOGS: u64 = 10_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transcript_sessions (
  session_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  strategy TEXT,
  task_hint TEXT,
  status TEXT NOT NULL,
  answerer TEXT,
  started_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  metrics TEXT NOT NULL,
  stats TEXT NOT NULL,
  retention TEXT
);
CREATE INDEX IF NOT EXISTS transcript_sessions_started ON transcript_sessions(started_at);
CREATE TABLE IF NOT EXISTS transcript_exchanges (
  session_id TEXT NOT NULL,
  round INTEGER NOT NULL,
  query_id TEXT NOT NULL,
  kind TEXT,
  prompt TEXT,
  system TEXT,
  response TEXT,
  error TEXT,
  usage TEXT,
  answered_by TEXT,
  model TEXT,
  started_at INTEGER,
  answered_at INTEGER,
  prompt_digest TEXT,
  prompt_chars INTEGER,
  system_digest TEXT,
  system_chars INTEGER,
  response_digest TEXT,
  response_chars INTEGER,
  PRIMARY KEY (session_id, round, query_id)
);
CREATE TABLE IF NOT EXISTS transcript_notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  timestamp INTEGER NOT NULL,
  title TEXT,
  content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transcript_notes_session ON transcript_notes(session_id);
CREATE TABLE IF NOT EXISTS transcript_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  session_id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  level TEXT NOT NULL,
  source TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transcript_logs_session ON transcript_logs(session_id);
";

/// Columns added by schema version 2, with their table and type (for upgrading a
/// version-1 database in place).
const V2_COLUMNS: &[(&str, &str, &str)] = &[
    ("transcript_sessions", "retention", "TEXT"),
    ("transcript_exchanges", "prompt_digest", "TEXT"),
    ("transcript_exchanges", "prompt_chars", "INTEGER"),
    ("transcript_exchanges", "system_digest", "TEXT"),
    ("transcript_exchanges", "system_chars", "INTEGER"),
    ("transcript_exchanges", "response_digest", "TEXT"),
    ("transcript_exchanges", "response_chars", "INTEGER"),
];

/// What a finished session's transcript keeps (`[log] transcripts`, interfaces.md §9.1;
/// `ALC_LOG_LEVEL=off` means [`TranscriptMode::Off`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TranscriptMode {
    /// Prompts, responses, logs and notes are kept.
    #[default]
    Full,
    /// Prompts, system prompts and responses are replaced by their sizes and digests
    /// when the session ends; logs and notes are kept.
    Metadata,
    /// As `Metadata`, and the session's logs and notes are deleted when it ends.
    Off,
}

impl TranscriptMode {
    /// Parses `full`, `metadata` or `off`.
    pub fn parse(s: &str) -> Option<TranscriptMode> {
        match s.trim() {
            "full" => Some(TranscriptMode::Full),
            "metadata" => Some(TranscriptMode::Metadata),
            "off" => Some(TranscriptMode::Off),
            _ => None,
        }
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TranscriptMode::Full => "full",
            TranscriptMode::Metadata => "metadata",
            TranscriptMode::Off => "off",
        }
    }
}

/// Applies the end-of-session rule of [`TranscriptMode::Metadata`] / [`TranscriptMode::Off`]
/// to one exchange of a transcript view: each text field (`prompt`, `system`, `response`,
/// `question`) holding a string becomes `null`, with `<field>_chars` (UTF-8 bytes) and
/// `<field>_digest` (first 16 bytes of SHA-256, hex) added. Views built from other
/// records than these tables (`alc sessions show --transcript`) use it to show what
/// `alc_log_view` shows.
pub fn redact_exchange(exchange: &mut Map<String, Value>) {
    for field in ["prompt", "system", "response", "question"] {
        if let Some(Value::String(text)) = exchange.get(field) {
            // Journal records of a finished session may already be stand-ins.
            let (chars, digest) = match alc_core::parse_redacted(text) {
                Some((bytes, digest)) => (bytes, digest.to_string()),
                None => (text.len(), digest_bytes(text.as_bytes())),
            };
            exchange.insert(field.into(), Value::Null);
            exchange.insert(format!("{field}_chars"), json!(chars));
            exchange.insert(format!("{field}_digest"), json!(digest));
        }
    }
}

fn column_exists(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    let mut stmt = conn.prepare(&format!("PRAGMA table_info({table})"))?;
    let names = stmt.query_map([], |r| r.get::<_, String>(1))?;
    for n in names {
        if n? == column {
            return Ok(true);
        }
    }
    Ok(false)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn io(e: impl std::fmt::Display) -> ToolError {
    ToolError::new("io_error", format!("transcript database: {e}"))
}

/// The transcript store.
pub struct Transcripts {
    path: PathBuf,
    conn: Arc<Mutex<Connection>>,
    mode: TranscriptMode,
}

impl std::fmt::Debug for Transcripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transcripts")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Creates the transcript tables, or upgrades them from version 1, in one immediate
/// transaction; refuses a newer schema.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let has_table: bool = tx
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |_| Ok(()),
        )
        .optional()
        .map_err(|e| e.to_string())?
        .is_some();
    let existing: Option<i64> = if has_table {
        tx.query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [COMPONENT],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?
    } else {
        None
    };
    if let Some(v) = existing.filter(|v| *v > SCHEMA_VERSION) {
        return Err(format!(
            "{}: transcript schema version {v} is newer than this binary's ({SCHEMA_VERSION})",
            path.display()
        ));
    }
    tx.execute_batch(SCHEMA).map_err(|e| e.to_string())?;
    // `CREATE TABLE IF NOT EXISTS` leaves a version-1 table as it was.
    for (table, column, ty) in V2_COLUMNS {
        if !column_exists(&tx, table, column).map_err(|e| e.to_string())? {
            tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                .map_err(|e| e.to_string())?;
        }
    }
    if existing != Some(SCHEMA_VERSION) {
        tx.execute(
            "INSERT INTO schema_version (component, version) VALUES (?1, ?2)
             ON CONFLICT(component) DO UPDATE SET version = excluded.version",
            params![COMPONENT, SCHEMA_VERSION],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}

impl Transcripts {
    /// Opens (creating, or upgrading from version 1) the database at `path`, in
    /// [`TranscriptMode::Full`] (see [`Transcripts::with_mode`]).
    pub fn open(path: &Path) -> Result<Transcripts, String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let conn = Connection::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| e.to_string())?;
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        // Transcripts are a record, not the source of truth (the journal is): under WAL,
        // NORMAL keeps the file consistent across a crash and skips an fsync per commit.
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        Transcripts::open_shared(Arc::new(Mutex::new(conn)), path)
    }

    /// Records the sessions appended through `journal` (a journal on the database at
    /// `path`) in this store's tables, kept in `mode`: installs [`Transcripts::mirror`]
    /// on the journal, and has it redact a finished session's texts in `metadata` and
    /// `off` modes (that part even when the tables cannot be opened). Returns the store
    /// for reading. Call it before the journal is handed out (clones made earlier do
    /// not record).
    pub fn record_journal(
        journal: &mut alc_store::SqliteJournal,
        path: &Path,
        mode: TranscriptMode,
    ) -> Result<Transcripts, String> {
        journal.set_redact_finished(mode != TranscriptMode::Full);
        let t = Transcripts::open_shared(journal.shared_connection(), path)?.with_mode(mode);
        journal.set_mirror(t.mirror());
        Ok(t)
    }

    /// Opens the transcript tables through `conn`, a connection to `path` that this
    /// process also uses for other tables (the journal's, see
    /// `alc_store::SqliteJournal::shared_connection`), creating or upgrading them as
    /// [`Transcripts::open`] does.
    pub fn open_shared(conn: Arc<Mutex<Connection>>, path: &Path) -> Result<Transcripts, String> {
        migrate(&mut conn.lock().unwrap_or_else(|e| e.into_inner()), path)?;
        Ok(Transcripts {
            path: path.to_path_buf(),
            conn,
            mode: TranscriptMode::Full,
        })
    }

    /// Sets what finished sessions keep (`[log] transcripts`).
    pub fn with_mode(mut self, mode: TranscriptMode) -> Transcripts {
        self.mode = mode;
        self
    }

    /// What finished sessions keep.
    pub fn mode(&self) -> TranscriptMode {
        self.mode
    }

    /// The writer of this store's rows for a journal on the same database
    /// (`alc_store::SqliteJournal::set_mirror`), in this store's mode.
    pub fn mirror(&self) -> Arc<TranscriptMirror> {
        Arc::new(TranscriptMirror { mode: self.mode })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Names `answerer` as the session's answerer from now on (a switch made by
    /// `alc_continue`, which the journal does not record).
    pub fn set_answerer(&self, session_id: &str, answerer: &str) -> Result<(), ToolError> {
        self.conn()
            .execute(
                "UPDATE transcript_sessions SET answerer = ?2 WHERE session_id = ?1",
                params![session_id, answerer],
            )
            .map(|_| ())
            .map_err(io)
    }

    /// True when the session has a row.
    pub fn has_session(&self, session_id: &str) -> Result<bool, ToolError> {
        self.conn()
            .query_row(
                "SELECT 1 FROM transcript_sessions WHERE session_id = ?1",
                params![session_id],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
            .map_err(io)
    }

    /// Adds a note; returns the session's note count. In [`TranscriptMode::Off`] a
    /// note on a session that already ended is not kept (the count is then 0).
    pub fn add_note(
        &self,
        session_id: &str,
        title: Option<&str>,
        content: &str,
    ) -> Result<u64, ToolError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(io)?;
        tx.execute(
            "INSERT INTO transcript_notes (session_id, timestamp, title, content) VALUES (?1, ?2, ?3, ?4)",
            params![session_id, now_ms() / 1000, title, content],
        )
        .map_err(io)?;
        if self.mode == TranscriptMode::Off {
            redact_if_finished(&tx, session_id, self.mode).map_err(io)?;
        }
        let n = tx
            .query_row(
                "SELECT COUNT(*) FROM transcript_notes WHERE session_id = ?1",
                params![session_id],
                |r| r.get::<_, i64>(0),
            )
            .map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(n as u64)
    }

    fn meta_of(row: &SessionRow, notes_count: u64) -> Value {
        let m = &row.metrics;
        let n = |k: &str| m.get(k).cloned().unwrap_or(json!(0));
        let tok = |k: &str| {
            m.get(k)
                .and_then(|t| t.get("tokens"))
                .cloned()
                .unwrap_or(json!(0))
        };
        json!({
            "session_id": row.session_id,
            "strategy": row.strategy,
            "task_hint": row.task_hint,
            "status": row.status,
            "elapsed_ms": n("elapsed_ms"),
            "rounds": n("rounds"),
            "llm_calls": n("llm_calls"),
            "total_prompt_chars": n("total_prompt_chars"),
            "total_response_chars": n("total_response_chars"),
            "prompt_tokens": tok("prompt_tokens"),
            "response_tokens": tok("response_tokens"),
            "total_tokens": tok("total_tokens"),
            "notes_count": notes_count,
            "started_at": row.started_at,
        })
    }

    fn sessions(
        &self,
        where_sql: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<SessionRow>, ToolError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT session_id, strategy, task_hint, status, started_at, metrics, stats,
                    (SELECT COUNT(*) FROM transcript_notes n WHERE n.session_id = s.session_id),
                    retention
             FROM transcript_sessions s {where_sql}"
        );
        let mut stmt = conn.prepare(&sql).map_err(io)?;
        let rows = stmt
            .query_map(args, |r| {
                Ok(SessionRow {
                    session_id: r.get(0)?,
                    strategy: r.get(1)?,
                    task_hint: r.get(2)?,
                    status: r.get(3)?,
                    started_at: r.get(4)?,
                    metrics: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(Value::Null),
                    stored_stats: r.get(6)?,
                    notes_count: r.get::<_, i64>(7)? as u64,
                    retention: r.get(8)?,
                })
            })
            .map_err(io)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(io)
    }

    /// `alc_log_view` list mode.
    pub fn list(&self, limit: u64) -> Result<Value, ToolError> {
        let limit = limit.min(i64::MAX as u64) as i64;
        let rows = self.sessions("ORDER BY started_at DESC, rowid DESC LIMIT ?1", &[&limit])?;
        let sessions: Vec<Value> = rows
            .iter()
            .map(|r| Self::meta_of(r, r.notes_count))
            .collect();
        Ok(json!({"sessions": sessions}))
    }

    /// `alc_log_view` detail mode (`None` = unknown session).
    pub fn detail(&self, session_id: &str, max_chars: u64) -> Result<Option<Value>, ToolError> {
        let rows = self.sessions("WHERE session_id = ?1", &[&session_id])?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT query_id, round, kind, prompt, system, response, error, usage, answered_by, model,
                        started_at, answered_at, prompt_digest, prompt_chars, system_digest,
                        system_chars, response_digest, response_chars
                 FROM transcript_exchanges WHERE session_id = ?1
                 ORDER BY round, started_at, CAST(SUBSTR(query_id, 3) AS INTEGER), query_id",
            )
            .map_err(io)?;
        let exchanges: Vec<(u64, usize, Value)> = stmt
            .query_map(params![session_id], |r| {
                let prompt: Option<String> = r.get(3)?;
                let system: Option<String> = r.get(4)?;
                let response: Option<String> = r.get(5)?;
                let size = prompt.as_deref().map_or(0, str::len)
                    + system.as_deref().map_or(0, str::len)
                    + response.as_deref().map_or(0, str::len);
                let round = r.get::<_, i64>(1)? as u64;
                let parse =
                    |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
                let mut m = Map::new();
                m.insert("query_id".into(), json!(r.get::<_, String>(0)?));
                m.insert("round".into(), json!(round));
                if r.get::<_, Option<String>>(2)?.as_deref() == Some("human") {
                    m.insert("kind".into(), json!("human"));
                }
                m.insert("prompt".into(), json!(prompt));
                m.insert("system".into(), json!(system));
                m.insert("response".into(), json!(response));
                if let Some(e) = parse(r.get(6)?) {
                    m.insert("error".into(), e);
                }
                m.insert("usage".into(), parse(r.get(7)?).unwrap_or(Value::Null));
                m.insert("answered_by".into(), json!(r.get::<_, Option<String>>(8)?));
                m.insert("model".into(), json!(r.get::<_, Option<String>>(9)?));
                m.insert("started_at".into(), json!(r.get::<_, Option<i64>>(10)?));
                m.insert("answered_at".into(), json!(r.get::<_, Option<i64>>(11)?));
                // Redacted texts (§9.1 `metadata` / `off`): their sizes and digests.
                for (i, field) in ["prompt", "system", "response"].iter().enumerate() {
                    let col = 12 + 2 * i;
                    if let Some(d) = r.get::<_, Option<String>>(col)? {
                        m.insert(format!("{field}_digest"), json!(d));
                        m.insert(
                            format!("{field}_chars"),
                            json!(r.get::<_, Option<i64>>(col + 1)?),
                        );
                    }
                }
                Ok((round, size, Value::Object(m)))
            })
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        let notes: Vec<Value> = conn
            .prepare("SELECT timestamp, title, content FROM transcript_notes WHERE session_id = ?1 ORDER BY id")
            .map_err(io)?
            .query_map(params![session_id], |r| {
                Ok(json!({"timestamp": r.get::<_, i64>(0)?, "title": r.get::<_, Option<String>>(1)?,
                          "content": r.get::<_, String>(2)?}))
            })
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        let logs: Vec<Value> = conn
            .prepare("SELECT ts, level, source, message FROM transcript_logs WHERE session_id = ?1 ORDER BY id")
            .map_err(io)?
            .query_map(params![session_id], |r| {
                Ok(json!({"ts": r.get::<_, i64>(0)?, "level": r.get::<_, String>(1)?,
                          "source": r.get::<_, String>(2)?, "message": r.get::<_, String>(3)?}))
            })
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        drop(stmt);
        drop(conn);
        // Drop the oldest rounds until the exchanges fit in `max_chars` (0 = unlimited).
        let mut rounds: Vec<u64> = exchanges.iter().map(|e| e.0).collect();
        rounds.dedup();
        let original_rounds = rounds.len();
        let mut total: usize = exchanges.iter().map(|e| e.1).sum();
        let mut dropped = 0usize;
        if max_chars > 0 {
            while total as u64 > max_chars && dropped < rounds.len() {
                let r = rounds[dropped];
                total -= exchanges
                    .iter()
                    .filter(|e| e.0 == r)
                    .map(|e| e.1)
                    .sum::<usize>();
                dropped += 1;
            }
        }
        let kept: Vec<Value> = exchanges
            .into_iter()
            .filter(|e| !rounds[..dropped].contains(&e.0))
            .map(|e| e.2)
            .collect();
        let mut out = json!({
            "session_id": row.session_id,
            "strategy": row.strategy,
            "task_hint": row.task_hint,
            "status": row.status,
            "stats": row.stats(),
            "transcript": kept,
            "notes": notes,
            "logs": logs,
        });
        if let Some(mode) = &row.retention {
            out["transcript_mode"] = json!(mode);
        }
        if dropped > 0 {
            out["truncated"] = json!(true);
            out["original_rounds"] = json!(original_rounds);
            out["returned_rounds"] = json!(original_rounds - dropped);
        }
        Ok(Some(out))
    }

    /// `alc_stats`.
    pub fn stats(&self, strategy: Option<&str>, since_ms: Option<i64>) -> Result<Value, ToolError> {
        let since = since_ms.unwrap_or(i64::MIN);
        let rows = self.sessions("WHERE started_at >= ?1", &[&since])?;
        #[derive(Default)]
        struct Agg {
            count: u64,
            elapsed: u64,
            llm: u64,
            rounds: u64,
            pchars: u64,
            rchars: u64,
            ptok: u64,
            rtok: u64,
            ttok: u64,
        }
        let mut by: BTreeMap<String, Agg> = BTreeMap::new();
        let mut by_status: BTreeMap<String, u64> = ["completed", "failed", "cancelled"]
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect();
        let mut total = 0u64;
        for r in &rows {
            let name = r.strategy.clone().unwrap_or_else(|| "unknown".into());
            if strategy.is_some_and(|s| s != name) {
                continue;
            }
            total += 1;
            *by_status.entry(r.status.clone()).or_default() += 1;
            let m = &r.metrics;
            let n = |k: &str| m.get(k).and_then(Value::as_u64).unwrap_or(0);
            let t = |k: &str| {
                m.get(k)
                    .and_then(|t| t.get("tokens"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
            };
            let a = by.entry(name).or_default();
            a.count += 1;
            a.elapsed += n("elapsed_ms");
            a.llm += n("llm_calls");
            a.rounds += n("rounds");
            a.pchars += n("total_prompt_chars");
            a.rchars += n("total_response_chars");
            a.ptok += t("prompt_tokens");
            a.rtok += t("response_tokens");
            a.ttok += t("total_tokens");
        }
        let avg = |sum: u64, n: u64| ((sum as f64) / (n.max(1) as f64)).round() as u64;
        let strategies: Map<String, Value> = by
            .into_iter()
            .map(|(k, a)| {
                (
                    k,
                    json!({
                        "count": a.count,
                        "avg_elapsed_ms": avg(a.elapsed, a.count),
                        "avg_llm_calls": avg(a.llm, a.count),
                        "avg_rounds": avg(a.rounds, a.count),
                        "total_prompt_chars": a.pchars,
                        "total_response_chars": a.rchars,
                        "total_prompt_tokens": a.ptok,
                        "total_response_tokens": a.rtok,
                        "total_tokens": a.ttok,
                    }),
                )
            })
            .collect();
        Ok(json!({"total_sessions": total, "strategies": strategies, "by_status": by_status}))
    }
}

/// Applies `mode` (`metadata` or `off`) again to a session that already ended (a write
/// that arrives after the end must not bring text back).
fn redact_if_finished(
    conn: &Connection,
    session_id: &str,
    mode: TranscriptMode,
) -> rusqlite::Result<()> {
    let finished = conn
        .query_row(
            "SELECT 1 FROM transcript_sessions WHERE session_id = ?1 AND retention IS NOT NULL",
            params![session_id],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if finished {
        redact(conn, session_id, mode)?;
    }
    Ok(())
}

struct SessionRow {
    session_id: String,
    strategy: Option<String>,
    task_hint: Option<String>,
    status: String,
    started_at: i64,
    metrics: Value,
    /// The `stats` column: written by versions before the stats were derived from the
    /// metrics on read; `{}` since.
    stored_stats: String,
    notes_count: u64,
    /// The mode applied when the session ended (`None` = nothing removed).
    retention: Option<String>,
}

impl SessionRow {
    /// The session's `stats` as `alc_status` reports them, derived from its metrics.
    fn stats(&self) -> Value {
        match SessionMetrics::deserialize(&self.metrics) {
            Ok(m) => wire::stats(&m, None),
            Err(_) => serde_json::from_str(&self.stored_stats).unwrap_or(Value::Null),
        }
    }
}

/// Replaces the prompts, system prompts and responses of a finished session by their
/// sizes (UTF-8 bytes) and digests (first 16 bytes of SHA-256, hex), clears its task
/// hint (a preview of the task or first prompt) and, in [`TranscriptMode::Off`],
/// deletes its logs and notes. Idempotent; runs inside the caller's transaction.
fn redact(tx: &Connection, session_id: &str, mode: TranscriptMode) -> rusqlite::Result<()> {
    type Texts = (i64, String, Option<String>, Option<String>, Option<String>);
    {
        let rows: Vec<Texts> = tx
            .prepare_cached(
                "SELECT round, query_id, prompt, system, response FROM transcript_exchanges
                 WHERE session_id = ?1
                   AND (prompt IS NOT NULL OR system IS NOT NULL OR response IS NOT NULL)",
            )?
            .query_map(params![session_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut update = tx.prepare_cached(
            "UPDATE transcript_exchanges SET
               prompt_digest = COALESCE(?4, prompt_digest), prompt_chars = COALESCE(?5, prompt_chars),
               system_digest = COALESCE(?6, system_digest), system_chars = COALESCE(?7, system_chars),
               response_digest = COALESCE(?8, response_digest),
               response_chars = COALESCE(?9, response_chars),
               prompt = NULL, system = NULL, response = NULL
             WHERE session_id = ?1 AND round = ?2 AND query_id = ?3",
        )?;
        let digest = |t: &Option<String>| t.as_deref().map(|t| digest_bytes(t.as_bytes()));
        let size = |t: &Option<String>| t.as_deref().map(|t| t.len() as i64);
        for (round, qid, prompt, system, response) in &rows {
            update.execute(params![
                session_id,
                round,
                qid,
                digest(prompt),
                size(prompt),
                digest(system),
                size(system),
                digest(response),
                size(response)
            ])?;
        }
    }
    if mode == TranscriptMode::Off {
        tx.execute(
            "DELETE FROM transcript_logs WHERE session_id = ?1",
            params![session_id],
        )?;
        tx.execute(
            "DELETE FROM transcript_notes WHERE session_id = ?1",
            params![session_id],
        )?;
    }
    tx.execute(
        "UPDATE transcript_sessions SET retention = ?2, task_hint = NULL WHERE session_id = ?1",
        params![session_id, mode.as_str()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alc_core::{
        Answer, Durability, Journal, JournalRecord, Phase, Program, QueryId, RecordBody, RowUpdate,
        SessionAppend, SessionId, SessionMetrics, SessionSpec,
    };
    use alc_store::SqliteJournal;

    fn temp_db() -> PathBuf {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        std::env::temp_dir()
            .join(format!("alc-transcripts-{}-{n}", std::process::id()))
            .join("alc.db")
    }

    #[test]
    fn answers_notes_and_truncation() {
        let path = temp_db();
        let t = Transcripts::open(&path).unwrap();
        assert!(!t.has_session("s-1").unwrap());
        t.conn()
            .execute(
                "INSERT INTO transcript_sessions (session_id, kind, status, started_at, updated_at, metrics, stats)
                 VALUES ('s-1', 'run', 'completed', 5, 5, '{\"llm_calls\":2,\"rounds\":2,\"elapsed_ms\":10}', '{}')",
                [],
            )
            .unwrap();
        {
            let c = t.conn();
            for round in 1..=2u64 {
                let mut a = Answer::text(QueryId::parse("q-0"), "x".repeat(50));
                a.meta.answerer = Some("host".into());
                mirror::write_answer(&c, "s-1", round, 7, &a).unwrap();
            }
        }
        assert_eq!(t.add_note("s-1", Some("t"), "c").unwrap(), 1);
        let d = t.detail("s-1", 0).unwrap().unwrap();
        assert_eq!(d["transcript"].as_array().unwrap().len(), 2);
        assert_eq!(d["transcript"][0]["answered_by"], "host");
        assert_eq!(d["notes"][0]["title"], "t");
        assert!(d.get("truncated").is_none());
        let d = t.detail("s-1", 60).unwrap().unwrap();
        assert_eq!(d["truncated"], true);
        assert_eq!(d["original_rounds"], 2);
        assert_eq!(d["returned_rounds"], 1);
        assert_eq!(d["transcript"][0]["round"], 2);
        let l = t.list(10).unwrap();
        assert_eq!(l["sessions"][0]["notes_count"], 1);
        assert_eq!(l["sessions"][0]["llm_calls"], 2);
        let s = t.stats(None, None).unwrap();
        assert_eq!(s["total_sessions"], 1);
        assert_eq!(s["strategies"]["unknown"]["avg_llm_calls"], 2);
        assert_eq!(s["by_status"]["completed"], 1);
        // reopening keeps the data and the schema version
        drop(t);
        let t = Transcripts::open(&path).unwrap();
        assert!(t.has_session("s-1").unwrap());
        assert_eq!(schema_version(&t), SCHEMA_VERSION);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// The transcripts schema version recorded in the database.
    fn schema_version(t: &Transcripts) -> i64 {
        t.conn()
            .query_row(
                "SELECT version FROM schema_version WHERE component = 'transcripts'",
                [],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// A journal at `path` whose appends write the transcript rows of `t`, as `alc serve`
    /// sets them up.
    fn recorded(path: &Path, mode: TranscriptMode) -> (SqliteJournal, Transcripts) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut j = SqliteJournal::open(path, Durability::Normal).unwrap();
        let t = Transcripts::record_journal(&mut j, path, mode).unwrap();
        (j, t)
    }

    /// One session's appends to a journal.
    struct Session<'a> {
        journal: &'a SqliteJournal,
        id: SessionId,
        last: u64,
    }

    impl Session<'_> {
        /// Appends `bodies` at time `at` with the session row in `phase`.
        fn append(&mut self, at: i64, phase: Phase, bodies: Vec<RecordBody>) {
            let records: Vec<JournalRecord> = bodies
                .into_iter()
                .enumerate()
                .map(|(i, body)| JournalRecord {
                    session_id: self.id.clone(),
                    seq: self.last + 1 + i as u64,
                    vm: 0,
                    at,
                    body,
                })
                .collect();
            self.last += records.len() as u64;
            let mut row = RowUpdate::new(phase, 1, at);
            row.metrics = Some(SessionMetrics {
                llm_calls: 1,
                ..SessionMetrics::default()
            });
            self.journal
                .append(&[SessionAppend {
                    session_id: self.id.clone(),
                    records,
                    row,
                }])
                .unwrap();
        }

        /// Ends the session in `phase`.
        fn end(&mut self, phase: Phase) {
            self.append(9, phase, vec![]);
        }
    }

    /// The `spawned` record of a session asking an LLM for `ctx.task`, with `labels`.
    fn spawned(labels: &[(&str, &str)]) -> RecordBody {
        let mut spec = SessionSpec::new(Program::Code {
            source: "return alc.llm(ctx.task)".into(),
            name: None,
        });
        for (k, v) in labels {
            spec.labels.insert(k.to_string(), v.to_string());
        }
        RecordBody::Spawned {
            spec: Arc::new(spec),
            seed: 1,
            engine_version: "test".into(),
            journal_format: 1,
        }
    }

    /// Starts session `id` through `j` (spawned and paused on one LLM query, whose answer
    /// and a log line follow) and adds a note.
    fn one_session<'a>(j: &'a SqliteJournal, t: &Transcripts, id: &str) -> Session<'a> {
        let query = serde_json::from_value(json!({
            "id": "q-0", "origin": {"vm": "main"},
            "request": {"kind": "llm", "prompt": "PROMPT TEXT", "system": "SYSTEM TEXT",
                        "max_tokens": 1024},
            "digest": "0".repeat(32)}))
        .unwrap();
        let mut s = Session {
            journal: j,
            id: SessionId::parse(id).unwrap(),
            last: 0,
        };
        let spawned = spawned(&[
            ("kind", "run"),
            ("task_hint", "TASK TEXT"),
            ("answerer", "host"),
        ]);
        let pause = RecordBody::Pause {
            round: 1,
            queries: vec![query].into(),
        };
        s.append(5, Phase::Paused, vec![spawned, pause]);
        let mut a = Answer::text(QueryId::parse("q-0"), "RESPONSE TEXT");
        a.meta.answerer = Some("host".into());
        let log = alc_core::LogEntry {
            ts: 7,
            level: "info".into(),
            source: "print".into(),
            message: "LOG TEXT".into(),
        };
        s.append(
            7,
            Phase::Running,
            vec![
                RecordBody::Answer {
                    round: 1,
                    answer: Box::new(a),
                },
                RecordBody::Log { entry: log },
            ],
        );
        t.add_note(id, Some("n"), "NOTE TEXT").unwrap();
        s
    }

    #[test]
    fn metadata_mode_keeps_text_until_the_end_then_sizes_and_digests() {
        let path = temp_db();
        let (j, t) = recorded(&path, TranscriptMode::Metadata);
        let id = "s-00000000000000000000000000000001";
        let mut s = one_session(&j, &t, id);
        // While the session runs, the text is there.
        let d = t.detail(id, 0).unwrap().unwrap();
        assert_eq!(d["transcript"][0]["prompt"], "PROMPT TEXT");
        assert_eq!(d["transcript"][0]["response"], "RESPONSE TEXT");
        assert!(d.get("transcript_mode").is_none());
        s.end(Phase::Completed);
        let d = t.detail(id, 0).unwrap().unwrap();
        let text = d.to_string();
        for gone in ["PROMPT TEXT", "SYSTEM TEXT", "RESPONSE TEXT", "TASK TEXT"] {
            assert!(!text.contains(gone), "{gone} still in {text}");
        }
        let x = &d["transcript"][0];
        assert_eq!(d["transcript_mode"], "metadata");
        assert!(x["prompt"].is_null() && x["response"].is_null());
        assert_eq!(x["prompt_chars"], "PROMPT TEXT".len());
        assert_eq!(x["system_chars"], "SYSTEM TEXT".len());
        assert_eq!(x["response_chars"], "RESPONSE TEXT".len());
        assert_eq!(x["prompt_digest"], digest_bytes(b"PROMPT TEXT"));
        assert_eq!(x["response_digest"], digest_bytes(b"RESPONSE TEXT"));
        assert_eq!(x["answered_by"], "host");
        // Logs and notes stay in metadata mode.
        assert_eq!(d["logs"][0]["message"], "LOG TEXT");
        assert_eq!(d["notes"][0]["content"], "NOTE TEXT");
        // Nor does the raw database hold the texts, in the transcript or in the journal.
        drop((t, j));
        let raw = Connection::open(&path).unwrap();
        let n: i64 = raw
            .query_row(
                "SELECT COUNT(*) FROM transcript_exchanges
                 WHERE prompt IS NOT NULL OR system IS NOT NULL OR response IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
        let n: i64 = raw
            .query_row(
                "SELECT COUNT(*) FROM records
                 WHERE body LIKE '%PROMPT TEXT%' OR body LIKE '%RESPONSE TEXT%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn off_mode_also_drops_logs_and_notes_at_the_end() {
        let path = temp_db();
        let (j, t) = recorded(&path, TranscriptMode::Off);
        let id = "s-00000000000000000000000000000002";
        let mut s = one_session(&j, &t, id);
        let d = t.detail(id, 0).unwrap().unwrap();
        assert_eq!(d["notes"][0]["content"], "NOTE TEXT");
        assert_eq!(d["logs"][0]["message"], "LOG TEXT");
        s.end(Phase::Failed);
        let d = t.detail(id, 0).unwrap().unwrap();
        assert_eq!(d["transcript_mode"], "off");
        assert_eq!(d["logs"], json!([]));
        assert_eq!(d["notes"], json!([]));
        assert_eq!(d["transcript"][0]["prompt_chars"], "PROMPT TEXT".len());
        // A note on the finished session is not kept.
        assert_eq!(t.add_note(id, None, "LATE NOTE").unwrap(), 0);
        assert_eq!(t.list(10).unwrap()["sessions"][0]["notes_count"], 0);
        // Full mode (the default) keeps everything after the end.
        drop((t, j));
        let (j, full) = recorded(&path, TranscriptMode::Full);
        assert_eq!(full.mode(), TranscriptMode::Full);
        let id = "s-00000000000000000000000000000003";
        one_session(&j, &full, id).end(Phase::Completed);
        let d = full.detail(id, 0).unwrap().unwrap();
        assert_eq!(d["status"], "completed");
        assert_eq!(d["task_hint"], "TASK TEXT");
        // `stats` as `alc_status` reports them, from the row's metrics.
        assert_eq!(d["stats"]["auto"]["llm_calls"], 1);
        assert_eq!(d["stats"]["auto"]["rounds"], 0);
        assert_eq!(d["transcript"][0]["prompt"], "PROMPT TEXT");
        assert_eq!(d["transcript"][0]["system"], "SYSTEM TEXT");
        assert_eq!(d["transcript"][0]["response"], "RESPONSE TEXT");
        assert_eq!(d["transcript"][0]["answered_by"], "host");
        assert_eq!(d["logs"][0]["message"], "LOG TEXT");
        assert!(d.get("transcript_mode").is_none());
        let l = full.list(10).unwrap();
        let row = l["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["session_id"] == id)
            .unwrap();
        assert_eq!(row["llm_calls"], 1);
        // The answerer column follows a switch.
        let answerer = |t: &Transcripts| -> String {
            t.conn()
                .query_row(
                    "SELECT answerer FROM transcript_sessions WHERE session_id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .unwrap()
        };
        assert_eq!(answerer(&full), "host");
        full.set_answerer(id, "provider").unwrap();
        assert_eq!(answerer(&full), "provider");
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_session_begun_without_the_mirror_gets_its_row_from_the_journal() {
        let path = temp_db();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let id = SessionId::parse("s-00000000000000000000000000000005").unwrap();
        // Begun through a journal that records no transcripts (an earlier version).
        {
            let plain = SqliteJournal::open(&path, Durability::Normal).unwrap();
            let spawned = spawned(&[
                ("kind", "advice"),
                ("strategy", "cot"),
                ("task_hint", "TASK TEXT"),
            ]);
            let mut row = RowUpdate::new(Phase::Paused, 1, 5);
            if let RecordBody::Spawned { spec, .. } = &spawned {
                row.labels = Some(spec.labels.clone());
            }
            plain
                .append(&[SessionAppend {
                    session_id: id.clone(),
                    records: vec![JournalRecord {
                        session_id: id.clone(),
                        seq: 1,
                        vm: 0,
                        at: 5,
                        body: spawned,
                    }],
                    row,
                }])
                .unwrap();
        }
        // Continued through one that does.
        let (j, t) = recorded(&path, TranscriptMode::Full);
        assert!(t.detail(id.as_str(), 0).unwrap().is_none());
        let mut s = Session {
            journal: &j,
            id: id.clone(),
            last: 1,
        };
        let answer = Answer::text(QueryId::parse("q-0"), "RESPONSE TEXT");
        s.append(
            7,
            Phase::Running,
            vec![RecordBody::Answer {
                round: 1,
                answer: Box::new(answer),
            }],
        );
        s.end(Phase::Completed);
        let d = t.detail(id.as_str(), 0).unwrap().unwrap();
        assert_eq!(d["status"], "completed");
        assert_eq!(d["strategy"], "cot");
        assert_eq!(d["task_hint"], "TASK TEXT");
        assert_eq!(d["transcript"][0]["response"], "RESPONSE TEXT");
        assert_eq!(d["stats"]["auto"]["llm_calls"], 1);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_version_1_database_is_upgraded_in_place() {
        let path = temp_db();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        {
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
                 INSERT INTO schema_version VALUES ('transcripts', 1);
                 CREATE TABLE transcript_sessions (session_id TEXT PRIMARY KEY, kind TEXT NOT NULL,
                   strategy TEXT, task_hint TEXT, status TEXT NOT NULL, answerer TEXT,
                   started_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, metrics TEXT NOT NULL,
                   stats TEXT NOT NULL);
                 CREATE TABLE transcript_exchanges (session_id TEXT NOT NULL, round INTEGER NOT NULL,
                   query_id TEXT NOT NULL, kind TEXT, prompt TEXT, system TEXT, response TEXT,
                   error TEXT, usage TEXT, answered_by TEXT, model TEXT, started_at INTEGER,
                   answered_at INTEGER, PRIMARY KEY (session_id, round, query_id));",
            )
            .unwrap();
        }
        let (j, t) = recorded(&path, TranscriptMode::Metadata);
        let id = "s-00000000000000000000000000000004";
        one_session(&j, &t, id).end(Phase::Completed);
        let d = t.detail(id, 0).unwrap().unwrap();
        assert_eq!(d["transcript"][0]["prompt_chars"], "PROMPT TEXT".len());
        assert_eq!(schema_version(&t), SCHEMA_VERSION);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn redact_exchange_keeps_sizes_and_digests() {
        let mut m = json!({"prompt": "héllo", "system": null, "response": "ok", "round": 1})
            .as_object()
            .unwrap()
            .clone();
        redact_exchange(&mut m);
        assert!(m["prompt"].is_null() && m["response"].is_null() && m["system"].is_null());
        assert_eq!(m["prompt_chars"], 6);
        assert_eq!(m["prompt_digest"], digest_bytes("héllo".as_bytes()));
        assert_eq!(m["response_chars"], 2);
        assert!(!m.contains_key("system_chars"));
        assert_eq!(m["round"], 1);
    }

    #[test]
    fn modes_parse() {
        for m in [
            TranscriptMode::Full,
            TranscriptMode::Metadata,
            TranscriptMode::Off,
        ] {
            assert_eq!(TranscriptMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(TranscriptMode::parse("verbose"), None);
    }
}
