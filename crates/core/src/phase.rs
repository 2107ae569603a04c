//! Session phase, residency and owner (§3.5).

use serde::{Deserialize, Serialize};

/// Lifecycle phase of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting in the run queue.
    Queued,
    /// A worker runs the VM set.
    Running,
    /// Waiting for answers.
    Paused,
    /// Finished with a value.
    Completed,
    /// Finished with an error.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl Phase {
    /// `Completed`, `Failed` or `Cancelled`.
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Completed | Phase::Failed | Phase::Cancelled)
    }

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Completed => "completed",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
        }
    }

    /// The MCP wire name: `queued` is reported as `running`.
    pub fn wire_name(self) -> &'static str {
        match self {
            Phase::Queued => "running",
            p => p.as_str(),
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a session lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Residency {
    /// VM in memory.
    Hot,
    /// In this process's table, VM not built.
    Cold,
    /// Only in the journal.
    Unhosted,
}

/// Which process holds a session's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Owner {
    /// This process.
    ThisProcess,
    /// Another live process.
    OtherProcess,
    /// Nobody.
    None,
}
