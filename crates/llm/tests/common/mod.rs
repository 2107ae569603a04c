#![allow(dead_code)]

use alc_core::{LlmQuery, PendingQuery, QueryId, QueryOrigin};
use alc_llm::{Client, ProviderConfig, ProviderKind, ProviderSettings, Providers, ProvidersFile};
use std::collections::BTreeMap;

/// An environment lookup over fixed pairs.
pub fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

/// Fast-retry settings for tests.
pub fn fast_settings() -> ProviderSettings {
    ProviderSettings {
        retry_base_ms: 10,
        retry_max_ms: 50,
        ..ProviderSettings::default()
    }
}

/// One provider named `name` of `kind` at `base_url`, key in `TEST_KEY`, model `m1`.
pub fn one_provider(
    name: &str,
    kind: ProviderKind,
    base_url: &str,
    settings: ProviderSettings,
) -> Providers {
    let mut providers = BTreeMap::new();
    providers.insert(
        name.to_string(),
        ProviderConfig {
            kind: Some(kind),
            base_url: Some(base_url.to_string()),
            api_key_env: Some("TEST_KEY".into()),
            model: Some("m1".into()),
            ..ProviderConfig::default()
        },
    );
    let file = ProvidersFile {
        provider: ProviderSettings {
            default: Some(name.to_string()),
            ..settings
        },
        providers,
    };
    Providers::from_env_and_config(&env(&[("TEST_KEY", "sk-secret-123")]), file)
}

pub fn openai_client(url: &str, settings: ProviderSettings) -> Client {
    Client::new(one_provider(
        "local",
        ProviderKind::OpenaiChat,
        &format!("{url}/v1"),
        settings,
    ))
    .unwrap()
}

pub fn anthropic_client(url: &str, settings: ProviderSettings) -> Client {
    Client::new(one_provider(
        "claude",
        ProviderKind::AnthropicMessages,
        url,
        settings,
    ))
    .unwrap()
}

pub fn pq(i: usize, q: LlmQuery) -> PendingQuery {
    PendingQuery {
        id: QueryId::main(i),
        origin: QueryOrigin::Main,
        request: q.into(),
        digest: "0".repeat(32),
    }
}
