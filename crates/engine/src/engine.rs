//! The `Engine` facade and its scheduler (engine.md §5.1, §9).
//!
//! Answerers and front ends only ever call these methods. A session is a `SessionCell` in
//! the table; every change of its state goes through `SessionMachine::apply` under the
//! cell's lock, and the returned effects (enqueue, drop the VM, wake waiters, arm timers)
//! are performed after unlocking. A fixed pool of worker threads pops sessions from one
//! FIFO run queue and steps their VMs; a paused session holds no thread, task or file
//! descriptor, only its cell.

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use alc_core::{
    AbortCause, AdoptError, Adopted, Answers, BudgetLimits, CancelAck, CancelError, CancelReason,
    EngineConfig, FailureKind, Input, Journal, LeaseResult, MachineLimits, ObserveError,
    ObserveItem, OwnerId, Phase, RecordBody, Rejection, Residency, ResumeAck, ResumeError,
    RowUpdate, SessionCore, SessionId, SessionMachine, SessionSpec, SessionStatus, SlotState,
    Snapshot, SnapshotOptions, SpawnError, StartError, StateError, StepOutcome, StepReport,
    Terminal, UntilPause, WaitError,
};
use parking_lot::{Condvar, Mutex};

use crate::changes::{Changes, Seen};
use crate::durable::{self, PendingRecord, SessionLog};
use crate::hook::{self, StepControl};
use crate::host::{BridgeLimits, BudgetView};
use crate::services::{valid_package_name, HostServices};
use crate::table::{SessionCell, SessionTable};
use crate::timers::{TimerKind, Timers};
use crate::vm::{StepEnd, VmBase, VmInit, VmSet, VmSettings};

/// How long `shutdown` waits for running steps to park before cancelling them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How often, in engine clock time, the journal retention of finished sessions runs after
/// the run at start (checked at every heartbeat).
const RETENTION_INTERVAL_MS: i64 = 3_600_000;

/// Which sessions `list` returns.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    /// Only these phases (empty = all).
    pub phases: Vec<Phase>,
    /// Only sessions carrying all these labels.
    pub labels: BTreeMap<String, String>,
    /// At most this many (0 = 100).
    pub limit: usize,
}

/// How `shutdown` treats live sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownMode {
    /// Park running steps and stop; open sessions are lost with an in-memory journal.
    Drain,
    /// Cancel every hosted session first (reason `shutdown`).
    Cancel,
}

/// What `shutdown` did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ShutdownReport {
    /// Sessions cancelled by `ShutdownMode::Cancel`.
    pub cancelled: usize,
    /// Open sessions left behind (not resumable without a durable journal).
    pub lost: usize,
}

/// Engine-wide gauges.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct EngineStats {
    /// Hosted sessions.
    pub sessions: usize,
    /// Sessions waiting in the run queue.
    pub queued: usize,
    /// Bytes held by parked VMs (sum of `used_memory` at park).
    pub vm_bytes: u64,
    /// Worker threads.
    pub workers: usize,
}

struct RunQueue {
    items: Mutex<VecDeque<Arc<SessionCell>>>,
    ready: Condvar,
    len: AtomicUsize,
    /// A worker is polling `len` before it sleeps (`WORKER_SPIN`); `enqueue` of an item
    /// into an empty queue then needs no wake-up.
    spinning: AtomicBool,
}

/// How long a worker that ran out of work polls the queue before it sleeps. A resume
/// that arrives meanwhile (an answer computed in process, a fast provider) starts at once
/// instead of paying a thread wake-up; only one worker polls at a time, and a worker
/// that slept is woken by `enqueue` as before.
const WORKER_SPIN: Duration = Duration::from_micros(50);

struct Inner {
    config: EngineConfig,
    services: HostServices,
    settings: VmSettings,
    table: SessionTable,
    queue: RunQueue,
    timers: Timers,
    stopping: AtomicBool,
    /// Set once the workers are joined: nothing will change an open session any more,
    /// so waiters and observers of open sessions are released.
    stopped: Arc<AtomicBool>,
    park: AtomicBool,
    running: AtomicUsize,
    vm_bytes: AtomicU64,
    retained: Mutex<VecDeque<SessionId>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    worker_count: usize,
    /// The session journal.
    journal: Arc<dyn Journal>,
    /// Whether the journal survives a crash (leases, adoption, eviction at idle TTL).
    durable: bool,
    /// This process's owner id (leases).
    owner: OwnerId,
    /// Heartbeat thread stop signal.
    heartbeat_stop: Arc<(Mutex<bool>, Condvar)>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
    /// VM bases built by idle workers ahead of demand (see `VmBase`).
    vm_pool: Mutex<Vec<VmBase>>,
    /// Set if a base could not be built: the pool is no longer refilled.
    vm_pool_off: AtomicBool,
    /// Arms the hook of steps that must stop or yield (see `hook`).
    watchdog: hook::Watchdog,
    watchdog_thread: Mutex<Option<JoinHandle<()>>>,
}

/// How many ready VM bases idle workers keep per worker. A spawn (or an adoption) takes
/// one instead of building the libraries and preludes itself; under a burst larger than
/// the pool, spawns build their own as before.
const VM_POOL_PER_WORKER: usize = 2;

/// Why a transition did not go through.
enum Fail {
    /// The machine rejected the input (nothing changed).
    Rejected(Rejection),
    /// The transition's records could not be written (the session failed, T25).
    Journal(String),
}

/// Why an unhosted session could not be adopted.
enum AdoptFail {
    NotFound,
    Busy,
    Terminal(Phase),
    Journal(String),
}

fn new_owner_id() -> OwnerId {
    let r: u64 = rand::random();
    OwnerId::new(format!("o-{:016x}-{}", r, std::process::id()))
}

/// Machine limits of a session (config, overridden by the spec).
fn machine_limits(config: &EngineConfig, spec: &SessionSpec) -> MachineLimits {
    let mut machine_limits = MachineLimits::from_config(config);
    if let Some(d) = spec.limits.deadline_ms {
        machine_limits.deadline_ms = Some(d);
    }
    if let Some(t) = spec.limits.idle_ttl_ms {
        machine_limits.idle_ttl_ms = Some(t);
    }
    machine_limits
}

/// The session row as of the core's last transition.
fn row_of(core: &SessionCore, now: i64) -> RowUpdate {
    RowUpdate {
        phase: core.phase,
        round: core.round,
        updated_at: now,
        labels: None,
        outcome: core.outcome.as_deref().cloned(),
        metrics: Some(core.metrics.clone()),
    }
}

fn outcome_record(core: &SessionCore, now: i64) -> Option<PendingRecord> {
    core.outcome.as_ref().map(|o| PendingRecord {
        vm: 0,
        at: now,
        body: RecordBody::Outcome {
            outcome: o.clone(),
            metrics: Box::new(core.metrics.clone()),
        },
    })
}

/// The engine: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn now_ms(inner: &Inner) -> i64 {
    inner.services.clock.now_ms()
}

/// A new session's id: its creation time in milliseconds (48 bits, big-endian) and then
/// 80 bits from the OS random number generator.
///
/// Ids made later sort later, so a new session's rows go to the end of the journal's
/// tables, which are keyed by the id. With 128 random bits they landed anywhere: most
/// commits split a page in the middle of a tree, which writes more pages and makes
/// SQLite's end of transaction scan its whole page cache (docs/engine.md, "Session ids").
fn new_session_id(now_ms: i64) -> SessionId {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    let ms = (now_ms.max(0) as u64).to_be_bytes();
    bytes[..6].copy_from_slice(&ms[2..]);
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes[6..])
        .expect("the OS random number generator is available");
    SessionId::from_bytes(bytes)
}

