//! The content-addressed response cache: provider answers stored in `<home>/alc.db` under a
//! key the caller computes (a hash of everything that determines the answer).
//!
//! The table has its own row in `schema_version` (`component = 'response_cache'`), created on
//! first open, so it never touches the journal's schema version.

use crate::schema::io;
use alc_core::JournalError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Schema version of the response cache table (row `component = 'response_cache'`).
pub const RESPONSE_CACHE_VERSION: u32 = 1;

const COMPONENT: &str = "response_cache";

const V1: &str = "
CREATE TABLE IF NOT EXISTS response_cache (
  key        TEXT PRIMARY KEY,
  provider   TEXT NOT NULL,
  model      TEXT NOT NULL,
  body       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  hits       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
";

/// One cached answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedResponse {
    /// Provider name the answer came from.
    pub provider: String,
    /// Model the answer came from.
    pub model: String,
    /// The stored answer (JSON chosen by the caller).
    pub body: serde_json::Value,
    /// When it was stored (Unix ms).
    pub created_at: i64,
}

/// A handle on the response cache table (one connection, serialised by a mutex).
pub struct ResponseCache {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db<'a>(path: &'a Path, what: &'a str) -> impl Fn(rusqlite::Error) -> JournalError + 'a {
    move |e| io(path, what, e)
}

impl ResponseCache {
    /// Opens (creating when needed) the cache table in the database at `path`. A newer cache
    /// schema is a `Schema` error.
    pub fn open(path: impl AsRef<Path>) -> Result<ResponseCache, JournalError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(db(&path, "cannot open"))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(db(&path, "cannot configure"))?;
        let _ = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0));
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db(&path, "cannot open the response cache"))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (component TEXT PRIMARY KEY, \
             version INTEGER NOT NULL);",
        )
        .map_err(db(&path, "response cache schema"))?;
        let found: Option<u32> = tx
            .query_row(
                "SELECT version FROM schema_version WHERE component = ?1",
                [COMPONENT],
                |r| r.get(0),
            )
            .optional()
            .map_err(db(&path, "unreadable schema_version table"))?;
        match found {
            Some(v) if v > RESPONSE_CACHE_VERSION => {
                return Err(JournalError::Schema {
                    found: v,
                    supported: RESPONSE_CACHE_VERSION,
                })
            }
            Some(_) => {}
            None => {
                tx.execute_batch(V1)
                    .map_err(db(&path, "response cache schema"))?;
                tx.execute(
                    "INSERT INTO schema_version (component, version) VALUES (?1, ?2)",
                    params![COMPONENT, RESPONSE_CACHE_VERSION],
                )
                .map_err(db(&path, "response cache schema"))?;
            }
        }
        tx.commit().map_err(db(&path, "response cache schema"))?;
        Ok(ResponseCache {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The database path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry stored under `key` (counting the hit), if any.
    pub fn get(&self, key: &str) -> Result<Option<CachedResponse>, JournalError> {
        let conn = self.lock();
        let row = conn
            .query_row(
                "SELECT provider, model, body, created_at FROM response_cache WHERE key = ?1",
                [key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(db(&self.path, "response cache read"))?;
        let Some((provider, model, body, created_at)) = row else {
            return Ok(None);
        };
        let _ = conn.execute(
            "UPDATE response_cache SET hits = hits + 1 WHERE key = ?1",
            [key],
        );
        let body = serde_json::from_str(&body).map_err(|e| JournalError::Io {
            message: format!(
                "{}: response cache entry {key} is unreadable: {e}",
                self.path.display()
            ),
        })?;
        Ok(Some(CachedResponse {
            provider,
            model,
            body,
            created_at,
        }))
    }

    /// Stores (or replaces) the entry under `key`; durable when this returns.
    pub fn put(
        &self,
        key: &str,
        provider: &str,
        model: &str,
        body: &serde_json::Value,
    ) -> Result<(), JournalError> {
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO response_cache (key, provider, model, body, created_at, hits)
                 VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                params![key, provider, model, body.to_string(), crate::now_ms()],
            )
            .map_err(db(&self.path, "response cache write"))?;
        Ok(())
    }

    /// Number of stored entries.
    pub fn len(&self) -> Result<u64, JournalError> {
        self.lock()
            .query_row("SELECT count(*) FROM response_cache", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n.max(0) as u64)
            .map_err(db(&self.path, "response cache read"))
    }

    /// True when the cache holds no entry.
    pub fn is_empty(&self) -> Result<bool, JournalError> {
        Ok(self.len()? == 0)
    }

    /// Deletes every entry; returns how many were removed.
    pub fn clear(&self) -> Result<u64, JournalError> {
        self.lock()
            .execute("DELETE FROM response_cache", [])
            .map(|n| n as u64)
            .map_err(db(&self.path, "response cache write"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_and_coexist_with_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alc.db");
        let cache = ResponseCache::open(&path).unwrap();
        assert!(cache.is_empty().unwrap());
        cache
            .put("k1", "openai", "m", &serde_json::json!({"text": "4"}))
            .unwrap();
        let got = cache.get("k1").unwrap().expect("stored");
        assert_eq!(got.body["text"], "4");
        assert_eq!(got.provider, "openai");
        assert!(cache.get("k2").unwrap().is_none());
        // The journal opens the same file afterwards, and the cache reopens after it.
        crate::SqliteJournal::open(&path, alc_core::Durability::Normal).unwrap();
        let again = ResponseCache::open(&path).unwrap();
        assert_eq!(again.len().unwrap(), 1);
        assert_eq!(again.clear().unwrap(), 1);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alc.db");
        ResponseCache::open(&path).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute(
                "UPDATE schema_version SET version = 99 WHERE component = 'response_cache'",
                [],
            )
            .unwrap();
        let err = ResponseCache::open(&path).unwrap_err();
        assert!(
            matches!(err, JournalError::Schema { found: 99, .. }),
            "{err:?}"
        );
    }
}
