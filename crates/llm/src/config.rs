//! Provider configuration (§5.3 `[provider]` / `[providers.*]`), the implicit
//! environment providers and model selection (§7.1).

use crate::error::{ErrorClass, ProviderError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Wire protocol of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI Chat Completions and every compatible server (Ollama, llama.cpp, vLLM, gateways).
    OpenaiChat,
    /// Anthropic Messages.
    AnthropicMessages,
}

/// Name of the request field carrying `max_tokens` for `openai_chat` providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensParam {
    /// `max_completion_tokens` (default for `api.openai.com`).
    MaxCompletionTokens,
    /// `max_tokens` (default elsewhere).
    MaxTokens,
}

impl MaxTokensParam {
    /// The JSON field name.
    pub fn field(self) -> &'static str {
        match self {
            MaxTokensParam::MaxCompletionTokens => "max_completion_tokens",
            MaxTokensParam::MaxTokens => "max_tokens",
        }
    }
}

/// Whose model wins when a script passes `opts.model`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPolicy {
    /// `opts.model` from Lua wins (after `model_map`).
    #[default]
    Script,
    /// The run's model wins; `opts.model` is ignored.
    Force,
}

/// Price of a model in USD per million tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Price {
    /// USD per million prompt tokens.
    #[serde(default)]
    pub input: f64,
    /// USD per million completion tokens.
    #[serde(default)]
    pub output: f64,
}

/// One `[providers.<name>]` table as written in `config.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProviderConfig {
    /// Wire protocol; unset = `anthropic_messages` for a provider named `anthropic`,
    /// else `openai_chat`.
    pub kind: Option<ProviderKind>,
    /// API base URL; unset = the official URL of the kind.
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key (never the key itself).
    pub api_key_env: Option<String>,
    /// Default model of this provider.
    pub model: Option<String>,
    /// Max-tokens field for `openai_chat`; unset = by host (§7.3).
    pub max_tokens_param: Option<MaxTokensParam>,
    /// Optional per-provider concurrency cap beneath the global one.
    pub max_concurrency: Option<usize>,
    /// Renames of models requested by scripts.
    pub model_map: BTreeMap<String, String>,
    /// Prices per model (USD per million tokens).
    pub prices: BTreeMap<String, Price>,
}

fn d_max_concurrency() -> usize {
    8
}
fn d_max_retries() -> u32 {
    3
}
fn d_connect_timeout_s() -> u64 {
    10
}
fn d_request_timeout_s() -> u64 {
    300
}
fn d_retry_base_ms() -> u64 {
    500
}
fn d_retry_max_ms() -> u64 {
    30_000
}
fn d_max_retry_after_s() -> u64 {
    120
}

/// The `[provider]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderSettings {
    /// Default provider name.
    #[serde(default)]
    pub default: Option<String>,
    /// Process-wide limit of simultaneous provider requests (8).
    #[serde(default = "d_max_concurrency")]
    pub max_concurrency: usize,
    /// Further attempts after the first one (3).
    #[serde(default = "d_max_retries")]
    pub max_retries: u32,
    /// Connect timeout in seconds (10).
    #[serde(default = "d_connect_timeout_s")]
    pub connect_timeout_s: u64,
    /// Per-attempt request timeout in seconds (300).
    #[serde(default = "d_request_timeout_s")]
    pub request_timeout_s: u64,
    /// Base of the exponential backoff in ms (500).
    #[serde(default = "d_retry_base_ms")]
    pub retry_base_ms: u64,
    /// Cap of the exponential backoff in ms (30000).
    #[serde(default = "d_retry_max_ms")]
    pub retry_max_ms: u64,
    /// A server-requested wait above this fails the call at once as `rate_limited` (120).
    #[serde(default = "d_max_retry_after_s")]
    pub max_retry_after_s: u64,
    /// Whose model wins (`script`).
    #[serde(default)]
    pub model_policy: ModelPolicy,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            default: None,
            max_concurrency: d_max_concurrency(),
            max_retries: d_max_retries(),
            connect_timeout_s: d_connect_timeout_s(),
            request_timeout_s: d_request_timeout_s(),
            retry_base_ms: d_retry_base_ms(),
            retry_max_ms: d_retry_max_ms(),
            max_retry_after_s: d_max_retry_after_s(),
            model_policy: ModelPolicy::Script,
        }
    }
}

