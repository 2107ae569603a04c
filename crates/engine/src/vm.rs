//! One session's Lua VM and the step driver (engine.md §4.5).
//!
//! A `VmSet` owns a sandboxed `mlua::Lua` state and the session's root coroutine. It is
//! moved as one value between the session table and the worker that steps it; nothing
//! else ever touches it. A step resumes the root coroutine and classifies how it came
//! back: a host request (pause), a preemption, a return, an error or an abort.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use alc_core::{
    digest_request, Answer, DivergenceReport, FailureKind, JournalRecord, PendingQuery, Program,
    QueryId, QueryOrigin, QueryRequest, RecordBody, SessionId, SessionSpec,
};
use mlua::thread::ThreadStatus;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Thread, Value};

use crate::hook::{self, StepControl};
use crate::host::{self, BridgeLimits, BudgetView, HostRequest, VmHost};
use crate::prelude::Prelude;
use crate::services::HostServices;

/// The address whose light userdata tags host-yields.
static HOST_TAG: u8 = 0;
/// The address whose light userdata tags user yields.
static USER_TAG: u8 = 0;

fn tag(p: &'static u8) -> Value {
    Value::LightUserData(mlua::LightUserData(p as *const u8 as *mut std::ffi::c_void))
}

/// Settings a VM is built with.
#[derive(Clone, Debug)]
pub struct VmSettings {
    /// Lua heap limit in bytes.
    pub memory_limit: usize,
    /// Instructions between hook calls.
    pub hook_interval: u32,
    /// Bridge caps.
    pub limits: BridgeLimits,
    /// Largest encoded session result.
    pub max_result_bytes: usize,
    /// Run a full GC at park once the heap grew this much since the last one (or a
    /// quarter of the heap the last one left, if that is more).
    pub gc_park_growth_bytes: usize,
}

/// How one step ended, before the state machine sees it.
#[derive(Debug)]
pub enum StepEnd {
    /// The script asked for something from outside.
    Request(HostRequest),
    /// The slice ran out (or the engine asked the step to park).
    Preempted,
    /// The program returned this JSON value.
    Finished(serde_json::Value),
    /// The program failed.
    Failed {
        /// Failure class.
        kind: FailureKind,
        /// Answer-error code when `kind` is `answer_error`.
        code: Option<String>,
        /// `tostring(err)`.
        message: String,
        /// Stack lines, logical chunk names only.
        traceback: Option<String>,
    },
    /// Cancel, deadline or CPU limit stopped the step.
    Aborted,
    /// Replay met something other than what the journal recorded (engine.md §7.7).
    Diverged(Box<DivergenceReport>),
    /// A journal write during the step failed.
    JournalFailed(String),
    /// Fork children are waiting: one pause of their queries (engine.md §8.2 step 4).
    ForkPause(Vec<PendingQuery>),
}

/// What a VM needs to build fork children like itself (main VM only).
struct ForkKit {
    services: HostServices,
    spec: Arc<SessionSpec>,
    settings: VmSettings,
    abort: Arc<AtomicU8>,
    log: Option<Arc<crate::durable::SessionLog>>,
    /// Recorded inputs of fork children (`vm > 0`), for their replay cursors.
    child_records: Vec<JournalRecord>,
}

/// Where one fork child stands.
enum ChildState {
    /// To be stepped (not started, preempted, or holding its answers).
    Runnable,
    /// Blocked on these queries.
    Waiting(Vec<PendingQuery>),
    /// Finished (JSON result) or failed (message).
    Done(Result<serde_json::Value, String>),
}

struct ForkChild {
    strategy: String,
    vm: Option<VmSet>,
    state: ChildState,
    /// Queries issued so far (the next query's `seq`).
    seq: usize,
    answers: Option<Vec<Answer>>,
}

/// A running `alc.fork` (engine.md §8.2).
struct ForkRun {
    abort_on_error: bool,
    children: Vec<ForkChild>,
    /// Session-wide budget usage shared by the children.
    calls_used: u64,
    tokens_used: u64,
}

/// What a parked VM waits for: as much of its request as shaping the reply needs (the
/// request itself, prompts included, is the state machine's pending batch).
#[derive(Clone, Copy, Debug)]
enum Awaiting {
    Llm,
    Ask { schema: bool },
    Fork,
}

impl Awaiting {
    fn of(request: &HostRequest) -> Awaiting {
        match request {
            HostRequest::Llm { .. } => Awaiting::Llm,
            HostRequest::Ask(q) => Awaiting::Ask {
                schema: q.schema.is_some(),
            },
            HostRequest::Fork { .. } => Awaiting::Fork,
        }
    }
}

/// A session's VM and root coroutine.
pub struct VmSet {
    lua: Lua,
    main: Thread,
    /// The root coroutine's arguments, until its first resume (boxed, like the fork
    /// fields: a paused session's cell holds the set inline and stays in its size class).
    first_args: Option<Box<(Function, Value)>>,
    awaiting: Option<Awaiting>,
    settings: VmSettings,
    gc_baseline: Option<usize>,
    kit: Option<Box<ForkKit>>,
    fork: Option<Box<ForkRun>>,
    fork_result: Option<Box<Result<serde_json::Value, String>>>,
}

