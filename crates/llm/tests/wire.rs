//! Request/response shape for both APIs against a loopback fake (§7.2–§7.5, §10 items 38–39).

mod common;

use alc_core::{LlmQuery, TokenSource};
use alc_llm::adapter::build_request;
use alc_llm::fake::{FakeResponse, FakeServer};
use alc_llm::{ErrorClass, ProviderKind, ProviderSettings};
use common::*;
use serde_json::json;

#[tokio::test]
async fn openai_request_headers_body_and_usage() {
    let fake = FakeServer::start(|_| FakeResponse::openai_text("hello")).await;
    let client = openai_client(&fake.url(), ProviderSettings::default());
    let mut q = LlmQuery::new("What is 2+2?");
    q.system = Some("Be terse.".into());
    q.grounded = true;
    q.role = Some("grader".into());
    let answers = client.answer_batch(&[pq(0, q.clone())], None).await;
    let a = &answers[0];
    assert_eq!(a.text.as_deref(), Some("hello"));
    assert_eq!(a.query_id.as_ref().unwrap().as_str(), "q-0");
    let u = a.usage.as_ref().unwrap();
    assert_eq!(u.source, TokenSource::Definite);
    assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(10), Some(5)));
    assert_eq!(a.meta.answerer.as_deref(), Some("provider"));
    assert_eq!(a.meta.provider.as_deref(), Some("local"));
    assert_eq!(a.meta.model.as_deref(), Some("m1"));
    assert_eq!(a.meta.stop_reason.as_deref(), Some("stop"));
    assert_eq!(a.meta.attempts, Some(1));
    assert!(a.meta.latency_ms.is_some());

    let r = &fake.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-secret-123"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(r.header("x-api-key"), None);
    let b = r.json();
    assert_eq!(
        b,
        json!({
            "model": "m1",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "What is 2+2?"}
            ],
            "max_tokens": 1024,
            "stream": false
        })
    );

    // temperature only when set
    q.temperature = Some(0.7);
    q.system = None;
    client.answer_batch(&[pq(0, q)], None).await;
    let b = fake.requests()[1].json();
    assert_eq!(b["temperature"], json!(0.7));
    assert_eq!(
        b["messages"],
        json!([{"role": "user", "content": "What is 2+2?"}])
    );
}

#[tokio::test]
async fn openai_without_key_sends_no_authorization() {
    let fake = FakeServer::start(|_| FakeResponse::openai_text("ok")).await;
    let file: alc_llm::ProvidersFile = toml::from_str(&format!(
        "[provider]\ndefault = \"local\"\n[providers.local]\nkind = \"openai_chat\"\nbase_url = \"{}/v1\"\nmodel = \"llama3.2\"\n",
        fake.url()
    ))
    .unwrap();
    let providers = alc_llm::Providers::from_env_and_config(&env(&[]), file);
    let client = alc_llm::Client::new(providers).unwrap();
    let a = client
        .answer_batch(&[pq(0, LlmQuery::new("hi"))], None)
        .await;
    assert_eq!(a[0].text.as_deref(), Some("ok"));
    assert_eq!(fake.requests()[0].header("authorization"), None);
}

#[test]
fn max_tokens_param_by_host_and_override() {
    let p = one_provider(
        "openai",
        ProviderKind::OpenaiChat,
        "https://api.openai.com/v1/",
        ProviderSettings::default(),
    );
    let prov = p.get("openai").unwrap();
    assert_eq!(prov.base_url, "https://api.openai.com/v1");
    let w = build_request(prov, "gpt-4o-mini", &LlmQuery::new("x"));
    assert_eq!(w.url, "https://api.openai.com/v1/chat/completions");
    assert_eq!(w.body["max_completion_tokens"], json!(1024));
    assert!(w.body.get("max_tokens").is_none());

    let file: alc_llm::ProvidersFile = toml::from_str(
        "[providers.gw]\nbase_url = \"https://api.openai.com/v1\"\nmax_tokens_param = \"max_tokens\"\n",
    )
    .unwrap();
    let p = alc_llm::Providers::from_env_and_config(&env(&[]), file);
    let w = build_request(p.get("gw").unwrap(), "m", &LlmQuery::new("x"));
    assert_eq!(w.body["max_tokens"], json!(1024));
    assert!(w.body.get("max_completion_tokens").is_none());
}

