//! `SqliteStateStore`: `alc.state` in the engine database (table `state`).

use crate::sqlite::{lock, open_connection, SharedConn};
use crate::state::{
    add, check, encode, validate_store_namespace, StateStore, StateStoreError, Versioned,
};
use alc_core::{Durability, JournalError};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{Number, Value};
use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, Mutex};

thread_local! {
    /// The transaction of a [`SqliteJournal::append_with`](alc_core::Journal::append_with) in
    /// progress on this thread: (its shared connection, the open transaction's connection).
    static ACTIVE: Cell<Option<(*const Mutex<Connection>, *const Connection)>> =
        const { Cell::new(None) };
}

/// Runs `f` with `conn` (an open transaction on `shared`) registered as this thread's active
/// transaction: state stores sharing `shared` run their operations inside it.
pub(crate) fn with_active<R>(shared: &SharedConn, conn: &Connection, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<(*const Mutex<Connection>, *const Connection)>);
    impl Drop for Reset {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(self.0));
        }
    }
    let prev = ACTIVE.with(|a| a.replace(Some((Arc::as_ptr(shared), conn as *const Connection))));
    let _reset = Reset(prev);
    f()
}

/// [`StateStore`] in the SQLite database; every call is one immediate transaction, so
/// read-modify-write operations are atomic across connections and processes.
#[derive(Clone)]
pub struct SqliteStateStore {
    conn: SharedConn,
}

impl std::fmt::Debug for SqliteStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStateStore").finish_non_exhaustive()
    }
}

fn db(e: rusqlite::Error) -> StateStoreError {
    StateStoreError::Db {
        message: e.to_string(),
    }
}

fn decode(key: &str, s: &str) -> Result<Value, StateStoreError> {
    serde_json::from_str(s).map_err(|e| StateStoreError::Db {
        message: format!("corrupt value at '{key}': {e}"),
    })
}

fn next_version(tx: &Connection) -> Result<u64, StateStoreError> {
    tx.prepare_cached(
        "UPDATE store_meta SET value = value + 1 WHERE key = 'state_version' RETURNING value",
    )
    .and_then(|mut st| st.query_row([], |r| r.get(0)))
    .map_err(db)
}

