//! The provider client: one HTTP client, concurrency limits, retries, and the answerer API.

use crate::adapter::{build_request, classify_http_error, estimate_usage, parse_response};
use crate::config::{Provider, Providers, Route};
use crate::error::{ErrorClass, ProviderError};
use alc_core::{Answer, AnswerMeta, LlmQuery, PendingQuery, QueryId, QueryRequest, TokenUsage};
use rand::Rng;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// Answerer name put in `meta.answerer`.
pub const ANSWERER: &str = "provider";

/// A retry about to happen, passed to the retry hook.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryEvent {
    /// The query being retried, when known.
    pub query_id: Option<QueryId>,
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// 1-based number of the retry about to be made (attempt `retry + 1`).
    pub retry: u32,
    /// The error that caused the retry.
    pub error: ProviderError,
    /// Time waited before the retry.
    pub wait: Duration,
}

impl RetryEvent {
    /// A progress line such as `q-0 retry 2 after 429, waiting 4 s`.
    pub fn progress_message(&self) -> String {
        let who = self
            .query_id
            .as_ref()
            .map(|q| q.to_string())
            .unwrap_or_else(|| "llm".into());
        let why = match self.error.status {
            Some(s) => s.to_string(),
            None => self.error.class.as_str().to_string(),
        };
        let ms = self.wait.as_millis();
        let wait = if ms >= 1000 {
            format!("{} s", (ms as f64 / 1000.0).round() as u64)
        } else {
            format!("{ms} ms")
        };
        format!("{who} retry {} after {why}, waiting {wait}", self.retry)
    }
}

/// Callback invoked before each retry wait.
pub type RetryHook = Arc<dyn Fn(&RetryEvent) + Send + Sync>;

/// A successful provider call.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// Completion text.
    pub text: String,
    /// Usage: `definite` from the API, else `estimated`.
    pub usage: TokenUsage,
    /// Provider name.
    pub provider: String,
    /// Model sent.
    pub model: String,
    /// Stop reason as recorded (`max_tokens` when truncated).
    pub stop_reason: Option<String>,
    /// Wall time including retry waits, in ms.
    pub latency_ms: u64,
    /// Number of HTTP attempts.
    pub attempts: u32,
    /// True when the temperature was clamped to [0, 1] (Anthropic).
    pub temperature_clamped: bool,
    /// Cost when the provider has a price for the model.
    pub cost_usd: Option<f64>,
}

/// A failed provider call.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFailure {
    /// The final error.
    pub error: ProviderError,
    /// Where the call went, when routing succeeded.
    pub route: Option<Route>,
    /// Wall time including retry waits, in ms.
    pub latency_ms: u64,
    /// Number of HTTP attempts (0 for configuration errors).
    pub attempts: u32,
}

/// One item of [`Client::answer_batch_detailed`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// The answer for the engine.
    pub answer: Answer,
    /// The raw outcome.
    pub outcome: Result<Completion, CallFailure>,
}

struct Inner {
    http: reqwest::Client,
    providers: Providers,
    global: Arc<Semaphore>,
    per_provider: HashMap<String, Arc<Semaphore>>,
    request_timeout: Duration,
    hook: Option<RetryHook>,
}

/// The provider answerer. Cheap to clone; create one per process so its semaphore is the
/// process-wide limit of simultaneous provider requests (§7.7).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("providers", &self.inner.providers)
            .finish_non_exhaustive()
    }
}

