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
    digest_request, AbortCause, Answers, BudgetLimits, CancelAck, CancelError, CancelReason,
    EngineConfig, FailureKind, Input, MachineLimits, ObserveError, ObserveItem, PendingQuery,
    Phase, QueryId, QueryOrigin, QueryRequest, Rejection, ResumeAck, ResumeError, SessionCore,
    SessionId, SessionMachine, SessionSpec, SlotState, Snapshot, SnapshotOptions, SpawnError,
    StartError, StateError, StepOutcome, StepReport, Terminal, UntilPause, WaitError,
};
use parking_lot::{Condvar, Mutex};

use crate::hook::{self, StepControl};
use crate::host::{BridgeLimits, BudgetView, HostRequest};
use crate::services::{valid_package_name, HostServices};
use crate::table::{SessionCell, SessionTable};
use crate::timers::{TimerKind, Timers};
use crate::vm::{StepEnd, VmInit, VmSet, VmSettings};

/// How long `shutdown` waits for running steps to park before cancelling them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

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
}

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
}

/// The engine: cheap to clone, `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn now_ms(inner: &Inner) -> i64 {
    inner.services.clock.now_ms()
}

fn new_session_id() -> SessionId {
    use rand::TryRngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random number generator is available");
    SessionId::from_random_bytes(bytes)
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
    /// Starts an engine: worker threads and the timer thread.
    pub async fn start(config: EngineConfig, services: HostServices) -> Result<Engine, StartError> {
        Self::start_blocking(config, services)
    }

    /// `start` for callers outside an async runtime.
    pub fn start_blocking(
        config: EngineConfig,
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
            },
            max_result_bytes: config.max_result_bytes,
            gc_park_growth_bytes: config.gc_park_growth_bytes as usize,
        };
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
            }
        });
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
        let id = new_session_id();
        let now = now_ms(inner);
        let budget = effective_budget(&inner.config, &spec.ctx);
        let seed = spec.seed.unwrap_or_else(rand::random::<u64>);
        let mut machine_limits = MachineLimits::from_config(&inner.config);
        if let Some(d) = spec.limits.deadline_ms {
            machine_limits.deadline_ms = Some(d);
        }
        if let Some(t) = spec.limits.idle_ttl_ms {
            machine_limits.idle_ttl_ms = Some(t);
        }
        let (core, effects) = SessionCore::spawn(
            id.clone(),
            spec.program.kind().to_string(),
            spec.labels.clone(),
            budget,
            machine_limits,
            now,
        );
        let cell = SessionCell::new(core, Arc::new(spec), seed);
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

    /// The session's snapshot; never waits for a step.
    pub fn state(&self, id: &SessionId, opts: &SnapshotOptions) -> Result<Snapshot, StateError> {
        let cell = self.cell(id).ok_or_else(|| StateError::NotFound {
            session_id: id.clone(),
        })?;
        let st = cell.state.lock();
        Ok(st.core.snapshot_at(opts, now_ms(&self.inner)))
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
        let inner = &self.inner;
        if inner.stopping.load(Ordering::Acquire) {
            return Err(ResumeError::ShuttingDown);
        }
        let cell = self.cell(id).ok_or_else(|| ResumeError::NotFound {
            session_id: id.clone(),
        })?;
        let outcome = transition(inner, &cell, Input::Resume(answers));
        match outcome {
            Ok(Some(alc_core::Ack::Resume(ack))) => Ok(ack),
            Ok(_) => Err(ResumeError::NotPaused {
                phase: cell.state.lock().core.phase,
            }),
            Err(Rejection::Resume(e)) => Err(e),
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
        let cell = self.cell(id).ok_or_else(|| CancelError::NotFound {
            session_id: id.clone(),
        })?;
        match transition(&self.inner, &cell, Input::Cancel(reason)) {
            Ok(Some(alc_core::Ack::Cancel(ack))) => Ok(ack),
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
        let rx = cell.changed.subscribe();
        Ok(EventStream {
            cell,
            next: from_seq.max(1),
            rx,
            done: false,
            stopped: self.inner.stopped.clone(),
        })
    }

    /// Waits until the session is terminal.
    pub async fn wait(&self, id: &SessionId) -> Result<Terminal, WaitError> {
        let cell = self.cell(id).ok_or_else(|| WaitError::NotFound {
            session_id: id.clone(),
        })?;
        let mut rx = cell.changed.subscribe();
        loop {
            if let Some(t) = cell.state.lock().core.terminal() {
                return Ok(t);
            }
            if self.inner.stopped.load(Ordering::Acquire) {
                return Err(WaitError::ShuttingDown);
            }
            if rx.changed().await.is_err() {
                return Err(WaitError::ShuttingDown);
            }
        }
    }

    /// Returns as soon as the session is paused or terminal, or when `timeout` elapses.
    pub async fn run_until_pause(
        &self,
        id: &SessionId,
        timeout: Duration,
    ) -> Result<UntilPause, WaitError> {
        let cell = self.cell(id).ok_or_else(|| WaitError::NotFound {
            session_id: id.clone(),
        })?;
        let mut rx = cell.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            {
                let st = cell.state.lock();
                if let Some(t) = st.core.terminal() {
                    return Ok(UntilPause::Terminal {
                        terminal: Box::new(t),
                    });
                }
                if st.core.phase == Phase::Paused {
                    return Ok(UntilPause::Paused {
                        snapshot: Box::new(st.core.snapshot(&SnapshotOptions::default())),
                    });
                }
            }
            if self.inner.stopped.load(Ordering::Acquire) {
                return Err(WaitError::ShuttingDown);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return Err(WaitError::ShuttingDown),
                Err(_) => {
                    let st = cell.state.lock();
                    return Ok(UntilPause::Running {
                        snapshot: Box::new(st.core.snapshot(&SnapshotOptions::default())),
                    });
                }
            }
        }
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
        inner.timers.stop();
        // Release everyone waiting on a session that can no longer change.
        inner.stopped.store(true, Ordering::Release);
        for cell in inner.table.cells() {
            let version = cell.state.lock().core.version;
            cell.notify(version);
        }
        report.lost = inner
            .table
            .cells()
            .iter()
            .filter(|c| !c.state.lock().core.phase.is_terminal())
            .count();
        report
    }
}