/// The session-independent part of a VM: the sandboxed standard library, the host
/// functions and both preludes, with no session data in it yet. Building one is most of
/// the cost of a spawn, so idle workers keep a few ready (`VmBase::new` never runs user
/// code and never reads session state; `VmSet::build` adds the rest).
pub struct VmBase {
    lua: Lua,
    /// The prelude's private table (`P` in sandbox.lua).
    private: Table,
}

impl VmBase {
    /// Opens the allowed libraries and loads the sandbox and `alc` preludes.
    pub fn new() -> mlua::Result<VmBase> {
        // No `io`: the sandbox builds its own small `io` table (trusted mode opens a fresh
        // stock one when it needs it).
        let libs = StdLib::COROUTINE
            | StdLib::TABLE
            | StdLib::OS
            | StdLib::STRING
            | StdLib::UTF8
            | StdLib::MATH
            | StdLib::PACKAGE;
        // The JSON null sentinel and array marks are installed on first use (`json.rs`).
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        let p = lua.create_table()?;
        p.raw_set("host", host::host_table(&lua)?)?;
        let p: Table = crate::prelude::load(&lua, Prelude::Sandbox)?.call((
            p,
            tag(&HOST_TAG),
            tag(&USER_TAG),
        ))?;
        let alc: Table = crate::prelude::load(&lua, Prelude::Alc)?.call(p.clone())?;
        lua.globals().raw_set("alc", alc)?;
        Ok(VmBase { lua, private: p })
    }
}

/// A VM that could not be built (syntax error, invalid ctx, engine fault).
#[derive(Debug)]
pub struct BuildFailure {
    /// `lua_error` for script faults, `engine_error` for ours.
    pub kind: FailureKind,
    /// What went wrong.
    pub message: String,
}

impl BuildFailure {
    fn engine(e: impl std::fmt::Display) -> Self {
        BuildFailure {
            kind: FailureKind::EngineError,
            message: format!("engine: {e}"),
        }
    }
}

/// Inputs of `VmSet::build`.
pub struct VmInit<'a> {
    /// The session.
    pub session_id: SessionId,
    /// What to run.
    pub spec: &'a Arc<SessionSpec>,
    /// Embedder services.
    pub services: &'a HostServices,
    /// The session's abort cell.
    pub abort: Arc<AtomicU8>,
    /// Budget limits and creation time.
    pub budget: BudgetView,
    /// Session seed.
    pub seed: u64,
    /// VM settings.
    pub settings: VmSettings,
    /// The session's journal handle.
    pub log: Option<Arc<crate::durable::SessionLog>>,
    /// Recorded inputs to replay (the session's records; empty for a new session).
    pub replay: &'a [JournalRecord],
    /// A VM base prepared ahead of time, if one is at hand.
    pub base: Option<VmBase>,
}