/// `spec` with the engine's environment values (`HostServices::env`) added for the keys
/// that neither `spec.env` nor `ctx.env.inject` gives: the one source of the values a session
/// did not bring itself, used alike at spawn and at adoption.
fn with_engine_env(engine_env: &BTreeMap<String, String>, mut spec: SessionSpec) -> SessionSpec {
    if engine_env.is_empty() {
        return spec;
    }
    let inject = durable::injected(&spec);
    let missing: Vec<(String, String)> = engine_env
        .iter()
        .filter(|(k, _)| !spec.env.contains_key(*k) && !inject.is_some_and(|i| i.contains_key(*k)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    spec.env.extend(missing);
    spec
}

/// Effective budget: ctx value, else the default, capped by the ceiling (engine.md §6.1).
fn effective_budget(config: &EngineConfig, ctx: &serde_json::Value) -> BudgetLimits {
    let given = ctx.get("budget").and_then(|b| b.as_object());
    let field = |name: &str, default: Option<u64>, ceiling: Option<u64>| -> Option<u64> {
        let from_ctx = given.and_then(|b| b.get(name)).and_then(|v| {
            v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                    .map(|f| f as u64)
            })
        });
        let v = from_ctx.or(default);
        match (v, ceiling) {
            (Some(v), Some(c)) => Some(v.min(c)),
            (None, Some(c)) => Some(c),
            (v, None) => v,
        }
    };
    let d = &config.default_budget;
    let c = &config.budget_ceiling;
    BudgetLimits {
        max_llm_calls: field("max_llm_calls", d.max_llm_calls, c.max_llm_calls),
        max_tokens: field("max_tokens", d.max_tokens, c.max_tokens),
        max_elapsed_ms: field("max_elapsed_ms", d.max_elapsed_ms, c.max_elapsed_ms),
    }
}

impl Engine {
    /// Starts an engine on `journal`: worker threads, the timer thread and (durable journals)
    /// owner registration, dead-lease voiding and the heartbeat thread.
    pub async fn start(
        config: EngineConfig,
        journal: Arc<dyn Journal>,
        host: HostServices,
    ) -> Result<Engine, StartError> {
        tokio::task::spawn_blocking(move || Self::start_with_journal(config, journal, host))
            .await
            .map_err(|e| StartError::Config {
                message: format!("engine start panicked: {e}"),
            })?
    }

    /// `start` for callers outside an async runtime, on an in-memory journal (sessions do not
    /// survive the process).
    pub fn start_blocking(
        config: EngineConfig,
        services: HostServices,
    ) -> Result<Engine, StartError> {
        Self::start_with_journal(config, Arc::new(alc_store::MemoryJournal::new()), services)
    }

