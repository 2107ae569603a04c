//! `alc-bench`: benchmarks of the engine, printed as one JSON object.
//!
//! ```text
//! cargo run --release --bin alc-bench -- engine --json [--sessions N]
//! cargo run --release --bin alc-bench -- recovery --json [--sessions N] [--sample K]
//! ```
//! Figures and the machine they were taken on are recorded in `docs/benchmarks.md`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alc_core::{
    Answer, Answers, CancelCode, CancelReason, EngineConfig, Phase, Program, SessionId,
    SessionSpec, SnapshotOptions, UntilPause,
};
use alc_engine::{Engine, HostServices, NoModules};
use serde_json::json;

mod recovery;

/// The allocator of the `alc` binary, so the figures are the ones users get.
#[global_allocator]
static GLOBAL: alc_alloc::Allocator = alc_alloc::Allocator;

struct Options {
    /// Run only this part (`paused`, `evicted`, `resume`, `spawn`, `cancel`, `fib`,
    /// `replay`).
    only: Option<String>,
    sessions: usize,
    resume_iters: usize,
    spawn_iters: usize,
    cancel_trials: usize,
    replay_steps: usize,
    /// The paused-sessions part journals to SQLite instead of memory.
    sqlite: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("engine") => {}
        Some("recovery") => recovery_main(&args),
        Some(recovery::PREPARE) => recovery::prepare(&args[1..]),
        _ => {
            eprintln!(
                "usage: alc-bench engine [--json] [--sessions N] [--quick] [--only PART] [--sqlite]\n       \
                 alc-bench recovery [--json] [--sessions N] [--sample K]"
            );
            std::process::exit(2);
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let mut opts = Options {
        only: args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1).cloned()),
        sessions: if quick { 10_000 } else { 100_000 },
        resume_iters: if quick { 20_000 } else { 100_000 },
        spawn_iters: if quick { 2_000 } else { 10_000 },
        cancel_trials: if quick { 20 } else { 100 },
        replay_steps: if quick { 20_000 } else { 100_000 },
        sqlite: args.iter().any(|a| a == "--sqlite"),
    };
    if let Some(i) = args.iter().position(|a| a == "--sessions") {
        opts.sessions = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                eprintln!("error: --sessions takes a number");
                std::process::exit(2)
            });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = rt.block_on(run_all(&opts));
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
}

/// The value following flag `name`, parsed; exits with a usage error when it is not a number.
fn numeric_flag(args: &[String], name: &str) -> Option<u64> {
    let i = args.iter().position(|a| a == name)?;
    match args.get(i + 1).and_then(|v| v.parse().ok()) {
        Some(v) => Some(v),
        None => {
            eprintln!("error: {name} takes a number");
            std::process::exit(2)
        }
    }
}

/// `alc-bench recovery`: prints the report and exits.
fn recovery_main(args: &[String]) -> ! {
    let sessions = numeric_flag(args, "--sessions").unwrap_or(10_000);
    let sample = numeric_flag(args, "--sample").unwrap_or(100);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let report = rt.block_on(recovery::run(sessions, sample));
    println!("{}", serde_json::to_string_pretty(&report).expect("json"));
    std::process::exit(0)
}

/// The machine a report was taken on.
fn machine(journal: &str) -> serde_json::Value {
    json!({
        "cpu": cpu_model(),
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "journal": journal,
    })
}

fn start(workers: usize) -> Engine {
    let config = EngineConfig {
        workers,
        ..EngineConfig::default()
    };
    let services = HostServices {
        modules: Arc::new(NoModules),
        ..HostServices::default()
    };
    Engine::start_blocking(config, services).expect("engine starts")
}

/// An engine with `config` journaling to the SQLite database at `db`
/// (`synchronous=NORMAL`), `alc.state` in the same database.
fn start_sqlite(db: &std::path::Path, config: EngineConfig) -> Engine {
    let journal =
        alc_store::SqliteJournal::open(db, alc_core::Durability::Normal).expect("journal opens");
    let services = HostServices {
        modules: Arc::new(NoModules),
        state: Arc::new(journal.state_store()),
        state_shares_journal: true,
        ..HostServices::default()
    };
    Engine::start_with_journal(config, Arc::new(journal), services).expect("engine starts")
}

fn spec(code: &str) -> SessionSpec {
    SessionSpec::new(Program::Code {
        source: code.to_string(),
        name: None,
    })
}

/// Anonymous resident memory of this process (`RssAnon`: not the mapped database file),
/// in bytes (Linux procfs).
fn rss_anon_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resident set size of this process, in bytes (Linux procfs).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