/// The provider-related part of `config.toml`: `[provider]` and `[providers.*]`.
/// Deserialising the whole file into it ignores every other table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProvidersFile {
    /// `[provider]`.
    pub provider: ProviderSettings,
    /// `[providers.<name>]`.
    pub providers: BTreeMap<String, ProviderConfig>,
}

/// An API key read from the environment. `Debug`/`Display` print `***`; not serialisable.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> ApiKey {
        ApiKey(key.into())
    }
    /// The secret itself (only for building request headers).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A fully resolved provider (configuration + environment).
#[derive(Debug, Clone)]
pub struct Provider {
    /// Provider name (`openai`, `anthropic`, `local`, ...).
    pub name: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL without trailing slash.
    pub base_url: String,
    /// Variable the key was read from.
    pub api_key_env: Option<String>,
    /// The key, when the variable is set and non-empty (masked in `Debug`).
    pub api_key: Option<ApiKey>,
    /// Default model.
    pub model: Option<String>,
    /// Resolved max-tokens field (`openai_chat`).
    pub max_tokens_param: MaxTokensParam,
    /// Per-provider concurrency cap.
    pub max_concurrency: Option<usize>,
    /// Model renames for script-requested models.
    pub model_map: BTreeMap<String, String>,
    /// Prices per model.
    pub prices: BTreeMap<String, Price>,
    /// `OpenAI-Organization` header (provider `openai` only, from `OPENAI_ORG_ID`).
    pub organization: Option<String>,
    /// `OpenAI-Project` header (provider `openai` only, from `OPENAI_PROJECT_ID`).
    pub project: Option<String>,
}

/// Default OpenAI base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Default Anthropic base URL.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";

fn host_of(url: &str) -> Option<String> {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
}

impl Provider {
    /// True when the API at this base URL needs a key (the official OpenAI and Anthropic hosts).
    pub fn needs_key(&self) -> bool {
        let host = host_of(&self.base_url).unwrap_or_default();
        host == "api.openai.com" || host == "api.anthropic.com"
    }

    /// Cost in USD of `prompt` + `completion` tokens for `model`, when a price is configured.
    pub fn cost_usd(&self, model: &str, prompt: u64, completion: u64) -> Option<f64> {
        let p = self.prices.get(model)?;
        Some((prompt as f64 * p.input + completion as f64 * p.output) / 1_000_000.0)
    }
}

/// Where a query goes: provider and model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Provider name.
    pub provider: String,
    /// Model sent to the API.
    pub model: String,
}

