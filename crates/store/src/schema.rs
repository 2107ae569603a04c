//! Schema creation and version checks.

use alc_core::{JournalError, JOURNAL_FORMAT};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;

/// Schema version of the store's tables written by this crate (row `component = 'store'` of
/// `schema_version`).
pub const SCHEMA_VERSION: u32 = 1;

const COMPONENT: &str = "store";

/// Tables that version 1 creates and that must exist afterwards.
const TABLES: &[&str] = &[
    "journal_meta",
    "owners",
    "sessions",
    "records",
    "state",
    "store_meta",
];

const V1: &str = "
CREATE TABLE journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE owners (owner_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,
                     started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL);
CREATE TABLE sessions (session_id TEXT PRIMARY KEY, created_at INTEGER NOT NULL,
                       updated_at INTEGER NOT NULL,
                       status TEXT NOT NULL CHECK (status IN ('open','terminal')),
                       phase TEXT NOT NULL, round INTEGER NOT NULL, last_seq INTEGER NOT NULL,
                       owner_id TEXT REFERENCES owners(owner_id), labels TEXT NOT NULL,
                       outcome TEXT, metrics TEXT) WITHOUT ROWID;
CREATE TABLE records (session_id TEXT NOT NULL, seq INTEGER NOT NULL, vm INTEGER NOT NULL,
                      kind TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL,
                      PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
CREATE INDEX sessions_open ON sessions(status, updated_at);
CREATE TABLE state (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                    version INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE TABLE store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO store_meta (key, value) VALUES ('state_version', 0);
";

pub(crate) fn io(path: &Path, what: &str, e: impl std::fmt::Display) -> JournalError {
    JournalError::Io {
        message: format!("{}: {what}: {e}", path.display()),
    }
}

fn table_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
}

/// Creates the tables of a fresh database (inside one immediate transaction, so concurrent
/// openers do not race) or checks an existing one.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), JournalError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| io(path, "cannot open the database", e))?;
    let err = |e: rusqlite::Error| io(path, "schema check failed", e);
    let has_version = table_exists(&tx, "schema_version").map_err(err)?;
    let found: Option<u32> = if has_version {
        tx.query_row(
            "SELECT version FROM schema_version WHERE component = ?1",
            [COMPONENT],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| io(path, "unreadable schema_version table", e))?
    } else {
        None
    };
    match found {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(JournalError::Schema {
                found: v,
                supported: SCHEMA_VERSION,
            })
        }
        Some(_) => {
            for t in TABLES {
                if !table_exists(&tx, t).map_err(err)? {
                    return Err(JournalError::Io {
                        message: format!(
                            "{}: not a valid alc database: table '{t}' is missing",
                            path.display()
                        ),
                    });
                }
            }
        }
        None => {
            // A database of another component of the home may already exist; only refuse
            // when our tables are present without a version (a foreign or damaged layout).
            for t in TABLES {
                if table_exists(&tx, t).map_err(err)? {
                    return Err(JournalError::Io {
                        message: format!(
                            "{}: not a valid alc database: table '{t}' exists without a store schema version",
                            path.display()
                        ),
                    });
                }
            }
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, \
                 version INTEGER NOT NULL);",
            )
            .map_err(err)?;
            tx.execute_batch(V1).map_err(err)?;
            tx.execute(
                "INSERT INTO schema_version (component, version) VALUES (?1, ?2)",
                rusqlite::params![COMPONENT, SCHEMA_VERSION],
            )
            .map_err(err)?;
            tx.execute(
                "INSERT INTO journal_meta (key, value) VALUES ('journal_format', ?1)",
                [JOURNAL_FORMAT.to_string()],
            )
            .map_err(err)?;
        }
    }
    let format: Option<String> = tx
        .query_row(
            "SELECT value FROM journal_meta WHERE key = 'journal_format'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(err)?;
    let format: u32 = match format {
        Some(s) => s.parse().map_err(|_| JournalError::Io {
            message: format!("{}: invalid journal_format '{s}'", path.display()),
        })?,
        None => {
            return Err(JournalError::Io {
                message: format!(
                    "{}: journal_format missing from journal_meta",
                    path.display()
                ),
            })
        }
    };
    if format > JOURNAL_FORMAT {
        return Err(JournalError::Schema {
            found: format,
            supported: JOURNAL_FORMAT,
        });
    }
    tx.commit().map_err(err)
}