    /// `start` without an async runtime.
    pub fn start_with_journal(
        config: EngineConfig,
        journal: Arc<dyn Journal>,
        services: HostServices,
    ) -> Result<Engine, StartError> {
        if config.memory_limit_bytes > config.max_memory_limit_bytes {
            return Err(StartError::Config {
                message: "memory_limit_bytes exceeds max_memory_limit_bytes".into(),
            });
        }
        let workers = if config.workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            config.workers
        };
        let settings = VmSettings {
            memory_limit: config.memory_limit_bytes as usize,
            hook_interval: config.hook_interval,
            limits: BridgeLimits {
                max_request_bytes: config.max_request_bytes,
                max_batch: config.max_batch,
                max_fork_children: config.max_fork_children,
            },
            max_result_bytes: config.max_result_bytes,
            gc_park_growth_bytes: config.gc_park_growth_bytes as usize,
        };
        let durable = journal.durable();
        let owner = new_owner_id();
        let journal_err = |e: alc_core::JournalError| StartError::Journal {
            message: e.to_string(),
        };
        let heartbeat_stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut heartbeat = None;
        if durable {
            journal.heartbeat(&owner).map_err(journal_err)?;
            journal.void_dead_leases().map_err(journal_err)?;
            // Journal retention of finished sessions: once now, then at the first heartbeat
            // after each interval of engine clock time. A failed run is retried then.
            let retention = config.terminal_journal_retention_ms;
            let clock = services.clock.clone();
            let mut next_retention = clock.now_ms();
            if let Some(ms) = retention {
                if durable::expire_terminal(journal.as_ref(), next_retention, ms).is_ok() {
                    next_retention = next_retention.saturating_add(RETENTION_INTERVAL_MS);
                }
            }
            let (j, o, stop) = (journal.clone(), owner.clone(), heartbeat_stop.clone());
            heartbeat = Some(
                std::thread::Builder::new()
                    .name("alc-heartbeat".into())
                    .spawn(move || loop {
                        {
                            let mut stopped = stop.0.lock();
                            if !*stopped {
                                stop.1.wait_for(&mut stopped, Duration::from_secs(10));
                            }
                            if *stopped {
                                return;
                            }
                        }
                        let _ = j.heartbeat(&o);
                        if let Some(ms) = retention {
                            let now = clock.now_ms();
                            if now >= next_retention
                                && durable::expire_terminal(j.as_ref(), now, ms).is_ok()
                            {
                                next_retention = now.saturating_add(RETENTION_INTERVAL_MS);
                            }
                        }
                    })
                    .map_err(|e| StartError::Config {
                        message: format!("cannot start the heartbeat thread: {e}"),
                    })?,
            );
        }
        let inner = Arc::new_cyclic(|weak: &std::sync::Weak<Inner>| {
            let weak = weak.clone();
            let timers = Timers::start(move |cell, kind| {
                if let Some(inner) = weak.upgrade() {
                    fire_timer(&inner, cell, kind);
                }
            });
            Inner {
                config,
                services,
                settings,
                table: SessionTable::default(),
                queue: RunQueue {
                    items: Mutex::new(VecDeque::new()),
                    ready: Condvar::new(),
                    len: AtomicUsize::new(0),
                    spinning: AtomicBool::new(false),
                },
                timers,
                stopping: AtomicBool::new(false),
                stopped: Arc::new(AtomicBool::new(false)),
                park: AtomicBool::new(false),
                running: AtomicUsize::new(0),
                vm_bytes: AtomicU64::new(0),
                retained: Mutex::new(VecDeque::new()),
                workers: Mutex::new(Vec::new()),
                worker_count: workers,
                journal,
                durable,
                owner,
                heartbeat_stop,
                heartbeat: Mutex::new(heartbeat),
                vm_pool: Mutex::new(Vec::new()),
                vm_pool_off: AtomicBool::new(false),
                watchdog: hook::Watchdog::new(),
                watchdog_thread: Mutex::new(None),
            }
        });
        hook::set_interval(inner.config.hook_interval);
        {
            let inner2 = inner.clone();
            let handle = std::thread::Builder::new()
                .name("alc-watchdog".into())
                .spawn(move || inner2.watchdog.run(&inner2.queue.len, &inner2.park))
                .map_err(|e| StartError::Config {
                    message: format!("cannot start the watchdog thread: {e}"),
                })?;
            *inner.watchdog_thread.lock() = Some(handle);
        }
        for i in 0..workers {
            let inner2 = inner.clone();
            let handle = std::thread::Builder::new()
                .name(format!("alc-worker-{i}"))
                .stack_size(4 << 20)
                .spawn(move || worker_loop(inner2))
                .map_err(|e| StartError::Config {
                    message: format!("cannot start worker threads: {e}"),
                })?;
            inner.workers.lock().push(handle);
        }
        if inner.durable && inner.config.recovery == alc_core::Recovery::Eager {
            // §7.5: adopt every open session whose lease is void (cleared above).
            let rows = inner
                .journal
                .open_sessions(&alc_core::RowFilter::open())
                .map_err(|e| StartError::Journal {
                    message: e.to_string(),
                })?;
            for row in rows.into_iter().filter(|r| r.owner.is_none()) {
                let _ = adopt_session(&inner, &row.session_id, None);
            }
        }
        if let (true, Some(ms)) = (inner.durable, inner.config.open_journal_retention_ms) {
            expire_open_sessions(&inner, ms).map_err(|message| StartError::Journal { message })?;
        }
        Ok(Engine { inner })
    }

    /// The configuration in force.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Engine-wide gauges.
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            sessions: self.inner.table.len(),
            queued: self.inner.queue.len.load(Ordering::Relaxed),
            vm_bytes: self.inner.vm_bytes.load(Ordering::Relaxed),
            workers: self.inner.worker_count,
        }
    }

    /// Validates a spec, allocates an id, enqueues the session and returns at once.
    pub async fn spawn(&self, spec: SessionSpec) -> Result<SessionId, SpawnError> {
        self.spawn_now(spec)
    }

    /// `spawn` without an async runtime.
    pub fn spawn_now(&self, spec: SessionSpec) -> Result<SessionId, SpawnError> {
        self.spawn_with(spec, false)
    }

    /// `spawn_now` for a caller that waits for the session's first pause (or end) before
    /// it hands the id out: the `spawned` record is not written on its own but in one
    /// transaction with the first step's records, so a short session costs one journal
    /// commit less. Until then the session is not in the journal (a crash forgets it,
    /// and nobody outside has its id yet). A caller that lets the id out earlier (a wait
    /// that ends while the step still runs) calls [`Engine::ensure_written`] first.
    pub fn spawn_now_with_first_step(&self, spec: SessionSpec) -> Result<SessionId, SpawnError> {
        self.spawn_with(spec, true)
    }

    /// Writes a session's held-back records now if the step they wait for has not
    /// written them yet ([`Engine::spawn_now_with_first_step`],
    /// [`Engine::resume_now_with_next_step`]); a no-op otherwise.
    pub fn ensure_written(&self, id: &SessionId) -> Result<(), StateError> {
        let Some(cell) = self.cell(id) else {
            return Ok(());
        };
        let mut last = cell.log.last_seq.lock();
        if !cell.log.held_back() {
            return Ok(());
        }
        let now = now_ms(&self.inner);
        let row = row_of(&cell.state.lock().core, now);
        cell.log
            .write_held(&mut last, row)
            .map_err(|e| StateError::Journal {
                message: e.to_string(),
            })
    }

    fn spawn_with(
        &self,
        spec: SessionSpec,
        with_first_step: bool,
    ) -> Result<SessionId, SpawnError> {
        let inner = &self.inner;
        if inner.stopping.load(Ordering::Acquire) {
            return Err(SpawnError::ShuttingDown);
        }
        let invalid = |m: String| Err(SpawnError::InvalidSpec { message: m });
        match &spec.program {
            alc_core::Program::Code { source, .. } => {
                if source.len() > inner.config.max_code_bytes {
                    return invalid(format!(
                        "code is {} bytes, more than the limit of {}",
                        source.len(),
                        inner.config.max_code_bytes
                    ));
                }
            }
            alc_core::Program::Package { name, entry } => {
                if !valid_package_name(name) {
                    return invalid(format!("invalid package name '{name}'"));
                }
                if entry.is_empty() || entry.len() > 64 {
                    return invalid(format!("invalid entry name '{entry}'"));
                }
            }
        }
        if !spec.ctx.is_object() {
            return invalid("ctx must be a JSON object".into());
        }
        let limits = &spec.limits;
        if limits
            .memory_bytes
            .is_some_and(|m| m > inner.config.max_memory_limit_bytes)
        {
            return invalid(format!(
                "memory_bytes exceeds the ceiling of {} bytes",
                inner.config.max_memory_limit_bytes
            ));
        }
        if inner.table.len() as u64 >= inner.config.max_live_sessions {
            return Err(SpawnError::Capacity {
                limit: inner.config.max_live_sessions,
            });
        }
        let now = now_ms(inner);
        let id = new_session_id(now);
        let budget = effective_budget(&inner.config, &spec.ctx);
        let seed = spec.seed.unwrap_or_else(rand::random::<u64>);
        let machine_limits = machine_limits(&inner.config, &spec);
        let (core, effects) = SessionCore::spawn(
            id.clone(),
            spec.program.kind().to_string(),
            spec.labels.clone(),
            budget,
            machine_limits,
            now,
        );
        // `spawned` is durable before `spawn` returns (T1), or goes out with the first
        // step's records.
        let spec = Arc::new(spec);
        let spawned = PendingRecord {
            vm: 0,
            at: now,
            body: RecordBody::Spawned {
                spec: durable::journaled_spec(&spec),
                seed,
                engine_version: env!("CARGO_PKG_VERSION").to_string(),
                journal_format: alc_core::JOURNAL_FORMAT,
            },
        };
        let log = SessionLog::unwritten(
            id.clone(),
            inner.journal.clone(),
            durable::HeldWrite {
                records: vec![spawned],
                labels: Some(spec.labels.clone()),
                // The first write takes this process's lease in the same transaction.
                owner: inner.durable.then(|| inner.owner.clone()),
            },
        );
        if !with_first_step {
            let mut last = log.last_seq.lock();
            log.write_held(&mut last, row_of(&core, now))
                .map_err(|e| SpawnError::Journal {
                    message: e.to_string(),
                })?;
        }
        // The journal has the caller's env keys; the engine's own values are supplied
        // again at adoption.
        let spec = if inner.services.env.is_empty() {
            spec
        } else {
            Arc::new(with_engine_env(
                &inner.services.env,
                Arc::unwrap_or_clone(spec),
            ))
        };
        let cell = SessionCell::new(core, spec, seed, log);
        inner.table.insert(cell.clone());
        arm_timers(inner, &cell, &effects, now);
        if effects.enqueue {
            enqueue(inner, cell);
        }
        Ok(id)
    }

    fn cell(&self, id: &SessionId) -> Option<Arc<SessionCell>> {
        self.inner.table.get(id)
    }

    /// The session's snapshot; never waits for a step. A session not hosted here is read
    /// from the journal (`residency: unhosted`).
    pub fn state(&self, id: &SessionId, opts: &SnapshotOptions) -> Result<Snapshot, StateError> {
        if let Some(cell) = self.cell(id) {
            let mut snap = {
                let st = cell.state.lock();
                st.core.snapshot_at(opts, now_ms(&self.inner))
            };
            if opts.include_history {
                let records = self.inner.journal.read(id, 1).unwrap_or_default();
                snap.history = Some(history_of(&records, opts.history_limit));
            }
            return Ok(snap);
        }
        let inner = &self.inner;
        let jerr = |e: alc_core::JournalError| StateError::Journal {
            message: e.to_string(),
        };
        let row = inner
            .journal
            .session(id)
            .map_err(jerr)?
            .ok_or_else(|| StateError::NotFound {
                session_id: id.clone(),
            })?;
        let records = inner.journal.read(id, 1).map_err(jerr)?;
        let (mut core, _) = recovered_core(inner, &row, &records).map_err(jerr)?;
        if row.status == SessionStatus::Terminal {
            core.phase = row.phase;
            core.pending = None;
            core.outcome = row.outcome.clone().map(Box::new);
            core.ended_at = Some(row.updated_at);
        }
        let now = now_ms(inner);
        let mut snap = core.snapshot_at(opts, now);
        if opts.include_history {
            snap.history = Some(history_of(&records, opts.history_limit));
        }
        snap.residency = Residency::Unhosted;
        snap.owner = if row.owner.is_some() && row.status == SessionStatus::Open {
            alc_core::Owner::OtherProcess
        } else {
            alc_core::Owner::None
        };
        snap.updated_at = row.updated_at;
        Ok(snap)
    }

    /// The hosted cell of `id`, adopting it from the journal when it is open there.
    fn hosted(
        &self,
        id: &SessionId,
        env: Option<BTreeMap<String, String>>,
    ) -> Result<Arc<SessionCell>, AdoptFail> {
        if let Some(c) = self.cell(id) {
            return Ok(c);
        }
        adopt_session(&self.inner, id, env)
    }

    /// Adopts an open session from the journal (engine.md §7.5): takes the lease and hosts
    /// it (Paused with its pending round, or Queued); `env` re-supplies the env values the
    /// journal does not keep. An already hosted session is returned as is.
    pub async fn adopt(
        &self,
        id: &SessionId,
        env: BTreeMap<String, String>,
    ) -> Result<Snapshot, AdoptError> {
        self.adopt_now(id, env)
    }

    /// `adopt` without an async runtime.
    pub fn adopt_now(
        &self,
        id: &SessionId,
        env: BTreeMap<String, String>,
    ) -> Result<Snapshot, AdoptError> {
        match self.hosted(id, Some(env)) {
            Ok(cell) => {
                let st = cell.state.lock();
                Ok(st
                    .core
                    .snapshot_at(&SnapshotOptions::default(), now_ms(&self.inner)))
            }
            Err(AdoptFail::NotFound) => Err(AdoptError::NotFound {
                session_id: id.clone(),
            }),
            Err(AdoptFail::Busy) => Err(AdoptError::Busy {
                session_id: id.clone(),
            }),
            Err(AdoptFail::Terminal(phase)) => Err(AdoptError::AlreadyTerminal { phase }),
            Err(AdoptFail::Journal(message)) => Err(AdoptError::Journal { message }),
        }
    }

    /// Hosted sessions matching `filter`, newest first.
    pub fn list(&self, filter: &ListFilter) -> Vec<Snapshot> {
        let limit = if filter.limit == 0 { 100 } else { filter.limit };
        let mut out: Vec<Snapshot> = self
            .inner
            .table
            .cells()
            .into_iter()
            .filter_map(|c| {
                let st = c.state.lock();
                let core = &st.core;
                if !filter.phases.is_empty() && !filter.phases.contains(&core.phase) {
                    return None;
                }
                if !filter
                    .labels
                    .iter()
                    .all(|(k, v)| core.labels.get(k) == Some(v))
                {
                    return None;
                }
                Some(core.snapshot(&SnapshotOptions::default()))
            })
            .collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        out.truncate(limit);
        out
    }

    /// Feeds answers (engine.md §2.4). Never runs Lua.
    pub async fn resume(&self, id: &SessionId, answers: Answers) -> Result<ResumeAck, ResumeError> {
        self.resume_now(id, answers)
    }

    /// `resume` without an async runtime.
    pub fn resume_now(&self, id: &SessionId, answers: Answers) -> Result<ResumeAck, ResumeError> {
        self.resume_with(id, answers, false)
    }

    /// `resume_now` for a caller that replies only after the next pause (or the end):
    /// when the answers complete the round, their records are written in one transaction
    /// with the records of the step they start, not before it (one journal commit less per
    /// round). A crash before that write forgets the answers, and the caller, which had no
    /// reply yet, gives them again. An `Accepted` ack (answers still missing) is written at
    /// once as usual. A caller that replies earlier (a wait that ends while the step
    /// runs) calls [`Engine::ensure_written`] first.
    pub fn resume_now_with_next_step(
        &self,
        id: &SessionId,
        answers: Answers,
    ) -> Result<ResumeAck, ResumeError> {
        self.resume_with(id, answers, true)
    }

    fn resume_with(
        &self,
        id: &SessionId,
        answers: Answers,
        hold_for_step: bool,
    ) -> Result<ResumeAck, ResumeError> {
        let inner = &self.inner;
        if inner.stopping.load(Ordering::Acquire) {
            return Err(ResumeError::ShuttingDown);
        }
        let cell = match self.hosted(id, None) {
            Ok(c) => c,
            Err(AdoptFail::NotFound) => {
                return Err(ResumeError::NotFound {
                    session_id: id.clone(),
                })
            }
            Err(AdoptFail::Busy) => {
                return Err(ResumeError::Busy {
                    session_id: id.clone(),
                })
            }
            Err(AdoptFail::Terminal(phase)) => return Err(ResumeError::NotPaused { phase }),
            Err(AdoptFail::Journal(message)) => return Err(ResumeError::Journal { message }),
        };
        let outcome = transition_holding(inner, &cell, Input::Resume(answers), hold_for_step);
        match outcome {
            Ok(Some(alc_core::Ack::Resume(ack))) => Ok(ack),
            Ok(_) => Err(ResumeError::NotPaused {
                phase: cell.state.lock().core.phase,
            }),
            Err(Fail::Rejected(Rejection::Resume(e))) => Err(e),
            Err(Fail::Journal(message)) => Err(ResumeError::Journal { message }),
            Err(_) => Err(ResumeError::NotPaused {
                phase: cell.state.lock().core.phase,
            }),
        }
    }

    /// Cancels a session (idempotent; the first reason wins).
    pub async fn cancel(
        &self,
        id: &SessionId,
        reason: CancelReason,
    ) -> Result<CancelAck, CancelError> {
        self.cancel_now(id, reason)
    }

    /// `cancel` without an async runtime.
    pub fn cancel_now(
        &self,
        id: &SessionId,
        reason: CancelReason,
    ) -> Result<CancelAck, CancelError> {
        let cell = match self.hosted(id, None) {
            Ok(c) => c,
            Err(AdoptFail::NotFound) => {
                return Err(CancelError::NotFound {
                    session_id: id.clone(),
                })
            }
            Err(AdoptFail::Busy) => {
                return Err(CancelError::Busy {
                    session_id: id.clone(),
                })
            }
            Err(AdoptFail::Terminal(phase)) => return Ok(CancelAck::AlreadyTerminal { phase }),
            Err(AdoptFail::Journal(message)) => return Err(CancelError::Journal { message }),
        };
        match transition(&self.inner, &cell, Input::Cancel(reason)) {
            Ok(Some(alc_core::Ack::Cancel(ack))) => Ok(ack),
            Err(Fail::Journal(message)) => Err(CancelError::Journal { message }),
            _ => {
                let phase = cell.state.lock().core.phase;
                Ok(CancelAck::AlreadyTerminal { phase })
            }
        }
    }

    /// Events of a session from `from_seq` (0 = oldest buffered).
    pub fn observe(&self, id: &SessionId, from_seq: u64) -> Result<EventStream, ObserveError> {
        let cell = self.cell(id).ok_or_else(|| ObserveError::NotFound {
            session_id: id.clone(),
        })?;
        let next = cell.state.lock().core.events.next_seq();
        if from_seq > next {
            return Err(ObserveError::FutureSeq {
                requested: from_seq,
                next,
            });
        }
        let seen = cell.changed.seen();
        Ok(EventStream {
            cell,
            next: from_seq.max(1),
            seen,
            done: false,
            stopped: self.inner.stopped.clone(),
        })
    }

    /// Waits until the session is terminal.
    pub async fn wait(&self, id: &SessionId) -> Result<Terminal, WaitError> {
        let cell = match self.hosted(id, None) {
            Ok(c) => c,
            Err(AdoptFail::Terminal(_)) => return self.terminal_from_journal(id),
            Err(AdoptFail::Busy) => {
                return Err(WaitError::Busy {
                    session_id: id.clone(),
                })
            }
            Err(_) => {
                return Err(WaitError::NotFound {
                    session_id: id.clone(),
                })
            }
        };
        let mut seen = cell.changed.seen();
        loop {
            let terminal = cell.state.lock().core.terminal();
            if let Some(t) = terminal {
                journal_barrier(&cell);
                return Ok(t);
            }
            if self.inner.stopped.load(Ordering::Acquire) {
                return Err(WaitError::ShuttingDown);
            }
            cell.changed.changed(&mut seen).await;
        }
    }

    /// Returns as soon as the session is paused or terminal, or when `timeout` elapses.
    pub async fn run_until_pause(
        &self,
        id: &SessionId,
        timeout: Duration,
    ) -> Result<UntilPause, WaitError> {
        let cell = match self.hosted(id, None) {
            Ok(c) => c,
            Err(AdoptFail::Terminal(_)) => {
                return self
                    .terminal_from_journal(id)
                    .map(|t| UntilPause::Terminal {
                        terminal: Box::new(t),
                    })
            }
            Err(AdoptFail::Busy) => {
                return Err(WaitError::Busy {
                    session_id: id.clone(),
                })
            }
            Err(_) => {
                return Err(WaitError::NotFound {
                    session_id: id.clone(),
                })
            }
        };
        let mut seen = cell.changed.seen();
        let deadline = tokio::time::Instant::now() + timeout;
        // Poll (rather than await) the transitions of the first `SETTLE_SPIN`: a step
        // passes through several (queued, running, paused), each a change of the cell's signal.
        let poll_until = Instant::now() + SETTLE_SPIN;
        loop {
            let settled = {
                let st = cell.state.lock();
                if let Some(t) = st.core.terminal() {
                    Some(UntilPause::Terminal {
                        terminal: Box::new(t),
                    })
                } else if st.core.phase == Phase::Paused {
                    Some(UntilPause::Paused {
                        snapshot: Box::new(st.core.snapshot(&SnapshotOptions::default())),
                    })
                } else {
                    None
                }
            };
            if let Some(settled) = settled {
                journal_barrier(&cell);
                return Ok(settled);
            }
            if self.inner.stopped.load(Ordering::Acquire) {
                return Err(WaitError::ShuttingDown);
            }
            let now = Instant::now();
            if now < poll_until && poll_changed(&cell.changed, &mut seen, poll_until - now) {
                continue;
            }
            match tokio::time::timeout_at(deadline, cell.changed.changed(&mut seen)).await {
                Ok(()) => continue,
                Err(_) => {
                    let st = cell.state.lock();
                    return Ok(UntilPause::Running {
                        snapshot: Box::new(st.core.snapshot(&SnapshotOptions::default())),
                    });
                }
            }
        }
    }

    /// The terminal record of a session that ended and is no longer hosted.
    fn terminal_from_journal(&self, id: &SessionId) -> Result<Terminal, WaitError> {
        let nf = || WaitError::NotFound {
            session_id: id.clone(),
        };
        let row = self
            .inner
            .journal
            .session(id)
            .ok()
            .flatten()
            .ok_or_else(nf)?;
        let outcome = row.outcome.clone().ok_or_else(nf)?;
        Ok(Terminal {
            session_id: id.clone(),
            outcome,
            metrics: row.metrics.clone().unwrap_or_default(),
            ended_at: row.updated_at,
        })
    }

    /// Stops the engine: refuses new work, parks or cancels live sessions, joins threads.
    pub async fn shutdown(&self, mode: ShutdownMode) -> ShutdownReport {
        self.shutdown_now(mode)
    }

    /// `shutdown` without an async runtime.
    pub fn shutdown_now(&self, mode: ShutdownMode) -> ShutdownReport {
        let inner = &self.inner;
        let mut report = ShutdownReport::default();
        if mode == ShutdownMode::Cancel {
            for cell in inner.table.cells() {
                let reason = CancelReason {
                    code: alc_core::CancelCode::Shutdown,
                    detail: None,
                };
                if let Ok(Some(alc_core::Ack::Cancel(
                    CancelAck::Cancelled | CancelAck::Requested,
                ))) = transition(inner, &cell, Input::Cancel(reason))
                {
                    report.cancelled += 1;
                }
            }
        }
        inner.stopping.store(true, Ordering::Release);
        inner.park.store(true, Ordering::Release);
        {
            let _g = inner.queue.items.lock();
            inner.queue.ready.notify_all();
        }
        // A step spinning under a C call (a sort comparator, a gsub callback) cannot
        // park; after a grace period it is cancelled instead, so shutdown never hangs.
        let grace = Instant::now() + SHUTDOWN_GRACE;
        while inner.running.load(Ordering::Acquire) > 0 && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(2));
        }
        if inner.running.load(Ordering::Acquire) > 0 {
            for cell in inner.table.cells() {
                if cell.state.lock().core.phase != Phase::Running {
                    continue;
                }
                let reason = CancelReason {
                    code: alc_core::CancelCode::Shutdown,
                    detail: Some("the step could not park within the shutdown grace period".into()),
                };
                if transition(inner, &cell, Input::Cancel(reason)).is_ok() {
                    report.cancelled += 1;
                }
            }
        }
        let handles: Vec<_> = inner.workers.lock().drain(..).collect();
        for h in handles {
            let _ = h.join();
        }
        inner.watchdog.stop();
        if let Some(h) = inner.watchdog_thread.lock().take() {
            let _ = h.join();
        }
        inner.timers.stop();
        {
            let (lock, cv) = &*inner.heartbeat_stop;
            *lock.lock() = true;
            cv.notify_all();
        }
        if let Some(h) = inner.heartbeat.lock().take() {
            let _ = h.join();
        }
        if inner.durable {
            for cell in inner.table.cells() {
                if !cell.state.lock().core.phase.is_terminal() {
                    let _ = inner.journal.release_lease(&cell.id, &inner.owner);
                }
            }
        }
        // Release everyone waiting on a session that can no longer change.
        inner.stopped.store(true, Ordering::Release);
        for cell in inner.table.cells() {
            cell.notify();
        }
        report.lost = if inner.durable {
            0
        } else {
            inner
                .table
                .cells()
                .iter()
                .filter(|c| !c.state.lock().core.phase.is_terminal())
                .count()
        };
        report
    }
}

