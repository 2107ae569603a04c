//! `SqliteJournal`: the durable journal (§7.4) and leases (§5.5).

use crate::lease::{current_host, pid_alive, LEASE_TTL_MS};
use crate::mirror::AppendMirror;
use crate::now_ms;
use crate::schema::{io, migrate};
use crate::state_sqlite::SqliteStateStore;
use alc_core::{
    Durability, Journal, JournalError, JournalRecord, LeaseResult, OwnerId, Phase, RecordBody,
    RowFilter, SessionAppend, SessionId, SessionRow, SessionStatus,
};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A heartbeat younger than this (ms) is not rewritten when a new session takes its
/// owner's lease: a small fraction of [`LEASE_TTL_MS`], so the lease stays far from void.
const OWNER_FRESH_MS: i64 = 1_000;

/// The shared connection of one journal handle and the state stores derived from it.
pub(crate) type SharedConn = Arc<Mutex<Connection>>;

pub(crate) fn lock(conn: &SharedConn) -> MutexGuard<'_, Connection> {
    conn.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn db_err(e: rusqlite::Error) -> JournalError {
    JournalError::Io {
        message: e.to_string(),
    }
}

/// Opens (creating if needed) the database at `path` with the pragmas of §7.4 and runs the
/// migrations.
pub(crate) fn open_connection(
    path: &Path,
    durability: Durability,
) -> Result<Connection, JournalError> {
    let mut conn = Connection::open(path).map_err(|e| io(path, "cannot open", e))?;
    crate::busy::set_busy_policy(&conn).map_err(|e| io(path, "cannot configure", e))?;
    // The first statement that reads the file detects a non-SQLite file (SQLITE_NOTADB).
    // Switching a new file to WAL needs a moment of exclusive access and does not go
    // through the busy handler, so two processes opening the same new database at once
    // retry here for as long as the busy timeout.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mode: String = loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)) {
            Ok(mode) => break mode,
            Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if is_busy(&e) => return Err(io(path, "database is busy", e)),
            Err(e) => return Err(io(path, "not an SQLite database or unreadable", e)),
        }
    };
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(io(
            path,
            "cannot enable WAL",
            format!("journal_mode is {mode}"),
        ));
    }
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(|e| io(path, "cannot configure", e))?;
    // Reads through a memory map instead of a `pread` per page, and a page cache that holds
    // the hot part of a busy journal (16 MiB). Both are per connection and change nothing
    // on disk.
    conn.pragma_update(None, "mmap_size", 256i64 << 20)
        .and_then(|_| conn.pragma_update(None, "cache_size", -16_384i64))
        .map_err(|e| io(path, "cannot configure", e))?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// True for SQLITE_BUSY / SQLITE_LOCKED.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The SQLite journal: one connection (serialised by a mutex), WAL, `busy_timeout` 5 s; several
/// handles and processes may share the file.
#[derive(Clone)]
pub struct SqliteJournal {
    conn: SharedConn,
    path: PathBuf,
    host: String,
    pid: u32,
    lease_ttl_ms: i64,
    /// Tables written in each append's transaction ([`SqliteJournal::set_mirror`]).
    mirror: Option<Arc<dyn AppendMirror>>,
    /// Whether an append that ends a session also redacts its texts
    /// ([`SqliteJournal::set_redact_finished`]).
    redact_finished: bool,
}

