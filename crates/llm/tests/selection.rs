//! Providers from environment and config, default provider, model selection (§7.1, §10 45–46).

mod common;

use alc_core::{HumanQuestion, LlmQuery, PendingQuery, QueryId, QueryOrigin};
use alc_llm::fake::{FakeResponse, FakeServer};
use alc_llm::{
    Client, ErrorClass, MaxTokensParam, ModelPolicy, ProviderKind, Providers, ProvidersFile, Route,
};
use common::*;

fn route(p: &str, m: &str) -> Route {
    Route {
        provider: p.into(),
        model: m.into(),
    }
}

fn file(toml_text: &str) -> ProvidersFile {
    toml::from_str(toml_text).unwrap()
}

#[test]
fn defaults_match_spec() {
    let f = file("");
    let s = &f.provider;
    assert_eq!(
        (
            s.max_concurrency,
            s.max_retries,
            s.connect_timeout_s,
            s.request_timeout_s
        ),
        (8, 3, 10, 300)
    );
    assert_eq!(
        (s.retry_base_ms, s.retry_max_ms, s.max_retry_after_s),
        (500, 30000, 120)
    );
    assert_eq!(s.model_policy, ModelPolicy::Script);
    assert!(f.providers.is_empty());
}

#[test]
fn full_config_table_parses_and_ignores_other_tables() {
    let f = file(
        r#"
[answerer]
default = "provider"
[provider]
default = "local"
max_concurrency = 3
model_policy = "force"
[providers.openai]
kind = "openai_chat"
base_url = "https://api.openai.com/v1"
api_key_env = "MY_OPENAI_KEY"
model = "gpt-4o-mini"
max_tokens_param = "max_completion_tokens"
max_concurrency = 4
model_map = { "gpt-4" = "gpt-4o-mini" }
prices = { "gpt-4o-mini" = { input = 0.15, output = 0.60 } }
[providers.local]
kind = "openai_chat"
base_url = "http://localhost:11434/v1"
model = "llama3.2"
[session]
idle_ttl_s = 10
"#,
    );
    let p = Providers::from_env_and_config(&env(&[("MY_OPENAI_KEY", "sk-x")]), f);
    assert_eq!(p.settings.max_concurrency, 3);
    assert_eq!(p.settings.model_policy, ModelPolicy::Force);
    assert_eq!(p.default_name(), Some("local"));
    let o = p.get("openai").unwrap();
    assert_eq!(o.api_key.as_ref().unwrap().expose(), "sk-x");
    assert_eq!(o.max_concurrency, Some(4));
    assert_eq!(o.max_tokens_param, MaxTokensParam::MaxCompletionTokens);
    let cost = o.cost_usd("gpt-4o-mini", 1_000_000, 1_000_000).unwrap();
    assert!((cost - 0.75).abs() < 1e-9);
    let l = p.get("local").unwrap();
    assert_eq!(l.max_tokens_param, MaxTokensParam::MaxTokens);
    assert!(l.api_key.is_none());
}

#[test]
fn implicit_providers_and_default_rule() {
    // nothing → no provider
    let p = Providers::from_env_and_config(&env(&[]), file(""));
    assert!(p.iter().next().is_none());
    let e = p.check_available().unwrap_err();
    assert_eq!(e.class, ErrorClass::Config);
    assert_eq!(e.code(), "provider_unavailable");

    // OPENAI_BASE_URL alone defines openai (keyless local server)
    let p = Providers::from_env_and_config(
        &env(&[("OPENAI_BASE_URL", "http://localhost:8080/v1/")]),
        file(""),
    );
    let o = p.get("openai").unwrap();
    assert_eq!(o.base_url, "http://localhost:8080/v1");
    assert_eq!(o.max_tokens_param, MaxTokensParam::MaxTokens);
    assert_eq!(p.default_name(), Some("openai"));

    // anthropic only
    let p = Providers::from_env_and_config(&env(&[("ANTHROPIC_API_KEY", "ak")]), file(""));
    let a = p.get("anthropic").unwrap();
    assert_eq!(a.kind, ProviderKind::AnthropicMessages);
    assert_eq!(a.base_url, "https://api.anthropic.com");
    assert_eq!(p.default_name(), Some("anthropic"));

    // both: openai wins; ALC_PROVIDER overrides; [provider] default in between
    let both = [("OPENAI_API_KEY", "ok"), ("ANTHROPIC_API_KEY", "ak")];
    let p = Providers::from_env_and_config(&env(&both), file(""));
    assert_eq!(p.default_name(), Some("openai"));
    assert_eq!(
        p.get("openai").unwrap().max_tokens_param,
        MaxTokensParam::MaxCompletionTokens
    );
    let p =
        Providers::from_env_and_config(&env(&both), file("[provider]\ndefault = \"anthropic\"\n"));
    assert_eq!(p.default_name(), Some("anthropic"));
    let mut with_env = both.to_vec();
    with_env.push(("ALC_PROVIDER", "openai"));
    let p = Providers::from_env_and_config(
        &env(&with_env),
        file("[provider]\ndefault = \"anthropic\"\n"),
    );
    assert_eq!(p.default_name(), Some("openai"));

    // ALC_PROVIDER naming an unknown provider → unavailable
    let p = Providers::from_env_and_config(&env(&[("ALC_PROVIDER", "nope")]), file(""));
    assert_eq!(
        p.check_available().unwrap_err().code(),
        "provider_unavailable"
    );
}