impl VmSet {
    /// Builds the sandboxed VM, runs the preludes and prepares the root coroutine.
    /// Starts from `init.base` when given (a VM prepared ahead of time), otherwise
    /// builds the session-independent part first.
    pub fn build(init: VmInit<'_>) -> Result<VmSet, BuildFailure> {
        let base = match init.base {
            Some(base) => base,
            None => VmBase::new().map_err(BuildFailure::engine)?,
        };
        let VmBase { lua, private: p } = base;

        // ctx: JSON → Lua; `ctx.env` is consumed into the env snapshot.
        let mut ctx = init.spec.ctx.clone();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(obj) = ctx.as_object_mut() {
            if let Some(serde_json::Value::Object(e)) = obj.remove("env") {
                if let Some(serde_json::Value::Object(inject)) = e.get("inject") {
                    for (k, v) in inject {
                        if let Some(s) = v.as_str() {
                            env.insert(k.clone(), s.to_string());
                        }
                    }
                }
            }
        }
        env.extend(init.spec.env.clone());

        lua.set_app_data(VmHost::new(
            init.session_id,
            init.abort,
            init.services.clock.clone(),
            init.services.modules.clone(),
            init.spec.resolver.clone(),
            init.settings.limits.clone(),
            init.budget,
            init.seed,
            env,
            init.services.env_allow.clone(),
            init.spec.human_channel,
        ));
        host::with_host(&lua, |h| {
            h.log = init.log.clone();
            h.replay = crate::durable::Replay::new(init.replay, 0);
            h.state = Some(init.services.state.clone());
            h.state_atomic = init.services.state_shares_journal;
            h.cards = Some(init.services.cards.clone());
            if let Some(serde_json::Value::String(ns)) = ctx.get("_ns") {
                h.state_ns = ns.clone();
            }
        });

        let result = (|| -> mlua::Result<(Thread, Function, Value)> {
            let ctx_value = crate::json::from_json(&lua, &ctx)?;
            let ctx_value = if ctx_value.is_nil() {
                Value::Table(lua.create_table()?)
            } else {
                ctx_value
            };
            lua.globals().raw_set("ctx", ctx_value.clone())?;
            // Seed the stock generator with the session seed (lua-api.md §1.6); the sandbox
            // keeps the stock `math.randomseed` as `P.randomseed`.
            let randomseed: Function = p.raw_get("randomseed")?;
            randomseed.call::<()>(init.seed as i64)?;
            // `P.more()` is the rest of the sandbox (`sandbox_more.lua`).
            let more = || -> mlua::Result<Table> { p.raw_get::<Function>("more")?.call(()) };
            if init.services.trusted {
                let enable: Function = more()?.raw_get("enable_trusted")?;
                enable.call::<()>(())?;
            }
            let entry: Function = p.raw_get("entry")?;
            let thread = lua.create_thread(entry)?;
            let main_fn: Function = match &init.spec.program {
                Program::Code { source, name } => {
                    let name = name.clone().unwrap_or_else(|| "session".to_string());
                    let src = source.clone();
                    match lua.load(src).set_name(format!("={name}")).into_function() {
                        Ok(f) => f,
                        Err(mlua::Error::SyntaxError { message, .. }) => {
                            return Err(mlua::Error::SyntaxError {
                                message,
                                incomplete_input: false,
                            })
                        }
                        Err(e) => return Err(e),
                    }
                }
                Program::Package { name, entry } => {
                    let make: Function = more()?.raw_get("package_main")?;
                    make.call((name.clone(), entry.clone()))?
                }
            };
            Ok((thread, main_fn, ctx_value))
        })();
        let (main, main_fn, ctx_value) = match result {
            Ok(t) => t,
            Err(mlua::Error::SyntaxError { message, .. }) => {
                return Err(BuildFailure {
                    kind: FailureKind::LuaError,
                    message,
                })
            }
            Err(mlua::Error::MemoryError(m)) => {
                return Err(BuildFailure {
                    kind: FailureKind::OutOfMemory,
                    message: m,
                })
            }
            Err(e) => return Err(BuildFailure::engine(e)),
        };
        lua.set_memory_limit(init.settings.memory_limit)
            .map_err(BuildFailure::engine)?;
        let kit = ForkKit {
            services: init.services.clone(),
            spec: init.spec.clone(),
            settings: init.settings.clone(),
            abort: host::with_host(&lua, |h| h.abort.clone()),
            log: init.log.clone(),
            child_records: init.replay.iter().filter(|r| r.vm > 0).cloned().collect(),
        };
        Ok(VmSet {
            lua,
            main,
            first_args: Some(Box::new((main_fn, ctx_value))),
            awaiting: None,
            settings: init.settings,
            gc_baseline: None,
            kit: Some(Box::new(kit)),
            fork: None,
            fork_result: None,
        })
    }

    /// Bytes used by the VM's heap (fork children included).
    pub fn used_memory(&self) -> usize {
        let children: usize = self.fork.as_ref().map_or(0, |f| {
            f.children
                .iter()
                .filter_map(|c| c.vm.as_ref())
                .map(|v| v.used_memory())
                .sum()
        });
        self.lua.used_memory() + children
    }

    /// Prepares the budget view and CPU accounting of the next step. While replaying, the
    /// VM keeps its own view of budget usage (it re-counts the recorded queries).
    pub fn prepare_step(
        &mut self,
        calls_used: u64,
        tokens_used: u64,
        cpu_ms_before: u64,
        round: u64,
    ) {
        let live = host::with_host(&self.lua, |h| {
            if !h.replaying() {
                h.round = round;
                h.budget.calls_used = calls_used;
                h.budget.tokens_used = tokens_used;
            }
            h.cpu_ms_before = cpu_ms_before;
            h.step_started = h.clock.monotonic();
            !h.replaying()
        });
        if let Some(f) = self.fork.as_mut() {
            if live {
                f.calls_used = calls_used;
                f.tokens_used = tokens_used;
            }
        }
    }

    /// Takes what the step logged, its progress and custom metrics.
    pub fn take_buffer(&mut self) -> host::StepBuffer {
        host::with_host(&self.lua, |h| std::mem::take(&mut h.buffer))
    }