#[tokio::test]
async fn openai_usage_details_parts_and_length() {
    let fake = FakeServer::start(|_| {
        FakeResponse::json(
            200,
            json!({
                "choices": [{"message": {"role": "assistant", "content": [
                    {"type": "text", "text": "Hel"}, {"type": "image_url", "image_url": {}},
                    {"type": "text", "text": "lo"}]}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50,
                          "prompt_tokens_details": {"cached_tokens": 64},
                          "completion_tokens_details": {"reasoning_tokens": 30}}
            }),
        )
    })
    .await;
    let client = openai_client(&fake.url(), ProviderSettings::default());
    let a = &client
        .answer_batch(&[pq(0, LlmQuery::new("p"))], None)
        .await[0];
    assert_eq!(a.text.as_deref(), Some("Hello"));
    assert_eq!(a.meta.stop_reason.as_deref(), Some("max_tokens"));
    let u = a.usage.as_ref().unwrap();
    assert_eq!(u.prompt_tokens, Some(100));
    assert_eq!(u.completion_tokens, Some(50));
    assert_eq!(u.cached_tokens, Some(64));
    assert_eq!(u.reasoning_tokens, Some(30));
    assert_eq!(u.source, TokenSource::Definite);
}

#[tokio::test]
async fn missing_usage_is_estimated() {
    let fake = FakeServer::start(|_| {
        FakeResponse::json(
            200,
            json!({"choices": [{"message": {"content": "abcdefgh"}, "finish_reason": "stop"}]}),
        )
    })
    .await;
    let client = openai_client(&fake.url(), ProviderSettings::default());
    let a = &client
        .answer_batch(&[pq(0, LlmQuery::new("12345678"))], None)
        .await[0];
    let u = a.usage.as_ref().unwrap();
    assert_eq!(u.source, TokenSource::Estimated);
    assert_eq!((u.prompt_tokens, u.completion_tokens), (Some(2), Some(2)));
}

#[tokio::test]
async fn anthropic_request_headers_body_and_cache_usage() {
    let fake = FakeServer::start(|_| {
        FakeResponse::json(
            200,
            json!({
                "type": "message",
                "content": [{"type": "thinking", "thinking": "hmm"}, {"type": "text", "text": "Hi "},
                            {"type": "tool_use", "id": "t"}, {"type": "text", "text": "there"}],
                "stop_reason": "end_turn",
                "usage": {"input_tokens": 10, "output_tokens": 5,
                          "cache_creation_input_tokens": 20, "cache_read_input_tokens": 30}
            }),
        )
    })
    .await;
    let client = anthropic_client(&fake.url(), ProviderSettings::default());
    let mut q = LlmQuery::new("Question");
    q.system = Some("Sys".into());
    q.temperature = Some(1.5);
    q.max_tokens = 77;
    let items = client.answer_batch_detailed(&[pq(0, q)], None).await;
    let a = &items[0].answer;
    assert_eq!(a.text.as_deref(), Some("Hi there"));
    assert_eq!(a.meta.stop_reason.as_deref(), Some("end_turn"));
    let u = a.usage.as_ref().unwrap();
    assert_eq!(u.prompt_tokens, Some(60));
    assert_eq!(u.completion_tokens, Some(5));
    assert_eq!(u.cached_tokens, Some(30));
    assert_eq!(u.reasoning_tokens, Some(0));
    assert_eq!(u.source, TokenSource::Definite);
    assert!(items[0].outcome.as_ref().unwrap().temperature_clamped);

    let r = &fake.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some("sk-secret-123"));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("authorization"), None);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(
        r.json(),
        json!({
            "model": "m1",
            "max_tokens": 77,
            "system": "Sys",
            "messages": [{"role": "user", "content": "Question"}],
            "temperature": 1.0
        })
    );

    // no system, no temperature → both omitted
    client
        .answer_batch(&[pq(0, LlmQuery::new("Q2"))], None)
        .await;
    let b = fake.requests()[1].json();
    assert!(b.get("system").is_none());
    assert!(b.get("temperature").is_none());
}

#[tokio::test]
async fn refusals() {
    let fake = FakeServer::start(|r| {
        let p = r.json()["messages"][0]["content"].as_str().unwrap_or("").to_string();
        match p.as_str() {
            "refuse" => FakeResponse::json(
                200,
                json!({"choices": [{"message": {"content": null, "refusal": "I can't help"}, "finish_reason": "stop"}]}),
            ),
            "filter" => FakeResponse::json(
                200,
                json!({"choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}]}),
            ),
            _ => FakeResponse::json(200, json!({"choices": [{"message": {}, "finish_reason": "stop"}]})),
        }
    })
    .await;
    let client = openai_client(&fake.url(), ProviderSettings::default());
    let out = client
        .answer_batch_detailed(
            &[
                pq(0, LlmQuery::new("refuse")),
                pq(1, LlmQuery::new("filter")),
                pq(2, LlmQuery::new("notext")),
            ],
            None,
        )
        .await;
    let classes: Vec<_> = out
        .iter()
        .map(|i| i.outcome.as_ref().unwrap_err().error.class)
        .collect();
    assert_eq!(
        classes,
        [
            ErrorClass::Refusal,
            ErrorClass::Refusal,
            ErrorClass::InvalidResponse
        ]
    );
    let e = out[0].answer.error.as_ref().unwrap();
    assert_eq!(e.code, "provider_error");
    assert_eq!(
        e.message,
        "provider_error[refusal]: 200 refusal: I can't help"
    );
    assert_eq!(fake.count(), 3, "refusals are not retried");

    let fake = FakeServer::start(|_| {
        FakeResponse::json(200, json!({"content": [], "stop_reason": "refusal", "usage": {"input_tokens": 1, "output_tokens": 0}}))
    })
    .await;
    let client = anthropic_client(&fake.url(), ProviderSettings::default());
    let a = &client
        .answer_batch(&[pq(0, LlmQuery::new("x"))], None)
        .await[0];
    assert!(a
        .error
        .as_ref()
        .unwrap()
        .message
        .starts_with("provider_error[refusal]"));
}

#[test]
fn api_key_never_in_debug_or_serialisation() {
    let p = one_provider(
        "local",
        ProviderKind::OpenaiChat,
        "http://127.0.0.1:1/v1",
        ProviderSettings::default(),
    );
    let dbg = format!("{p:?}");
    assert!(!dbg.contains("sk-secret-123"), "{dbg}");
    assert!(dbg.contains("***"));
    let client = alc_llm::Client::new(p).unwrap();
    assert!(!format!("{client:?}").contains("sk-secret-123"));
    assert_eq!(alc_llm::ApiKey::new("k").to_string(), "***");
}
