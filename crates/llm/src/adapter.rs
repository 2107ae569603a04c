//! Wire mapping for OpenAI Chat Completions (§7.3) and Anthropic Messages (§7.4),
//! usage normalisation (§7.5) and HTTP error classification (§7.6).

use crate::config::{Provider, ProviderKind};
use crate::error::{ErrorClass, ProviderError};
use alc_core::{estimate_tokens, LlmQuery, TokenSource, TokenUsage};
use serde_json::{json, Map, Value};

/// Anthropic API version header value.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A request ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct WireRequest {
    /// Full URL.
    pub url: String,
    /// Headers besides `content-type` (may contain the API key: never log them).
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Value,
    /// True when `temperature` was clamped to [0, 1] (Anthropic).
    pub temperature_clamped: bool,
}

/// A successful completion parsed from a response body.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// Completion text.
    pub text: String,
    /// Recorded stop reason (`max_tokens` for a truncated answer on both APIs).
    pub stop_reason: Option<String>,
    /// Normalised usage with source `definite`, when the API reported it.
    pub usage: Option<TokenUsage>,
}

/// Builds the HTTP request of one query for `provider` and `model`.
pub fn build_request(provider: &Provider, model: &str, q: &LlmQuery) -> WireRequest {
    let mut headers = Vec::new();
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    let mut clamped = false;
    let url = match provider.kind {
        ProviderKind::OpenaiChat => {
            if let Some(k) = &provider.api_key {
                headers.push(("authorization", format!("Bearer {}", k.expose())));
            }
            if let Some(o) = &provider.organization {
                headers.push(("openai-organization", o.clone()));
            }
            if let Some(p) = &provider.project {
                headers.push(("openai-project", p.clone()));
            }
            let mut messages = Vec::new();
            if let Some(s) = &q.system {
                messages.push(json!({"role": "system", "content": s}));
            }
            messages.push(json!({"role": "user", "content": q.prompt}));
            body.insert("messages".into(), Value::Array(messages));
            body.insert(
                provider.max_tokens_param.field().into(),
                json!(q.max_tokens),
            );
            if let Some(t) = q.temperature {
                body.insert("temperature".into(), json!(t));
            }
            body.insert("stream".into(), json!(false));
            format!("{}/chat/completions", provider.base_url)
        }
        ProviderKind::AnthropicMessages => {
            if let Some(k) = &provider.api_key {
                headers.push(("x-api-key", k.expose().to_string()));
            }
            headers.push(("anthropic-version", ANTHROPIC_VERSION.to_string()));
            body.insert("max_tokens".into(), json!(q.max_tokens));
            if let Some(s) = &q.system {
                body.insert("system".into(), json!(s));
            }
            body.insert(
                "messages".into(),
                json!([{"role": "user", "content": q.prompt}]),
            );
            if let Some(t) = q.temperature {
                let c = if t.is_nan() { 1.0 } else { t.clamp(0.0, 1.0) };
                clamped = c != t || t.is_nan();
                body.insert("temperature".into(), json!(c));
            }
            format!("{}/v1/messages", provider.base_url)
        }
    };
    WireRequest {
        url,
        headers,
        body: Value::Object(body),
        temperature_clamped: clamped,
    }
}

fn u(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_u64()
}

fn invalid(msg: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorClass::InvalidResponse, Some(200), msg.into())
}

/// Parses a 2xx response body.
pub fn parse_response(kind: ProviderKind, body: &[u8]) -> Result<Parsed, ProviderError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("unparseable response body: {e}: {}", snippet(body))))?;
    match kind {
        ProviderKind::OpenaiChat => parse_openai(&v),
        ProviderKind::AnthropicMessages => parse_anthropic(&v),
    }
}

