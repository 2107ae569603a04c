//! Tables that follow the journal. A mirror writes rows derived from each append inside
//! the append's own transaction: they cost no commit of their own, and a reader never
//! sees them behind or ahead of the journal.

use alc_core::SessionAppend;
use rusqlite::Connection;

/// Rows derived from journal appends (the MCP server's transcripts), written inside each
/// append's transaction after its records and session row
/// ([`SqliteJournal::set_mirror`](crate::SqliteJournal::set_mirror)).
pub trait AppendMirror: Send + Sync + 'static {
    /// Writes what `append` changes, through `tx` (the journal's open transaction; do not
    /// commit it). `metrics` is the row update's metrics as the journal encoded them
    /// (JSON), if it has any. Runs under a savepoint: an error undoes only this mirror's
    /// writes for `append`, and the append itself still commits.
    fn mirror(
        &self,
        tx: &Connection,
        append: &SessionAppend,
        metrics: Option<&str>,
    ) -> rusqlite::Result<()>;

    /// Told about an error of [`AppendMirror::mirror`] after its writes were undone.
    fn failed(&self, append: &SessionAppend, error: rusqlite::Error);
}

/// Runs `m` for `append` under a savepoint of `tx`.
pub(crate) fn apply(
    m: &dyn AppendMirror,
    tx: &Connection,
    append: &SessionAppend,
    metrics: Option<&str>,
) {
    let run = || -> rusqlite::Result<()> {
        tx.prepare_cached("SAVEPOINT append_mirror")?.execute([])?;
        match m.mirror(tx, append, metrics) {
            Ok(()) => {
                tx.prepare_cached("RELEASE append_mirror")?.execute([])?;
                Ok(())
            }
            Err(e) => {
                tx.execute_batch("ROLLBACK TO append_mirror; RELEASE append_mirror")?;
                Err(e)
            }
        }
    };
    if let Err(e) = run() {
        m.failed(append, e);
    }
}
