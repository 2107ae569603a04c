//! The instruction hook: time slicing, cancellation and the CPU limit.
//!
//! A raw C count hook is installed on each VM's main state before any coroutine exists
//! (Lua copies a thread's hook into the threads it creates). The hook reads the control
//! block of the step running on this worker thread through a thread-local pointer; it
//! never takes a lock. On abort it raises a private light userdata with `lua_error`
//! directly from C, so no Lua code (`__close` handlers included) runs inside the hook;
//! the sandbox shims re-raise that error through every `pcall`, `xpcall` and coroutine
//! boundary (engine.md §5.2–§5.3, §13 notes 4–6).

use std::cell::Cell;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use mlua::ffi;

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
    pub park: &'a std::sync::atomic::AtomicBool,
}

thread_local! {
    static CURRENT: Cell<*const StepControl<'static>> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with `ctl` as the hook's control block on this thread.
pub fn with_control<R>(ctl: &StepControl<'_>, f: impl FnOnce() -> R) -> R {
    struct Reset(*const StepControl<'static>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.0));
        }
    }
    // The pointer is only dereferenced while `f` runs, i.e. while `ctl` is alive.
    let ptr = (ctl as *const StepControl<'_>).cast::<StepControl<'static>>();
    let previous = CURRENT.with(|c| c.replace(ptr));
    let _reset = Reset(previous);
    f()
}

/// Installs the hook on a Lua thread (`every` instructions between calls).
///
/// # Safety
/// `state` must be a valid Lua state.
pub unsafe fn install(state: *mut ffi::lua_State, every: u32) {
    ffi::lua_sethook(
        state,
        Some(count_hook),
        ffi::LUA_MASKCOUNT,
        every.max(1) as i32,
    );
}

/// True if `v` is the abort error value.
pub fn is_abort_value(v: &mlua::Value) -> bool {
    matches!(v, mlua::Value::LightUserData(ud) if std::ptr::eq(ud.0 as *const u8, &ABORT_TAG))
}

unsafe extern "C-unwind" fn count_hook(state: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let ptr = CURRENT.with(|c| c.get());
    if ptr.is_null() {
        return;
    }
    let ctl = &*ptr;
    let abort = ctl.abort.load(Ordering::Acquire);
    if abort != ABORT_NONE {
        raise_abort(state);
    }
    let now = Instant::now();
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
    let slice_over = now >= ctl.slice_deadline && ctl.queue_len.load(Ordering::Relaxed) > 0;
    if (slice_over || ctl.park.load(Ordering::Relaxed)) && ffi::lua_isyieldable(state) != 0 {
        ffi::lua_yield(state, 0);
    }
}

unsafe fn raise_abort(state: *mut ffi::lua_State) -> ! {
    ffi::lua_pushlightuserdata(state, &ABORT_TAG as *const u8 as *mut std::ffi::c_void);
    ffi::lua_error(state);
}
