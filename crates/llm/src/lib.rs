//! LLM provider adapters for the algocline engine (spec `interfaces.md` §7).
//!
//! * [`Providers`]: `[provider]` / `[providers.*]` configuration, the implicit `openai` /
//!   `anthropic` providers from environment variables, the default-provider rule and model
//!   selection (`<provider>:<model>` selectors, `model_policy`).
//! * [`adapter`]: request and response mapping for OpenAI Chat Completions and Anthropic
//!   Messages, usage normalisation and HTTP error classification.
//! * [`Client`]: the `provider` answerer — one HTTP client, a process-wide semaphore plus
//!   per-provider caps, retries with full jitter honouring `Retry-After`, and
//!   [`Client::answer_batch`] which turns pending queries into [`alc_core::Answer`]s.
//! * [`fake`]: a loopback HTTP/1.1 fake provider for tests and benchmarks.
//!
//! API keys are read from the environment only; [`ApiKey`] masks them in `Debug`/`Display`
//! and cannot be serialised.

#![warn(missing_docs)]

pub mod adapter;
mod client;
mod config;
mod error;
pub mod fake;

pub use client::{BatchItem, CallFailure, Client, Completion, RetryEvent, RetryHook, ANSWERER};
pub use config::{
    ApiKey, MaxTokensParam, ModelPolicy, Price, Provider, ProviderConfig, ProviderKind,
    ProviderSettings, Providers, ProvidersFile, Route, ANTHROPIC_BASE_URL, OPENAI_BASE_URL,
};
pub use error::{ErrorClass, ProviderError};