fn read(tx: &Connection, ns: &str, key: &str) -> Result<Option<Versioned>, StateStoreError> {
    let raw: Option<(String, u64)> = tx
        .prepare_cached("SELECT value, version FROM state WHERE ns = ?1 AND key = ?2")
        .and_then(|mut st| {
            st.query_row(params![ns, key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(db)?;
    raw.map(|(v, version)| {
        Ok(Versioned {
            value: decode(key, &v)?,
            version,
        })
    })
    .transpose()
}

fn write(tx: &Connection, ns: &str, key: &str, encoded: &str) -> Result<(), StateStoreError> {
    let version = next_version(tx)?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO state (ns, key, value, version) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut st| st.execute(params![ns, key, encoded, version]))
    .map_err(db)?;
    Ok(())
}

fn remove(tx: &Connection, ns: &str, key: &str) -> Result<bool, StateStoreError> {
    tx.prepare_cached("DELETE FROM state WHERE ns = ?1 AND key = ?2")
        .and_then(|mut st| st.execute(params![ns, key]))
        .map(|n| n > 0)
        .map_err(db)
}

impl SqliteStateStore {
    /// Opens the database at `path` with its own connection (same pragmas and migrations as
    /// [`SqliteJournal::open`](crate::SqliteJournal::open)).
    pub fn open(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<SqliteStateStore, JournalError> {
        let conn = open_connection(path.as_ref(), durability)?;
        Ok(SqliteStateStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    pub(crate) fn from_shared(conn: SharedConn) -> SqliteStateStore {
        SqliteStateStore { conn }
    }

    /// This thread's active journal transaction on this store's connection, if any.
    fn active(&self) -> Option<&Connection> {
        let (shared, conn) = ACTIVE.with(|a| a.get())?;
        if !std::ptr::eq(shared, Arc::as_ptr(&self.conn)) {
            return None;
        }
        // SAFETY: `with_active` registers the pointer only while the transaction (and the
        // lock guarding its connection) is alive on this thread, and resets it on exit; the
        // reference is used only within the current operation, inside that scope.
        Some(unsafe { &*conn })
    }

    /// Runs a read on the active transaction, else on the locked connection.
    fn conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StateStoreError>,
    ) -> Result<T, StateStoreError> {
        if let Some(c) = self.active() {
            return f(c);
        }
        let conn = lock(&self.conn);
        f(&conn)
    }

    fn tx<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StateStoreError>,
    ) -> Result<T, StateStoreError> {
        if let Some(c) = self.active() {
            // Inside the journal's transaction: commits (or rolls back) with its append.
            return f(c);
        }
        let mut conn = lock(&self.conn);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let out = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }
}

impl StateStore for SqliteStateStore {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Value>, StateStoreError> {
        check(ns, key)?;
        self.conn(|conn| Ok(read(conn, ns, key)?.map(|v| v.value)))
    }

    fn set(&self, ns: &str, key: &str, value: Option<&Value>) -> Result<(), StateStoreError> {
        check(ns, key)?;
        match value.filter(|v| !v.is_null()) {
            None => self.conn(|conn| remove(conn, ns, key).map(|_| ())),
            Some(v) => {
                let s = encode(key, v)?;
                self.tx(|tx| write(tx, ns, key, &s))
            }
        }
    }

    fn delete(&self, ns: &str, key: &str) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        self.conn(|conn| remove(conn, ns, key))
    }

    fn has(&self, ns: &str, key: &str) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        self.conn(|conn| {
            conn.prepare_cached("SELECT 1 FROM state WHERE ns = ?1 AND key = ?2")
                .and_then(|mut st| st.exists(params![ns, key]))
                .map_err(db)
        })
    }

    fn keys(&self, ns: &str, prefix: Option<&str>) -> Result<Vec<String>, StateStoreError> {
        validate_store_namespace(ns)?;
        let p = prefix.unwrap_or("");
        self.conn(|conn| {
            let mut st = conn
                .prepare_cached("SELECT key FROM state WHERE ns = ?1 AND key >= ?2 ORDER BY key")
                .map_err(db)?;
            let mut rows = st.query(params![ns, p]).map_err(db)?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(db)? {
                let k: String = r.get(0).map_err(db)?;
                if !k.starts_with(p) {
                    break;
                }
                out.push(k);
            }
            Ok(out)
        })
    }

    fn set_nx(&self, ns: &str, key: &str, value: &Value) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        let s = encode(key, value)?;
        self.tx(|tx| {
            if read(tx, ns, key)?.is_some() {
                return Ok(false);
            }
            write(tx, ns, key, &s)?;
            Ok(true)
        })
    }

    fn incr(
        &self,
        ns: &str,
        key: &str,
        delta: &Number,
        default: &Number,
    ) -> Result<Number, StateStoreError> {
        check(ns, key)?;
        self.tx(|tx| {
            let cur = read(tx, ns, key)?
                .map(|v| v.value)
                .unwrap_or_else(|| Value::Number(default.clone()));
            let n = add(key, &cur, delta)?;
            let s = encode(key, &Value::Number(n.clone()))?;
            write(tx, ns, key, &s)?;
            Ok(n)
        })
    }

    fn get_versioned(&self, ns: &str, key: &str) -> Result<Option<Versioned>, StateStoreError> {
        check(ns, key)?;
        self.conn(|conn| read(conn, ns, key))
    }

    fn compare_and_set(
        &self,
        ns: &str,
        key: &str,
        expected: Option<u64>,
        value: Option<&Value>,
    ) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        let encoded = value
            .filter(|v| !v.is_null())
            .map(|v| encode(key, v))
            .transpose()?;
        self.tx(|tx| {
            let version: Option<u64> = tx
                .prepare_cached("SELECT version FROM state WHERE ns = ?1 AND key = ?2")
                .and_then(|mut st| st.query_row(params![ns, key], |r| r.get(0)).optional())
                .map_err(db)?;
            if version != expected {
                return Ok(false);
            }
            match &encoded {
                None => {
                    remove(tx, ns, key)?;
                }
                Some(s) => write(tx, ns, key, s)?,
            }
            Ok(true)
        })
    }
}
