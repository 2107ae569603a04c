//! Live heap bytes per session, counted at the allocator (not a benchmark of speed).
//!
//! RSS includes what the allocator keeps for reuse; this counts the bytes actually
//! allocated and not yet freed, Lua heaps included:
//!
//! ```sh
//! cargo run --release -p alc-bench --example live_heap -- [N]
//! ```
//!
//! prints the live bytes per session paused in `alc.llm('hi')` (in-memory journal), per
//! paused session after the idle TTL evicted it (SQLite journal, TTL 300 ms), and per
//! session paused after 40–79 answered rounds of 1,000-byte prompts (SQLite journal, 300
//! sessions; the spread samples every point of the Lua collector's cycle): what a working
//! strategy holds between two calls.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use alc_core::{Durability, EngineConfig, Program, SessionSpec};
use alc_engine::{Engine, HostServices, NoModules};

/// The `alc` binary's allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the `alc` allocator; the counter has no
// effect on it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        alc_alloc::Allocator.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        alc_alloc::Allocator.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        alc_alloc::Allocator.realloc(p, l, n)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn spec() -> SessionSpec {
    code("return alc.llm('hi')")
}

fn code(source: &str) -> SessionSpec {
    SessionSpec::new(Program::Code {
        source: source.into(),
        name: None,
    })
}

/// A session answered `rounds` times (1,000-byte prompts, 500-byte answers), paused again.
async fn worked(engine: &Engine, rounds: usize) {
    let source = format!(
        "local n = 0\nfor i = 1, {rounds} do n = n + #alc.llm(string.rep('p', 1000) .. i) end\n\
         return alc.llm('last')"
    );
    let id = engine.spawn(code(&source)).await.expect("spawn");
    for _ in 0..rounds {
        engine
            .run_until_pause(&id, Duration::from_secs(60))
            .await
            .expect("pauses");
        let answer = alc_core::Answer::text(None, "a".repeat(500));
        engine
            .resume(
                &id,
                alc_core::Answers {
                    round: None,
                    answers: vec![answer],
                },
            )
            .await
            .expect("resumes");
    }
    engine
        .run_until_pause(&id, Duration::from_secs(60))
        .await
        .expect("pauses");
}

/// Spawns `n` sessions, waits until all are paused, then (if `evicted`) until the idle
/// TTL removed them all from the engine.
async fn hold(engine: &Engine, n: usize, evicted: bool) {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        ids.push(engine.spawn(spec()).await.expect("spawn"));
    }
    for id in &ids {
        engine
            .run_until_pause(id, Duration::from_secs(60))
            .await
            .expect("pauses");
    }
    while evicted && engine.stats().sessions > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Live bytes per session held by `engine` (after a warm-up of 100).
async fn per_session(engine: &Engine, n: usize, evicted: bool) -> isize {
    hold(engine, 100, evicted).await;
    let before = LIVE.load(Ordering::Relaxed);
    hold(engine, n, evicted).await;
    (LIVE.load(Ordering::Relaxed) - before) / n as isize
}

/// Live bytes per session that worked 40–79 rounds (after a warm-up of 10).
async fn per_worked_session(engine: &Engine, n: usize) -> isize {
    for i in 0..10 {
        worked(engine, 40 + i).await;
    }
    let before = LIVE.load(Ordering::Relaxed);
    for i in 0..n {
        worked(engine, 40 + i % 40).await;
    }
    (LIVE.load(Ordering::Relaxed) - before) / n as isize
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let services = || HostServices {
        modules: Arc::new(NoModules),
        ..HostServices::default()
    };
    let memory = Engine::start_blocking(EngineConfig::default(), services()).expect("engine");
    let paused = per_session(&memory, n, false).await;
    memory.shutdown(alc_engine::ShutdownMode::Cancel).await;

    let dir = std::env::temp_dir().join(format!("alc-live-heap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let journal = alc_store::SqliteJournal::open(dir.join("alc.db"), Durability::Normal)
        .expect("journal opens");
    let config = EngineConfig {
        idle_ttl_ms: 300,
        ..EngineConfig::default()
    };
    let sqlite = Engine::start_with_journal(config, Arc::new(journal), services()).expect("engine");
    let evicted = per_session(&sqlite, n, true).await;
    sqlite.shutdown(alc_engine::ShutdownMode::Cancel).await;

    let journal = alc_store::SqliteJournal::open(dir.join("worked.db"), Durability::Normal)
        .expect("journal opens");
    let sqlite = Engine::start_with_journal(EngineConfig::default(), Arc::new(journal), services())
        .expect("engine");
    let worked = per_worked_session(&sqlite, 300).await;
    sqlite.shutdown(alc_engine::ShutdownMode::Cancel).await;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}",
        serde_json::json!({
            "sessions": n,
            "live_bytes_per_paused": paused,
            "live_bytes_per_evicted": evicted,
            "live_bytes_per_paused_after_40_to_79_rounds": worked,
        })
    );
}
