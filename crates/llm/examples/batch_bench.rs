//! Batch benchmark against the loopback fake provider.
//!
//! The fake answers every request after 50 ms; a batch of 32 runs at concurrency 8, so the
//! ideal wall time is 4 × 50 ms. Prints total time and the per-call overhead above that.
//! The 50 ms wait is a tokio timer, which rounds up to the next millisecond tick, so that
//! overhead includes up to 1 ms of the fake's own timer per wave; a second phase therefore
//! times single calls to a fake that answers at once (the whole round trip: request
//! encoding, loopback HTTP, the fake's parsing, response decoding) — an upper bound of the
//! adapter's own cost per call.
//!
//! `cargo run --release -p alc-llm --example batch_bench`

use alc_core::{LlmQuery, PendingQuery, QueryId, QueryOrigin};
use alc_llm::fake::{FakeResponse, FakeServer};
use alc_llm::{Client, ProviderConfig, ProviderSettings, Providers, ProvidersFile};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const DELAY_MS: u64 = 50;
const BATCH: usize = 32;
const CONCURRENCY: usize = 8;
const ROUNDS: usize = 5;
const SINGLE_CALLS: usize = 500;

#[tokio::main]
async fn main() {
    let fake = FakeServer::start(|_| {
        FakeResponse::openai_text("ok").delay(Duration::from_millis(DELAY_MS))
    })
    .await;
    let mut providers = BTreeMap::new();
    providers.insert(
        "fake".to_string(),
        ProviderConfig {
            base_url: Some(format!("{}/v1", fake.url())),
            model: Some("bench".into()),
            ..ProviderConfig::default()
        },
    );
    let file = ProvidersFile {
        provider: ProviderSettings {
            default: Some("fake".into()),
            max_concurrency: CONCURRENCY,
            ..ProviderSettings::default()
        },
        providers,
    };
    let client =
        Client::new(Providers::from_env_and_config(&|_| None, file.clone())).expect("client");
    let queries: Vec<PendingQuery> = (0..BATCH)
        .map(|i| PendingQuery {
            id: QueryId::main(i),
            origin: QueryOrigin::Main,
            request: LlmQuery::new(format!("prompt {i}")).into(),
            digest: "0".repeat(32),
        })
        .collect();

    let ideal_ms = (BATCH.div_ceil(CONCURRENCY) as u64 * DELAY_MS) as f64;
    // Warm-up round opens the pooled connections.
    let _ = client.answer_batch(&queries, None).await;
    let mut best = f64::MAX;
    let mut total = 0.0;
    for round in 0..ROUNDS {
        let t = Instant::now();
        let answers = client.answer_batch(&queries, None).await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert!(answers.iter().all(|a| a.text.is_some()), "all answered");
        println!("round {round}: {ms:.1} ms");
        best = best.min(ms);
        total += ms;
    }
    let mean = total / ROUNDS as f64;
    // Each of the BATCH/CONCURRENCY waves pays the overhead once per slot, so overhead per call
    // = (wall - ideal) / waves.
    let waves = BATCH.div_ceil(CONCURRENCY) as f64;
    println!(
        "batch {BATCH} @ concurrency {CONCURRENCY}, fake delay {DELAY_MS} ms: ideal {ideal_ms:.0} ms, \
         mean {mean:.1} ms, best {best:.1} ms, overhead per call {:.2} ms (mean), {:.2} ms (best); \
         peak open at fake {}",
        (mean - ideal_ms) / waves,
        (best - ideal_ms) / waves,
        fake.peak_open()
    );

    // Phase 2: one call at a time to a fake that answers at once.
    let instant = FakeServer::start(|_| FakeResponse::openai_text("ok")).await;
    let mut file = file;
    if let Some(p) = file.providers.get_mut("fake") {
        p.base_url = Some(format!("{}/v1", instant.url()));
    }
    let client = Client::new(Providers::from_env_and_config(&|_| None, file)).expect("client");
    let one = &queries[..1];
    for _ in 0..50 {
        let _ = client.answer_batch(one, None).await;
    }
    let mut samples: Vec<f64> = (0..SINGLE_CALLS).map(|_| 0.0).collect::<Vec<_>>();
    for s in samples.iter_mut() {
        let t = Instant::now();
        let answers = client.answer_batch(one, None).await;
        *s = t.elapsed().as_secs_f64() * 1e6;
        assert!(answers[0].text.is_some(), "answered");
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    println!(
        "single call to an instant fake ({SINGLE_CALLS} sequential calls): median {:.0} µs, p90 {:.0} µs",
        samples[samples.len() / 2],
        samples[samples.len() * 9 / 10]
    );
}
