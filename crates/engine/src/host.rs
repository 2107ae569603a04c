//! Per-VM host state and the Layer-0 functions the sandbox and `alc.*` call into.
//!
//! Everything a script can observe from outside goes through here: the session log,
//! the clock, the environment snapshot, module sources, budget admission and the host
//! requests (`alc.llm`, `alc.llm_batch`, `alc.ask`). Validators never raise: they return
//! `(nil, message)` and the thin Lua wrappers raise `error(message, 0)`, so every error a
//! script catches is a plain string (lua-api.md §1.11).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use alc_core::{
    digest_bytes, estimate_tokens, BudgetLimits, ClockSource, DivergenceReport, HumanQuestion,
    JournalRecord, LlmQuery, LogEntry, Phase, Progress, RecordBody, RowUpdate, SessionId,
};
use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

use crate::durable::{self, PendingRecord, Replay, SessionLog};
use crate::services::{Clock, DataFile, ModuleSource, MAX_DATA_FILE_BYTES};

/// Size caps applied at the bridge (engine.md §5.7).
#[derive(Clone, Debug)]
pub struct BridgeLimits {
    /// Largest prompt + system, in bytes.
    pub max_request_bytes: usize,
    /// Most queries in one pause.
    pub max_batch: usize,
    /// Most children of one `alc.fork`.
    pub max_fork_children: usize,
}

/// A request a validator prepared and the next host-yield will hand to the engine.
#[derive(Clone, Debug)]
pub enum HostRequest {
    /// `alc.llm` (one item) or `alc.llm_batch`.
    Llm {
        /// The queries, in input order.
        items: Vec<LlmQuery>,
        /// True for `alc.llm_batch` (the reply is an array).
        batch: bool,
    },
    /// `alc.ask`.
    Ask(HumanQuestion),
    /// `alc.fork`: handled inside the worker's step, never shown to answerers (engine.md §8.2).
    Fork {
        /// Child strategies (package names), in input order.
        strategies: Vec<String>,
        /// The JSON copy of `ctx` each child receives.
        ctx: serde_json::Value,
        /// `opts.on_error == "abort"`.
        abort: bool,
    },
}

/// The session's budget as one step sees it (engine.md §6.1).
#[derive(Clone, Debug, Default)]
pub struct BudgetView {
    /// Effective limits.
    pub limits: BudgetLimits,
    /// LLM queries admitted so far, including this step's.
    pub calls_used: u64,
    /// Tokens used so far plus estimates of queries admitted in this step.
    pub tokens_used: u64,
    /// Session creation time (ms).
    pub created_at: i64,
}

/// Log lines, progress and custom metrics produced during one step.
#[derive(Debug, Default)]
pub struct StepBuffer {
    /// Log entries in order.
    pub logs: Vec<LogEntry>,
    /// Last `alc.progress` of the step.
    pub progress: Option<Progress>,
    /// `alc.stats.record` writes of the step.
    pub custom: BTreeMap<String, serde_json::Value>,
    /// Input records produced by the step and not yet flushed, in order.
    pub records: Vec<PendingRecord>,
    /// Replay found a divergence (the step is aborting).
    pub divergence: Option<Box<DivergenceReport>>,
    /// A journal write failed during the step (the step is aborting).
    pub journal_error: Option<String>,
}

/// The host state stored in each VM's app data.
pub struct VmHost {
    /// The session this VM belongs to.
    pub session_id: SessionId,
    /// The session's abort cell (see `hook`).
    pub abort: Arc<AtomicU8>,
    /// Wall clock for virtual time.
    pub clock: Arc<dyn Clock>,
    /// Module resolution.
    pub modules: Arc<dyn ModuleSource>,
    /// Resolver profile name.
    pub resolver: String,
    /// Bridge caps.
    pub limits: BridgeLimits,
    /// Budget view of the current step.
    pub budget: BudgetView,
    /// Output of the current step.
    pub buffer: StepBuffer,
    /// Request prepared by the last validator, keyed by token (boxed: it is set only
    /// between a validator and its yield, and the host stays within a smaller size class).
    pub pending: Option<Box<(u64, HostRequest)>>,
    next_token: u64,
    /// Unfinished lines of `io.write` to stdout and stderr (allocated on first use).
    io_lines: Option<Box<[String; 2]>>,
    seed_stream: u64,
    /// The `alc.env` snapshot (`ctx.env.inject` and the spec's env; lua-api.md §1.4 step 1).
    pub env: BTreeMap<String, String>,
    /// Process variables allowed by `[sandbox] env_allow` (§1.4 step 2; `os.getenv` only).
    pub env_allow: Arc<BTreeMap<String, String>>,
    /// Messages of answer errors delivered to the script (code, message), newest last.
    pub answer_errors: VecDeque<(String, String)>,
    /// Custom metrics recorded so far in the session (for `alc.stats.get`).
    pub custom_all: BTreeMap<String, serde_json::Value>,
    /// Lua CPU time of earlier steps (ms), for `os.clock`.
    pub cpu_ms_before: u64,
    /// Clock reading when the current step started.
    pub step_started: std::time::Duration,
    /// Whether `alc.ask` can reach a person.
    pub human_channel: bool,
    /// The session's journal handle (mid-step flushes before writing effects).
    pub log: Option<Arc<SessionLog>>,
    /// Last round issued (for row updates of mid-step flushes).
    pub round: u64,
    /// Replay cursor over this VM's recorded inputs (empty when live).
    pub replay: Replay,
    /// Env keys already read (an `env_read` record is written once per key).
    pub env_seen: std::collections::BTreeSet<String>,
    /// `alc.state` backend.
    pub state: Option<Arc<dyn alc_store::StateStore>>,
    /// `alc.state` namespace (`ctx._ns`, else `default`); validated at each call.
    pub state_ns: String,
    /// This VM's owner id for `alc.state.update`'s in-process lock (`update_lock`).
    pub update_owner: u64,
    /// Coroutine resumes (and module bodies) in progress whose frame cannot host-yield
    /// (engine.md §4.3). Kept here, updated by one host call each, so a preemption can
    /// never split an update the way it could split a Lua read-modify-write.
    pub blocked_frames: u32,
    /// A module whose source changed since it was journaled: replay goes on so that the
    /// report can show the first request that differs; the session fails at the latest
    /// when replay ends (engine.md §7.7).
    pub module_changed: Option<Box<DivergenceReport>>,
    /// The state store shares the journal's database: writes commit with their record.
    pub state_atomic: bool,
    /// Journal producer id: 0 = main VM, i+1 = fork child i.
    pub vm: u32,
    /// Fork child index (None for the main VM).
    pub child: Option<u32>,
    /// Annotations are suppressed because the session is still replaying (fork children
    /// follow the main VM's replay of the pauses).
    pub quiet: bool,
    /// `alc.card` backend.
    pub cards: Option<Arc<dyn crate::card_store::CardStore>>,
    /// `alc.card.create` calls of this VM that generated an id (part of the id's hash).
    pub card_counter: u64,
}

