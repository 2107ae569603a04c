//! Engine plus provider-adapter cost per `alc.llm` call, end to end.
//!
//! Starts a loopback fake OpenAI-compatible provider that answers at once, then runs
//! `alc run SCRIPT --answerer provider` as a subprocess with scripts making 0 and N
//! sequential `alc.llm` calls. (T(N) − T(0)) / N is what one call costs on top of the
//! provider's own answer time: the pause, the adapter's request and response, the answer's
//! journal record and the resume. Each size runs several times; the best is kept.
//!
//! ```sh
//! cargo build --release --bin alc
//! cargo run --release -p alc-cli --example provider_overhead -- target/release/alc
//! ```

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use alc_llm::fake::{FakeResponse, FakeServer};

const CALLS: usize = 400;
const RUNS: usize = 5;

fn script(dir: &std::path::Path, calls: usize) -> PathBuf {
    let path = dir.join(format!("calls_{calls}.lua"));
    std::fs::write(
        &path,
        format!("local n = 0\nfor i = 1, {calls} do n = n + #alc.llm('q' .. i) end\nreturn n\n"),
    )
    .expect("write script");
    path
}

fn best_ms(alc: &str, home: &std::path::Path, url: &str, file: &std::path::Path) -> f64 {
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(alc)
                .args(["run", file.to_str().unwrap(), "--answerer", "provider"])
                .env("ALC_HOME", home)
                .env("OPENAI_BASE_URL", url)
                .env("OPENAI_API_KEY", "sk-bench")
                .env("ALC_MODEL", "bench")
                .output()
                .expect("run alc");
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert!(
                out.status.success(),
                "alc run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            ms
        })
        .fold(f64::MAX, f64::min)
}

#[tokio::main]
async fn main() {
    let alc = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/release/alc".to_string());
    let fake = FakeServer::start(|_| FakeResponse::openai_text("ok")).await;
    let url = format!("{}/v1", fake.url());
    let dir = std::env::temp_dir().join(format!("alc-provider-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let home = dir.join("home");
    let (zero, many) = (script(&dir, 0), script(&dir, CALLS));
    let (alc2, home2, url2) = (alc.clone(), home.clone(), url.clone());
    let (t0, tn) = tokio::task::spawn_blocking(move || {
        (
            best_ms(&alc2, &home2, &url2, &zero),
            best_ms(&alc2, &home2, &url2, &many),
        )
    })
    .await
    .expect("runs");
    let per_call_us = (tn - t0) / CALLS as f64 * 1e3;
    println!(
        "{{\"calls\": {CALLS}, \"run_0_ms\": {t0:.1}, \"run_{CALLS}_ms\": {tn:.1}, \
         \"per_call_us\": {per_call_us:.0}, \"served\": {}}}",
        fake.count()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
