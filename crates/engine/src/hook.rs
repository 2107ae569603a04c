//! The instruction hook: time slicing, cancellation and the CPU limit.
//!
//! Lua 5.4 routes every instruction through its hook dispatcher while any count hook is
//! set on a thread, whatever the interval, which halves the speed of tight Lua code. So
//! the hook is armed only when there is something to do (engine.md §13 note 5):
//!
//! - Each worker records the Lua thread it is running right now ([`with_control`] for the
//!   session's root coroutine; the sandbox shims call [`enter`] on every coroutine switch).
//! - The engine's watchdog ([`Watchdog`]) looks at every running step about once a
//!   millisecond. When its session is aborted (cancel, deadline), its CPU allowance is used
//!   up, its slice is over while others wait, or shutdown asks it to park, the watchdog
//!   interrupts the worker with a signal; the handler, running on the worker thread itself
//!   like the standalone interpreter's Ctrl-C handler, arms a count hook on the recorded
//!   thread (`lua_sethook` is documented as safe to call from a signal handler).
//! - A coroutine switch while one of those conditions holds arms the thread switched to,
//!   so a condition cannot be escaped by resuming another coroutine.
//! - The hook acts (raises the abort, or yields to end the slice) and disarms itself when
//!   it finds nothing to do, so a thread armed for a past slice runs at full speed again.
//!
//! The hook reads the control block of the step running on this worker through a
//! thread-local pointer; it never takes a lock. On abort it raises a private light
//! userdata with `lua_error` directly from C, so no Lua code (`__close` handlers included)
//! runs inside the hook; the sandbox shims re-raise that error through every `pcall`,
//! `xpcall` and coroutine boundary (engine.md §5.2–§5.3, §13 notes 4–6).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::ffi;
use parking_lot::{Condvar, Mutex};

/// No abort requested.
pub const ABORT_NONE: u8 = 0;
/// The session was cancelled.
pub const ABORT_CANCEL: u8 = 1;
/// The session's wall-clock deadline passed.
pub const ABORT_DEADLINE: u8 = 2;
/// The session used up its Lua CPU time.
pub const ABORT_CPU: u8 = 3;
/// Abort: replay diverged (the step fails with `divergence`).
pub const ABORT_DIVERGENCE: u8 = 4;
/// Abort: a journal write failed during the step.
pub const ABORT_JOURNAL: u8 = 5;

/// The address whose light userdata is the abort error value.
static ABORT_TAG: u8 = 0;

/// What the hook consults while a step runs on this thread.
pub struct StepControl<'a> {
    /// The session's abort cell (`ABORT_*`), shared with `cancel` and the timer thread.
    pub abort: &'a AtomicU8,
    /// Number of sessions waiting in the run queue; slicing only matters when > 0.
    pub queue_len: &'a AtomicUsize,
    /// When the current slice ends.
    pub slice_deadline: Instant,
    /// When the session's CPU allowance runs out, if it has one.
    pub cpu_deadline: Option<Instant>,
    /// Set when shutdown asks running steps to park.
    pub park: &'a AtomicBool,
}

impl StepControl<'_> {
    /// Whether the hook has something to do at `now`.
    fn needs_hook(&self, now: Instant) -> bool {
        self.abort.load(Ordering::Acquire) != ABORT_NONE
            || self.park.load(Ordering::Relaxed)
            || self.cpu_deadline.is_some_and(|d| now >= d)
            || (now >= self.slice_deadline && self.queue_len.load(Ordering::Relaxed) > 0)
    }
}

thread_local! {
    static CURRENT: Cell<*const StepControl<'static>> = const { Cell::new(std::ptr::null()) };
    /// The Lua thread running on this worker right now (null between steps).
    static RUNNING: Cell<*mut ffi::lua_State> = const { Cell::new(std::ptr::null_mut()) };
}

/// Instructions between hook calls once armed (the engine's `hook_interval`).
static INTERVAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(1000);