impl Drop for VmHost {
    fn drop(&mut self) {
        // A VM dropped in the middle of `alc.state.update` (cancelled) frees its key.
        crate::update_lock::release_all(self.update_owner);
    }
}

impl VmHost {
    /// Creates the host state of a fresh VM.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        session_id: SessionId,
        abort: Arc<AtomicU8>,
        clock: Arc<dyn Clock>,
        modules: Arc<dyn ModuleSource>,
        resolver: String,
        limits: BridgeLimits,
        budget: BudgetView,
        seed: u64,
        env: BTreeMap<String, String>,
        env_allow: Arc<BTreeMap<String, String>>,
        human_channel: bool,
    ) -> Self {
        VmHost {
            session_id,
            abort,
            clock,
            modules,
            resolver,
            limits,
            budget,
            buffer: StepBuffer::default(),
            pending: None,
            next_token: 1,
            io_lines: None,
            seed_stream: seed,
            env,
            env_allow,
            answer_errors: VecDeque::new(),
            custom_all: BTreeMap::new(),
            cpu_ms_before: 0,
            step_started: std::time::Duration::ZERO,
            human_channel,
            log: None,
            round: 0,
            replay: Replay::default(),
            env_seen: Default::default(),
            state: None,
            state_ns: "default".into(),
            blocked_frames: 0,
            update_owner: crate::update_lock::new_owner(),
            module_changed: None,
            state_atomic: false,
            vm: 0,
            child: None,
            quiet: false,
            cards: None,
            card_counter: 0,
        }
    }

    /// Buffers an input record produced live.
    pub fn record(&mut self, body: RecordBody) {
        let at = self.clock.now_ms();
        let vm = self.vm;
        self.buffer.records.push(PendingRecord { vm, at, body });
    }

    /// Whether the VM is still replaying recorded inputs.
    pub fn replaying(&self) -> bool {
        self.replay.active()
    }

    /// Whether annotations (logs, progress, custom metrics) are suppressed (replay).
    pub fn silent(&self) -> bool {
        self.replay.active() || self.quiet
    }

    /// Records a divergence, makes the step abort (uncatchably) and returns the Lua error.
    pub fn diverge(&mut self, mut report: DivergenceReport) -> mlua::Error {
        report.vm = self.vm;
        let msg = format!(
            "replay_divergence: expected {} (seq {}), got {}",
            report.expected, report.seq, report.actual
        );
        if self.buffer.divergence.is_none() {
            self.buffer.divergence = Some(Box::new(report));
        }
        self.abort_step(crate::hook::ABORT_DIVERGENCE);
        mlua::Error::runtime(msg)
    }

    /// Aborts the running step with `cause` (unless an abort is already under way) and
    /// arms the hook of the thread running it, so that no script code outlives the step.
    fn abort_step(&self, cause: u8) {
        let _ = self.abort.compare_exchange(
            crate::hook::ABORT_NONE,
            cause,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        crate::hook::arm_running();
    }

    /// In replay, takes the next record, which must satisfy `ok`; `None` when live.
    fn replay_take(
        &mut self,
        actual: &str,
        ok: impl Fn(&RecordBody) -> bool,
    ) -> mlua::Result<Option<JournalRecord>> {
        let Some(rec) = self.replay.peek() else {
            if let Some(m) = self.module_changed.take() {
                // Replay is over: fail before anything runs live.
                return Err(self.diverge(*m));
            }
            return Ok(None);
        };
        if ok(&rec.body) {
            return Ok(self.replay.pop());
        }
        let rec = rec.clone();
        Err(self.diverge(durable::report(
            rec.seq,
            durable::describe(&rec.body),
            actual.to_string(),
            None,
            None,
            String::new(),
        )))
    }

    /// The `fork` record of an accepted `alc.fork`: checked against the journal in replay.
    pub fn fork_record(&mut self, strategies: &[String], ctx_digest: &str) -> mlua::Result<()> {
        let rec = self.replay_take("fork", |b| matches!(b, RecordBody::Fork { .. }))?;
        if let Some(rec) = rec {
            if let RecordBody::Fork {
                strategies: s,
                ctx_digest: d,
            } = &rec.body
            {
                if s != strategies || d != ctx_digest {
                    let d = d.clone();
                    return Err(self.diverge(durable::report(
                        rec.seq,
                        format!("fork {}", s.join(",")),
                        format!("fork {} with this ctx", strategies.join(",")),
                        Some(d),
                        Some(ctx_digest.to_string()),
                        String::new(),
                    )));
                }
            }
            return Ok(());
        }
        self.record(RecordBody::Fork {
            strategies: strategies.to_vec(),
            ctx_digest: ctx_digest.to_string(),
        });
        Ok(())
    }

    /// A journaled clock read: the recorded value in replay, else the live one (recorded).
    pub fn clock_read(&mut self, source: ClockSource) -> mlua::Result<serde_json::Value> {
        let rec = self.replay_take(
            &format!("clock {source:?}"),
            |b| matches!(b, RecordBody::Clock { source: s, .. } if *s == source),
        )?;
        if let Some(JournalRecord {
            body: RecordBody::Clock { value, .. },
            ..
        }) = rec
        {
            return Ok(value);
        }
        let now = self.clock.now_ms();
        let value = match source {
            ClockSource::OsTime | ClockSource::OsDate => serde_json::json!(now.div_euclid(1000)),
            ClockSource::AlcTime => serde_json::json!(now as f64 / 1000.0),
            ClockSource::Elapsed => serde_json::json!(now),
            ClockSource::OsClock => {
                let step = self.clock.monotonic().saturating_sub(self.step_started);
                serde_json::json!(self.cpu_ms_before as f64 / 1000.0 + step.as_secs_f64())
            }
        };
        self.record(RecordBody::Clock {
            source,
            value: value.clone(),
        });
        Ok(value)
    }

    /// The wall clock through the journal (budget elapsed checks).
    fn elapsed_now(&mut self) -> Result<i64, String> {
        match self.clock_read(ClockSource::Elapsed) {
            Ok(v) => Ok(v.as_i64().unwrap_or(0)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A digest-checked input whose record is `fresh` (`env_read`, `module` or `file`). In
    /// replay, takes the journaled record of the same input and, when its digest differs,
    /// returns the divergence (`changed`: how the actual read differs; `diff`: the report's
    /// explanation); live, journals `fresh`.
    fn digest_input(
        &mut self,
        fresh: RecordBody,
        changed: &str,
        diff: impl FnOnce() -> String,
    ) -> mlua::Result<Option<DivergenceReport>> {
        let what = durable::describe(&fresh);
        let same_input =
            |b: &RecordBody| durable::input_digest(b).is_some() && durable::describe(b) == what;
        let Some(rec) = self.replay_take(&what, same_input)? else {
            self.record(fresh);
            return Ok(None);
        };
        let journaled = durable::input_digest(&rec.body);
        let actual = durable::input_digest(&fresh);
        Ok((journaled != actual).then(|| {
            durable::report(
                rec.seq,
                what.clone(),
                format!("{what} {changed}"),
                journaled.map(str::to_string),
                actual.map(str::to_string),
                diff(),
            )
        }))
    }

    /// The first read of env key `key` (value `value`): an `env_read` digest record.
    pub fn env_read(&mut self, key: &str, value: Option<&str>) -> mlua::Result<()> {
        if !self.env_seen.insert(key.to_string()) {
            return Ok(());
        }
        let digest = digest_bytes(serde_json::to_string(&value).unwrap_or_default().as_bytes());
        let fresh = RecordBody::EnvRead {
            key: key.to_string(),
            digest,
        };
        match self.digest_input(fresh, "with a different value", String::new)? {
            Some(d) => Err(self.diverge(d)),
            None => Ok(()),
        }
    }

    /// The first load of module `name` with `source`: a `module` digest record. A changed
    /// source in replay fails the session once replay is over (`module_changed`).
    pub fn module_read(&mut self, name: &str, source: &[u8]) -> mlua::Result<()> {
        let fresh = RecordBody::Module {
            name: name.to_string(),
            digest: digest_bytes(source),
        };
        let changed = self.digest_input(fresh, "with changed source", || {
            format!("module '{name}' changed since it was journaled")
        })?;
        if let Some(d) = changed {
            self.module_changed.get_or_insert_with(|| Box::new(d));
        }
        Ok(())
    }

    /// A successful `io.open` of package data file `path` (logical) with `content`: a
    /// `file` digest record. In replay a changed content fails the session at once.
    pub fn file_read(&mut self, path: &str, content: &[u8]) -> mlua::Result<()> {
        let fresh = RecordBody::File {
            path: path.to_string(),
            digest: digest_bytes(content),
        };
        let changed = self.digest_input(fresh, "with changed content", || {
            format!("data file '{path}' changed since it was journaled")
        })?;
        match changed {
            Some(d) => Err(self.diverge(d)),
            None => Ok(()),
        }
    }

    /// A journaled effect: the recorded result in replay (the store is not touched), else
    /// `live` runs (after flushing the buffer when it writes) and its result is recorded.
    pub fn effect(
        &mut self,
        service: &str,
        op: &str,
        args: serde_json::Value,
        writes: bool,
        live: impl FnOnce(&mut VmHost) -> serde_json::Value,
    ) -> mlua::Result<serde_json::Value> {
        let atomic = self.state_atomic;
        self.effect_in(service, op, args, writes, atomic, live)
    }

    /// As [`effect`](Self::effect), for a service whose store never shares the journal's
    /// database (`alc.card`): a write is bracketed by two flushes, never run inside the
    /// journal's transaction.
    pub fn effect_separate(
        &mut self,
        service: &str,
        op: &str,
        args: serde_json::Value,
        writes: bool,
        live: impl FnOnce(&mut VmHost) -> serde_json::Value,
    ) -> mlua::Result<serde_json::Value> {
        self.effect_in(service, op, args, writes, false, live)
    }

    fn effect_in(
        &mut self,
        service: &str,
        op: &str,
        args: serde_json::Value,
        writes: bool,
        atomic: bool,
        live: impl FnOnce(&mut VmHost) -> serde_json::Value,
    ) -> mlua::Result<serde_json::Value> {
        let args_digest = digest_bytes(
            crate::json::canonical_string(&serde_json::json!({
                "service": service, "op": op, "args": args,
            }))
            .as_bytes(),
        );
        let rec = self.replay_take(&format!("effect {service}.{op}"), |b| {
            matches!(b, RecordBody::Effect { service: s, op: o, .. } if s == service && o == op)
        })?;
        if let Some(rec) = rec {
            if let RecordBody::Effect {
                args_digest: d,
                result,
                ..
            } = rec.body
            {
                if d != args_digest {
                    return Err(self.diverge(durable::report(
                        rec.seq,
                        format!("effect {service}.{op}"),
                        format!("effect {service}.{op} with other arguments"),
                        Some(d),
                        Some(args_digest),
                        String::new(),
                    )));
                }
                return Ok(result);
            }
        }
        if writes && atomic {
            if let Some(log) = self.log.clone() {
                return self.effect_atomic(&log, service, op, args_digest, live);
            }
        }
        if writes {
            self.flush()?;
        }
        let result = live(self);
        self.record(RecordBody::Effect {
            service: service.to_string(),
            op: op.to_string(),
            args_digest,
            result: result.clone(),
        });
        if writes {
            self.flush()?;
        }
        Ok(result)
    }

    /// A writing effect committed in one transaction with the buffered records and its own
    /// `effect` record (exactly-once when the store shares the journal's database).
    fn effect_atomic(
        &mut self,
        log: &Arc<SessionLog>,
        service: &str,
        op: &str,
        args_digest: String,
        live: impl FnOnce(&mut VmHost) -> serde_json::Value,
    ) -> mlua::Result<serde_json::Value> {
        let mut records = std::mem::take(&mut self.buffer.records);
        let mut live = Some(live);
        let mut result = None;
        let row = RowUpdate::new(Phase::Running, self.round, self.clock.now_ms());
        let mut last = log.last_seq.lock();
        // Records held back for this step (a new session's `spawned`, answers) go first.
        if let Err(e) = log.write_held(&mut last, row.clone()) {
            return Err(self.journal_failed(e));
        }
        let base = *last;
        let mut count = 0;
        let written = log.journal.append_with(&mut || {
            let f = live.take().expect("the effect runs once");
            let value = f(self);
            let mut recs = std::mem::take(&mut records);
            recs.push(PendingRecord {
                vm: self.vm,
                at: self.clock.now_ms(),
                body: RecordBody::Effect {
                    service: service.to_string(),
                    op: op.to_string(),
                    args_digest: args_digest.clone(),
                    result: value.clone(),
                },
            });
            count = recs.len() as u64;
            result = Some(value);
            Ok(vec![log.sequence(base, recs, row.clone())])
        });
        match written {
            Ok(()) => {
                *last = base + count;
                Ok(result.unwrap_or_default())
            }
            Err(e) => Err(self.journal_failed(e)),
        }
    }

    /// A journal write of the step failed: the step aborts (the session fails, T25);
    /// the error for the script.
    fn journal_failed(&mut self, e: impl std::fmt::Display) -> mlua::Error {
        let msg = format!("journal: {e}");
        self.buffer.journal_error = Some(msg.clone());
        self.abort_step(crate::hook::ABORT_JOURNAL);
        mlua::Error::runtime(msg)
    }

    /// Appends the buffered input records now (one durable write), after any records
    /// held back for this step (`SessionLog::hold`).
    pub fn flush(&mut self) -> mlua::Result<()> {
        let Some(log) = self.log.clone() else {
            return Ok(());
        };
        if self.buffer.records.is_empty() && !log.held_back() {
            return Ok(());
        }
        let records = std::mem::take(&mut self.buffer.records);
        let row = RowUpdate::new(Phase::Running, self.round, self.clock.now_ms());
        let mut last = log.last_seq.lock();
        if let Err(e) = log.append_locked(&mut last, records, row) {
            return Err(self.journal_failed(e));
        }
        Ok(())
    }

    fn log(&mut self, level: &str, source: &str, message: &str) {
        const MAX: usize = 4096;
        if self.silent() {
            // Replay emits no annotations (engine.md §7.6).
            return;
        }
        let mut message = message.to_string();
        if message.len() > MAX {
            let mut cut = MAX;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let source = match self.child {
            Some(i) => format!("fork[{i}].{source}"),
            None => source.to_string(),
        };
        self.buffer.logs.push(LogEntry {
            ts: self.clock.now_ms(),
            level: level.to_string(),
            source,
            message,
        });
    }

    /// Emits the trailing partial lines of `io.write` (at session end).
    pub fn flush_io(&mut self) {
        let Some(lines) = self.io_lines.take() else {
            return;
        };
        let [out, err] = *lines;
        for (rest, level) in [(out, "info"), (err, "warn")] {
            if !rest.is_empty() {
                self.log(level, "io", &rest);
            }
        }
    }

    fn io_write(&mut self, stream: usize, text: &str) {
        let level = if stream == 0 { "info" } else { "warn" };
        let lines = self.io_lines.get_or_insert_with(Default::default);
        let mut pending = std::mem::take(&mut lines[stream]);
        pending.push_str(text);
        while let Some(pos) = pending.find('\n') {
            let line: String = pending.drain(..=pos).collect();
            self.log(level, "io", line.trim_end_matches('\n'));
        }
        self.io_lines.get_or_insert_with(Default::default)[stream] = pending;
    }

    /// Next value of the session's SplitMix64 seed stream.
    pub fn next_seed(&mut self) -> u64 {
        self.seed_stream = self.seed_stream.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.seed_stream;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn stash(&mut self, request: HostRequest) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.pending = Some(Box::new((token, request)));
        token
    }

    /// Budget admission of `k` LLM queries whose prompts estimate to `prompt_tokens`.
    fn admit(&mut self, k: u64, prompt_tokens: u64) -> Result<(), String> {
        let b = &self.budget;
        if let Some(max) = b.limits.max_llm_calls {
            if b.calls_used + k > max {
                return Err(if k == 1 {
                    format!(
                        "budget_exceeded: max_llm_calls ({max}) reached ({} used)",
                        b.calls_used
                    )
                } else {
                    format!(
                        "budget_exceeded: max_llm_calls ({max}) would be exceeded by a batch of {k} ({} used)",
                        b.calls_used
                    )
                });
            }
        }
        if let Some(max) = b.limits.max_elapsed_ms {
            let created_at = b.created_at;
            let elapsed = (self.elapsed_now()? - created_at).max(0) as u64;
            if elapsed >= max {
                return Err(format!(
                    "budget_exceeded: max_elapsed_ms ({max}ms) reached ({elapsed}ms elapsed)"
                ));
            }
        }
        let b = &self.budget;
        if let Some(max) = b.limits.max_tokens {
            if b.tokens_used + prompt_tokens > max {
                return Err(format!(
                    "budget_exceeded: max_tokens ({max}) reached ({} used)",
                    b.tokens_used
                ));
            }
        }
        self.budget.calls_used += k;
        self.budget.tokens_used += prompt_tokens;
        Ok(())
    }
}

/// A JSON number as a Lua number (integers stay integers).
pub fn json_number(v: &serde_json::Value) -> Value {
    match v.as_i64() {
        Some(i) if !v.is_f64() => Value::Integer(i),
        _ => Value::Number(v.as_f64().unwrap_or(0.0)),
    }
}

/// Runs `f` on the VM's host state.
pub fn with_host<R>(lua: &Lua, f: impl FnOnce(&mut VmHost) -> R) -> R {
    let mut host = lua
        .app_data_mut::<VmHost>()
        .expect("every session VM carries its host state");
    f(&mut host)
}

const NOT_YIELDABLE_HINT: &str = "inside a C callback such as a table.sort comparator or string.gsub function, a __gc finalizer, an xpcall message handler, or a module's top level during require";

fn lua_type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// A string argument with number coercion (lua-api.md §0).
pub(crate) fn coerce_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(lua_number_string(*n)),
        _ => None,
    }
}

/// Formats a float the way Lua's `tostring` does (`%.14g`, with `.0` for integral values).
pub fn lua_number_string(n: f64) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let s = format_g14(n);
    if s.contains(['.', 'e', 'n', 'i']) {
        s
    } else {
        format!("{s}.0")
    }
}

fn format_g14(n: f64) -> String {
    if n == 0.0 {
        return if n.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = n.abs().log10().floor() as i32;
    if !(-5..14).contains(&exp) {
        let s = format!("{:.13e}", n);
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = mant.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", e.abs())
    } else {
        let decimals = (13 - exp).max(0) as usize;
        let s = format!("{:.*}", decimals, n);
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

/// Parses `alc.llm` options into `query` (lua-api.md §2.1), logging lenient fallbacks.
fn apply_llm_options(
    host: &mut VmHost,
    fname: &str,
    query: &mut LlmQuery,
    opts: &Table,
) -> mlua::Result<()> {
    let system: Value = opts.raw_get("system")?;
    match &system {
        Value::Nil => {}
        v => match coerce_string(v) {
            Some(s) => query.system = Some(s),
            None => host.log(
                "warn",
                "alc.llm",
                &format!("{fname}: opts.system ignored ({} given)", lua_type_name(v)),
            ),
        },
    }
    let max_tokens: Value = opts.raw_get("max_tokens")?;
    let mt = match max_tokens {
        Value::Nil => None,
        Value::Integer(i) => Some(i as f64),
        Value::Number(n) => Some(n),
        _ => Some(f64::NAN),
    };
    if let Some(mt) = mt {
        let t = mt.trunc();
        if t.is_finite() && t >= 1.0 && t <= u32::MAX as f64 {
            query.max_tokens = t as u32;
        } else {
            host.log(
                "warn",
                "alc.llm",
                &format!("{fname}: opts.max_tokens must be a positive integer; using 1024"),
            );
        }
    }
    let temperature: Value = opts.raw_get("temperature")?;
    match temperature {
        Value::Nil => {}
        Value::Integer(i) if (0..=2).contains(&i) => query.temperature = Some(i as f64),
        Value::Number(n) if (0.0..=2.0).contains(&n) => query.temperature = Some(n),
        _ => host.log(
            "warn",
            "alc.llm",
            &format!("{fname}: opts.temperature must be a number in [0, 2]; ignored"),
        ),
    }
    for (key, cap) in [("model", 200usize), ("role", 64)] {
        let v: Value = opts.raw_get(key)?;
        if v.is_nil() {
            continue;
        }
        match coerce_string(&v) {
            Some(s) if s.len() <= cap => {
                if key == "model" {
                    query.model = Some(s)
                } else {
                    query.role = Some(s)
                }
            }
            _ => host.log(
                "warn",
                "alc.llm",
                &format!("{fname}: opts.{key} must be a string of at most {cap} bytes; ignored"),
            ),
        }
    }
    query.grounded = matches!(opts.raw_get::<Value>("grounded")?, Value::Boolean(true));
    query.underspecified = matches!(
        opts.raw_get::<Value>("underspecified")?,
        Value::Boolean(true)
    );
    Ok(())
}

fn query_bytes(q: &LlmQuery) -> usize {
    q.prompt.len() + q.system.as_ref().map_or(0, |s| s.len())
}

fn query_tokens(q: &LlmQuery) -> u64 {
    estimate_tokens(&q.prompt) + q.system.as_deref().map_or(0, estimate_tokens)
}

/// Validates one `alc.llm`-style item. `Err` carries the message for Lua.
fn build_llm_query(
    host: &mut VmHost,
    fname: &str,
    prompt: &Value,
    opts: Option<&Table>,
) -> mlua::Result<Result<LlmQuery, String>> {
    let Some(prompt) = coerce_string(prompt) else {
        return Ok(Err(format!(
            "{fname}: bad argument #1 'prompt' (string expected, got {})",
            lua_type_name(prompt)
        )));
    };
    let mut query = LlmQuery::new(prompt);
    if let Some(opts) = opts {
        apply_llm_options(host, fname, &mut query, opts)?;
    }
    if query_bytes(&query) > host.limits.max_request_bytes {
        return Ok(Err(format!(
            "invalid_request: prompt and system exceed {} bytes",
            host.limits.max_request_bytes
        )));
    }
    Ok(Ok(query))
}

type Reply = (Value, Option<String>);

fn fail(msg: String) -> mlua::Result<Reply> {
    Ok((Value::Nil, Some(msg)))
}

fn request_llm(lua: &Lua, (prompt, opts, yieldable): (Value, Value, bool)) -> mlua::Result<Reply> {
    with_host(lua, |host| {
        let opts = match &opts {
            Value::Table(t) => Some(t.clone()),
            Value::Nil => None,
            other => {
                return fail(format!(
                    "alc.llm: bad argument #2 'opts' (table expected, got {})",
                    lua_type_name(other)
                ))
            }
        };
        let query = match build_llm_query(host, "alc.llm", &prompt, opts.as_ref())? {
            Ok(q) => q,
            Err(msg) => return fail(msg),
        };
        if !yieldable {
            return fail(format!(
                "not_yieldable: alc.llm cannot pause here ({NOT_YIELDABLE_HINT})"
            ));
        }
        if let Err(msg) = host.admit(1, query_tokens(&query)) {
            return fail(msg);
        }
        let token = host.stash(HostRequest::Llm {
            items: vec![query],
            batch: false,
        });
        Ok((Value::Integer(token as i64), None))
    })
}

fn request_batch(lua: &Lua, (items, yieldable): (Value, bool)) -> mlua::Result<Reply> {
    with_host(lua, |host| {
        const F: &str = "alc.llm_batch";
        let Value::Table(items) = items else {
            return fail(format!("{F}: items must be a non-empty array"));
        };
        let n = items.raw_len();
        if n == 0 {
            return fail(format!("{F}: items must be a non-empty array"));
        }
        let mut queries = Vec::with_capacity(n);
        for i in 1..=n {
            let item: Value = items.raw_get(i)?;
            let Value::Table(item) = item else {
                return fail(format!(
                    "{F}: item {i}: table expected, got {}",
                    lua_type_name(&item)
                ));
            };
            let prompt: Value = item.raw_get("prompt")?;
            if prompt.is_nil() {
                return fail(format!("{F}: item {i}: prompt is required"));
            }
            match build_llm_query(host, F, &prompt, Some(&item))? {
                Ok(q) => queries.push(q),
                Err(msg) => return fail(msg.replacen(F, &format!("{F}: item {i}"), 1)),
            }
        }
        if n > host.limits.max_batch {
            return fail(format!(
                "invalid_request: batch of {n} exceeds {} items",
                host.limits.max_batch
            ));
        }
        if !yieldable {
            return fail(format!(
                "not_yieldable: alc.llm_batch cannot pause here ({NOT_YIELDABLE_HINT})"
            ));
        }
        let tokens = queries.iter().map(query_tokens).sum();
        if let Err(msg) = host.admit(n as u64, tokens) {
            return fail(msg);
        }
        let token = host.stash(HostRequest::Llm {
            items: queries,
            batch: true,
        });
        Ok((Value::Integer(token as i64), None))
    })
}

fn request_ask(
    lua: &Lua,
    (question, opts, yieldable): (Value, Value, bool),
) -> mlua::Result<(Value, Option<String>, bool)> {
    const F: &str = "alc.ask";
    let err = |m: String| Ok((Value::Nil, Some(m), false));
    let question = match coerce_string(&question) {
        Some(q) if !q.is_empty() => q,
        _ => return err(format!("{F}: question must be a non-empty string")),
    };
    let mut q = HumanQuestion::new(question);
    if let Value::Table(opts) = &opts {
        let choices: Value = opts.raw_get("choices")?;
        let schema: Value = opts.raw_get("schema")?;
        if !choices.is_nil() && !schema.is_nil() {
            return err(format!(
                "{F}: opts.choices and opts.schema are mutually exclusive"
            ));
        }
        if let Value::Table(c) = &choices {
            let n = c.raw_len();
            let mut list = Vec::new();
            for i in 1..=n {
                match c.raw_get::<Value>(i)? {
                    Value::String(s) => list.push(s.to_string_lossy()),
                    _ => {
                        return err(format!(
                            "{F}: opts.choices must be an array of 1 to 64 strings"
                        ))
                    }
                }
            }
            if list.is_empty() || list.len() > 64 {
                return err(format!(
                    "{F}: opts.choices must be an array of 1 to 64 strings"
                ));
            }
            q.choices = list;
        } else if !choices.is_nil() {
            return err(format!(
                "{F}: opts.choices must be an array of 1 to 64 strings"
            ));
        }
        if !schema.is_nil() {
            match crate::json::to_json(lua, &schema) {
                Ok(v) => match check_flat_schema(&v) {
                    Ok(()) => q.schema = Some(v),
                    Err(reason) => return err(format!("{F}: unsupported schema: {reason}")),
                },
                Err(e) => return err(format!("{F}: unsupported schema: {e}")),
            }
        }
        let default: Value = opts.raw_get("default")?;
        if !default.is_nil() {
            match crate::json::to_json(lua, &default) {
                Ok(v) => q.default = Some(v),
                Err(e) => return err(format!("{F}: opts.default: {e}")),
            }
        }
        match opts.raw_get::<Value>("timeout_ms")? {
            Value::Nil => {}
            Value::Integer(i) if i >= 1 => q.timeout_ms = Some(i as u64),
            Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => q.timeout_ms = Some(n as u64),
            _ => return err(format!("{F}: opts.timeout_ms must be an integer >= 1")),
        }
    } else if !opts.is_nil() {
        return err(format!(
            "{F}: bad argument #2 'opts' (table expected, got {})",
            lua_type_name(&opts)
        ));
    }
    if !yieldable {
        return err(format!(
            "not_yieldable: alc.ask cannot pause here ({NOT_YIELDABLE_HINT})"
        ));
    }
    with_host(lua, |host| {
        if !host.human_channel {
            // No channel to a person: the caller returns its default at once.
            return Ok((Value::Nil, None, true));
        }
        let token = host.stash(HostRequest::Ask(q));
        Ok((Value::Integer(token as i64), None, false))
    })
}

fn request_fork(
    lua: &Lua,
    (strategies, ctx, opts, yieldable): (Value, Value, Value, bool),
) -> mlua::Result<Reply> {
    const F: &str = "alc.fork";
    let Value::Table(list) = strategies else {
        return fail(format!("{F}: strategies must be a non-empty array"));
    };
    let n = list.raw_len();
    if n == 0 {
        return fail(format!("{F}: strategies must be a non-empty array"));
    }
    let mut names = Vec::with_capacity(n);
    for i in 1..=n {
        match list.raw_get::<Value>(i)? {
            Value::String(s) => {
                let name = s.to_string_lossy();
                if !crate::services::valid_package_name(&name) {
                    return fail(format!("{F}: invalid strategy name '{name}'"));
                }
                names.push(name);
            }
            other => {
                let shown = coerce_string(&other).unwrap_or_else(|| lua_type_name(&other).into());
                return fail(format!("{F}: invalid strategy name '{shown}'"));
            }
        }
    }
    let max = with_host(lua, |h| h.limits.max_fork_children);
    if names.len() > max {
        return fail(format!(
            "{F}: at most {max} strategies (got {})",
            names.len()
        ));
    }
    if !matches!(ctx, Value::Table(_)) {
        return fail(format!("{F}: ctx must be a table"));
    }
    let ctx = match crate::json::to_json(lua, &ctx) {
        Ok(v) => v,
        Err(e) => return fail(format!("{F}: ctx: {e}")),
    };
    let abort = match &opts {
        Value::Table(t) => matches!(
            t.raw_get::<Value>("on_error")?,
            Value::String(s) if s.as_bytes() == b"abort"
        ),
        _ => false,
    };
    if !yieldable {
        return fail(format!(
            "not_yieldable: alc.fork cannot pause here ({NOT_YIELDABLE_HINT})"
        ));
    }
    with_host(lua, |host| {
        if host.child.is_some() {
            return fail(format!("{F}: nested fork is not supported"));
        }
        let token = host.stash(HostRequest::Fork {
            strategies: names,
            ctx,
            abort,
        });
        Ok((Value::Integer(token as i64), None))
    })
}

/// Checks the flat object schema accepted by `alc.ask` (lua-api.md §2.1).
fn check_flat_schema(v: &serde_json::Value) -> Result<(), String> {
    let obj = v.as_object().ok_or("schema must be a table")?;
    if obj.get("type").and_then(|t| t.as_str()) != Some("object") {
        return Err("type must be \"object\"".into());
    }
    let props = obj
        .get("properties")
        .and_then(|p| p.as_object())
        .ok_or("properties must be a table")?;
    for (name, p) in props {
        let t = p.get("type").and_then(|t| t.as_str()).unwrap_or("");
        if !["string", "number", "integer", "boolean"].contains(&t) {
            return Err(format!("property '{name}' has unsupported type '{t}'"));
        }
    }
    if let Some(req) = obj.get("required") {
        let list = req.as_array().ok_or("required must be an array")?;
        for r in list {
            let r = r.as_str().ok_or("required must hold strings")?;
            if !props.contains_key(r) {
                return Err(format!("required property '{r}' is not declared"));
            }
        }
    }
    Ok(())
}

/// Validates a module name (lua-api.md §1.8); returns the error message when invalid.
pub fn module_name_error(name: &str) -> Option<String> {
    let valid = name.len() <= 256 && {
        let mut parts = name.split('.');
        let first = parts.next().unwrap_or("");
        crate::services::valid_package_name(first)
            && parts.all(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            })
    };
    (!valid).then(|| format!("invalid module name '{name}'"))
}

fn traceback(lua: &Lua, _: ()) -> mlua::Result<String> {
    // (short source, what, line, name) of each frame, innermost first.
    let mut frames: Vec<(String, String, Option<usize>, Option<String>)> = Vec::new();
    // Level 0 is this function, level 1 the error handler; start at the raising frame.
    for level in 2..64 {
        let Some(frame) = lua.inspect_stack(level, |d| {
            let src = d.source();
            let short = src.short_src.map(|s| s.to_string()).unwrap_or_default();
            let what = src.what.to_string();
            let name = d.names().name.map(|n| n.to_string());
            (short, what, d.current_line(), name)
        }) else {
            break;
        };
        frames.push(frame);
    }
    // The engine's chunks are stripped bytecode (source "?") or named "[alc …]".
    let engine = |short: &str| short.starts_with("[alc") || short == "?";
    let mut lines = vec!["stack traceback:".to_string()];
    for (i, (short, what, line, name)) in frames.iter().enumerate() {
        if engine(short) {
            continue;
        }
        // A C function the engine's own chunks called (its name would be an internal
        // upvalue such as `raw_error`) is part of the engine, not of the script.
        if what == "C" && frames.get(i + 1).is_some_and(|f| engine(&f.0)) {
            continue;
        }
        let place = match line {
            Some(l) if what != "C" => format!("{short}:{l}:"),
            _ if what == "C" => "[C]:".to_string(),
            _ => format!("{short}:"),
        };
        let desc = match (what.as_str(), name) {
            ("main", _) => "in main chunk".to_string(),
            (_, Some(n)) => format!("in function '{n}'"),
            ("C", None) => "in ?".to_string(),
            (_, None) => "in function <anonymous>".to_string(),
        };
        lines.push(format!("\t{place} {desc}"));
    }
    Ok(lines.join("\n"))
}

/// Splits an `io.open` path into package name and relative path (lua-api.md §1.3): the
/// relative part must be non-empty, relative, without empty, `.` or `..` segments, `\`
/// or NUL. `None` means the path is outside the rule.
fn split_data_path(path: &str) -> Option<(&str, &str)> {
    let (pkg, rel) = path.split_once('/')?;
    if !crate::services::valid_package_name(pkg)
        || rel.is_empty()
        || rel.contains('\\')
        || rel.contains('\0')
        || rel
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    Some((pkg, rel))
}

/// Builds the `host` table handed to the sandbox and `alc` preludes. Its functions are
/// created on first access (`__index`), so a VM carries only the ones its preludes and
/// script reach (engine.md §5.7).
pub fn host_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.raw_set(
        "__index",
        lua.create_function(|lua, (t, name): (Table, LuaString)| {
            let name = name.to_str()?;
            let f = host_fn(lua, &name)?;
            if let Some(f) = &f {
                t.raw_set(&*name, f.clone())?;
            }
            Ok(f)
        })?,
    )?;
    t.set_metatable(Some(meta))?;
    Ok(t)
}

/// Creates the host function `name` of [`host_table`], or `None` for an unknown name.
fn host_fn(lua: &Lua, name: &str) -> mlua::Result<Option<Function>> {
    let f = match name {
        // The rest of the `alc` library, built on first access (alc.lua): `alc` is the
        // table to fill, `p` the sandbox's private table.
        "install_stdlib" => lua
            .create_function(|lua, (alc, p): (Table, Table)| crate::stdlib::install(lua, &alc, &p)),
        // The sandbox's coroutine shims report every switch, so the hook can be armed on the
        // thread that actually runs (see `hook`).
        "enter" => lua.create_function(|_, co: mlua::Thread| {
            // SAFETY: `co` is a live coroutine of this VM that this worker runs next.
            unsafe { crate::hook::enter(co.to_pointer() as *mut mlua::ffi::lua_State) };
            Ok(())
        }),
        "state_lock" => lua.create_function(|lua, key: String| {
            let (owner, ns, abort) = with_host(lua, |h| {
                (h.update_owner, h.state_ns.clone(), h.abort.clone())
            });
            Ok(crate::update_lock::acquire(owner, &ns, &key, || {
                abort.load(Ordering::Acquire) != crate::hook::ABORT_NONE
            }))
        }),
        "state_unlock" => lua.create_function(|lua, key: String| {
            let (owner, ns) = with_host(lua, |h| (h.update_owner, h.state_ns.clone()));
            crate::update_lock::release(owner, &ns, &key);
            Ok(())
        }),
        "state_backoff" => lua.create_function(|_, attempt: u32| {
            // Random 0..(50 µs · 2^attempt): not observable by the script, nothing to journal.
            let cap = 50u64 << attempt.min(6);
            let pause = rand::random::<u64>() % cap;
            std::thread::sleep(std::time::Duration::from_micros(pause));
            Ok(())
        }),
        "block" => lua.create_function(|lua, ()| {
            with_host(lua, |h| h.blocked_frames += 1);
            Ok(())
        }),
        "unblock" => lua.create_function(|lua, ()| {
            with_host(lua, |h| {
                h.blocked_frames = h.blocked_frames.saturating_sub(1)
            });
            Ok(())
        }),
        "blocked" => lua.create_function(|lua, ()| Ok(with_host(lua, |h| h.blocked_frames))),
        "aborting" => lua.create_function(|lua, ()| {
            Ok(with_host(lua, |h| h.abort.load(Ordering::Acquire) != 0))
        }),
        "log" => lua.create_function(|lua, (level, source, msg): (String, String, String)| {
            with_host(lua, |h| h.log(&level, &source, &msg));
            Ok(())
        }),
        "alc_log" => lua.create_function(|lua, args: MultiValue| {
            let mut it = args.into_iter();
            let level = it.next().unwrap_or(Value::Nil);
            let msg = it.next().unwrap_or(Value::Nil);
            let level = level.to_string()?;
            let msg = msg.to_string()?;
            with_host(lua, |h| h.log(&level, "alc.log", &msg));
            Ok(())
        }),
        "io_write" => lua.create_function(|lua, (stream, v): (String, Value)| {
            let text = coerce_string(&v).unwrap_or_default();
            let idx = usize::from(stream == "stderr");
            with_host(lua, |h| h.io_write(idx, &text));
            Ok(())
        }),
        "io_open" => lua.create_function(|lua, (path, mode): (Value, Option<String>)| {
            let path = coerce_string(&path).unwrap_or_default();
            let mode = mode.unwrap_or_else(|| "r".into());
            if mode != "r" && mode != "rb" {
                return Ok((Value::Nil, format!("{path}: read-only in sandbox"), 13i64));
            }
            let Some((pkg, rel)) = split_data_path(&path) else {
                return Ok((Value::Nil, format!("{path}: access denied by sandbox"), 13));
            };
            let (modules, resolver) = with_host(lua, |h| (h.modules.clone(), h.resolver.clone()));
            match modules.read_data_file(&resolver, pkg, rel) {
                DataFile::Content(content) => {
                    with_host(lua, |h| h.file_read(&path, &content))?;
                    Ok((
                        Value::String(lua.create_string(&content)?),
                        String::new(),
                        0,
                    ))
                }
                DataFile::Missing => {
                    Ok((Value::Nil, format!("{path}: No such file or directory"), 2))
                }
                DataFile::TooLarge => Ok((
                    Value::Nil,
                    format!(
                        "{path}: file too large for the sandbox (limit {} MiB)",
                        MAX_DATA_FILE_BYTES >> 20
                    ),
                    27,
                )),
                DataFile::NoPackage | DataFile::Outside => {
                    Ok((Value::Nil, format!("{path}: access denied by sandbox"), 13))
                }
            }
        }),
        "clock" => lua.create_function(|lua, source: String| {
            let source = match source.as_str() {
                "os_time" => ClockSource::OsTime,
                "os_date" => ClockSource::OsDate,
                "os_clock" => ClockSource::OsClock,
                "elapsed" => ClockSource::Elapsed,
                _ => ClockSource::AlcTime,
            };
            let v = with_host(lua, |h| h.clock_read(source))?;
            Ok(json_number(&v))
        }),
        "getenv" => lua.create_function(|lua, name: Value| {
            let Some(name) = coerce_string(&name) else {
                return Ok(None);
            };
            with_host(lua, |h| {
                let v = match h.env.get(&name).or_else(|| h.env_allow.get(&name)) {
                    Some(v) => Some(v.clone()),
                    None if name == "HOME" => Some(String::new()),
                    None => None,
                };
                h.env_read(&name, v.as_deref())?;
                Ok(v)
            })
        }),
        "next_seed" => lua.create_function(|lua, ()| Ok(with_host(lua, |h| h.next_seed() as i64))),
        "check_module_name" => lua.create_function(|_, name: Value| {
            Ok(match &name {
                Value::String(s) => module_name_error(&s.to_string_lossy()),
                other => Some(format!(
                    "bad argument #1 to 'require' (string expected, got {})",
                    lua_type_name(other)
                )),
            })
        }),
        "resolve_module" => lua.create_function(|lua, name: String| {
            let (modules, resolver) = with_host(lua, |h| (h.modules.clone(), h.resolver.clone()));
            match modules.resolve(&resolver, &name) {
                Ok(m) => Ok((
                    Some({
                        with_host(lua, |h| h.module_read(&name, &m.source))?;
                        lua.create_string(&m.source)?
                    }),
                    format!("@{}", m.logical_path),
                    m.logical_path,
                )),
                Err(note) => Ok((None, note, String::new())),
            }
        }),
        "traceback" => lua.create_function(traceback),
        "stock_lib" => lua.create_function(|lua, name: String| {
            let open: mlua::ffi::lua_CFunction = match name.as_str() {
                "coroutine" => mlua::ffi::luaopen_coroutine,
                "io" => mlua::ffi::luaopen_io,
                "os" => mlua::ffi::luaopen_os,
                "table" => mlua::ffi::luaopen_table,
                other => return Err(mlua::Error::runtime(format!("no stock library {other}"))),
            };
            // SAFETY: these `luaopen_*` functions build and return a fresh library table
            // and touch no global (unlike `base`, `package` and `string`).
            let open = unsafe { lua.create_c_function(open)? };
            open.call::<Table>(())
        }),
        "sandbox_more" => lua.create_function(|lua, ()| {
            crate::prelude::load(lua, crate::prelude::Prelude::SandboxMore)
        }),
        "mark_array" => lua.create_function(|lua, t: Table| {
            crate::json::mark_array(lua, &t)?;
            Ok(t)
        }),
        "state" => lua.create_function(crate::state::state_call),
        "card" => lua.create_function(crate::card::card_call),
        "request_llm" => lua.create_function(request_llm),
        "request_batch" => lua.create_function(request_batch),
        "request_ask" => lua.create_function(request_ask),
        "request_fork" => lua.create_function(request_fork),
        "budget_remaining" => lua.create_function(|lua, ()| {
            let b = with_host(lua, |h| -> mlua::Result<BudgetView> {
                let mut b = h.budget.clone();
                if b.limits.max_elapsed_ms.is_some() {
                    let now = h.elapsed_now().map_err(mlua::Error::runtime)?;
                    b.created_at = now - b.created_at;
                }
                Ok(b)
            })?;
            let l = &b.limits;
            if l.max_llm_calls.is_none() && l.max_tokens.is_none() && l.max_elapsed_ms.is_none() {
                return Ok(Value::Nil);
            }
            let t = lua.create_table()?;
            if let Some(m) = l.max_llm_calls {
                t.raw_set("llm_calls", m.saturating_sub(b.calls_used) as i64)?;
            }
            if let Some(m) = l.max_elapsed_ms {
                let elapsed = b.created_at.max(0) as u64;
                t.raw_set("elapsed_ms", m.saturating_sub(elapsed) as i64)?;
            }
            if let Some(m) = l.max_tokens {
                t.raw_set("tokens", m.saturating_sub(b.tokens_used) as i64)?;
            }
            Ok(Value::Table(t))
        }),
        "llm_calls" => {
            lua.create_function(|lua, ()| Ok(with_host(lua, |h| h.budget.calls_used as i64)))
        }
        "progress" => lua.create_function(|lua, (step, total, msg): (Value, Value, Value)| {
            let as_count = |v: &Value| match v {
                Value::Integer(i) if *i >= 0 => Some(*i as u64),
                Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as u64),
                _ => None,
            };
            let (Some(step), Some(total)) = (as_count(&step), as_count(&total)) else {
                return Ok(Some(
                    "alc.progress: step and total must be non-negative integers".to_string(),
                ));
            };
            let message = coerce_string(&msg).unwrap_or_default();
            with_host(lua, |h| {
                if h.silent() {
                    return;
                }
                h.buffer.progress = Some(Progress {
                    step,
                    total,
                    message,
                })
            });
            Ok(None)
        }),
        "stats_record" => lua.create_function(|lua, (key, value): (Value, Value)| {
            let key = match &key {
                Value::String(s) if !s.as_bytes().is_empty() && s.as_bytes().len() <= 128 => {
                    s.to_string_lossy()
                }
                _ => {
                    return Ok(Some(
                        "alc.stats.record: key must be a non-empty string of at most 128 bytes"
                            .to_string(),
                    ))
                }
            };
            let value = match crate::json::to_json(lua, &value) {
                Ok(v) => v,
                Err(e) => return Ok(Some(format!("alc.stats.record: {e}"))),
            };
            with_host(lua, |h| {
                let mut all = h.custom_all.clone();
                all.insert(key.clone(), value.clone());
                let size: usize = all.iter().map(|(k, v)| k.len() + v.to_string().len()).sum();
                if all.len() > 256 || size > 64 * 1024 {
                    return Ok(Some(
                        "stats_limit: at most 256 keys and 64 KiB of custom stats".to_string(),
                    ));
                }
                h.custom_all = all;
                if !h.silent() {
                    h.buffer.custom.insert(key, value);
                }
                Ok(None)
            })
        }),
        "stats_get" => lua.create_function(|lua, key: String| {
            let v = with_host(lua, |h| h.custom_all.get(&key).cloned());
            match v {
                Some(v) => crate::json::from_json(lua, &v),
                None => Ok(Value::Nil),
            }
        }),
        _ => return Ok(None),
    };
    Ok(Some(f?))
}
