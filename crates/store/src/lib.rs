//! SQLite storage of the algocline engine: the session journal (`engine.md` §7), leases (§5.5)
//! and `alc.state` (`lua-api.md` §2.8), all in one database file (`<home>/alc.db`).
//!
//! - [`SqliteJournal`]: the durable [`Journal`](alc_core::Journal) (WAL, group-friendly
//!   transactions, leases through the `owners` table).
//! - [`MemoryJournal`]: the non-durable journal for tests and `durability = none` setups.
//! - [`StateStore`] with [`SqliteStateStore`] and [`MemoryStateStore`], plus key/namespace
//!   validation and the optimistic [`update`] loop.
//! - [`GroupCommit`]: shares one transaction among concurrent appends.
//! - [`AppendMirror`]: tables kept in step with the journal inside its transactions
//!   ([`SqliteJournal::set_mirror`]).
//! - [`SqliteJournal::checkpoint_in_background`]: write-ahead-log checkpoints on a thread of
//!   their own instead of in a writer's commit.
//! - [`ResponseCache`]: provider answers stored by content key (used by evals).

#![warn(missing_docs)]

mod busy;
mod checkpoint;
mod group;
mod lease;
mod memory;
mod mirror;
mod response_cache;
mod schema;
mod sqlite;
mod state;
mod state_sqlite;

pub use busy::set_busy_policy;
pub use group::GroupCommit;
pub use lease::{current_host, pid_alive, LEASE_TTL_MS};
pub use memory::MemoryJournal;
pub use mirror::AppendMirror;
pub use response_cache::{CachedResponse, ResponseCache, RESPONSE_CACHE_VERSION};
pub use schema::SCHEMA_VERSION;
pub use sqlite::SqliteJournal;
pub use state::{
    update, validate_key, validate_key_bytes, validate_namespace, validate_store_namespace,
    MemoryStateStore, StateStore, StateStoreError, Versioned, MAX_KEY_BYTES, MAX_VALUE_BYTES,
    UPDATE_ATTEMPTS,
};
pub use state_sqlite::SqliteStateStore;

/// Current wall time in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