fn install_crypto_provider() {
    // Ignore the error: another component may have installed a provider already.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

fn transport_error(e: &reqwest::Error) -> ProviderError {
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else {
        ErrorClass::Network
    };
    ProviderError::new(class, None, describe(e))
}

/// Server-requested wait: `retry-after-ms`, else `Retry-After` (seconds or HTTP date).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

impl Client {
    /// Builds the client (one `reqwest` client with rustls/ring, connect timeout from settings).
    pub fn new(providers: Providers) -> Result<Client, ProviderError> {
        install_crypto_provider();
        let s = &providers.settings;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(s.connect_timeout_s.max(1)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("alc/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::new(ErrorClass::Config, None, format!("HTTP client: {e}"))
            })?;
        let per_provider = providers
            .iter()
            .filter_map(|p| {
                p.max_concurrency
                    .map(|n| (p.name.clone(), Arc::new(Semaphore::new(n.max(1)))))
            })
            .collect();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                global: Arc::new(Semaphore::new(s.max_concurrency.max(1))),
                per_provider,
                request_timeout: Duration::from_secs(s.request_timeout_s.max(1)),
                providers,
                hook: None,
            }),
        })
    }

    /// Same client with a per-attempt request timeout other than `request_timeout_s`.
    pub fn with_request_timeout(self, timeout: Duration) -> Client {
        self.map_inner(|i| i.request_timeout = timeout)
    }

    /// Same client with a retry hook (for progress messages and transcript notes).
    pub fn with_retry_hook(self, hook: RetryHook) -> Client {
        self.map_inner(|i| i.hook = Some(hook))
    }

    fn map_inner(self, f: impl FnOnce(&mut Inner)) -> Client {
        let mut inner = match Arc::try_unwrap(self.inner) {
            Ok(i) => i,
            Err(arc) => Inner {
                http: arc.http.clone(),
                providers: arc.providers.clone(),
                global: arc.global.clone(),
                per_provider: arc.per_provider.clone(),
                request_timeout: arc.request_timeout,
                hook: arc.hook.clone(),
            },
        };
        f(&mut inner);
        Client {
            inner: Arc::new(inner),
        }
    }

    /// The providers this client serves.
    pub fn providers(&self) -> &Providers {
        &self.inner.providers
    }

    /// The process-wide request semaphore.
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.inner.global
    }

    /// One completion with routing (§7.1), limits (§7.7) and retries (§7.6).
    pub async fn complete(
        &self,
        query: &LlmQuery,
        query_id: Option<&QueryId>,
        run_model: Option<&str>,
    ) -> Result<Completion, CallFailure> {
        let start = Instant::now();
        let fail = |error, route, attempts| CallFailure {
            error,
            route,
            latency_ms: start.elapsed().as_millis() as u64,
            attempts,
        };
        let providers = &self.inner.providers;
        let route = providers
            .route(query.model.as_deref(), run_model)
            .map_err(|e| fail(e, None, 0))?;
        let provider = providers
            .get(&route.provider)
            .expect("route names a configured provider");
        if provider.api_key.is_none() && provider.needs_key() {
            let var = provider
                .api_key_env
                .as_deref()
                .unwrap_or("an api_key_env variable");
            return Err(fail(
                ProviderError::new(
                    ErrorClass::Config,
                    None,
                    format!("no API key for provider {:?}: set {var}", provider.name),
                ),
                Some(route),
                0,
            ));
        }
        match self.run_attempts(provider, &route, query, query_id).await {
            Ok((parsed, clamped, attempts)) => {
                let usage = parsed
                    .usage
                    .unwrap_or_else(|| estimate_usage(query, &parsed.text));
                let cost_usd = provider.cost_usd(
                    &route.model,
                    usage.prompt_tokens.unwrap_or(0),
                    usage.completion_tokens.unwrap_or(0),
                );
                Ok(Completion {
                    text: parsed.text,
                    usage,
                    provider: route.provider,
                    model: route.model,
                    stop_reason: parsed.stop_reason,
                    latency_ms: start.elapsed().as_millis() as u64,
                    attempts,
                    temperature_clamped: clamped,
                    cost_usd,
                })
            }
            Err((e, attempts)) => Err(fail(e, Some(route), attempts)),
        }
    }

    async fn run_attempts(
        &self,
        provider: &Provider,
        route: &Route,
        query: &LlmQuery,
        query_id: Option<&QueryId>,
    ) -> Result<(crate::adapter::Parsed, bool, u32), (ProviderError, u32)> {
        let s = &self.inner.providers.settings;
        let wire = build_request(provider, &route.model, query);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = {
                let _p = match self.inner.per_provider.get(&provider.name) {
                    Some(sem) => Some(sem.acquire().await.expect("semaphore never closed")),
                    None => None,
                };
                let _g = self
                    .inner
                    .global
                    .acquire()
                    .await
                    .expect("semaphore never closed");
                self.attempt(provider, &route.model, attempts, &wire).await
            };
            let err = match result {
                Ok(p) => return Ok((p, wire.temperature_clamped, attempts)),
                Err(e) => e,
            };
            if !err.class.is_retryable() || attempts > s.max_retries {
                return Err((err, attempts));
            }
            let hint = err.retry_after.unwrap_or(Duration::ZERO);
            if hint > Duration::from_secs(s.max_retry_after_s) {
                let msg = format!(
                    "{} (server asked to wait {} s, above max_retry_after_s = {})",
                    err.message,
                    hint.as_secs_f64().ceil() as u64,
                    s.max_retry_after_s
                );
                let mut e = ProviderError::new(ErrorClass::RateLimited, err.status, msg);
                e.retry_after = err.retry_after;
                return Err((e, attempts));
            }
            let exp = 1u64 << (attempts - 1).min(30);
            let cap = s.retry_max_ms.min(s.retry_base_ms.saturating_mul(exp));
            let jitter = Duration::from_millis(rand::rng().random_range(0..=cap));
            let wait = jitter.max(hint);
            if let Some(hook) = &self.inner.hook {
                hook(&RetryEvent {
                    query_id: query_id.cloned(),
                    provider: provider.name.clone(),
                    model: route.model.clone(),
                    retry: attempts,
                    error: err,
                    wait,
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP attempt. Logs a diagnostic event (provider, model, status, latency,
    /// attempt number, error class); never the request, the response or the key.
    async fn attempt(
        &self,
        provider: &Provider,
        model: &str,
        attempt: u32,
        wire: &crate::adapter::WireRequest,
    ) -> Result<crate::adapter::Parsed, ProviderError> {
        let timeout = self.inner.request_timeout;
        let started = Instant::now();
        let mut status = None;
        let fut = async {
            let mut rb = self
                .inner
                .http
                .post(&wire.url)
                .timeout(timeout)
                .json(&wire.body);
            for (k, v) in &wire.headers {
                rb = rb.header(*k, v);
            }
            let resp = rb.send().await.map_err(|e| transport_error(&e))?;
            let code = resp.status().as_u16();
            status = Some(code);
            let hint = retry_after(resp.headers());
            let body = resp.bytes().await.map_err(|e| transport_error(&e))?;
            if (200..300).contains(&code) {
                parse_response(provider.kind, &body)
            } else {
                let mut e = classify_http_error(code, &body);
                e.retry_after = hint;
                Err(e)
            }
        };
        // Outer guard in case the transport's own timeout does not fire.
        let result = match tokio::time::timeout(timeout + Duration::from_millis(250), fut).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::new(
                ErrorClass::Timeout,
                None,
                format!("request timed out after {} ms", timeout.as_millis()),
            )),
        };
        let latency_ms = started.elapsed().as_millis() as u64;
        let status = status.map_or_else(|| "-".to_string(), |s| s.to_string());
        match &result {
            Ok(_) => tracing::info!(
                provider = %provider.name,
                model = %model,
                status = %status,
                latency_ms,
                attempt,
                "provider request"
            ),
            Err(e) => tracing::info!(
                provider = %provider.name,
                model = %model,
                status = %status,
                latency_ms,
                attempt,
                error_class = %e.class.as_str(),
                "provider request failed"
            ),
        }
        result
    }

    /// Answers all `llm` queries concurrently (under the limits) and returns the answers in
    /// input order. `run_model` is the run's model selector (`--model`, `[run] model`).
    pub async fn answer_batch(
        &self,
        queries: &[PendingQuery],
        run_model: Option<&str>,
    ) -> Vec<Answer> {
        self.answer_batch_detailed(queries, run_model)
            .await
            .into_iter()
            .map(|i| i.answer)
            .collect()
    }

    /// Like [`Client::answer_batch`], also returning each raw outcome (usage, cost, clamping).
    pub async fn answer_batch_detailed(
        &self,
        queries: &[PendingQuery],
        run_model: Option<&str>,
    ) -> Vec<BatchItem> {
        let mut set = tokio::task::JoinSet::new();
        for (i, q) in queries.iter().enumerate() {
            let client = self.clone();
            let id = q.id.clone();
            let request = q.request.clone();
            let run_model = run_model.map(str::to_string);
            set.spawn(async move {
                let outcome = match &request {
                    QueryRequest::Llm { query } => {
                        client
                            .complete(query, Some(&id), run_model.as_deref())
                            .await
                    }
                    QueryRequest::Human { .. } => Err(CallFailure {
                        error: ProviderError::new(
                            ErrorClass::Config,
                            None,
                            "the provider answerer cannot answer human questions".into(),
                        ),
                        route: None,
                        latency_ms: 0,
                        attempts: 0,
                    }),
                };
                (i, to_item(id, outcome))
            });
        }
        let mut out: Vec<Option<BatchItem>> = vec![None; queries.len()];
        while let Some(r) = set.join_next().await {
            match r {
                Ok((i, item)) => out[i] = Some(item),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        out.into_iter()
            .zip(queries)
            .map(|(o, q)| {
                o.unwrap_or_else(|| {
                    let f = CallFailure {
                        error: ProviderError::new(
                            ErrorClass::Network,
                            None,
                            "request task cancelled".into(),
                        ),
                        route: None,
                        latency_ms: 0,
                        attempts: 0,
                    };
                    to_item(q.id.clone(), Err(f))
                })
            })
            .collect()
    }
}

fn to_item(id: QueryId, outcome: Result<Completion, CallFailure>) -> BatchItem {
    let answer = match &outcome {
        Ok(c) => Answer {
            query_id: Some(id),
            text: Some(c.text.clone()),
            usage: Some(c.usage.clone()),
            meta: AnswerMeta {
                answerer: Some(ANSWERER.into()),
                provider: Some(c.provider.clone()),
                model: Some(c.model.clone()),
                stop_reason: c.stop_reason.clone(),
                latency_ms: Some(c.latency_ms),
                attempts: Some(c.attempts),
            },
            ..Answer::default()
        },
        Err(f) => {
            let mut a = Answer::error(Some(id), f.error.code(), f.error.to_string());
            a.meta = AnswerMeta {
                answerer: Some(ANSWERER.into()),
                provider: f.route.as_ref().map(|r| r.provider.clone()),
                model: f.route.as_ref().map(|r| r.model.clone()),
                stop_reason: None,
                latency_ms: Some(f.latency_ms),
                attempts: Some(f.attempts),
            };
            a
        }
    };
    BatchItem { answer, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after(&h(&[])), None);
        assert_eq!(
            retry_after(&h(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "2"), ("retry-after-ms", "1500")])),
            Some(Duration::from_millis(1500))
        );
        let later = SystemTime::now() + Duration::from_secs(30);
        let d = retry_after(&h(&[("retry-after", &httpdate::fmt_http_date(later))])).unwrap();
        assert!(
            d > Duration::from_secs(28) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        let past = SystemTime::now() - Duration::from_secs(30);
        assert_eq!(
            retry_after(&h(&[("retry-after", &httpdate::fmt_http_date(past))])),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&h(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn progress_message_format() {
        let mut e = RetryEvent {
            query_id: Some(QueryId::main(0)),
            provider: "p".into(),
            model: "m".into(),
            retry: 2,
            error: ProviderError::new(ErrorClass::RateLimited, Some(429), "x".into()),
            wait: Duration::from_millis(4200),
        };
        assert_eq!(e.progress_message(), "q-0 retry 2 after 429, waiting 4 s");
        e.error = ProviderError::new(ErrorClass::Timeout, None, "x".into());
        e.wait = Duration::from_millis(250);
        assert_eq!(
            e.progress_message(),
            "q-0 retry 2 after timeout, waiting 250 ms"
        );
    }
}