/// Sets the number of instructions between hook calls once a hook is armed.
pub fn set_interval(every: u32) {
    INTERVAL.store(every.clamp(1, i32::MAX as u32) as i32, Ordering::Relaxed);
}

/// Runs `f` with `ctl` as the hook's control block on this thread and `state` (the
/// coroutine about to be resumed) as its running Lua thread; arms `state` at once when
/// the control already calls for the hook (an abort that came before the step).
///
/// # Safety
/// `state` must be a valid Lua thread that `f` resumes on this thread.
pub unsafe fn with_control<R>(
    ctl: &StepControl<'_>,
    state: *mut ffi::lua_State,
    f: impl FnOnce() -> R,
) -> R {
    struct Reset(*const StepControl<'static>, *mut ffi::lua_State);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
            RUNNING.with(|c| c.set(self.1));
        }
    }
    // The pointer is only dereferenced while `f` runs, i.e. while `ctl` is alive.
    let ptr = (ctl as *const StepControl<'_>).cast::<StepControl<'static>>();
    let previous = CURRENT.with(|c| c.replace(ptr));
    let previous_running = RUNNING.with(|c| c.get());
    let _reset = Reset(previous, previous_running);
    enter(state);
    f()
}

/// Records `state` as the Lua thread now running on this worker, and arms its hook when
/// the running step needs it. Called on every coroutine switch.
///
/// # Safety
/// `state` must be a valid Lua thread of the VM this worker is stepping.
pub unsafe fn enter(state: *mut ffi::lua_State) {
    RUNNING.with(|c| c.set(state));
    let ctl = CURRENT.with(|c| c.get());
    if !ctl.is_null() && (*ctl).needs_hook(Instant::now()) {
        arm(state);
    }
}

/// Arms the hook on the Lua thread running on this worker (after a host function set an
/// abort, so the script stops at its next hook call instead of the watchdog's).
pub fn arm_running() {
    let state = RUNNING.with(|c| c.get());
    if !state.is_null() {
        // SAFETY: RUNNING is the thread executing on this worker (we are inside it).
        unsafe { arm(state) };
    }
}

unsafe fn arm(state: *mut ffi::lua_State) {
    ffi::lua_sethook(
        state,
        Some(count_hook),
        ffi::LUA_MASKCOUNT,
        INTERVAL.load(Ordering::Relaxed),
    );
}

/// True if `v` is the abort error value.
pub fn is_abort_value(v: &mlua::Value) -> bool {
    matches!(v, mlua::Value::LightUserData(ud) if std::ptr::eq(ud.0 as *const u8, &ABORT_TAG))
}

unsafe extern "C-unwind" fn count_hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let ptr = CURRENT.with(|c| c.get());
    let now = Instant::now();
    if ptr.is_null() || !(*ptr).needs_hook(now) {
        // Armed for a condition that has passed (or outside any step): run at full speed.
        ffi::lua_sethook(state, None, 0, 0);
        return;
    }
    let ctl = &*ptr;
    let abort = ctl.abort.load(Ordering::Acquire);
    if abort != ABORT_NONE {
        raise_abort(state);
    }
    if let Some(limit) = ctl.cpu_deadline {
        if now >= limit {
            let _ = ctl.abort.compare_exchange(
                ABORT_NONE,
                ABORT_CPU,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            raise_abort(state);
        }
    }
    // Slice over (or park): yield where Lua allows it; under a C boundary the hook stays
    // armed and tries again at its next call.
    if ffi::lua_isyieldable(state) != 0 {
        ffi::lua_yield(state, 0);
    }
}

unsafe fn raise_abort(state: *mut ffi::lua_State) -> ! {
    ffi::lua_pushlightuserdata(state, &ABORT_TAG as *const u8 as *mut std::ffi::c_void);
    ffi::lua_error(state);
}