/// A stream of a session's events (engine.md §9 `observe`).
pub struct EventStream {
    cell: Arc<SessionCell>,
    next: u64,
    seen: Seen,
    done: bool,
    stopped: Arc<AtomicBool>,
}

impl EventStream {
    /// The next item; `None` after the terminal event.
    pub async fn next(&mut self) -> Option<ObserveItem> {
        loop {
            if self.done {
                return None;
            }
            let item = {
                let st = self.cell.state.lock();
                st.core.events.read_from(self.next).into_iter().next()
            };
            if let Some(item) = item {
                match &item {
                    ObserveItem::Gap { to_seq, .. } => self.next = to_seq + 1,
                    ObserveItem::Event { event } => {
                        self.next = event.seq + 1;
                        if matches!(event.body, alc_core::EventBody::Terminal { .. }) {
                            self.done = true;
                        }
                    }
                }
                return Some(item);
            }
            if self.stopped.load(Ordering::Acquire) {
                return None;
            }
            self.cell.changed.changed(&mut self.seen).await;
        }
    }
}

fn enqueue(inner: &Inner, cell: Arc<SessionCell>) {
    let mut q = inner.queue.items.lock();
    q.push_back(cell);
    inner.queue.len.store(q.len(), Ordering::Release);
    // A polling worker takes the first item; any more wake a sleeping one.
    if q.len() > 1 || !inner.queue.spinning.load(Ordering::Acquire) {
        inner.queue.ready.notify_one();
    }
}

