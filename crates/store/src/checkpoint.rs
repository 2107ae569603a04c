//! Write-ahead-log checkpoints away from the writing threads.
//!
//! SQLite checkpoints automatically in the commit that takes the log past 1000 pages: that
//! commit copies the log into the database file and syncs both, a millisecond or more
//! spent by whichever writer came last (often one answering a request). With
//! [`start`], a thread with its own connection checkpoints instead, after every
//! [`COMMITS_PER_CHECKPOINT`] commits of the writing connection. A passive checkpoint never
//! blocks writers, and it leaves the writer's page cache valid (only writes empty it).

use crate::busy::set_busy_policy;
use crate::schema::io;
use alc_core::JournalError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};

/// Commits of the writing connection between two background checkpoints.
const COMMITS_PER_CHECKPOINT: u32 = 64;

/// Log size (pages) at which the writing connection still checkpoints by itself, should
/// the background thread fall behind.
const BACKSTOP_PAGES: i64 = 8000;

/// Starts the checkpointing thread for `conn`, a connection to the database at `path`.
/// The thread ends when `conn` is closed.
pub(crate) fn start(conn: &Connection, path: &Path) -> Result<(), JournalError> {
    let own = Connection::open(path).map_err(|e| io(path, "cannot open", e))?;
    set_busy_policy(&own).map_err(|e| io(path, "cannot configure", e))?;
    let (due, wake) = sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("alc-checkpoint".into())
        .spawn(move || run(&own, &wake))
        .map_err(|e| io(path, "cannot start the checkpoint thread", e))?;
    conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
        .map_err(|e| io(path, "cannot configure", e))?;
    let mut commits = 0u32;
    // The hook (and with it `due`) is dropped with the connection, which ends the thread.
    conn.commit_hook(Some(move || {
        commits += 1;
        if commits >= COMMITS_PER_CHECKPOINT {
            commits = 0;
            let _ = due.try_send(());
        }
        false
    }));
    Ok(())
}

/// Checkpoints (passive: what no reader still needs) each time it is woken.
fn run(conn: &Connection, wake: &Receiver<()>) {
    while wake.recv().is_ok() {
        // A failed checkpoint loses nothing: the log keeps the pages for the next one (or
        // for the writer's backstop).
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}