    /// Runs one step. `answers` are the replies to the previous pause, in issue order.
    pub fn step(&mut self, answers: Option<Vec<Answer>>, ctl: &StepControl<'_>) -> StepEnd {
        let mut answers = answers;
        loop {
            let end = if self.fork.is_some() {
                match self.fork_step(answers.take(), ctl) {
                    Some(end) => end,
                    // The fork is over: resume the main coroutine with its result.
                    None => continue,
                }
            } else {
                self.step_once(answers.take(), ctl)
            };
            let end = match end {
                StepEnd::Request(HostRequest::Fork {
                    strategies,
                    ctx,
                    abort,
                }) => match self.start_fork(strategies, ctx, abort) {
                    None => continue,
                    Some(end) => return end,
                },
                other => other,
            };
            let (divergence, journal_error) = host::with_host(&self.lua, |h| {
                (h.buffer.divergence.take(), h.buffer.journal_error.take())
            });
            if let Some(d) = divergence {
                return self.diverged(*d);
            }
            if let Some(e) = journal_error {
                return StepEnd::JournalFailed(e);
            }
            let (replaying, module_changed) =
                host::with_host(&self.lua, |h| (h.replaying(), h.module_changed.is_some()));
            if !replaying {
                // A changed module that did not change what the journal saw still fails
                // the session once replay is over, before anything live is published.
                if module_changed && !matches!(end, StepEnd::Preempted) {
                    let d = host::with_host(&self.lua, |h| h.module_changed.clone());
                    if let Some(d) = d {
                        return StepEnd::Diverged(d);
                    }
                }
                return end;
            }
            match end {
                StepEnd::Request(req) => match self.replay_pause(&pending_queries(req)) {
                    Ok(recorded) => answers = Some(recorded),
                    Err(report) => return self.diverged(*report),
                },
                StepEnd::ForkPause(queries) => match self.replay_pause(&queries) {
                    Ok(recorded) => answers = Some(recorded),
                    Err(report) => return self.diverged(*report),
                },
                StepEnd::Finished(_) | StepEnd::Failed { .. } => {
                    let next = host::with_host(&self.lua, |h| h.replay.peek().cloned());
                    let Some(next) = next else { return end };
                    let actual = match &end {
                        StepEnd::Finished(_) => "the program returned".to_string(),
                        StepEnd::Failed { message, .. } => format!("the program failed: {message}"),
                        _ => String::new(),
                    };
                    return self.diverged(crate::durable::report(
                        next.seq,
                        crate::durable::describe(&next.body),
                        actual,
                        None,
                        None,
                        String::new(),
                    ));
                }
                other => return other,
            }
        }
    }

