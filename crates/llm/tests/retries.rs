//! Error classes, retries, timeouts and concurrency limits (§7.6–§7.7, §10 items 40–43).

mod common;

use alc_core::LlmQuery;
use alc_llm::fake::{FakeResponse, FakeServer};
use alc_llm::{ErrorClass, ProviderSettings, RetryEvent};
use common::*;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn failure(items: &[alc_llm::BatchItem]) -> &alc_llm::CallFailure {
    items[0].outcome.as_ref().unwrap_err()
}

#[tokio::test]
async fn retry_after_429_then_success() {
    let fake = FakeServer::start(|r| {
        if r.index == 0 {
            FakeResponse::json(
                429,
                json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
            )
            .header("retry-after", "1")
        } else {
            FakeResponse::openai_text("ok")
        }
    })
    .await;
    let events: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
    let ev = events.clone();
    let client = openai_client(&fake.url(), fast_settings()).with_retry_hook(Arc::new(
        move |e: &RetryEvent| ev.lock().unwrap().push(e.clone()),
    ));
    let t = Instant::now();
    let a = &client
        .answer_batch(&[pq(0, LlmQuery::new("x"))], None)
        .await[0];
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(a.text.as_deref(), Some("ok"));
    assert_eq!(a.meta.attempts, Some(2));
    assert!(a.meta.latency_ms.unwrap() >= 1000);
    let evs = events.lock().unwrap();
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].error.class, ErrorClass::RateLimited);
    assert_eq!(
        evs[0].progress_message(),
        "q-0 retry 1 after 429, waiting 1 s"
    );
}

#[tokio::test]
async fn retry_after_ms_is_a_minimum_wait() {
    let fake = FakeServer::start(|r| {
        if r.index == 0 {
            FakeResponse::raw(503, "busy").header("retry-after-ms", "400")
        } else {
            FakeResponse::openai_text("ok")
        }
    })
    .await;
    let client = openai_client(&fake.url(), fast_settings());
    let t = Instant::now();
    let a = &client
        .answer_batch(&[pq(0, LlmQuery::new("x"))], None)
        .await[0];
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert_eq!(a.meta.attempts, Some(2));
}

#[tokio::test]
async fn retry_after_above_cap_fails_at_once() {
    let fake = FakeServer::start(|_| {
        FakeResponse::json(
            429,
            json!({"error": {"message": "slow down", "code": "rate_limit_exceeded"}}),
        )
        .header("retry-after", "600")
    })
    .await;
    let client = openai_client(&fake.url(), fast_settings());
    let t = Instant::now();
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    assert!(t.elapsed() < Duration::from_secs(2));
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::RateLimited);
    assert_eq!(f.attempts, 1);
    assert!(
        f.error.message.contains("above max_retry_after_s = 120"),
        "{}",
        f.error
    );
    assert_eq!(fake.count(), 1);
}

fn overloaded() -> FakeResponse {
    FakeResponse::json(
        529,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    )
}

#[tokio::test]
async fn overloaded_three_times_then_success() {
    let fake = FakeServer::start(|r| {
        if r.index < 3 {
            overloaded()
        } else {
            FakeResponse::anthropic_text("done")
        }
    })
    .await;
    let client = anthropic_client(&fake.url(), fast_settings());
    let a = &client
        .answer_batch(&[pq(0, LlmQuery::new("x"))], None)
        .await[0];
    assert_eq!(a.text.as_deref(), Some("done"));
    assert_eq!(a.meta.attempts, Some(4));
}

#[tokio::test]
async fn overloaded_four_times_fails() {
    let fake = FakeServer::start(|_| overloaded()).await;
    let client = anthropic_client(&fake.url(), fast_settings());
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::Overloaded);
    assert_eq!(f.attempts, 4);
    assert_eq!(fake.count(), 4);
    let e = items[0].answer.error.as_ref().unwrap();
    assert_eq!(e.code, "provider_error");
    assert_eq!(
        e.message,
        "provider_error[overloaded]: 529 overloaded_error: Overloaded"
    );
    assert_eq!(items[0].answer.meta.attempts, Some(4));
    assert_eq!(items[0].answer.meta.provider.as_deref(), Some("claude"));
}

#[tokio::test]
async fn server_error_then_success() {
    let fake = FakeServer::start(|r| {
        if r.index == 0 {
            FakeResponse::raw(500, "Internal Server Error")
        } else {
            FakeResponse::openai_text("fine")
        }
    })
    .await;
    let client = openai_client(&fake.url(), fast_settings());
    let a = &client
        .answer_batch(&[pq(0, LlmQuery::new("x"))], None)
        .await[0];
    assert_eq!(a.text.as_deref(), Some("fine"));
    assert_eq!(a.meta.attempts, Some(2));
}

