//! Answers to queries (§3.4).

use crate::ids::QueryId;
use serde::{Deserialize, Serialize};

/// A `resume` call's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answers {
    /// The round the caller answers; `None` = the current one.
    #[serde(default)]
    pub round: Option<u64>,
    /// The answers.
    #[serde(default)]
    pub answers: Vec<Answer>,
}

/// One reply. Exactly one of `text`, `error`, `ask_status` must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Target query; `None` = the single unanswered query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_id: Option<QueryId>,
    /// Reply text (for a `schema` question the text of a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// An answer error the script sees raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AnswerError>,
    /// `human` queries only: closed without a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ask_status: Option<AskStatus>,
    /// Token usage reported by the answerer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// Answerer metadata (omitted when empty).
    #[serde(default, skip_serializing_if = "AnswerMeta::is_empty")]
    pub meta: AnswerMeta,
}

impl Answer {
    /// A text answer.
    pub fn text(query_id: Option<QueryId>, text: impl Into<String>) -> Answer {
        Answer {
            query_id,
            text: Some(text.into()),
            ..Answer::default()
        }
    }

    /// An error answer.
    pub fn error(
        query_id: Option<QueryId>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Answer {
        Answer {
            query_id,
            error: Some(AnswerError {
                code: code.into(),
                message: message.into(),
            }),
            ..Answer::default()
        }
    }

    /// An ask-status answer (closes a `human` question without a reply).
    pub fn ask_status(query_id: Option<QueryId>, status: AskStatus) -> Answer {
        Answer {
            query_id,
            ask_status: Some(status),
            ..Answer::default()
        }
    }

    /// Same content (text / error code+message / ask status); usage and meta ignored.
    pub fn same_content(&self, other: &Answer) -> bool {
        self.text == other.text && self.error == other.error && self.ask_status == other.ask_status
    }
}

/// An error delivered instead of text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerError {
    /// Machine code such as `provider_error`.
    pub code: String,
    /// The full text the script sees.
    pub message: String,
}

/// Why a human question was closed without a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AskStatus {
    /// The person refused.
    Declined,
    /// The question was dismissed.
    Cancelled,
    /// Closed by the engine when `timeout_ms` elapsed (never from answerers).
    Timeout,
}

/// How trustworthy a token count is; `Estimated < Provided < Definite`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// Computed by [`crate::estimate_tokens`].
    #[default]
    Estimated,
    /// Reported by the host.
    Provided,
    /// Reported by the provider.
    Definite,
}

fn provided() -> TokenSource {
    TokenSource::Provided
}

/// Token usage of one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: Option<u64>,
    /// Cached prompt tokens (omitted when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    /// Reasoning tokens (omitted when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Source of the numbers (default `provided`).
    #[serde(default = "provided")]
    pub source: TokenSource,
}

/// Answerer metadata; every field omitted when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerMeta {
    /// Answerer name (`host`, `provider`, `engine`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answerer: Option<String>,
    /// Provider name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Provider stop reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Answer latency in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Number of attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
}

impl AnswerMeta {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        *self == AnswerMeta::default()
    }
}