    /// Accepts an `alc.fork` request: the `fork` record, then one child VM per strategy.
    /// `Some` is how the step ends when that fails (divergence, engine fault).
    fn start_fork(
        &mut self,
        strategies: Vec<String>,
        ctx: serde_json::Value,
        abort: bool,
    ) -> Option<StepEnd> {
        let Some(kit) = self.kit.as_ref() else {
            return Some(engine_failure("alc.fork outside a session VM"));
        };
        let ctx_digest = alc_core::digest_bytes(crate::json::canonical_string(&ctx).as_bytes());
        let read = host::with_host(&self.lua, |h| h.fork_record(&strategies, &ctx_digest));
        if read.is_err() {
            let d = host::with_host(&self.lua, |h| h.buffer.divergence.take());
            return Some(match d {
                Some(d) => self.diverged(*d),
                None => engine_failure("fork record"),
            });
        }
        let (session_id, env, limits, calls_used, tokens_used, created_at, round, seeds) =
            host::with_host(&self.lua, |h| {
                let seeds: Vec<u64> = strategies.iter().map(|_| h.next_seed()).collect();
                (
                    h.session_id.clone(),
                    h.env.clone(),
                    h.budget.limits.clone(),
                    h.budget.calls_used,
                    h.budget.tokens_used,
                    h.budget.created_at,
                    h.round,
                    seeds,
                )
            });
        let mut children = Vec::with_capacity(strategies.len());
        for (i, name) in strategies.iter().enumerate() {
            let mut spec = (*kit.spec).clone();
            spec.program = Program::Package {
                name: name.clone(),
                entry: "run".into(),
            };
            spec.ctx = ctx.clone();
            spec.env = env.clone();
            let spec = Arc::new(spec);
            let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                VmSet::build(VmInit {
                    session_id: session_id.clone(),
                    spec: &spec,
                    services: &kit.services,
                    abort: kit.abort.clone(),
                    budget: BudgetView {
                        limits: limits.clone(),
                        calls_used,
                        tokens_used,
                        created_at,
                    },
                    seed: seeds[i],
                    settings: kit.settings.clone(),
                    log: kit.log.clone(),
                    replay: &[],
                    base: None,
                })
            }));
            let (vm, state) = match built {
                Ok(Ok(mut vm)) => {
                    vm.kit = None;
                    host::with_host(&vm.lua, |h| {
                        h.vm = i as u32 + 1;
                        h.child = Some(i as u32);
                        h.state_ns = format!("{}/fork-{i}", session_id.as_str());
                        h.round = round;
                        h.replay = crate::durable::Replay::new(&kit.child_records, i as u32 + 1);
                    });
                    (Some(vm), ChildState::Runnable)
                }
                Ok(Err(f)) => (None, ChildState::Done(Err(f.message))),
                Err(_) => (
                    None,
                    ChildState::Done(Err("engine: panic while building the VM".into())),
                ),
            };
            children.push(ForkChild {
                strategy: name.clone(),
                vm,
                state,
                seq: 0,
                answers: None,
            });
        }
        self.fork = Some(Box::new(ForkRun {
            abort_on_error: abort,
            children,
            calls_used,
            tokens_used,
        }));
        None
    }

    /// Gathers the fork's children (engine.md §8.2 steps 3–6). `None` when the fork is over
    /// and the main coroutine is to be resumed with `fork_result`.
    fn fork_step(
        &mut self,
        answers: Option<Vec<Answer>>,
        ctl: &StepControl<'_>,
    ) -> Option<StepEnd> {
        let (quiet, round, cpu_ms_before, step_started) = host::with_host(&self.lua, |h| {
            (h.replaying(), h.round, h.cpu_ms_before, h.step_started)
        });
        let mut fork = self.fork.take()?;
        if let Some(answers) = answers {
            let mut it = answers.into_iter();
            for c in fork.children.iter_mut() {
                if let ChildState::Waiting(qs) = &c.state {
                    let n = qs.len();
                    c.answers = Some(it.by_ref().take(n).collect());
                    c.state = ChildState::Runnable;
                }
            }
        }
        loop {
            let next = fork
                .children
                .iter()
                .position(|c| matches!(c.state, ChildState::Runnable));
            let Some(i) = next else { break };
            let (calls, tokens) = (fork.calls_used, fork.tokens_used);
            let child = &mut fork.children[i];
            let Some(vm) = child.vm.as_mut() else {
                child.state = ChildState::Done(Err("engine: fork child lost its VM".into()));
                continue;
            };
            host::with_host(&vm.lua, |h| {
                h.budget.calls_used = calls;
                h.budget.tokens_used = tokens;
                h.round = round;
                h.quiet = quiet;
                h.cpu_ms_before = cpu_ms_before;
                h.step_started = step_started;
            });
            let end = vm.step_child(child.answers.take(), ctl);
            let (calls, tokens, buffer) = host::with_host(&vm.lua, |h| {
                (
                    h.budget.calls_used,
                    h.budget.tokens_used,
                    std::mem::take(&mut h.buffer),
                )
            });
            fork.calls_used = calls;
            fork.tokens_used = tokens;
            self.merge_child_buffer(i, buffer);
            let child = &mut fork.children[i];
            match end {
                StepEnd::Request(req) => {
                    let queries = child_queries(i, &child.strategy, &mut child.seq, req);
                    child.state = ChildState::Waiting(queries);
                }
                StepEnd::Finished(v) => {
                    child.vm = None;
                    child.state = ChildState::Done(Ok(v));
                }
                StepEnd::Failed { message, .. } => {
                    child.vm = None;
                    if fork.abort_on_error {
                        // Drop every sibling at once (engine.md §8.2 step 6).
                        let name = child.strategy.clone();
                        drop(fork);
                        self.finish_fork(Err(format!(
                            "alc.fork: strategy '{name}' failed: {message}"
                        )));
                        return None;
                    }
                    child.state = ChildState::Done(Err(message));
                }
                StepEnd::ForkPause(_) => {
                    self.fork = Some(fork);
                    return Some(engine_failure("a fork child issued a fork pause"));
                }
                other => {
                    // Preempted, aborted, diverged or a journal failure: the session's.
                    self.fork = Some(fork);
                    return Some(other);
                }
            }
        }
        let mut queries = Vec::new();
        for c in &fork.children {
            if let ChildState::Waiting(qs) = &c.state {
                queries.extend(qs.iter().cloned());
            }
        }
        if !queries.is_empty() {
            self.fork = Some(fork);
            return Some(StepEnd::ForkPause(queries));
        }
        let results: Vec<serde_json::Value> = fork
            .children
            .drain(..)
            .map(|c| match c.state {
                ChildState::Done(Ok(v)) => {
                    let mut entry = serde_json::json!({"strategy": c.strategy, "ok": true});
                    if !v.is_null() {
                        entry["result"] = v;
                    }
                    entry
                }
                ChildState::Done(Err(e)) => {
                    serde_json::json!({"strategy": c.strategy, "ok": false, "error": e})
                }
                _ => serde_json::json!({"strategy": c.strategy, "ok": false, "error": "engine: unfinished"}),
            })
            .collect();
        let (calls, tokens) = (fork.calls_used, fork.tokens_used);
        host::with_host(&self.lua, |h| {
            h.budget.calls_used = calls;
            h.budget.tokens_used = tokens;
        });
        self.finish_fork(Ok(serde_json::Value::Array(results)));
        None
    }

    fn finish_fork(&mut self, result: Result<serde_json::Value, String>) {
        self.fork = None;
        self.fork_result = Some(Box::new(result));
    }

    /// Moves a child's step output into the session's: logs (already prefixed), progress,
    /// custom metrics as `fork[i].<key>`, input records (tagged `vm = i + 1`).
    fn merge_child_buffer(&mut self, i: usize, b: host::StepBuffer) {
        host::with_host(&self.lua, |h| {
            h.buffer.logs.extend(b.logs);
            if b.progress.is_some() {
                h.buffer.progress = b.progress;
            }
            for (k, v) in b.custom {
                let key = format!("fork[{i}].{k}");
                h.custom_all.insert(key.clone(), v.clone());
                h.buffer.custom.insert(key, v);
            }
            h.buffer.records.extend(b.records);
            if h.buffer.divergence.is_none() {
                h.buffer.divergence = b.divergence;
            }
            if h.buffer.journal_error.is_none() {
                h.buffer.journal_error = b.journal_error;
            }
        });
    }

    /// One step of a fork child: no pause replay (its pauses are the main VM's records).
    fn step_child(&mut self, answers: Option<Vec<Answer>>, ctl: &StepControl<'_>) -> StepEnd {
        let end = self.step_once(answers, ctl);
        let (divergence, journal_error) = host::with_host(&self.lua, |h| {
            (h.buffer.divergence.take(), h.buffer.journal_error.take())
        });
        if let Some(d) = divergence {
            return self.diverged(*d);
        }
        if let Some(e) = journal_error {
            return StepEnd::JournalFailed(e);
        }
        let replaying = host::with_host(&self.lua, |h| h.replaying());
        if !replaying {
            if !matches!(end, StepEnd::Preempted) {
                if let Some(d) = host::with_host(&self.lua, |h| h.module_changed.clone()) {
                    return StepEnd::Diverged(d);
                }
            }
            return end;
        }
        if let StepEnd::Finished(_) | StepEnd::Failed { .. } = &end {
            let next = host::with_host(&self.lua, |h| h.replay.peek().cloned());
            if let Some(next) = next {
                let actual = match &end {
                    StepEnd::Finished(_) => "the fork child returned".to_string(),
                    StepEnd::Failed { message, .. } => format!("the fork child failed: {message}"),
                    _ => String::new(),
                };
                let mut d = crate::durable::report(
                    next.seq,
                    crate::durable::describe(&next.body),
                    actual,
                    None,
                    None,
                    String::new(),
                );
                d.vm = next.vm;
                return self.diverged(d);
            }
        }
        end
    }

    /// A divergence, noting any module whose source changed.
    fn diverged(&mut self, mut d: DivergenceReport) -> StepEnd {
        if let Some(m) = host::with_host(&self.lua, |h| h.module_changed.clone()) {
            if d.seq != m.seq {
                d.diff.push_str(&m.diff);
                d.diff.push('\n');
            }
        }
        StepEnd::Diverged(Box::new(d))
    }

    /// A pause met while replaying: it must match the next `pause` record; its recorded
    /// answers (issue order) are returned to resume the VM at once.
    fn replay_pause(
        &mut self,
        queries: &[PendingQuery],
    ) -> Result<Vec<Answer>, Box<DivergenceReport>> {
        let queries = queries.to_vec();
        host::with_host(&self.lua, |h| {
            let rec = h.replay.peek().cloned().expect("replaying");
            let (round, recorded) = match &rec.body {
                RecordBody::Pause { round, queries } => (*round, queries.clone()),
                other => {
                    return Err(Box::new(crate::durable::report(
                        rec.seq,
                        crate::durable::describe(other),
                        format!("a pause of {} queries", queries.len()),
                        None,
                        None,
                        crate::durable::queries_text(&queries)
                            .lines()
                            .map(|l| format!("+ {l}\n"))
                            .collect(),
                    )))
                }
            };
            let same = recorded.len() == queries.len()
                && recorded
                    .iter()
                    .zip(&queries)
                    .all(|(a, b)| a.id == b.id && a.digest == b.digest);
            if !same || round != h.round + 1 {
                let first = recorded
                    .iter()
                    .zip(&queries)
                    .find(|(a, b)| a.id != b.id || a.digest != b.digest);
                return Err(Box::new(crate::durable::report(
                    rec.seq,
                    format!("pause round {round}"),
                    format!("pause round {} with other queries", h.round + 1),
                    first.map(|(a, _)| a.digest.clone()),
                    first.map(|(_, b)| b.digest.clone()),
                    crate::durable::line_diff(
                        &crate::durable::queries_text(&recorded),
                        &crate::durable::queries_text(&queries),
                    ),
                )));
            }
            h.replay.pop();
            h.round = round;
            let mut got: BTreeMap<QueryId, Answer> = BTreeMap::new();
            while let Some(next) = h.replay.peek() {
                match &next.body {
                    RecordBody::Answer { round: r, answer } if *r == round => {
                        if let Some(id) = &answer.query_id {
                            got.insert(id.clone(), (**answer).clone());
                        }
                        h.replay.pop();
                    }
                    _ => break,
                }
            }
            let mut out = Vec::with_capacity(queries.len());
            for q in &queries {
                match got.remove(&q.id) {
                    Some(a) => out.push(a),
                    None => {
                        return Err(Box::new(crate::durable::report(
                            rec.seq,
                            format!("answers of round {round}"),
                            format!("no recorded answer for {}", q.id),
                            None,
                            None,
                            String::new(),
                        )))
                    }
                }
            }
            Ok(out)
        })
    }

    fn step_once(&mut self, answers: Option<Vec<Answer>>, ctl: &StepControl<'_>) -> StepEnd {
        let args = match self.reply_args(answers) {
            Ok(a) => a,
            Err(e) => return engine_failure(e),
        };
        let main_state = self.main.to_pointer() as *mut mlua::ffi::lua_State;
        // SAFETY: `main_state` is this VM's root coroutine, resumed by `f` right here.
        let resumed =
            unsafe { hook::with_control(ctl, main_state, || self.main.resume::<MultiValue>(args)) };
        let aborted = ctl.abort.load(Ordering::Acquire) != hook::ABORT_NONE;
        let end = match resumed {
            Ok(values) => self.classify(values, aborted),
            Err(_) if aborted => StepEnd::Aborted,
            Err(mlua::Error::MemoryError(_)) => StepEnd::Failed {
                kind: FailureKind::OutOfMemory,
                code: None,
                message: "not enough memory".into(),
                traceback: None,
            },
            Err(e) => StepEnd::Failed {
                kind: FailureKind::LuaError,
                code: None,
                message: e.to_string(),
                traceback: None,
            },
        };
        match &end {
            StepEnd::Request(_) => self.collect_at_park(),
            StepEnd::Finished(_) | StepEnd::Failed { .. } | StepEnd::Aborted => {
                host::with_host(&self.lua, |h| h.flush_io());
            }
            StepEnd::Preempted
            | StepEnd::Diverged(_)
            | StepEnd::JournalFailed(_)
            | StepEnd::ForkPause(_) => {}
        }
        end
    }

    /// Full GC before parking when the heap grew enough (engine.md §5.7): by
    /// `gc_park_growth_bytes`, or by a quarter of what the last collection left if that
    /// is more, so a session with a large live heap is not collected at every pause.
    fn collect_at_park(&mut self) {
        let used = self.lua.used_memory();
        let grew = match self.gc_baseline {
            None => true,
            Some(base) => used > base + self.settings.gc_park_growth_bytes.max(base / 4),
        };
        if grew {
            let _ = self.lua.gc_collect();
            let _ = self.lua.gc_collect();
            self.gc_baseline = Some(self.lua.used_memory());
        }
    }

    fn reply_args(&mut self, answers: Option<Vec<Answer>>) -> mlua::Result<MultiValue> {
        if let Some(args) = self.first_args.take() {
            let (f, ctx) = *args;
            return Ok(MultiValue::from_iter([Value::Function(f), ctx]));
        }
        let Some(request) = self.awaiting.take() else {
            return Ok(MultiValue::new());
        };
        let answers = answers.unwrap_or_default();
        let lua = &self.lua;
        match request {
            Awaiting::Llm => {
                let texts = lua.create_table()?;
                let mut failure: Option<String> = None;
                for (i, a) in answers.iter().enumerate() {
                    if let Some(t) = &a.text {
                        texts.raw_set(i + 1, lua.create_string(t)?)?;
                    } else if let Some(e) = &a.error {
                        host::with_host(lua, |h| {
                            h.answer_errors
                                .push_back((e.code.clone(), e.message.clone()));
                            while h.answer_errors.len() > 16 {
                                h.answer_errors.pop_front();
                            }
                        });
                        if failure.is_none() {
                            failure = Some(e.message.clone());
                        }
                        texts.raw_set(i + 1, "")?;
                    }
                }
                let failure = match failure {
                    Some(f) => Value::String(lua.create_string(&f)?),
                    None => Value::Nil,
                };
                Ok(MultiValue::from_iter([Value::Table(texts), failure]))
            }
            Awaiting::Fork => match self.fork_result.take().map(|r| *r) {
                Some(Ok(results)) => Ok(MultiValue::from_iter([
                    crate::json::from_json(lua, &results)?,
                    Value::Nil,
                ])),
                Some(Err(message)) => Ok(MultiValue::from_iter([
                    Value::Nil,
                    Value::String(lua.create_string(&message)?),
                ])),
                None => Ok(MultiValue::new()),
            },
            Awaiting::Ask { schema } => {
                let a = answers.into_iter().next();
                let Some(a) = a else {
                    return Ok(MultiValue::new());
                };
                if let Some(status) = a.ask_status {
                    let s = serde_json::to_value(status)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_else(|| "cancelled".into());
                    return Ok(MultiValue::from_iter([
                        Value::Nil,
                        Value::String(lua.create_string(&s)?),
                    ]));
                }
                let text = a.text.unwrap_or_default();
                let value = if schema {
                    match serde_json::from_str::<serde_json::Value>(&text) {
                        Ok(v) => crate::json::from_json(lua, &v)?,
                        Err(_) => Value::String(lua.create_string(&text)?),
                    }
                } else {
                    Value::String(lua.create_string(&text)?)
                };
                Ok(MultiValue::from_iter([
                    value,
                    Value::String(lua.create_string("accepted")?),
                ]))
            }
        }
    }

    fn classify(&mut self, values: MultiValue, aborted: bool) -> StepEnd {
        let v: Vec<Value> = values.into_iter().collect();
        if self.main.status() == ThreadStatus::Finished {
            return self.classify_return(v, aborted);
        }
        if v.is_empty() {
            return if aborted {
                StepEnd::Aborted
            } else {
                StepEnd::Preempted
            };
        }
        if v[0] == tag(&HOST_TAG) {
            let token = match v.get(1) {
                Some(Value::Integer(t)) => *t as u64,
                _ => return engine_failure("host-yield without a request token"),
            };
            let request = host::with_host(&self.lua, |h| match h.pending.take().map(|b| *b) {
                Some((t, r)) if t == token => Some(r),
                _ => None,
            });
            return match request {
                Some(r) => {
                    self.awaiting = Some(Awaiting::of(&r));
                    StepEnd::Request(r)
                }
                None => engine_failure("host-yield names no prepared request"),
            };
        }
        engine_failure("the root coroutine yielded an unknown value")
    }

    fn classify_return(&mut self, v: Vec<Value>, aborted: bool) -> StepEnd {
        let ok = matches!(v.first(), Some(Value::Boolean(true)));
        if ok {
            let value = v.get(1).cloned().unwrap_or(Value::Nil);
            return match crate::json::to_json(&self.lua, &value) {
                Ok(json) => {
                    let size = json.to_string().len();
                    if size > self.settings.max_result_bytes {
                        StepEnd::Failed {
                            kind: FailureKind::InvalidResult,
                            code: None,
                            message: format!(
                                "session result: {size} bytes exceeds the limit of {} bytes",
                                self.settings.max_result_bytes
                            ),
                            traceback: None,
                        }
                    } else {
                        StepEnd::Finished(json)
                    }
                }
                Err(e) => StepEnd::Failed {
                    kind: FailureKind::InvalidResult,
                    code: None,
                    message: format!("session result: {e}"),
                    traceback: None,
                },
            };
        }
        if aborted || v.get(1).is_some_and(hook::is_abort_value) {
            return StepEnd::Aborted;
        }
        let message = match v.get(1) {
            Some(Value::String(s)) => s.to_string_lossy(),
            Some(other) => format!("error object: {}", other.type_name()),
            None => "error object: nil".to_string(),
        };
        let traceback = match v.get(2) {
            Some(Value::String(s)) => Some(s.to_string_lossy()),
            _ => None,
        };
        let handler_skipped = matches!(v.get(3), Some(Value::Boolean(true)));
        if handler_skipped && message == "not enough memory" {
            return StepEnd::Failed {
                kind: FailureKind::OutOfMemory,
                code: None,
                message,
                traceback: None,
            };
        }
        let (kind, code) = self.classify_message(&message);
        StepEnd::Failed {
            kind,
            code,
            message,
            traceback,
        }
    }

    /// Failure classification by message (engine.md §5.6, §13 note 13).
    fn classify_message(&self, message: &str) -> (FailureKind, Option<String>) {
        let body = strip_position(message);
        if body.starts_with("budget_exceeded:") {
            return (FailureKind::BudgetExceeded, None);
        }
        let code = host::with_host(&self.lua, |h| {
            h.answer_errors
                .iter()
                .rev()
                .find(|(_, m)| m == message || m == body)
                .map(|(c, _)| c.clone())
        });
        match code {
            Some(c) => (FailureKind::AnswerError, Some(c)),
            None => (FailureKind::LuaError, None),
        }
    }
}