/// How long `run_until_pause` polls for the next transition before it awaits one: a
/// short step (most steps between two `alc.llm` calls) settles within it, and the caller
/// skips a thread wake-up. Briefly holding an executor thread this long is harmless.
const SETTLE_SPIN: Duration = Duration::from_micros(30);

/// Polls `changes` for a change after `seen` for up to `limit`; true if one came.
fn poll_changed(changes: &Changes, seen: &mut Seen, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        if changes.take(seen) {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        relax();
    }
}

/// One round of a polling loop: a CPU pause, and the processor to any runnable thread (on
/// a busy machine, the thread being waited for may need this core).
fn relax() {
    std::hint::spin_loop();
    std::thread::yield_now();
}

/// Polls the run queue for up to `WORKER_SPIN` (see there).
fn spin_for_work(inner: &Inner) {
    let until = Instant::now() + WORKER_SPIN;
    while inner.queue.len.load(Ordering::Acquire) == 0
        && !inner.stopping.load(Ordering::Acquire)
        && Instant::now() < until
    {
        relax();
    }
}

/// Applies `input` under the cell's lock, appends the transition's records (durable before
/// anything is enqueued or the caller replies) and performs the effects after unlocking.
/// Lock order: the session's journal seq lock, then the cell.
fn transition(
    inner: &Inner,
    cell: &Arc<SessionCell>,
    input: Input,
) -> Result<Option<alc_core::Ack>, Fail> {
    transition_holding(inner, cell, input, false)
}

/// `transition`; with `hold_for_step`, the records of a transition that starts a step of
/// a session whose VM is in memory (a round completed by answers) are held back and
/// written with that step's records instead (`Engine::resume_now_with_next_step`).
fn transition_holding(
    inner: &Inner,
    cell: &Arc<SessionCell>,
    input: Input,
    hold_for_step: bool,
) -> Result<Option<alc_core::Ack>, Fail> {
    let now = now_ms(inner);
    let mut last = cell.log.last_seq.lock();
    let mut st = cell.state.lock();
    let before_abort = st.core.abort;
    let effects = SessionMachine::apply(&mut st.core, input, now).map_err(Fail::Rejected)?;
    if st.core.abort != before_abort {
        let code = match st.core.abort {
            Some(AbortCause::Cancel) => hook::ABORT_CANCEL,
            Some(AbortCause::Deadline) => hook::ABORT_DEADLINE,
            Some(AbortCause::CpuLimit) => hook::ABORT_CPU,
            None => hook::ABORT_NONE,
        };
        cell.abort.store(code, Ordering::Release);
        if code != hook::ABORT_NONE {
            inner.watchdog.poke(&cell.abort);
        }
    }
    let mut records: Vec<PendingRecord> = effects
        .accepted
        .iter()
        .map(|a| PendingRecord {
            vm: 0,
            at: now,
            body: RecordBody::Answer {
                round: st.core.round,
                answer: Box::new(a.clone()),
            },
        })
        .collect();
    if effects.terminal {
        records.extend(outcome_record(&st.core, now));
    }
    // Only a hot VM steps without reading the journal back (a cold one replays it).
    let hold =
        hold_for_step && effects.enqueue && !effects.terminal && st.core.slot == SlotState::Hot;
    let row = row_of(&st.core, now);
    let dropped = if effects.drop_vm { st.vm.take() } else { None };
    let evicted = retain_terminal(inner, cell, &effects);
    drop(st);
    let mut failed = None;
    if hold {
        cell.log.hold(records);
    } else if !records.is_empty() {
        if let Err(e) = cell.log.append_locked(&mut last, records, row) {
            failed = Some(format!("journal: {e}"));
        }
    }
    drop(last);
    if let Some(vm) = dropped {
        inner
            .vm_bytes
            .fetch_sub(vm.used_memory() as u64, Ordering::Relaxed);
        drop(vm);
    }
    if let Some(message) = failed {
        let mut fx = effects;
        fx.enqueue = false;
        after_transition(inner, cell, &fx, evicted);
        journal_failed(inner, cell, message.clone());
        return Err(Fail::Journal(message));
    }
    after_transition(inner, cell, &effects, evicted);
    Ok(effects.ack)
}