#[tokio::test]
async fn auth_is_not_retried() {
    let fake = FakeServer::start(|_| {
        FakeResponse::json(
            401,
            json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        )
    })
    .await;
    let client = openai_client(&fake.url(), fast_settings());
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::Auth);
    assert_eq!(f.error.status, Some(401));
    assert_eq!(f.attempts, 1);
    assert_eq!(fake.count(), 1);
    assert!(items[0]
        .answer
        .error
        .as_ref()
        .unwrap()
        .message
        .starts_with("provider_error[auth]: 401 "));
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let fake = FakeServer::start(|_| {
        FakeResponse::json(
            429,
            json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
                             "type": "insufficient_quota", "code": "insufficient_quota"}}),
        )
    })
    .await;
    let client = openai_client(&fake.url(), fast_settings());
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::Quota);
    assert_eq!(f.attempts, 1);
    assert_eq!(fake.count(), 1);
}

#[tokio::test]
async fn bad_request_classes() {
    let fake = FakeServer::start(|r| {
        let status = match r.json()["messages"][0]["content"].as_str() {
            Some("404") => 404,
            Some("422") => 422,
            _ => 400,
        };
        FakeResponse::json(status, json!({"error": {"message": "nope"}}))
    })
    .await;
    let client = openai_client(&fake.url(), fast_settings());
    let items = client
        .answer_batch_detailed(
            &[
                pq(0, LlmQuery::new("400")),
                pq(1, LlmQuery::new("404")),
                pq(2, LlmQuery::new("422")),
            ],
            None,
        )
        .await;
    for i in &items {
        let f = i.outcome.as_ref().unwrap_err();
        assert_eq!(f.error.class, ErrorClass::BadRequest);
        assert_eq!(f.attempts, 1);
    }
    assert_eq!(fake.count(), 3);
}

#[tokio::test]
async fn malformed_body_is_invalid_response() {
    let fake = FakeServer::start(|_| FakeResponse::raw(200, "{not json")).await;
    let client = openai_client(&fake.url(), fast_settings());
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::InvalidResponse);
    assert_eq!(f.attempts, 1);
}

#[tokio::test]
async fn slow_response_times_out() {
    let fake =
        FakeServer::start(|_| FakeResponse::openai_text("late").delay(Duration::from_secs(3)))
            .await;
    let settings = ProviderSettings {
        max_retries: 1,
        ..fast_settings()
    };
    let client =
        openai_client(&fake.url(), settings).with_request_timeout(Duration::from_millis(300));
    let t = Instant::now();
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::Timeout, "{}", f.error);
    assert_eq!(f.attempts, 2, "timeouts are retried");
}

#[tokio::test]
async fn connection_refused_is_network() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let settings = ProviderSettings {
        max_retries: 1,
        ..fast_settings()
    };
    let client = openai_client(&format!("http://127.0.0.1:{port}"), settings);
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::Network, "{}", f.error);
    assert_eq!(f.attempts, 2);
    assert!(items[0]
        .answer
        .error
        .as_ref()
        .unwrap()
        .message
        .starts_with("provider_error[network]: "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_respects_global_limit_and_order() {
    let fake = FakeServer::start(|r| {
        let p = r.json()["messages"][0]["content"]
            .as_str()
            .unwrap()
            .to_string();
        FakeResponse::openai_text(&format!("echo {p}")).delay(Duration::from_millis(50))
    })
    .await;
    let settings = ProviderSettings {
        max_concurrency: 4,
        ..fast_settings()
    };
    let client = openai_client(&fake.url(), settings);
    let qs: Vec<_> = (0..16)
        .map(|i| pq(i, LlmQuery::new(format!("p{i}"))))
        .collect();
    let t = Instant::now();
    let answers = client.answer_batch(&qs, None).await;
    let el = t.elapsed();
    assert_eq!(fake.count(), 16);
    assert_eq!(fake.peak_open(), 4, "peak open requests");
    assert!(el >= Duration::from_millis(200), "{el:?}");
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.query_id.as_ref().unwrap().as_str(), format!("q-{i}"));
        assert_eq!(a.text.as_deref(), Some(format!("echo p{i}").as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_provider_cap_applies_beneath_global() {
    let fake =
        FakeServer::start(|_| FakeResponse::openai_text("x").delay(Duration::from_millis(30)))
            .await;
    let file: alc_llm::ProvidersFile = toml::from_str(&format!(
        "[provider]\ndefault = \"local\"\nmax_concurrency = 8\n[providers.local]\nbase_url = \"{}/v1\"\nmodel = \"m\"\nmax_concurrency = 2\n",
        fake.url()
    ))
    .unwrap();
    let client =
        alc_llm::Client::new(alc_llm::Providers::from_env_and_config(&env(&[]), file)).unwrap();
    let qs: Vec<_> = (0..10).map(|i| pq(i, LlmQuery::new("x"))).collect();
    let answers = client.answer_batch(&qs, None).await;
    assert!(answers.iter().all(|a| a.text.is_some()));
    assert_eq!(fake.peak_open(), 2);
}

#[tokio::test]
async fn tls_handshake_failure_is_network_not_panic() {
    // https against a plain-text peer: exercises the rustls/ring setup offline.
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let settings = ProviderSettings {
        max_retries: 0,
        ..fast_settings()
    };
    let client = openai_client(&format!("https://{addr}"), settings);
    let items = client
        .answer_batch_detailed(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    server.abort();
    let f = failure(&items);
    assert_eq!(f.error.class, ErrorClass::Network, "{}", f.error);
}