/// The pause's queries: ids `q-0 … q-(n-1)` in input order (engine.md §8.1).
pub fn pending_queries(req: HostRequest) -> Vec<PendingQuery> {
    let requests: Vec<QueryRequest> = match req {
        HostRequest::Llm { items, .. } => items.into_iter().map(QueryRequest::from).collect(),
        HostRequest::Ask(q) => vec![QueryRequest::from(q)],
        HostRequest::Fork { .. } => Vec::new(),
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

/// A fork child's queries: ids `f-<child>-<seq>`, `seq` counting over the child's lifetime.
fn child_queries(
    index: usize,
    strategy: &str,
    seq: &mut usize,
    req: HostRequest,
) -> Vec<PendingQuery> {
    pending_queries(req)
        .into_iter()
        .map(|mut q| {
            q.id = QueryId::child(index, *seq);
            q.origin = QueryOrigin::Child {
                index,
                strategy: strategy.to_string(),
            };
            *seq += 1;
            q
        })
        .collect()
}

/// Strips an optional leading `chunk:line: ` from an error message.
fn strip_position(message: &str) -> &str {
    if let Some((head, rest)) = message.split_once(": ") {
        if let Some((_, line)) = head.rsplit_once(':') {
            if !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit()) {
                return rest;
            }
        }
    }
    message
}

fn engine_failure(e: impl std::fmt::Display) -> StepEnd {
    StepEnd::Failed {
        kind: FailureKind::EngineError,
        code: None,
        message: format!("engine: {e}"),
        traceback: None,
    }
}

/// A step control for running a VM outside the scheduler (tests, tools).
pub struct LocalControl {
    /// Abort cell.
    pub abort: Arc<AtomicU8>,
    queue: std::sync::atomic::AtomicUsize,
    park: std::sync::atomic::AtomicBool,
}

impl LocalControl {
    /// A control with no slicing pressure.
    pub fn new(abort: Arc<AtomicU8>) -> Self {
        LocalControl {
            abort,
            queue: std::sync::atomic::AtomicUsize::new(0),
            park: std::sync::atomic::AtomicBool::new(false),
        }
    }
    /// The step control borrowing this one.
    pub fn control(&self) -> StepControl<'_> {
        StepControl {
            abort: &self.abort,
            queue_len: &self.queue,
            slice_deadline: Instant::now() + std::time::Duration::from_secs(3600),
            cpu_deadline: None,
            park: &self.park,
        }
    }
}