async fn run_all(o: &Options) -> serde_json::Value {
    let run = |part: &str| o.only.as_deref().is_none_or(|only| only == part);
    let skipped = || json!(null);
    let paused = if run("paused") {
        paused_memory(o.sessions, o.sqlite).await
    } else {
        skipped()
    };
    let evicted = if run("evicted") {
        evicted_memory(o.sessions.min(10_000)).await
    } else {
        skipped()
    };
    let resume = if run("resume") {
        resume_overhead(o.resume_iters).await
    } else {
        skipped()
    };
    let spawn = if run("spawn") {
        spawn_latency(o.spawn_iters).await
    } else {
        skipped()
    };
    let cancel = if run("cancel") {
        cancel_latency(o.cancel_trials).await
    } else {
        skipped()
    };
    let fib = if run("fib") { fib27().await } else { skipped() };
    let replay = if run("replay") {
        replay_throughput(o.replay_steps).await
    } else {
        skipped()
    };
    json!({
        "machine": machine(if o.sqlite { "sqlite (paused part), memory" } else { "memory" }),
        "paused_sessions": paused["paused_sessions"],
        "rss_per_paused_kb": paused["rss_per_paused_kb"],
        "vm_bytes_per_paused_kb": paused["vm_bytes_per_paused_kb"],
        "evicted_sessions": evicted["sessions"],
        "rss_per_evicted_kb": evicted["rss_per_evicted_kb"],
        "anon_rss_per_evicted_kb": evicted["anon_rss_per_evicted_kb"],
        "resume_evicted_ms_median": evicted["resume_ms_median"],
        "resume_overhead_us_median": resume["median_us"],
        "resume_overhead_us_p99": resume["p99_us"],
        "spawn_us_median": spawn["median_us"],
        "spawn_us_p99": spawn["p99_us"],
        "spawn_call_us_median": spawn["call_median_us"],
        "spawn_idle_us_median": spawn["idle_median_us"],
        "cancel_latency_ms_max": cancel["max_ms"],
        "cancel_latency_ms_median": cancel["median_ms"],
        "cancel_to_worker_free_ms_max": cancel["worker_free_max_ms"],
        "fib27_ms": fib["engine_ms"],
        "fib27_plain_lua_ms": fib["plain_ms"],
        "fib27_ratio": fib["ratio"],
        "replay_steps": replay["steps"],
        "replay_steps_per_s": replay["steps_per_s"],
    })
}

/// N sessions each paused in `alc.llm`: resident bytes per session (in-memory journal, or
/// a SQLite journal in a temporary directory).
async fn paused_memory(n: usize, sqlite: bool) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("alc-bench-paused-{}", std::process::id()));
    let engine = if sqlite {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        start_sqlite(&dir.join("alc.db"), EngineConfig::default())
    } else {
        start(0)
    };
    // Warm-up: a few sessions so allocator arenas and code pages are in place.
    let mut warm = Vec::new();
    for _ in 0..100 {
        warm.push(engine.spawn(spec("return alc.llm('hi')")).await.unwrap());
    }
    for id in &warm {
        wait_paused(&engine, id).await;
    }
    let rss1 = rss_bytes();
    let vm1 = engine.stats().vm_bytes;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(engine.spawn(spec("return alc.llm('hi')")).await.unwrap());
    }
    for id in &ids {
        wait_paused(&engine, id).await;
    }
    let rss2 = rss_bytes();
    let vm2 = engine.stats().vm_bytes;
    let per = (rss2.saturating_sub(rss1)) as f64 / n as f64 / 1024.0;
    let vm_per = (vm2.saturating_sub(vm1)) as f64 / n as f64 / 1024.0;
    engine.shutdown(alc_engine::ShutdownMode::Cancel).await;
    if sqlite {
        let _ = std::fs::remove_dir_all(&dir);
    }
    json!({"paused_sessions": n, "rss_per_paused_kb": round2(per), "vm_bytes_per_paused_kb": round2(vm_per)})
}