impl std::fmt::Debug for SqliteJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteJournal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteJournal {
    /// Opens or creates the database at `path` (`<home>/alc.db`). `synchronous` is `NORMAL`, or
    /// `FULL` with [`Durability::Full`]. Fails with `Io` naming the path for a file that is not
    /// SQLite or whose store tables are damaged, and with `Schema` for a newer schema or journal
    /// format.
    pub fn open(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SqliteJournal, JournalError> {
        let path = path.as_ref().to_path_buf();
        let conn = open_connection(&path, durability)?;
        Ok(SqliteJournal {
            conn: Arc::new(Mutex::new(conn)),
            path,
            host: current_host(),
            pid: std::process::id(),
            lease_ttl_ms: LEASE_TTL_MS,
            mirror: None,
            redact_finished: false,
        })
    }

    /// Writes `mirror`'s rows in the transaction of every append made through this handle
    /// and its clones made afterwards (set it before handing the journal out).
    pub fn set_mirror(&mut self, mirror: Arc<dyn AppendMirror>) {
        self.mirror = Some(mirror);
    }

    /// With `on`, an append that makes a session terminal also replaces the prompt, system
    /// and answer texts of its pause and answer records by their sizes and digests, in the
    /// same transaction (`[log] transcripts = "metadata" | "off"`, interfaces.md §9.1; an
    /// open session keeps its texts, which replay needs).
    pub fn set_redact_finished(&mut self, on: bool) {
        self.redact_finished = on;
    }

    /// Writes one session's records and row update inside the open transaction `tx`
    /// (giving a new session's row the lease of `owner`), then what the session's end
    /// redacts and the mirror's rows. Returns whether the row was new.
    pub(crate) fn write_append(
        &self,
        tx: &Connection,
        a: &SessionAppend,
        owner: Option<&OwnerId>,
    ) -> Result<bool, JournalError> {
        let metrics = a.row.metrics.as_ref().map(to_json).transpose()?;
        let new = append_owned(tx, a, owner, metrics.as_deref())?;
        if self.redact_finished && a.row.status() == SessionStatus::Terminal {
            redact_records(tx, &a.session_id)?;
        }
        if let Some(m) = &self.mirror {
            crate::mirror::apply(m.as_ref(), tx, a, metrics.as_deref());
        }
        Ok(new)
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An `alc.state` store sharing this handle's connection.
    pub fn state_store(&self) -> SqliteStateStore {
        SqliteStateStore::from_shared(self.conn.clone())
    }

    /// Moves write-ahead-log checkpoints off the threads that write through this handle: a
    /// background thread with its own connection checkpoints after every few dozen commits,
    /// so no append pays for copying the log into the database and syncing it. The thread
    /// ends when the last clone of this handle is dropped.
    pub fn checkpoint_in_background(&self) -> Result<(), JournalError> {
        crate::checkpoint::start(&lock(&self.conn), &self.path)
    }

    /// The connection this handle writes through, for other tables of the same database
    /// kept by this process (transcripts). One connection per process keeps one page cache
    /// (a write through a second connection empties this one's) and turns waits between
    /// the process's own writers into a mutex hand-off instead of busy-handler sleeps.
    /// Hold the lock briefly and call no journal method while holding it (they lock it
    /// too); leave no transaction open when releasing it.
    pub fn shared_connection(&self) -> Arc<Mutex<Connection>> {
        self.conn.clone()
    }

    /// Overrides the lease validity (default [`LEASE_TTL_MS`]); for tests.
    pub fn set_lease_ttl_ms(&mut self, ttl_ms: i64) {
        self.lease_ttl_ms = ttl_ms;
    }

    /// Inserts or replaces an `owners` row with explicit host, pid and heartbeat time (tests and
    /// tools; the engine uses [`Journal::heartbeat`]).
    pub fn register_owner(
        &self,
        owner: &OwnerId,
        host: &str,
        pid: u32,
        heartbeat_at: i64,
    ) -> Result<(), JournalError> {
        let conn = lock(&self.conn);
        conn.execute(
            "INSERT OR REPLACE INTO owners (owner_id, host, pid, started_at, heartbeat_at) \
             VALUES (?1, ?2, ?3, ?4, ?4)",
            params![owner.as_str(), host, pid, heartbeat_at],
        )
        .map_err(db_err)?;
        Ok(())
    }

    /// Start-up recovery (§7.5): clears the leases of owners that are void (stale heartbeat or
    /// dead process on this host) and deletes those owner rows. Returns the number of sessions
    /// whose lease was cleared.
    pub fn void_dead_leases(&self) -> Result<usize, JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let owners: Vec<(String, String, u32, i64)> = {
            let mut st = tx
                .prepare("SELECT owner_id, host, pid, heartbeat_at FROM owners")
                .map_err(db_err)?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .map_err(db_err)?;
            rows.collect::<Result<_, _>>().map_err(db_err)?
        };
        let now = now_ms();
        let mut cleared = 0;
        for (id, host, pid, hb) in owners {
            if self.is_void(&host, pid, hb, now) {
                cleared += tx
                    .execute(
                        "UPDATE sessions SET owner_id = NULL WHERE owner_id = ?1",
                        [&id],
                    )
                    .map_err(db_err)?;
                tx.execute("DELETE FROM owners WHERE owner_id = ?1", [&id])
                    .map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)?;
        Ok(cleared)
    }

    /// Releases every lease of `owner` and removes its row (engine shutdown). Returns the number
    /// of sessions released.
    pub fn release_owner(&self, owner: &OwnerId) -> Result<usize, JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let n = tx
            .execute(
                "UPDATE sessions SET owner_id = NULL WHERE owner_id = ?1",
                [owner.as_str()],
            )
            .map_err(db_err)?;
        tx.execute("DELETE FROM owners WHERE owner_id = ?1", [owner.as_str()])
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(n)
    }

    /// Retention (`interfaces.md` §9.5): deletes terminal sessions (row and records) last updated
    /// before `updated_before` (Unix ms). Returns the number deleted.
    pub fn prune_terminal(&self, updated_before: i64) -> Result<usize, JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        tx.execute(
            "DELETE FROM records WHERE session_id IN (SELECT session_id FROM sessions \
             WHERE status = 'terminal' AND updated_at < ?1)",
            [updated_before],
        )
        .map_err(db_err)?;
        let n = tx
            .execute(
                "DELETE FROM sessions WHERE status = 'terminal' AND updated_at < ?1",
                [updated_before],
            )
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(n)
    }