#[test]
fn base_url_env_overrides_only_named_providers() {
    let f = file(
        "[providers.openai]\nbase_url = \"https://a.example/v1\"\n[providers.other]\nbase_url = \"https://b.example/v1\"\n[providers.anthropic]\nbase_url = \"https://c.example\"\n",
    );
    let p = Providers::from_env_and_config(
        &env(&[
            ("OPENAI_BASE_URL", "http://o.local/v1"),
            ("ANTHROPIC_BASE_URL", "http://a.local"),
        ]),
        f,
    );
    assert_eq!(p.get("openai").unwrap().base_url, "http://o.local/v1");
    assert_eq!(p.get("other").unwrap().base_url, "https://b.example/v1");
    assert_eq!(p.get("anthropic").unwrap().base_url, "http://a.local");
    assert_eq!(
        p.get("anthropic").unwrap().kind,
        ProviderKind::AnthropicMessages
    );
}

#[test]
fn env_limits_and_warnings() {
    let p = Providers::from_env_and_config(
        &env(&[("ALC_MAX_CONCURRENCY", "3"), ("ALC_REQUEST_TIMEOUT", "42")]),
        file("[provider]\nmax_concurrency = 5\n"),
    );
    assert_eq!(p.settings.max_concurrency, 3);
    assert_eq!(p.settings.request_timeout_s, 42);
    assert!(p.warnings().is_empty());
    let p = Providers::from_env_and_config(
        &env(&[
            ("ALC_MAX_CONCURRENCY", "0"),
            ("ALC_REQUEST_TIMEOUT", "soon"),
        ]),
        file(""),
    );
    assert_eq!(p.settings.max_concurrency, 8);
    assert_eq!(p.settings.request_timeout_s, 300);
    assert_eq!(p.warnings().len(), 2);
}

fn two_providers(policy: &str, extra_env: &[(&str, &str)]) -> Providers {
    Providers::from_env_and_config(
        &env(extra_env),
        file(&format!(
            r#"
[provider]
default = "main"
model_policy = "{policy}"
[providers.main]
base_url = "http://main.invalid/v1"
model = "main-model"
model_map = {{ "gpt-4" = "gpt-4o-mini" }}
[providers.local]
base_url = "http://local.invalid/v1"
model = "llama3.2"
"#
        )),
    )
}

#[test]
fn model_selection_script_policy() {
    let p = two_providers("script", &[]);
    assert_eq!(p.route(None, None).unwrap(), route("main", "main-model"));
    // provider prefix only when it names a configured provider
    assert_eq!(
        p.route(Some("local:llama3.2:3b"), None).unwrap(),
        route("local", "llama3.2:3b")
    );
    assert_eq!(
        p.route(Some("llama3.2:3b"), None).unwrap(),
        route("main", "llama3.2:3b")
    );
    assert_eq!(
        p.route(Some("local:"), None).unwrap(),
        route("local", "llama3.2")
    );
    // model_map applies to script models
    assert_eq!(
        p.route(Some("gpt-4"), None).unwrap(),
        route("main", "gpt-4o-mini")
    );
    // script beats run; run beats provider model
    assert_eq!(
        p.route(Some("s"), Some("local:r")).unwrap(),
        route("main", "s")
    );
    assert_eq!(p.route(None, Some("local:r")).unwrap(), route("local", "r"));
}