/// A stream of a session's events (engine.md §9 `observe`).
pub struct EventStream {
    cell: Arc<SessionCell>,
    next: u64,
    rx: tokio::sync::watch::Receiver<u64>,
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
            if self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

fn enqueue(inner: &Inner, cell: Arc<SessionCell>) {
    let mut q = inner.queue.items.lock();
    q.push_back(cell);
    inner.queue.len.store(q.len(), Ordering::Relaxed);
    inner.queue.ready.notify_one();
}

/// Applies `input` under the cell's lock and performs the effects after unlocking.
fn transition(
    inner: &Inner,
    cell: &Arc<SessionCell>,
    input: Input,
) -> Result<Option<alc_core::Ack>, Rejection> {
    let now = now_ms(inner);
    let mut st = cell.state.lock();
    let before_abort = st.core.abort;
    let effects = SessionMachine::apply(&mut st.core, input, now)?;
    if st.core.abort != before_abort {
        let code = match st.core.abort {
            Some(AbortCause::Cancel) => hook::ABORT_CANCEL,
            Some(AbortCause::Deadline) => hook::ABORT_DEADLINE,
            Some(AbortCause::CpuLimit) => hook::ABORT_CPU,
            None => hook::ABORT_NONE,
        };
        cell.abort.store(code, Ordering::Release);
    }
    let dropped = if effects.drop_vm { st.vm.take() } else { None };
    let version = st.core.version;
    let evicted = retain_terminal(inner, cell, &effects);
    drop(st);
    if let Some(vm) = dropped {
        inner
            .vm_bytes
            .fetch_sub(vm.used_memory() as u64, Ordering::Relaxed);
        drop(vm);
    }
    after_transition(inner, cell, &effects, version, evicted);
    Ok(effects.ack)
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
    version: u64,
    evicted: Vec<SessionId>,
) {
    if effects.enqueue {
        enqueue(inner, cell.clone());
    }
    arm_timers(inner, cell, effects, now_ms(inner));
    for old in evicted {
        inner.table.remove(&old);
    }
    if effects.removed {
        inner.table.remove(&cell.id);
        let mut retained = inner.retained.lock();
        // Retention timers fire in roughly the order sessions ended.
        if retained.front() == Some(&cell.id) {
            retained.pop_front();
        } else {
            retained.retain(|id| id != &cell.id);
        }
    }
    cell.notify(version);
}

fn arm_timers(inner: &Inner, cell: &Arc<SessionCell>, effects: &alc_core::Effects, now: i64) {
    for t in &effects.timers {
        let after = Duration::from_millis((t.due_at - now).max(0) as u64);
        inner.timers.arm(cell, after, (t.kind.clone(), t.version));
    }
}

fn fire_timer(inner: &Inner, cell: Arc<SessionCell>, (kind, version): TimerKind) {
    let input = match kind {
        alc_core::TimerKind::Deadline => Input::Deadline,
        alc_core::TimerKind::IdleTtl => {
            if cell.state.lock().core.version != version {
                return;
            }
            Input::IdleTtl { durable: false }
        }
        alc_core::TimerKind::AskTimeout { round, query } => Input::AskTimeout { round, query },
        alc_core::TimerKind::Retention => Input::RetentionExpired,
    };
    let _ = transition(inner, &cell, input);
}

fn worker_loop(inner: Arc<Inner>) {
    loop {
        let cell = {
            let mut q = inner.queue.items.lock();
            loop {
                if inner.stopping.load(Ordering::Acquire) {
                    return;
                }
                if let Some(c) = q.pop_front() {
                    inner.queue.len.store(q.len(), Ordering::Relaxed);
                    break c;
                }
                inner.queue.ready.wait(&mut q);
            }
        };
        run_step(&inner, cell);
    }
}

/// Dispatches one queued session, steps it, and applies the step's outcome.
fn run_step(inner: &Inner, cell: Arc<SessionCell>) {
    let now = now_ms(inner);
    let (vm, answers, calls_used, tokens_used, cpu_ms_before) = {
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
        );
        let version = st.core.version;
        drop(st);
        cell.notify(version);
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
    );
    // Whole milliseconds for the report; the sub-millisecond rest carries over to the
    // next step (only the worker holding the session touches it).
    let step_us = started.elapsed().as_micros() as u64 + cell.cpu_carry_us.load(Ordering::Relaxed);
    let cpu_ms = step_us / 1000;
    cell.cpu_carry_us.store(step_us % 1000, Ordering::Relaxed);
    inner.running.fetch_sub(1, Ordering::AcqRel);