/// T25: a journal write failed; the session fails without further records.
fn journal_failed(inner: &Inner, cell: &Arc<SessionCell>, message: String) {
    let now = now_ms(inner);
    let mut st = cell.state.lock();
    let Ok(effects) = SessionMachine::apply(&mut st.core, Input::JournalFailed { message }, now)
    else {
        return;
    };
    let dropped = if effects.drop_vm { st.vm.take() } else { None };
    let evicted = retain_terminal(inner, cell, &effects);
    drop(st);
    if let Some(vm) = dropped {
        inner
            .vm_bytes
            .fetch_sub(vm.used_memory() as u64, Ordering::Relaxed);
        drop(vm);
    }
    after_transition(inner, cell, &effects, evicted);
}

/// A core rebuilt from a session's records (adoption, unhosted `state`).
fn recovered_core(
    inner: &Inner,
    row: &alc_core::SessionRow,
    records: &[alc_core::JournalRecord],
) -> Result<(SessionCore, durable::Recovered), alc_core::JournalError> {
    let rec = durable::recover(row, records)?;
    let spec = &rec.spec;
    let adopted = Adopted {
        id: row.session_id.clone(),
        program_kind: spec.program.kind().to_string(),
        labels: row.labels.clone(),
        budget: effective_budget(&inner.config, &spec.ctx),
        created_at: row.created_at,
        round: rec.round,
        pending: rec.pending.clone(),
        last_round: rec.last_round.clone(),
        metrics: rec.metrics.clone(),
        records: rec.records,
    };
    let (core, _) = SessionCore::adopt(adopted, machine_limits(&inner.config, spec), now_ms(inner));
    Ok((core, rec))
}

/// Adoption (T3, engine.md §7.5): lease, rebuild from the records, host Cold.
fn adopt_session(
    inner: &Inner,
    id: &SessionId,
    env: Option<BTreeMap<String, String>>,
) -> Result<Arc<SessionCell>, AdoptFail> {
    let jerr = |e: alc_core::JournalError| AdoptFail::Journal(e.to_string());
    if inner.stopping.load(Ordering::Acquire) {
        return Err(AdoptFail::NotFound);
    }
    let row = inner
        .journal
        .session(id)
        .map_err(jerr)?
        .ok_or(AdoptFail::NotFound)?;
    if row.status == SessionStatus::Terminal {
        return Err(AdoptFail::Terminal(row.phase));
    }
    if inner.durable {
        match inner
            .journal
            .acquire_lease(id, &inner.owner)
            .map_err(jerr)?
        {
            LeaseResult::Acquired { .. } => {}
            LeaseResult::Busy { .. } => return Err(AdoptFail::Busy),
            LeaseResult::NotFound => return Err(AdoptFail::NotFound),
        }
    }
    let records = inner.journal.read(id, 1).map_err(jerr)?;
    let last_seq = records.last().map_or(0, |r| r.seq);
    let rec = durable::recover(&row, &records).map_err(jerr)?;
    // Env values are not journaled: the caller's (explicit `adopt`) first, then the engine's
    // own for every key the session did not bring (implicit adoption and eager recovery too).
    let mut spec = durable::without_journaled_env(rec.spec.clone());
    if let Some(env) = env {
        spec.env.extend(env);
    }
    let spec = with_engine_env(&inner.services.env, spec);
    let now = now_ms(inner);
    let adopted = Adopted {
        id: id.clone(),
        program_kind: spec.program.kind().to_string(),
        labels: row.labels.clone(),
        budget: effective_budget(&inner.config, &spec.ctx),
        created_at: row.created_at,
        round: rec.round,
        pending: rec.pending,
        last_round: rec.last_round,
        metrics: rec.metrics,
        records: rec.records,
    };
    let (core, effects) = SessionCore::adopt(adopted, machine_limits(&inner.config, &spec), now);
    let log = SessionLog::new(id.clone(), inner.journal.clone(), last_seq);
    let cell = SessionCell::new(core, Arc::new(spec), rec.seed, log);
    let (cell, inserted) = inner.table.insert_if_absent(cell);
    if inserted {
        arm_timers(inner, &cell, &effects, now);
        if effects.enqueue {
            enqueue(inner, cell.clone());
        }
    }
    Ok(cell)
}

/// Records a session that just became terminal in the retention queue and returns the
/// oldest ones beyond `max_retained_terminal`. Called with the cell's lock held, so the
/// queue's order is the order of the terminal transitions (a waiter that saw session A
/// end before spawning B always finds A older than B); the evicted sessions are removed
/// from the table by the caller after unlocking (lock order: table shard before cell).
fn retain_terminal(
    inner: &Inner,
    cell: &Arc<SessionCell>,
    effects: &alc_core::Effects,
) -> Vec<SessionId> {
    let mut evicted = Vec::new();
    if effects.terminal {
        let mut retained = inner.retained.lock();
        retained.push_back(cell.id.clone());
        while retained.len() as u64 > inner.config.max_retained_terminal {
            match retained.pop_front() {
                Some(old) => evicted.push(old),
                None => break,
            }
        }
    }
    evicted
}

fn after_transition(
    inner: &Inner,
    cell: &Arc<SessionCell>,
    effects: &alc_core::Effects,
    evicted: Vec<SessionId>,
) {
    if effects.enqueue {
        enqueue(inner, cell.clone());
    }
    arm_timers(inner, cell, effects, now_ms(inner));
    for old in evicted {
        inner.table.remove(&old);
        if !inner.durable {
            let _ = inner.journal.delete(&old);
        }
    }
    // A terminal transition's append released the lease (`Journal::release_lease`).
    if effects.removed {
        inner.table.remove(&cell.id);
        if inner.durable {
            // Idle eviction (T22): the session stays resumable from the journal.
            let _ = inner.journal.release_lease(&cell.id, &inner.owner);
        } else {
            // Retention of a memory journal (T23): its records go with it.
            let _ = inner.journal.delete(&cell.id);
        }
        let mut retained = inner.retained.lock();
        // Retention timers fire in roughly the order sessions ended.
        if retained.front() == Some(&cell.id) {
            retained.pop_front();
        } else {
            retained.retain(|id| id != &cell.id);
        }
    }
    cell.notify();
}

fn arm_timers(inner: &Inner, cell: &Arc<SessionCell>, effects: &alc_core::Effects, now: i64) {
    for t in &effects.timers {
        if t.kind == alc_core::TimerKind::IdleTtl && cell.idle_armed.swap(true, Ordering::AcqRel) {
            // An earlier idle entry is pending; it re-arms itself when it fires.
            continue;
        }
        let after = Duration::from_millis((t.due_at - now).max(0) as u64);
        inner.timers.arm(cell, after, (t.kind.clone(), t.version));
    }
}

