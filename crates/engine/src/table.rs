//! The session table: one `SessionCell` per hosted session, sharded by id.
//!
//! A cell holds the session's `SessionCore` (mutated only through
//! `SessionMachine::apply`, under the cell's mutex), the VM set while it is parked
//! (`Hot`), the spec needed to build it when `Cold`, and a change signal bumped at every
//! transition so waiters and observers wake without polling.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicU8};
use std::sync::Arc;

use alc_core::{SessionCore, SessionId, SessionSpec};
use parking_lot::Mutex;

use crate::vm::VmSet;

const SHARDS: usize = 16;

/// What the cell's mutex guards.
pub struct CellState {
    /// The session's state machine record.
    pub core: SessionCore,
    /// The VM set while parked here (`SlotState::Hot`).
    pub vm: Option<VmSet>,
}

/// One hosted session.
pub struct SessionCell {
    /// The session id.
    pub id: SessionId,
    /// Spec (to build the VM when the slot is cold).
    pub spec: Arc<SessionSpec>,
    /// Session seed.
    pub seed: u64,
    /// Abort cell read by the instruction hook.
    pub abort: Arc<AtomicU8>,
    /// Core and VM, under one lock.
    pub state: Mutex<CellState>,
    /// Bumped at every transition.
    pub changed: crate::changes::Changes,
    /// The session's journal handle (seq allocation, appends).
    pub log: Arc<crate::durable::SessionLog>,
    /// Step time not yet reported in whole milliseconds (µs), so that many short steps
    /// still add up in `cpu_ms` and count against the CPU limit.
    pub cpu_carry_us: AtomicU64,
    /// Whether an idle-TTL timer of this session is in the timer heap. Each pause and
    /// accepted answer re-arms the idle TTL; only the first arming pushes an entry, and
    /// a fired entry whose session has been active since re-arms itself for the new due
    /// time, so the heap holds at most one idle entry per session.
    pub idle_armed: std::sync::atomic::AtomicBool,
}

impl SessionCell {
    /// A new cell around a freshly spawned core.
    pub fn new(
        core: SessionCore,
        spec: Arc<SessionSpec>,
        seed: u64,
        log: Arc<crate::durable::SessionLog>,
    ) -> Arc<SessionCell> {
        Arc::new(SessionCell {
            id: core.id.clone(),
            spec,
            seed,
            abort: Arc::new(AtomicU8::new(0)),
            state: Mutex::new(CellState { core, vm: None }),
            changed: Default::default(),
            log,
            cpu_carry_us: AtomicU64::new(0),
            idle_armed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Wakes everyone waiting on this session.
    pub fn notify(&self) {
        self.changed.bump();
    }
}

/// The sharded map of hosted sessions.
pub struct SessionTable {
    shards: Vec<Mutex<HashMap<SessionId, Arc<SessionCell>>>>,
}

impl Default for SessionTable {
    fn default() -> Self {
        SessionTable {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl SessionTable {
    fn shard(&self, id: &SessionId) -> &Mutex<HashMap<SessionId, Arc<SessionCell>>> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    /// Looks a session up.
    pub fn get(&self, id: &SessionId) -> Option<Arc<SessionCell>> {
        self.shard(id).lock().get(id).cloned()
    }

    /// Inserts a session.
    pub fn insert(&self, cell: Arc<SessionCell>) {
        self.shard(&cell.id).lock().insert(cell.id.clone(), cell);
    }

    /// Inserts `cell` unless its id is present; returns the hosted cell and whether it is
    /// the one given.
    pub fn insert_if_absent(&self, cell: Arc<SessionCell>) -> (Arc<SessionCell>, bool) {
        let mut shard = self.shard(&cell.id).lock();
        if let Some(c) = shard.get(&cell.id) {
            return (c.clone(), false);
        }
        shard.insert(cell.id.clone(), cell.clone());
        (cell, true)
    }

    /// Removes a session.
    pub fn remove(&self, id: &SessionId) -> Option<Arc<SessionCell>> {
        self.shard(id).lock().remove(id)
    }

    /// Number of hosted sessions.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// All hosted cells (a snapshot of the table).
    pub fn cells(&self) -> Vec<Arc<SessionCell>> {
        self.shards
            .iter()
            .flat_map(|s| s.lock().values().cloned().collect::<Vec<_>>())
            .collect()
    }
}

#[cfg(test)]
mod size_budget {
    //! Every hosted session holds one cell and (while its VM lives) one VM host, so their
    //! sizes are part of the paused-session memory in docs/benchmarks.md. The binaries'
    //! allocator rounds a block up to its size class; these keep both records within the
    //! class they were measured in (a field more should box something rarely set).

    /// Two of mimalloc's size classes: 640 and 1,024 bytes.
    const CLASS_640: usize = 640;
    const CLASS_1K: usize = 1024;

    #[test]
    fn a_session_cell_fits_its_size_class() {
        // `Arc` adds its two counters in front of the cell.
        let arc_inner =
            2 * std::mem::size_of::<usize>() + std::mem::size_of::<super::SessionCell>();
        assert!(
            arc_inner <= CLASS_1K,
            "Arc<SessionCell> is {arc_inner} bytes"
        );
    }

    #[test]
    fn a_vm_host_fits_its_size_class() {
        // mlua keeps the host as a boxed value in the VM's app data.
        let host = std::mem::size_of::<crate::host::VmHost>();
        assert!(host <= CLASS_640, "VmHost is {host} bytes");
    }
}