fn parse_openai(v: &Value) -> Result<Parsed, ProviderError> {
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| invalid("response has no choices[0]"))?;
    let msg = choice.get("message");
    let finish = choice.get("finish_reason").and_then(Value::as_str);
    let content = msg.and_then(|m| m.get("content"));
    let text = match content {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(parts)) => Some(
            parts
                .iter()
                .filter_map(|p| {
                    let is_text = p
                        .get("type")
                        .and_then(Value::as_str)
                        .is_none_or(|t| t == "text");
                    if is_text {
                        p.get("text").and_then(Value::as_str)
                    } else {
                        None
                    }
                })
                .collect::<String>(),
        ),
        _ => None,
    };
    let refusal = msg
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let empty = text.as_deref().is_none_or(str::is_empty);
    if finish == Some("content_filter") {
        return Err(ProviderError::new(
            ErrorClass::Refusal,
            Some(200),
            "content_filter: the provider filtered the completion".into(),
        ));
    }
    if let (Some(r), true) = (refusal, empty) {
        return Err(ProviderError::new(
            ErrorClass::Refusal,
            Some(200),
            format!("refusal: {r}"),
        ));
    }
    let text = text.ok_or_else(|| invalid("response has no message content"))?;
    let stop_reason = finish.map(|f| if f == "length" { "max_tokens" } else { f }.to_string());
    let usage = v.get("usage").filter(|x| x.is_object()).and_then(|us| {
        let p = u(us, &["prompt_tokens"]);
        let c = u(us, &["completion_tokens"]);
        if p.is_none() && c.is_none() {
            return None;
        }
        Some(TokenUsage {
            prompt_tokens: p,
            completion_tokens: c,
            cached_tokens: u(us, &["prompt_tokens_details", "cached_tokens"]),
            reasoning_tokens: u(us, &["completion_tokens_details", "reasoning_tokens"]),
            source: TokenSource::Definite,
        })
    });
    Ok(Parsed {
        text,
        stop_reason,
        usage,
    })
}

fn parse_anthropic(v: &Value) -> Result<Parsed, ProviderError> {
    let stop = v.get("stop_reason").and_then(Value::as_str);
    if stop == Some("refusal") {
        return Err(ProviderError::new(
            ErrorClass::Refusal,
            Some(200),
            "refusal: the model declined to answer".into(),
        ));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("response has no content array"))?;
    let text: String = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let has_text_block = blocks
        .iter()
        .any(|b| b.get("type").and_then(Value::as_str) == Some("text"));
    if !has_text_block && stop != Some("max_tokens") {
        return Err(invalid("response has no text content block"));
    }
    let usage = v.get("usage").filter(|x| x.is_object()).and_then(|us| {
        let input = u(us, &["input_tokens"]);
        let out = u(us, &["output_tokens"]);
        if input.is_none() && out.is_none() {
            return None;
        }
        let creation = u(us, &["cache_creation_input_tokens"]).unwrap_or(0);
        let read = u(us, &["cache_read_input_tokens"]);
        Some(TokenUsage {
            prompt_tokens: Some(input.unwrap_or(0) + creation + read.unwrap_or(0)),
            completion_tokens: out,
            cached_tokens: read,
            reasoning_tokens: Some(0),
            source: TokenSource::Definite,
        })
    });
    Ok(Parsed {
        text,
        stop_reason: stop.map(str::to_string),
        usage,
    })
}

/// Estimated usage (source `estimated`) for a response without `usage`.
pub fn estimate_usage(q: &LlmQuery, text: &str) -> TokenUsage {
    let sys = q.system.as_deref().map(estimate_tokens).unwrap_or(0);
    TokenUsage {
        prompt_tokens: Some(sys + estimate_tokens(&q.prompt)),
        completion_tokens: Some(estimate_tokens(text)),
        cached_tokens: None,
        reasoning_tokens: None,
        source: TokenSource::Estimated,
    }
}

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    let mut out: String = s.chars().take(200).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

fn is_quota_message(s: &str) -> bool {
    let s = s.to_ascii_lowercase();
    s.contains("insufficient_quota")
        || s.contains("quota")
        || s.contains("billing")
        || s.contains("spend limit")
        || s.contains("spending limit")
        || s.contains("credit balance")
}

/// Classifies a non-2xx response (§7.6) from its status and body.
pub fn classify_http_error(status: u16, body: &[u8]) -> ProviderError {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let err = v.as_ref().and_then(|v| v.get("error"));
    let message = err
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| err.and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| {
            let s = snippet(body);
            if s.is_empty() {
                reqwest::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|c| c.canonical_reason())
                    .unwrap_or("error")
                    .to_string()
            } else {
                s
            }
        });
    let etype = err
        .and_then(|e| e.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let ecode = err
        .and_then(|e| e.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let quota = ecode == "insufficient_quota"
        || etype == "insufficient_quota"
        || ((400..500).contains(&status) && status != 401 && is_quota_message(&message));
    let class = if quota {
        ErrorClass::Quota
    } else if etype == "overloaded_error" {
        ErrorClass::Overloaded
    } else {
        match status {
            429 => ErrorClass::RateLimited,
            529 | 503 => ErrorClass::Overloaded,
            401 | 403 => ErrorClass::Auth,
            408 | 409 => ErrorClass::Server,
            500..=599 => ErrorClass::Server,
            _ => ErrorClass::BadRequest,
        }
    };
    let message = if etype.is_empty() || message.contains(etype) {
        message
    } else {
        format!("{etype}: {message}")
    };
    ProviderError::new(class, Some(status), message)
}