// ---- the watchdog ----------------------------------------------------------------------

/// The signal that asks a worker to arm its running thread. Its default action is to be
/// ignored, so a stray one is harmless.
const ARM_SIGNAL: libc::c_int = libc::SIGURG;

extern "C" fn on_arm_signal(_: libc::c_int) {
    // Only a thread-local read and `lua_sethook` (documented as safe in a signal
    // handler); `try_with` because the thread may be exiting.
    if let Ok(state) = RUNNING.try_with(|c| c.get()) {
        if !state.is_null() {
            // SAFETY: RUNNING is the thread this worker is executing; the handler runs on
            // the worker itself, between two of its instructions.
            unsafe { arm(state) };
        }
    }
}

fn install_signal_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: a plain handler with SA_RESTART, so interrupted system calls resume.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_arm_signal as *const () as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(ARM_SIGNAL, &sa, std::ptr::null_mut());
        }
    });
}

/// What the watchdog knows about the step a worker is running.
struct Watched {
    abort: Arc<AtomicU8>,
    slice_deadline: Instant,
    cpu_deadline: Option<Instant>,
    /// When the worker was last signalled for this step.
    signalled: Option<Instant>,
}

/// One worker as the watchdog sees it.
struct Slot {
    thread: libc::pthread_t,
    step: Mutex<Option<Watched>>,
}

/// The engine's watchdog: interrupts workers whose running step needs the hook.
///
/// While steps run it looks every [`TICK`]; with none running it polls every
/// [`IDLE_POLL`], and after [`IDLE_POLLS_BEFORE_SLEEP`] empty polls in a row it sleeps
/// until a step starts (`asleep`), so an idle engine wakes nobody.
pub struct Watchdog {
    slots: Mutex<Vec<Arc<Slot>>>,
    running: AtomicUsize,
    /// Set while the watchdog sleeps until woken: the next step to start wakes it.
    asleep: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
    stop: AtomicBool,
}

thread_local! {
    static SLOT: std::cell::RefCell<Option<Arc<Slot>>> = const { std::cell::RefCell::new(None) };
}

/// How often the watchdog looks at running steps.
const TICK: Duration = Duration::from_micros(500);
/// How often it looks for running steps when there were none (a step is announced to an
/// idle watchdog only when others wait for its slice; a cancel or a deadline signals the
/// worker directly, so only CPU limits and slices started alone wait at most this long).
const IDLE_POLL: Duration = Duration::from_millis(5);
/// Idle polls in a row (100 ms with no step running) after which the watchdog sleeps until
/// a step starts; that step then pays one wake-up.
const IDLE_POLLS_BEFORE_SLEEP: u32 = 20;
/// The shortest time between two signals to one worker for one step.
const RESIGNAL: Duration = Duration::from_millis(2);

impl Default for Watchdog {
    fn default() -> Self {
        Watchdog::new()
    }
}

impl Watchdog {
    /// A watchdog with no workers yet (installs the process's signal handler).
    pub fn new() -> Watchdog {
        install_signal_handler();
        Watchdog {
            slots: Mutex::new(Vec::new()),
            running: AtomicUsize::new(0),
            asleep: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            stop: AtomicBool::new(false),
        }
    }

    /// Registers the calling thread as a worker.
    pub fn register_worker(&self) {
        let slot = Arc::new(Slot {
            // SAFETY: pthread_self never fails.
            thread: unsafe { libc::pthread_self() },
            step: Mutex::new(None),
        });
        self.slots.lock().push(slot.clone());
        SLOT.with(|s| *s.borrow_mut() = Some(slot));
    }