fn fire_timer(inner: &Inner, cell: Arc<SessionCell>, (kind, version): TimerKind) {
    let input = match kind {
        alc_core::TimerKind::Deadline => Input::Deadline,
        alc_core::TimerKind::IdleTtl => {
            cell.idle_armed.store(false, Ordering::Release);
            let st = cell.state.lock();
            if st.core.version != version {
                // Active since this entry was armed: wait for the idle time counted
                // from the last activity, if the session is still paused.
                let ttl = st.core.limits.idle_ttl_ms;
                if st.core.phase == Phase::Paused {
                    if let Some(ttl) = ttl {
                        let due = st.core.last_activity_at.saturating_add(ttl as i64);
                        let after = Duration::from_millis((due - now_ms(inner)).max(0) as u64);
                        let current = st.core.version;
                        drop(st);
                        if !cell.idle_armed.swap(true, Ordering::AcqRel) {
                            inner
                                .timers
                                .arm(&cell, after, (alc_core::TimerKind::IdleTtl, current));
                        }
                    }
                }
                return;
            }
            drop(st);
            Input::IdleTtl {
                durable: inner.durable,
            }
        }
        alc_core::TimerKind::AskTimeout { round, query } => Input::AskTimeout { round, query },
        alc_core::TimerKind::Retention => Input::RetentionExpired,
    };
    let _ = transition(inner, &cell, input);
}

fn worker_loop(inner: Arc<Inner>) {
    inner.watchdog.register_worker();
    loop {
        let cell = {
            let mut q = inner.queue.items.lock();
            let mut spun = false;
            loop {
                if inner.stopping.load(Ordering::Acquire) {
                    return;
                }
                if let Some(c) = q.pop_front() {
                    inner.queue.len.store(q.len(), Ordering::Relaxed);
                    break c;
                }
                if vm_pool_short(&inner) {
                    parking_lot::MutexGuard::unlocked(&mut q, || refill_vm_pool(&inner));
                    continue;
                }
                if !spun && !inner.queue.spinning.swap(true, Ordering::AcqRel) {
                    parking_lot::MutexGuard::unlocked(&mut q, || spin_for_work(&inner));
                    // Cleared before the queue is looked at again under its lock, so an
                    // `enqueue` that skipped its wake-up is always seen.
                    inner.queue.spinning.store(false, Ordering::Release);
                    spun = true;
                    continue;
                }
                inner.queue.ready.wait(&mut q);
                spun = false;
            }
        };
        run_step(&inner, cell);
    }
}

/// Waits until the records of the transition a caller just observed are written: the
/// writer holds the session's log lock from before it changes the state until its append
/// is done, so a pause or an outcome is never reported before it is in the journal.
fn journal_barrier(cell: &SessionCell) {
    drop(cell.log.last_seq.lock());
}

/// Journal retention of open sessions (`interfaces.md` §9.5): every non-terminal session
/// whose row was last updated more than `retention_ms` ago and that no live process holds
/// is cancelled with code `expired` (adopted first, so the outcome is journaled like any
/// cancel). Sessions another live process hosts are left to it.
fn expire_open_sessions(inner: &Inner, retention_ms: u64) -> Result<(), String> {
    let now = now_ms(inner);
    let filter = alc_core::RowFilter {
        updated_before: Some(now.saturating_sub(retention_ms.min(i64::MAX as u64) as i64)),
        ..alc_core::RowFilter::open()
    };
    let rows = inner
        .journal
        .open_sessions(&filter)
        .map_err(|e| e.to_string())?;
    let days = retention_ms / 86_400_000;
    for row in rows {
        let cell = match inner.table.get(&row.session_id) {
            Some(c) => c,
            None => match adopt_session(inner, &row.session_id, None) {
                Ok(c) => c,
                Err(_) => continue,
            },
        };
        let reason = CancelReason {
            code: alc_core::CancelCode::Expired,
            detail: Some(format!(
                "journal retention: no activity for more than {days} day(s) (journal_retention_days)"
            )),
        };
        let _ = transition(inner, &cell, Input::Cancel(reason));
    }
    Ok(())
}

/// Builds one VM base for the pool (an idle worker's chore).
fn refill_vm_pool(inner: &Inner) {
    match std::panic::catch_unwind(VmBase::new) {
        Ok(Ok(base)) => inner.vm_pool.lock().push(base),
        // Building never runs user code, so this does not happen; should it, spawns build
        // their own VMs (and report the error) and idle workers stop trying.
        _ => inner.vm_pool_off.store(true, Ordering::Relaxed),
    }
}

/// Whether an idle worker should add a base to the pool.
fn vm_pool_short(inner: &Inner) -> bool {
    !inner.vm_pool_off.load(Ordering::Relaxed)
        && inner.vm_pool.lock().len() < inner.worker_count * VM_POOL_PER_WORKER
}

/// Dispatches one queued session, steps it, and applies the step's outcome.
fn run_step(inner: &Inner, cell: Arc<SessionCell>) {
    let now = now_ms(inner);
    let (vm, answers, calls_used, tokens_used, cpu_ms_before, round) = {
        let mut st = cell.state.lock();
        let effects = match SessionMachine::apply(&mut st.core, Input::Dispatch, now) {
            Ok(e) => e,
            Err(_) => return, // stale queue entry (T5)
        };
        let vm = st.vm.take();
        let m = &st.core.metrics;
        let out = (
            vm,
            effects.take_resume_input.clone(),
            m.llm_calls,
            m.total_tokens.tokens,
            m.cpu_ms,
            st.core.round,
        );
        drop(st);
        cell.notify();
        out
    };
    if let Some(vm) = &vm {
        inner
            .vm_bytes
            .fetch_sub(vm.used_memory() as u64, Ordering::Relaxed);
    }
    inner.running.fetch_add(1, Ordering::AcqRel);
    let started = Instant::now();
    let (vm, end, buffer) = step_vm(
        inner,
        &cell,
        vm,
        answers,
        calls_used,
        tokens_used,
        cpu_ms_before,
        round,
    );
    // Whole milliseconds for the report; the sub-millisecond rest carries over to the
    // next step (only the worker holding the session touches it).
    let step_us = started.elapsed().as_micros() as u64 + cell.cpu_carry_us.load(Ordering::Relaxed);
    let cpu_ms = step_us / 1000;
    cell.cpu_carry_us.store(step_us % 1000, Ordering::Relaxed);
    inner.running.fetch_sub(1, Ordering::AcqRel);

    let vm_bytes = vm.as_ref().map_or(0, |v| v.used_memory() as u64);
    let now = now_ms(inner);
    // The step's records: its buffered inputs, then its annotations (engine.md §7.2).
    let mut records = buffer.records;
    records.extend(buffer.logs.iter().map(|entry| PendingRecord {
        vm: 0,
        at: entry.ts,
        body: RecordBody::Log {
            entry: entry.clone(),
        },
    }));
    if let Some(progress) = &buffer.progress {
        records.push(PendingRecord {
            vm: 0,
            at: now,
            body: RecordBody::Progress {
                progress: progress.clone(),
            },
        });
    }
    records.extend(buffer.custom.iter().map(|(key, value)| PendingRecord {
        vm: 0,
        at: now,
        body: RecordBody::Metric {
            key: key.clone(),
            value: value.clone(),
        },
    }));
    let report = StepReport {
        cpu_ms,
        vm_bytes,
        logs: buffer.logs,
        progress: buffer.progress,
        custom: buffer.custom,
    };
    let mut divergence = None;
    let mut journal_error = None;
    let outcome = match end {
        StepEnd::Request(req) => StepOutcome::Paused {
            queries: crate::vm::pending_queries(req),
            report,
        },
        StepEnd::ForkPause(queries) => StepOutcome::Paused { queries, report },
        StepEnd::Preempted => StepOutcome::Preempted { report },
        StepEnd::Finished(value) => StepOutcome::Finished { value, report },
        StepEnd::Failed {
            kind,
            code,
            message,
            traceback,
        } => StepOutcome::Failed {
            kind,
            code,
            message,
            traceback,
            report,
        },
        StepEnd::Diverged(d) => {
            let message = format!(
                "replay_divergence: expected {} (seq {}), got {}",
                d.expected, d.seq, d.actual
            );
            divergence = Some(*d);
            StepOutcome::Failed {
                kind: FailureKind::Divergence,
                code: None,
                message,
                traceback: None,
                report,
            }
        }
        StepEnd::JournalFailed(message) => {
            journal_error = Some(message);
            StepOutcome::Preempted { report }
        }
        StepEnd::Aborted => {
            if cell.abort.load(Ordering::Acquire) == hook::ABORT_CPU {
                StepOutcome::Failed {
                    kind: FailureKind::CpuLimit,
                    code: None,
                    message: format!(
                        "cpu_limit: the session used more than {} ms of Lua CPU time",
                        cell.spec.limits.cpu_ms.unwrap_or(inner.config.cpu_limit_ms)
                    ),
                    traceback: None,
                    report,
                }
            } else {
                StepOutcome::Aborted { report }
            }
        }
    };
    if let Some(message) = journal_error {
        // T25 (the step's records could not be written): the session fails, no more records.
        drop(vm);
        journal_failed(inner, &cell, message);
        return;
    }
    let keep_vm = matches!(
        outcome,
        StepOutcome::Paused { .. } | StepOutcome::Preempted { .. }
    );
    let paused = matches!(outcome, StepOutcome::Paused { .. });
    // A finished VM is freed after the outcome is published, outside the locks: tearing
    // a Lua state down is a good part of a short session's cost.
    let mut finished_vm = None;
    let mut last = cell.log.last_seq.lock();
    let mut st = cell.state.lock();
    if keep_vm {
        st.vm = vm;
        if st.vm.is_some() {
            inner.vm_bytes.fetch_add(vm_bytes, Ordering::Relaxed);
        }
    } else {
        finished_vm = vm;
    }
    let applied = SessionMachine::apply(&mut st.core, Input::Step(outcome), now);
    let effects = match applied {
        Ok(e) => e,
        Err(_) => return,
    };
    if let (Some(d), Some(alc_core::Outcome::Failed { divergence, .. })) =
        (divergence, st.core.outcome.as_deref_mut())
    {
        *divergence = Some(d);
    }
    if paused && st.core.phase == Phase::Paused {
        if let Some(p) = &st.core.pending {
            records.push(PendingRecord {
                vm: 0,
                at: now,
                body: RecordBody::Pause {
                    round: p.round,
                    queries: p.queries.clone(),
                },
            });
        }
    }
    if effects.terminal {
        records.extend(outcome_record(&st.core, now));
    }
    let row = row_of(&st.core, now);
    let dropped = if effects.drop_vm { st.vm.take() } else { None };
    if st.core.slot == SlotState::Hot && st.vm.is_none() {
        debug_assert!(false, "a hot slot must hold its VM");
    }
    let evicted = retain_terminal(inner, &cell, &effects);
    drop(st);
    // A preemption that read nothing from outside has nothing to record (unless records
    // are held back for this step).
    let written = if records.is_empty() && !cell.log.held_back() {
        Ok(())
    } else {
        cell.log.append_locked(&mut last, records, row)
    };
    drop(last);
    if let Some(vm) = &dropped {
        inner
            .vm_bytes
            .fetch_sub(vm.used_memory() as u64, Ordering::Relaxed);
    }
    if let Err(e) = written {
        let mut fx = effects;
        fx.enqueue = false;
        after_transition(inner, &cell, &fx, evicted);
        journal_failed(inner, &cell, format!("journal: {e}"));
        return;
    }
    after_transition(inner, &cell, &effects, evicted);
    drop(finished_vm);
    drop(dropped);
}