/// Paused sessions evicted at the idle TTL (SQLite journal, TTL 500 ms): what an evicted
/// session still costs this process, and resuming one (adoption and replay, then the
/// script runs to its end).
async fn evicted_memory(n: usize) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("alc-bench-evicted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = EngineConfig {
        idle_ttl_ms: 500,
        ..EngineConfig::default()
    };
    let engine = start_sqlite(&dir.join("alc.db"), config);
    // Spawns `count` sessions paused in `alc.llm` and waits until all are evicted.
    let pause_and_evict = |engine: &Engine, count: usize| {
        let engine = engine.clone();
        async move {
            let mut ids = Vec::with_capacity(count);
            for _ in 0..count {
                ids.push(engine.spawn(spec("return alc.llm('hi')")).await.unwrap());
            }
            for id in &ids {
                wait_paused(&engine, id).await;
            }
            let until = Instant::now() + Duration::from_secs(300);
            while engine.stats().sessions > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            ids
        }
    };
    pause_and_evict(&engine, 100).await;
    let rss1 = rss_bytes();
    let anon1 = rss_anon_bytes();
    let ids = pause_and_evict(&engine, n).await;
    let rss2 = rss_bytes();
    let anon2 = rss_anon_bytes();
    let per = (rss2.saturating_sub(rss1)) as f64 / n as f64 / 1024.0;
    let anon_per = (anon2.saturating_sub(anon1)) as f64 / n as f64 / 1024.0;
    let mut resume_ms = Vec::new();
    for id in ids.iter().take(100) {
        let t0 = Instant::now();
        let answers = Answers {
            round: Some(1),
            answers: vec![Answer::text(None, "a")],
        };
        engine
            .resume(id, answers)
            .await
            .expect("an evicted session resumes");
        engine.wait(id).await.expect("it completes");
        resume_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    resume_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    engine.shutdown(alc_engine::ShutdownMode::Cancel).await;
    let _ = std::fs::remove_dir_all(&dir);
    json!({
        "sessions": n,
        "rss_per_evicted_kb": round2(per),
        "anon_rss_per_evicted_kb": round2(anon_per),
        "resume_ms_median": round2(percentile(&resume_ms, 0.5)),
    })
}