/// All providers of a process plus the `[provider]` settings, after applying the environment.
#[derive(Debug, Clone)]
pub struct Providers {
    /// Effective settings (`ALC_MAX_CONCURRENCY`, `ALC_REQUEST_TIMEOUT` applied).
    pub settings: ProviderSettings,
    providers: BTreeMap<String, Provider>,
    default: Option<String>,
    env_model: Option<String>,
    warnings: Vec<String>,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl Providers {
    /// Builds the provider set from the process environment and the configuration.
    pub fn from_process_env(file: ProvidersFile) -> Providers {
        Providers::from_env_and_config(&|k: &str| std::env::var(k).ok(), file)
    }

    /// Builds the provider set from an environment lookup and the configuration.
    ///
    /// Implicit providers (§7.1): `openai` when `OPENAI_API_KEY` or `OPENAI_BASE_URL` is set,
    /// `anthropic` when `ANTHROPIC_API_KEY` is set, unless configured explicitly.
    /// `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL` override the `base_url` of the providers named
    /// `openai` / `anthropic` only. Default provider: `ALC_PROVIDER` > `[provider] default` >
    /// `openai` > `anthropic` > none. `ALC_MODEL` becomes the lowest-priority run model
    /// selector. Invalid environment values are ignored and reported in [`Providers::warnings`].
    pub fn from_env_and_config(env: &dyn Fn(&str) -> Option<String>, file: ProvidersFile) -> Self {
        let get = |k: &str| non_empty(env(k));
        let mut warnings = Vec::new();
        let mut settings = file.provider;
        if let Some(v) = get("ALC_MAX_CONCURRENCY") {
            match v.trim().parse::<usize>() {
                Ok(n) if n >= 1 => settings.max_concurrency = n,
                _ => warnings.push(format!(
                    "ALC_MAX_CONCURRENCY={v:?} ignored: not a positive integer"
                )),
            }
        }
        if let Some(v) = get("ALC_REQUEST_TIMEOUT") {
            match v.trim().parse::<u64>() {
                Ok(n) if n >= 1 => settings.request_timeout_s = n,
                _ => warnings.push(format!(
                    "ALC_REQUEST_TIMEOUT={v:?} ignored: not a positive integer"
                )),
            }
        }
        if settings.max_concurrency == 0 {
            warnings.push("provider.max_concurrency = 0 treated as 1".into());
            settings.max_concurrency = 1;
        }

        let mut configs = file.providers;
        if !configs.contains_key("openai")
            && (get("OPENAI_API_KEY").is_some() || get("OPENAI_BASE_URL").is_some())
        {
            configs.insert("openai".into(), ProviderConfig::default());
        }
        if !configs.contains_key("anthropic") && get("ANTHROPIC_API_KEY").is_some() {
            configs.insert("anthropic".into(), ProviderConfig::default());
        }

        let mut providers = BTreeMap::new();
        for (name, c) in configs {
            let kind = c.kind.unwrap_or(if name == "anthropic" {
                ProviderKind::AnthropicMessages
            } else {
                ProviderKind::OpenaiChat
            });
            let env_base = match name.as_str() {
                "openai" => get("OPENAI_BASE_URL"),
                "anthropic" => get("ANTHROPIC_BASE_URL"),
                _ => None,
            };
            let base_url = env_base
                .or(c.base_url.clone())
                .unwrap_or_else(|| match kind {
                    ProviderKind::OpenaiChat => OPENAI_BASE_URL.into(),
                    ProviderKind::AnthropicMessages => ANTHROPIC_BASE_URL.into(),
                })
                .trim_end_matches('/')
                .to_string();
            let api_key_env = c
                .api_key_env
                .clone()
                .or_else(|| match (name.as_str(), kind) {
                    ("openai", _) => Some("OPENAI_API_KEY".into()),
                    (_, ProviderKind::AnthropicMessages) => Some("ANTHROPIC_API_KEY".into()),
                    _ => None,
                });
            let api_key = api_key_env.as_deref().and_then(get).map(ApiKey::new);
            let max_tokens_param = c.max_tokens_param.unwrap_or_else(|| {
                if host_of(&base_url).as_deref() == Some("api.openai.com") {
                    MaxTokensParam::MaxCompletionTokens
                } else {
                    MaxTokensParam::MaxTokens
                }
            });
            let (organization, project) = if name == "openai" {
                (get("OPENAI_ORG_ID"), get("OPENAI_PROJECT_ID"))
            } else {
                (None, None)
            };
            if c.max_concurrency == Some(0) {
                warnings.push(format!("providers.{name}.max_concurrency = 0 treated as 1"));
            }
            providers.insert(
                name.clone(),
                Provider {
                    name,
                    kind,
                    base_url,
                    api_key_env,
                    api_key,
                    model: non_empty(c.model),
                    max_tokens_param,
                    max_concurrency: c.max_concurrency.map(|n| n.max(1)),
                    model_map: c.model_map,
                    prices: c.prices,
                    organization,
                    project,
                },
            );
        }

        let default = get("ALC_PROVIDER")
            .or(settings.default.clone())
            .or_else(|| providers.contains_key("openai").then(|| "openai".into()))
            .or_else(|| {
                providers
                    .contains_key("anthropic")
                    .then(|| "anthropic".into())
            });
        Providers {
            settings,
            providers,
            default,
            env_model: get("ALC_MODEL"),
            warnings,
        }
    }

    /// Warnings about ignored environment values or configuration.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A provider by name.
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    /// All providers, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.providers.values()
    }