#[allow(clippy::too_many_arguments)]
fn step_vm(
    inner: &Inner,
    cell: &Arc<SessionCell>,
    vm: Option<VmSet>,
    answers: Option<Vec<alc_core::Answer>>,
    calls_used: u64,
    tokens_used: u64,
    cpu_ms_before: u64,
    round: u64,
) -> (Option<VmSet>, StepEnd, crate::host::StepBuffer) {
    let mut vm = match vm {
        Some(vm) => vm,
        None => {
            let created_at = cell.state.lock().core.created_at;
            let spec = &cell.spec;
            let mut settings = inner.settings.clone();
            if let Some(m) = spec.limits.memory_bytes {
                settings.memory_limit = m as usize;
            }
            // A session with records beyond `spawned` replays them (engine.md §7.6).
            let records = if *cell.log.last_seq.lock() > 1 {
                match inner.journal.read(&cell.id, 1) {
                    Ok(r) => r,
                    Err(e) => {
                        return (
                            None,
                            StepEnd::JournalFailed(format!("journal: {e}")),
                            Default::default(),
                        )
                    }
                }
            } else {
                Vec::new()
            };
            // Replay starts from an empty VM-local view of budget usage and re-counts
            // the recorded queries (§7.6); a fresh VM starts from the session's metrics.
            let replaying = records.iter().any(|r| r.body.is_input() && r.seq > 1);
            let budget = BudgetView {
                limits: cell.state.lock().core.budget.clone(),
                calls_used: if replaying { 0 } else { calls_used },
                tokens_used: if replaying { 0 } else { tokens_used },
                created_at,
            };
            let built = std::panic::catch_unwind(AssertUnwindSafe(|| {
                VmSet::build(VmInit {
                    log: Some(cell.log.clone()),
                    replay: &records,
                    session_id: cell.id.clone(),
                    spec,
                    services: &inner.services,
                    abort: cell.abort.clone(),
                    budget,
                    seed: cell.seed,
                    settings,
                    base: inner.vm_pool.lock().pop(),
                })
            }));
            match built {
                Ok(Ok(vm)) => vm,
                Ok(Err(f)) => {
                    return (
                        None,
                        StepEnd::Failed {
                            kind: f.kind,
                            code: None,
                            message: f.message,
                            traceback: None,
                        },
                        Default::default(),
                    )
                }
                Err(_) => {
                    return (
                        None,
                        StepEnd::Failed {
                            kind: FailureKind::EngineError,
                            code: None,
                            message: "engine: panic while building the VM".into(),
                            traceback: None,
                        },
                        Default::default(),
                    )
                }
            }
        }
    };
    vm.prepare_step(calls_used, tokens_used, cpu_ms_before, round);
    let cpu_limit = cell.spec.limits.cpu_ms.unwrap_or(inner.config.cpu_limit_ms);
    let now = Instant::now();
    let cpu_deadline = (cpu_limit > 0)
        .then(|| now + Duration::from_millis(cpu_limit.saturating_sub(cpu_ms_before)));
    let ctl = StepControl {
        abort: &cell.abort,
        queue_len: &inner.queue.len,
        slice_deadline: now + Duration::from_millis(inner.config.slice_ms),
        cpu_deadline,
        park: &inner.park,
    };
    inner.watchdog.step_started(
        cell.abort.clone(),
        ctl.slice_deadline,
        cpu_deadline,
        inner.queue.len.load(Ordering::Relaxed) > 0,
    );
    let stepped = std::panic::catch_unwind(AssertUnwindSafe(|| vm.step(answers, &ctl)));
    inner.watchdog.step_ended();
    match stepped {
        Ok(end) => {
            let buffer = vm.take_buffer();
            (Some(vm), end, buffer)
        }
        Err(_) => (
            None,
            StepEnd::Failed {
                kind: FailureKind::EngineError,
                code: None,
                message: "engine: panic while stepping the session".into(),
                traceback: None,
            },
            Default::default(),
        ),
    }
}

/// The last `limit` exchanges (query plus its answer, if any) of a journal, in order.
fn history_of(records: &[alc_core::JournalRecord], limit: u32) -> Vec<alc_core::Exchange> {
    let mut out: Vec<alc_core::Exchange> = Vec::new();
    for rec in records {
        match &rec.body {
            RecordBody::Pause { round, queries } => {
                for q in queries.iter() {
                    let (prompt, system) = match &q.request {
                        alc_core::QueryRequest::Llm { query } => {
                            (query.prompt.clone(), query.system.clone())
                        }
                        alc_core::QueryRequest::Human { question } => {
                            (question.question.clone(), None)
                        }
                    };
                    out.push(alc_core::Exchange {
                        round: *round,
                        query_id: q.id.clone(),
                        kind: q.request.kind(),
                        prompt,
                        system,
                        response: None,
                        error: None,
                        usage: None,
                        asked_at: rec.at,
                        answered_at: None,
                    });
                }
            }
            RecordBody::Answer { round, answer } => {
                // An id-less answer goes to the round's only open query.
                let slot = out.iter_mut().find(|e| {
                    e.round == *round
                        && e.answered_at.is_none()
                        && answer.query_id.as_ref().is_none_or(|q| *q == e.query_id)
                });
                if let Some(e) = slot {
                    e.response = answer.text.clone();
                    e.error = answer.error.clone();
                    e.usage = answer.usage.clone();
                    e.answered_at = Some(rec.at);
                }
            }
            _ => {}
        }
    }
    let skip = out.len().saturating_sub(limit as usize);
    out.split_off(skip)
}