async fn wait_paused(engine: &Engine, id: &SessionId) {
    match engine
        .run_until_pause(id, Duration::from_secs(600))
        .await
        .expect("session exists")
    {
        UntilPause::Paused { .. } => {}
        other => panic!("expected a pause, got {other:?}"),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Resume → next pause of a loop of `alc.llm` calls, in process.
async fn resume_overhead(iters: usize) -> serde_json::Value {
    let engine = start(0);
    let mut loop_spec = spec("for i = 1, 1e9 do alc.llm('p') end");
    loop_spec.ctx = json!({"budget": {"max_llm_calls": 1_000_000_000u64}});
    let id = engine.spawn(loop_spec).await.unwrap();
    wait_paused(&engine, &id).await;
    let mut round = engine
        .state(&id, &SnapshotOptions::default())
        .unwrap()
        .round;
    let warmup = iters / 10;
    let mut samples = Vec::with_capacity(iters);
    for i in 0..warmup + iters {
        let answers = Answers {
            round: Some(round),
            answers: vec![Answer::text(None, "a")],
        };
        let t0 = Instant::now();
        engine.resume(&id, answers).await.unwrap();
        match engine
            .run_until_pause(&id, Duration::from_secs(60))
            .await
            .unwrap()
        {
            UntilPause::Paused { snapshot } => round = snapshot.round,
            other => panic!("expected a pause, got {other:?}"),
        }
        if i >= warmup {
            samples.push(t0.elapsed().as_secs_f64() * 1e6);
        }
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    engine.shutdown(alc_engine::ShutdownMode::Cancel).await;
    json!({"median_us": round2(percentile(&samples, 0.5)), "p99_us": round2(percentile(&samples, 0.99))})
}

/// Sequential spawn of `return 1` followed by wait: back to back (every spawn finds the
/// pool of ready VM bases as the previous one left it), and with a 2 ms pause between
/// spawns (requests arriving at an idle engine, whose workers refilled the pool).
async fn spawn_latency(iters: usize) -> serde_json::Value {
    let engine = start(0);
    let mut total = Vec::with_capacity(iters);
    let mut call = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t0 = Instant::now();
        let id = engine.spawn(spec("return 1")).await.unwrap();
        call.push(t0.elapsed().as_secs_f64() * 1e6);
        engine.wait(&id).await.unwrap();
        total.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    let mut idle = Vec::with_capacity(iters / 4);
    for _ in 0..iters / 4 {
        std::thread::sleep(std::time::Duration::from_millis(2));
        let t0 = Instant::now();
        let id = engine.spawn(spec("return 1")).await.unwrap();
        engine.wait(&id).await.unwrap();
        idle.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    total.sort_by(|a, b| a.partial_cmp(b).unwrap());
    call.sort_by(|a, b| a.partial_cmp(b).unwrap());
    idle.sort_by(|a, b| a.partial_cmp(b).unwrap());
    engine.shutdown(alc_engine::ShutdownMode::Cancel).await;
    json!({
        "median_us": round2(percentile(&total, 0.5)),
        "p99_us": round2(percentile(&total, 0.99)),
        "call_median_us": round2(percentile(&call, 0.5)),
        "idle_median_us": round2(percentile(&idle, 0.5)),
    })
}

/// Cancel of a spinning session on a one-worker engine: cancel → Cancelled, and
/// cancel → worker free (the next trivial session completes).
async fn cancel_latency(trials: usize) -> serde_json::Value {
    let engine = start(1);
    let mut to_cancelled = Vec::with_capacity(trials);
    let mut to_free = Vec::with_capacity(trials);
    for _ in 0..trials {
        let id = engine.spawn(spec("while true do end")).await.unwrap();
        loop {
            let s = engine.state(&id, &SnapshotOptions::default()).unwrap();
            if s.phase == Phase::Running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t0 = Instant::now();
        engine
            .cancel(
                &id,
                CancelReason {
                    code: CancelCode::User,
                    detail: None,
                },
            )
            .await
            .unwrap();
        engine.wait(&id).await.unwrap();
        to_cancelled.push(t0.elapsed().as_secs_f64() * 1e3);
        let next = engine.spawn(spec("return 1")).await.unwrap();
        engine.wait(&next).await.unwrap();
        to_free.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    to_cancelled.sort_by(|a, b| a.partial_cmp(b).unwrap());
    to_free.sort_by(|a, b| a.partial_cmp(b).unwrap());
    engine.shutdown(alc_engine::ShutdownMode::Cancel).await;
    json!({
        "max_ms": round2(*to_cancelled.last().unwrap_or(&0.0)),
        "median_ms": round2(percentile(&to_cancelled, 0.5)),
        "worker_free_max_ms": round2(*to_free.last().unwrap_or(&0.0)),
    })
}

const FIB: &str = "local function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end return fib(27)";

/// Pure Lua speed inside a session (hook, sandbox) against an unhooked plain VM.
async fn fib27() -> serde_json::Value {
    let engine = start(1);
    let mut engine_ms = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        let id = engine.spawn(spec(FIB)).await.unwrap();
        engine.wait(&id).await.unwrap();
        engine_ms = engine_ms.min(t0.elapsed().as_secs_f64() * 1e3);
    }
    engine.shutdown(alc_engine::ShutdownMode::Cancel).await;
    let mut plain_ms = f64::MAX;
    for _ in 0..5 {
        let lua = mlua_plain();
        let t0 = Instant::now();
        let _: i64 = lua.load(FIB).eval().expect("fib runs");
        plain_ms = plain_ms.min(t0.elapsed().as_secs_f64() * 1e3);
    }
    json!({"engine_ms": round2(engine_ms), "plain_ms": round2(plain_ms), "ratio": round2(engine_ms / plain_ms)})
}

fn mlua_plain() -> mlua::Lua {
    mlua::Lua::new()
}

/// Replay throughput (engine.md §11): a SQLite journal of one session with `steps`
/// answered `alc.llm` calls; a second engine on the same database is given the next
/// answer, rebuilds the session by replaying every recorded step, and pauses live again.
/// steps/s = replayed answers / (resume → next pause).
async fn replay_throughput(steps: usize) -> serde_json::Value {
    let dir = std::env::temp_dir().join(format!("alc-bench-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let db = dir.join("alc.db");
    let start_durable = || {
        let config = EngineConfig {
            workers: 1,
            ..EngineConfig::default()
        };
        start_sqlite(&db, config)
    };
    let a = start_durable();
    let mut s = spec("for i = 1, 1e9 do alc.llm('p' .. i) end");
    s.ctx = json!({"budget": {"max_llm_calls": 1_000_000_000u64}});
    let id = a.spawn(s).await.unwrap();
    let mut round = 0;
    for _ in 0..=steps {
        match a
            .run_until_pause(&id, Duration::from_secs(60))
            .await
            .unwrap()
        {
            UntilPause::Paused { snapshot } => round = snapshot.round,
            other => panic!("expected a pause, got {other:?}"),
        }
        if round as usize > steps {
            break;
        }
        let answers = Answers {
            round: Some(round),
            answers: vec![Answer::text(None, "a")],
        };
        a.resume(&id, answers).await.unwrap();
    }
    a.shutdown(alc_engine::ShutdownMode::Drain).await;
    drop(a);
    let b = start_durable();
    let t0 = Instant::now();
    let answers = Answers {
        round: Some(round),
        answers: vec![Answer::text(None, "a")],
    };
    b.resume(&id, answers).await.unwrap();
    match b
        .run_until_pause(&id, Duration::from_secs(600))
        .await
        .unwrap()
    {
        UntilPause::Paused { snapshot } => assert_eq!(snapshot.round, round + 1),
        other => panic!("expected the live pause after replay, got {other:?}"),
    }
    let secs = t0.elapsed().as_secs_f64();
    b.shutdown(alc_engine::ShutdownMode::Cancel).await;
    let _ = std::fs::remove_dir_all(&dir);
    json!({"steps": round, "steps_per_s": (round as f64 / secs).round()})
}