#[test]
fn model_selection_force_policy_and_env_model() {
    let p = two_providers("force", &[("ALC_MODEL", "local:envm")]);
    assert_eq!(
        p.route(Some("script-model"), Some("runm")).unwrap(),
        route("main", "runm")
    );
    assert_eq!(
        p.route(Some("script-model"), None).unwrap(),
        route("local", "envm")
    );
    let p = two_providers("force", &[]);
    assert_eq!(
        p.route(Some("script-model"), None).unwrap(),
        route("main", "main-model")
    );
}

#[test]
fn no_model_anywhere_is_config_error() {
    let p = Providers::from_env_and_config(&env(&[("OPENAI_API_KEY", "k")]), file(""));
    let e = p.route(None, None).unwrap_err();
    assert_eq!(e.class, ErrorClass::Config);
    assert_eq!(e.code(), "provider_error");
    assert!(
        e.to_string()
            .starts_with("provider_error[config]: no model"),
        "{e}"
    );
    assert_eq!(
        p.route(Some("gpt-4o-mini"), None).unwrap(),
        route("openai", "gpt-4o-mini")
    );
}

#[tokio::test]
async fn selector_reaches_provider_with_model_over_http() {
    let main = FakeServer::start(|_| FakeResponse::openai_text("from main")).await;
    let local = FakeServer::start(|_| FakeResponse::openai_text("from local")).await;
    let f = file(&format!(
        "[provider]\ndefault = \"main\"\n[providers.main]\nbase_url = \"{}/v1\"\nmodel = \"mm\"\n[providers.local]\nbase_url = \"{}/v1\"\n",
        main.url(),
        local.url()
    ));
    let client = Client::new(Providers::from_env_and_config(&env(&[]), f)).unwrap();
    let mut q = LlmQuery::new("x");
    q.model = Some("local:llama3.2:3b".into());
    let answers = client
        .answer_batch(&[pq(0, q), pq(1, LlmQuery::new("y"))], None)
        .await;
    assert_eq!(answers[0].text.as_deref(), Some("from local"));
    assert_eq!(answers[0].meta.provider.as_deref(), Some("local"));
    assert_eq!(answers[0].meta.model.as_deref(), Some("llama3.2:3b"));
    assert_eq!(local.requests()[0].json()["model"], "llama3.2:3b");
    assert_eq!(answers[1].text.as_deref(), Some("from main"));
    assert_eq!(main.requests()[0].json()["model"], "mm");
}

#[tokio::test]
async fn nothing_configured_gives_clear_error() {
    let client = Client::new(Providers::from_env_and_config(&env(&[]), file(""))).unwrap();
    let answers = client
        .answer_batch(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    let e = answers[0].error.as_ref().unwrap();
    assert_eq!(e.code, "provider_unavailable");
    assert!(
        e.message.starts_with(
            "provider_error[config]: provider_unavailable: no LLM provider configured"
        ),
        "{}",
        e.message
    );
    assert_eq!(answers[0].meta.attempts, Some(0));
}

#[tokio::test]
async fn official_host_without_key_is_config_error() {
    let f = file("[providers.openai]\nmodel = \"gpt-4o-mini\"\n");
    let client = Client::new(Providers::from_env_and_config(&env(&[]), f)).unwrap();
    let answers = client
        .answer_batch(&[pq(0, LlmQuery::new("x"))], None)
        .await;
    let e = answers[0].error.as_ref().unwrap();
    assert_eq!(e.code, "provider_error");
    assert_eq!(
        e.message,
        "provider_error[config]: no API key for provider \"openai\": set OPENAI_API_KEY"
    );
}

#[tokio::test]
async fn human_questions_are_rejected() {
    let client = Client::new(two_providers("script", &[])).unwrap();
    let q = PendingQuery {
        id: QueryId::main(0),
        origin: QueryOrigin::Main,
        request: HumanQuestion::new("name?").into(),
        digest: "0".repeat(32),
    };
    let a = client.answer_batch(&[q], None).await;
    assert!(a[0].error.as_ref().unwrap().message.contains("human"));
}