    fn is_void(&self, host: &str, pid: u32, heartbeat_at: i64, now: i64) -> bool {
        now - heartbeat_at > self.lease_ttl_ms || (host == self.host && !pid_alive(pid))
    }

    pub(crate) fn shared(&self) -> &SharedConn {
        &self.conn
    }

    /// Inserts the owner's row, or refreshes its heartbeat unless it is less than
    /// [`OWNER_FRESH_MS`] old (which leaves the `owners` page alone in most transactions).
    fn ensure_owner(
        &self,
        conn: &Connection,
        owner: &OwnerId,
        now: i64,
    ) -> Result<(), JournalError> {
        self.upsert_owner(conn, owner, now, Some(OWNER_FRESH_MS))
    }

    /// Inserts the owner's row or sets its heartbeat to `now`.
    fn heartbeat_on(
        &self,
        conn: &Connection,
        owner: &OwnerId,
        now: i64,
    ) -> Result<(), JournalError> {
        self.upsert_owner(conn, owner, now, None)
    }

    /// The owner row's upsert; with `fresh_ms`, a heartbeat younger than that is kept.
    fn upsert_owner(
        &self,
        conn: &Connection,
        owner: &OwnerId,
        now: i64,
        fresh_ms: Option<i64>,
    ) -> Result<(), JournalError> {
        conn.prepare_cached(
            "INSERT INTO owners (owner_id, host, pid, started_at, heartbeat_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT (owner_id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at \
             WHERE ?5 IS NULL OR heartbeat_at < excluded.heartbeat_at - ?5",
        )
        .and_then(|mut st| st.execute(params![owner.as_str(), self.host, self.pid, now, fresh_ms]))
        .map_err(db_err)?;
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, JournalError> {
    serde_json::to_string(v).map_err(|e| JournalError::Io {
        message: format!("cannot encode: {e}"),
    })
}

/// Writes one session's records and row update (`metrics`: the row's metrics as JSON)
/// inside an open transaction, giving a new session's row the lease of `owner` as it is
/// inserted. Returns whether the row was new (an existing row keeps its owner).
fn append_owned(
    tx: &Connection,
    a: &SessionAppend,
    owner: Option<&OwnerId>,
    metrics: Option<&str>,
) -> Result<bool, JournalError> {
    let sid = a.session_id.as_str();
    let existing: Option<u64> = tx
        .prepare_cached("SELECT last_seq FROM sessions WHERE session_id = ?1")
        .and_then(|mut st| st.query_row([sid], |r| r.get(0)).optional())
        .map_err(db_err)?;
    let last = existing.unwrap_or(0);
    {
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO records (session_id, seq, vm, kind, at, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(db_err)?;
        for (i, r) in a.records.iter().enumerate() {
            let expected = last + 1 + i as u64;
            if r.seq != expected || r.session_id != a.session_id {
                return Err(JournalError::Sequence {
                    session_id: a.session_id.clone(),
                    expected,
                    got: r.seq,
                });
            }
            ins.execute(params![
                sid,
                r.seq,
                r.vm,
                r.body.kind(),
                r.at,
                to_json(&r.body)?
            ])
            .map_err(db_err)?;
        }
    }
    let new_last = last + a.records.len() as u64;
    let row = &a.row;
    let labels = row.labels.as_ref().map(to_json).transpose()?;
    let outcome = row.outcome.as_ref().map(to_json).transpose()?;
    if existing.is_some() {
        tx.prepare_cached(
            "UPDATE sessions SET updated_at = ?2, status = ?3, phase = ?4, round = ?5, last_seq = ?6, \
             labels = COALESCE(?7, labels), outcome = COALESCE(?8, outcome), \
             metrics = COALESCE(?9, metrics), \
             owner_id = CASE WHEN ?3 = 'terminal' THEN NULL ELSE owner_id END \
             WHERE session_id = ?1",
        )
        .and_then(|mut st| {
            st.execute(params![
                sid,
                row.updated_at,
                row.status().as_str(),
                row.phase.as_str(),
                row.round,
                new_last,
                labels,
                outcome,
                metrics
            ])
        })
        .map_err(db_err)?;
    } else {
        let created_at = a.records.first().map(|r| r.at).unwrap_or(row.updated_at);
        tx.prepare_cached(
            "INSERT INTO sessions (session_id, created_at, updated_at, status, phase, round, last_seq, \
             owner_id, labels, outcome, metrics) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?11, ?8, ?9, ?10)",
        )
        .and_then(|mut st| {
            st.execute(params![
                sid,
                created_at,
                row.updated_at,
                row.status().as_str(),
                row.phase.as_str(),
                row.round,
                new_last,
                labels.unwrap_or_else(|| "{}".to_string()),
                outcome,
                metrics,
                owner
                    .filter(|_| row.status() != SessionStatus::Terminal)
                    .map(OwnerId::as_str)
            ])
        })
        .map_err(db_err)?;
    }
    Ok(existing.is_none())
}

/// Rewrites the pause and answer records of session `id` with their texts replaced by
/// size and digest, inside the open transaction `tx`. A record that does not decode is
/// left as it is (reading it reports the damage), so the session's end still commits.
fn redact_records(tx: &Connection, id: &SessionId) -> Result<(), JournalError> {
    let rows: Vec<(u64, String)> = {
        let mut st = tx
            .prepare_cached(
                "SELECT seq, body FROM records WHERE session_id = ?1 AND kind IN ('pause', 'answer')",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)?
    };
    for (seq, body) in rows {
        let Ok(mut record) = serde_json::from_str::<RecordBody>(&body) else {
            continue;
        };
        if record.redact_texts() {
            let body = to_json(&record)?;
            tx.prepare_cached("UPDATE records SET body = ?3 WHERE session_id = ?1 AND seq = ?2")
                .and_then(|mut st| st.execute(params![id.as_str(), seq, body]))
                .map_err(db_err)?;
        }
    }
    Ok(())
}

const ROW_COLUMNS: &str = "session_id, created_at, updated_at, status, phase, round, last_seq, \
                           owner_id, labels, outcome, metrics";

fn corrupt(sid: &str, seq: u64, what: &str, e: impl std::fmt::Display) -> JournalError {
    match SessionId::parse(sid) {
        Ok(session_id) => JournalError::Corrupt {
            session_id,
            seq,
            message: format!("{what}: {e}"),
        },
        Err(_) => JournalError::Io {
            message: format!("invalid session id {sid:?} in the database ({what}: {e})"),
        },
    }
}

type RawRow = (
    String,
    i64,
    i64,
    String,
    String,
    u64,
    u64,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

fn raw_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}

fn decode_row(raw: RawRow) -> Result<SessionRow, JournalError> {
    let (
        sid,
        created_at,
        updated_at,
        status,
        phase,
        round,
        last_seq,
        owner,
        labels,
        outcome,
        metrics,
    ) = raw;
    let session_id = SessionId::parse(&sid).map_err(|e| JournalError::Io {
        message: format!("invalid session row: {e}"),
    })?;
    let status = match status.as_str() {
        "open" => SessionStatus::Open,
        _ => SessionStatus::Terminal,
    };
    let phase: Phase = serde_json::from_value(serde_json::Value::String(phase))
        .map_err(|e| corrupt(&sid, last_seq, "session row phase", e))?;
    Ok(SessionRow {
        created_at,
        updated_at,
        status,
        phase,
        round,
        last_seq,
        owner: owner.map(OwnerId::new),
        labels: serde_json::from_str(&labels)
            .map_err(|e| corrupt(&sid, last_seq, "session row labels", e))?,
        outcome: outcome
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| corrupt(&sid, last_seq, "session row outcome", e))?,
        metrics: metrics
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| corrupt(&sid, last_seq, "session row metrics", e))?,
        session_id,
    })
}

impl Journal for SqliteJournal {
    fn append(&self, batch: &[SessionAppend]) -> Result<(), JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        for a in batch {
            self.write_append(&tx, a, None)?;
        }
        tx.commit().map_err(db_err)
    }