    /// Marks the start of a step on the calling worker. `others_waiting`: sessions are
    /// queued, so the step's slice matters and an idle watchdog is woken to time it.
    pub fn step_started(
        &self,
        abort: Arc<AtomicU8>,
        slice_deadline: Instant,
        cpu_deadline: Option<Instant>,
        others_waiting: bool,
    ) {
        SLOT.with(|s| {
            if let Some(slot) = &*s.borrow() {
                *slot.step.lock() = Some(Watched {
                    abort,
                    slice_deadline,
                    cpu_deadline,
                    signalled: None,
                });
                // Without others waiting, a step shorter than the idle poll needs the
                // watchdog only for a cancel or a deadline, which signal the worker at once;
                // a sleeping watchdog is always woken (it would not look again). `SeqCst`
                // with `run`'s store of `asleep` and load of `running`: one of the two
                // sides sees the other, so the wake-up cannot be lost.
                let first = self.running.fetch_add(1, Ordering::SeqCst) == 0;
                if first && (others_waiting || self.asleep.load(Ordering::SeqCst)) {
                    let _g = self.wake_lock.lock();
                    self.wake.notify_one();
                }
            }
        });
    }

    /// Marks the end of the calling worker's step.
    pub fn step_ended(&self) {
        SLOT.with(|s| {
            if let Some(slot) = &*s.borrow() {
                if slot.step.lock().take().is_some() {
                    self.running.fetch_sub(1, Ordering::AcqRel);
                }
            }
        });
    }

    /// Interrupts at once the worker running the session whose abort cell is `abort`, if
    /// any (a cancel should not wait for the next tick).
    pub fn poke(&self, abort: &Arc<AtomicU8>) {
        for slot in self.slots.lock().iter() {
            let mut step = slot.step.lock();
            if let Some(w) = step.as_mut() {
                if Arc::ptr_eq(&w.abort, abort) {
                    w.signalled = Some(Instant::now());
                    // SAFETY: as in `run`.
                    unsafe { libc::pthread_kill(slot.thread, ARM_SIGNAL) };
                }
            }
        }
    }

    /// The watchdog loop; returns after [`Watchdog::stop`]. `queue_len` and `park` are the
    /// engine's run-queue length and park flag (as in [`StepControl`]).
    pub fn run(&self, queue_len: &AtomicUsize, park: &AtomicBool) {
        let mut idle_polls = 0u32;
        while !self.stop.load(Ordering::Acquire) {
            let idle = self.running.load(Ordering::Acquire) == 0;
            {
                let mut g = self.wake_lock.lock();
                if self.stop.load(Ordering::Acquire) {
                    break;
                }
                if idle && idle_polls >= IDLE_POLLS_BEFORE_SLEEP {
                    self.asleep.store(true, Ordering::SeqCst);
                    if self.running.load(Ordering::SeqCst) == 0 {
                        self.wake.wait(&mut g);
                    }
                    self.asleep.store(false, Ordering::SeqCst);
                    idle_polls = 0;
                    continue;
                }
                self.wake
                    .wait_for(&mut g, if idle { IDLE_POLL } else { TICK });
            }
            if idle {
                idle_polls += 1;
                continue;
            }
            idle_polls = 0;
            let now = Instant::now();
            let queued = queue_len.load(Ordering::Relaxed) > 0;
            let park = park.load(Ordering::Relaxed);
            for slot in self.slots.lock().iter() {
                let mut step = slot.step.lock();
                let Some(w) = step.as_mut() else { continue };
                let needs = park
                    || w.abort.load(Ordering::Acquire) != ABORT_NONE
                    || w.cpu_deadline.is_some_and(|d| now >= d)
                    || (queued && now >= w.slice_deadline);
                if needs && w.signalled.is_none_or(|t| now >= t + RESIGNAL) {
                    w.signalled = Some(now);
                    // SAFETY: the thread is a live worker (slots are only dropped with the
                    // engine, after its workers were joined).
                    unsafe { libc::pthread_kill(slot.thread, ARM_SIGNAL) };
                }
            }
        }
    }

    /// Ends [`Watchdog::run`].
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _g = self.wake_lock.lock();
        self.wake.notify_all();
    }
}