    let vm_bytes = vm.as_ref().map_or(0, |v| v.used_memory() as u64);
    let report = StepReport {
        cpu_ms,
        vm_bytes,
        logs: buffer.logs,
        progress: buffer.progress,
        custom: buffer.custom,
    };
    let outcome = match end {
        StepEnd::Request(req) => StepOutcome::Paused {
            queries: pending_queries(req),
            report,
        },
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
    let keep_vm = matches!(
        outcome,
        StepOutcome::Paused { .. } | StepOutcome::Preempted { .. }
    );
    let mut st = cell.state.lock();
    if keep_vm {
        st.vm = vm;
        if st.vm.is_some() {
            inner.vm_bytes.fetch_add(vm_bytes, Ordering::Relaxed);
        }
    } else {
        drop(vm);
    }
    let applied = SessionMachine::apply(&mut st.core, Input::Step(outcome), now_ms(inner));
    let effects = match applied {
        Ok(e) => e,
        Err(_) => return,
    };
    let dropped = if effects.drop_vm { st.vm.take() } else { None };
    if st.core.slot == SlotState::Hot && st.vm.is_none() {
        debug_assert!(false, "a hot slot must hold its VM");
    }
    let version = st.core.version;
    let evicted = retain_terminal(inner, &cell, &effects);
    drop(st);
    if let Some(vm) = dropped {
        inner
            .vm_bytes
            .fetch_sub(vm.used_memory() as u64, Ordering::Relaxed);
        drop(vm);
    }
    after_transition(inner, &cell, &effects, version, evicted);
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
            let budget = BudgetView {
                limits: cell.state.lock().core.budget.clone(),
                calls_used,
                tokens_used,
                created_at,
            };
            let built = std::panic::catch_unwind(AssertUnwindSafe(|| {
                VmSet::build(VmInit {
                    session_id: cell.id.clone(),
                    spec,
                    services: &inner.services,
                    abort: cell.abort.clone(),
                    budget,
                    seed: cell.seed,
                    settings,
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
    vm.prepare_step(calls_used, tokens_used, cpu_ms_before);
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
    let stepped = std::panic::catch_unwind(AssertUnwindSafe(|| vm.step(answers, &ctl)));
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

/// The pause's queries: ids `q-0 … q-(n-1)` in input order (engine.md §8.1).
fn pending_queries(req: HostRequest) -> Vec<PendingQuery> {
    let requests: Vec<QueryRequest> = match req {
        HostRequest::Llm { items, .. } => items.into_iter().map(QueryRequest::from).collect(),
        HostRequest::Ask(q) => vec![QueryRequest::from(q)],
    };
    requests
        .into_iter()
        .enumerate()
        .map(|(i, request)| PendingQuery {
            id: QueryId::main(i),
            origin: QueryOrigin::Main,
            digest: digest_request(&request),
            request,
        })
        .collect()
}