    /// One transaction: the owner's row (its heartbeat refreshed unless fresh), the new
    /// session's records, and its row inserted with the owner. A session that already has
    /// records is refused by `append_owned`'s sequence check, so a lease is never taken
    /// over here.
    fn append_new_leased(
        &self,
        first: &SessionAppend,
        owner: &OwnerId,
    ) -> Result<LeaseResult, JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        self.ensure_owner(&tx, owner, now_ms())?;
        if !self.write_append(&tx, first, Some(owner))? {
            tx.prepare_cached("UPDATE sessions SET owner_id = ?2 WHERE session_id = ?1")
                .and_then(|mut st| st.execute(params![first.session_id.as_str(), owner.as_str()]))
                .map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        Ok(LeaseResult::Acquired { taken_over: None })
    }

    fn read(&self, id: &SessionId, from_seq: u64) -> Result<Vec<JournalRecord>, JournalError> {
        let conn = lock(&self.conn);
        let mut st = conn
            .prepare_cached(
                "SELECT seq, vm, at, body FROM records WHERE session_id = ?1 AND seq >= ?2 ORDER BY seq",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![id.as_str(), from_seq], |r| {
                Ok((
                    r.get::<_, u64>(0)?,
                    r.get::<_, u32>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(db_err)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, vm, at, body) = row.map_err(db_err)?;
            let body: RecordBody =
                serde_json::from_str(&body).map_err(|e| JournalError::Corrupt {
                    session_id: id.clone(),
                    seq,
                    message: e.to_string(),
                })?;
            out.push(JournalRecord {
                session_id: id.clone(),
                seq,
                vm,
                at,
                body,
            });
        }
        Ok(out)
    }

    fn session(&self, id: &SessionId) -> Result<Option<SessionRow>, JournalError> {
        let conn = lock(&self.conn);
        let raw = conn
            .prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM sessions WHERE session_id = ?1"
            ))
            .and_then(|mut st| st.query_row([id.as_str()], raw_row).optional())
            .map_err(db_err)?;
        raw.map(decode_row).transpose()
    }