    /// Name of the default provider (may name an unconfigured provider, see [`Self::check_available`]).
    pub fn default_name(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// `ALC_MODEL`, if set.
    pub fn env_model(&self) -> Option<&str> {
        self.env_model.as_deref()
    }

    /// The default provider, or a `config` error with code `provider_unavailable`.
    pub fn check_available(&self) -> Result<&Provider, ProviderError> {
        match self.default.as_deref() {
            None => Err(ProviderError::unavailable(
                "no LLM provider configured: set OPENAI_API_KEY, OPENAI_BASE_URL or ANTHROPIC_API_KEY, or add a [providers.<name>] table to config.toml".into(),
            )),
            Some(name) => self.providers.get(name).ok_or_else(|| {
                ProviderError::unavailable(format!(
                    "default provider {name:?} is not configured (known: {})",
                    self.known()
                ))
            }),
        }
    }

    fn known(&self) -> String {
        if self.providers.is_empty() {
            "none".into()
        } else {
            self.providers
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// Splits a model selector: `<provider>:<model>` when the part before the first `:` names a
    /// configured provider, else `(None, selector)` (so `llama3.2:3b` stays intact).
    pub fn parse_selector<'a>(&self, selector: &'a str) -> (Option<&'a str>, &'a str) {
        if let Some((p, m)) = selector.split_once(':') {
            if self.providers.contains_key(p) {
                return (Some(p), m);
            }
        }
        (None, selector)
    }

    /// The effective provider and model of a query (§7.1).
    ///
    /// `script_model` is `opts.model` from Lua; `run_model` the run's model argument (or
    /// `[run] model`). With `model_policy = "script"` the script's model wins (renamed through
    /// the provider's `model_map`); with `"force"` it is ignored. Then `run_model`, `ALC_MODEL`
    /// and the provider's own `model`. No model anywhere is a `config` error.
    pub fn route(
        &self,
        script_model: Option<&str>,
        run_model: Option<&str>,
    ) -> Result<Route, ProviderError> {
        let script_model = match self.settings.model_policy {
            ModelPolicy::Script => script_model.filter(|s| !s.trim().is_empty()),
            ModelPolicy::Force => None,
        };
        let (selector, from_script) = match script_model {
            Some(s) => (Some(s), true),
            None => (
                run_model
                    .filter(|s| !s.trim().is_empty())
                    .or(self.env_model.as_deref()),
                false,
            ),
        };
        let (prov_name, model) = match selector {
            Some(sel) => {
                let (p, m) = self.parse_selector(sel);
                (p, Some(m).filter(|m| !m.is_empty()))
            }
            None => (None, None),
        };
        let provider = match prov_name {
            Some(p) => &self.providers[p],
            None => self.check_available()?,
        };
        let model = match model {
            Some(m) if from_script => provider.model_map.get(m).cloned().unwrap_or_else(|| m.to_string()),
            Some(m) => m.to_string(),
            None => provider.model.clone().ok_or_else(|| {
                ProviderError::new(
                    ErrorClass::Config,
                    None,
                    format!(
                        "no model for provider {:?}: set `model` in [providers.{}], pass a model, or set ALC_MODEL",
                        provider.name, provider.name
                    ),
                )
            })?,
        };
        Ok(Route {
            provider: provider.name.clone(),
            model,
        })
    }
}