    fn open_sessions(&self, filter: &RowFilter) -> Result<Vec<SessionRow>, JournalError> {
        let conn = lock(&self.conn);
        let mut sql = format!("SELECT {ROW_COLUMNS} FROM sessions WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(s) = filter.status {
            args.push(s.as_str().to_string().into());
            sql.push_str(&format!(" AND status = ?{}", args.len()));
        }
        if let Some(p) = filter.phase {
            args.push(p.as_str().to_string().into());
            sql.push_str(&format!(" AND phase = ?{}", args.len()));
        }
        if let Some(t) = filter.updated_before {
            args.push(t.into());
            sql.push_str(&format!(" AND updated_at < ?{}", args.len()));
        }
        for (k, v) in &filter.labels {
            args.push(k.clone().into());
            let kn = args.len();
            args.push(v.clone().into());
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(labels) WHERE key = ?{kn} AND value = ?{})",
                args.len()
            ));
        }
        sql.push_str(" ORDER BY updated_at, session_id");
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        let mut st = conn.prepare(&sql).map_err(db_err)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), raw_row)
            .map_err(db_err)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(decode_row(r.map_err(db_err)?)?);
        }
        Ok(out)
    }

    fn acquire_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<LeaseResult, JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let now = now_ms();
        let current: Option<Option<String>> = tx
            .prepare_cached("SELECT owner_id FROM sessions WHERE session_id = ?1")
            .and_then(|mut st| st.query_row([id.as_str()], |r| r.get(0)).optional())
            .map_err(db_err)?;
        let Some(current) = current else {
            return Ok(LeaseResult::NotFound);
        };
        let mut taken_over = None;
        if let Some(cur) = current.filter(|c| c != owner.as_str()) {
            let holder: Option<(String, u32, i64)> = tx
                .prepare_cached("SELECT host, pid, heartbeat_at FROM owners WHERE owner_id = ?1")
                .and_then(|mut st| {
                    st.query_row([&cur], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                        .optional()
                })
                .map_err(db_err)?;
            let void = match &holder {
                None => true,
                Some((host, pid, hb)) => self.is_void(host, *pid, *hb, now),
            };
            if !void {
                return Ok(LeaseResult::Busy {
                    owner: OwnerId::new(cur),
                });
            }
            taken_over = Some(OwnerId::new(cur));
        }
        self.heartbeat_on(&tx, owner, now)?;
        tx.prepare_cached("UPDATE sessions SET owner_id = ?2 WHERE session_id = ?1")
            .and_then(|mut st| st.execute(params![id.as_str(), owner.as_str()]))
            .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        Ok(LeaseResult::Acquired { taken_over })
    }

    fn release_lease(&self, id: &SessionId, owner: &OwnerId) -> Result<(), JournalError> {
        let conn = lock(&self.conn);
        conn.prepare_cached(
            "UPDATE sessions SET owner_id = NULL WHERE session_id = ?1 AND owner_id = ?2",
        )
        .and_then(|mut st| st.execute(params![id.as_str(), owner.as_str()]))
        .map_err(db_err)?;
        Ok(())
    }

    fn heartbeat(&self, owner: &OwnerId) -> Result<(), JournalError> {
        let conn = lock(&self.conn);
        self.heartbeat_on(&conn, owner, now_ms())
    }

    fn delete(&self, id: &SessionId) -> Result<(), JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        tx.execute("DELETE FROM records WHERE session_id = ?1", [id.as_str()])
            .map_err(db_err)?;
        tx.execute("DELETE FROM sessions WHERE session_id = ?1", [id.as_str()])
            .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    fn durable(&self) -> bool {
        true
    }

    fn void_dead_leases(&self) -> Result<usize, JournalError> {
        SqliteJournal::void_dead_leases(self)
    }

    fn append_with(
        &self,
        effect: &mut dyn FnMut() -> Result<Vec<SessionAppend>, JournalError>,
    ) -> Result<(), JournalError> {
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let batch = crate::state_sqlite::with_active(&self.conn, &tx, effect)?;
        for a in &batch {
            self.write_append(&tx, a, None)?;
        }
        tx.commit().map_err(db_err)
    }
}
