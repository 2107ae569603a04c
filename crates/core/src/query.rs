//! Queries issued at a pause (§3.3).

use crate::ids::QueryId;
use crate::serde_util::{is_false, some_value};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

fn default_max_tokens() -> u32 {
    1024
}

/// A request for one LLM completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmQuery {
    /// The prompt text.
    pub prompt: String,
    /// System prompt (always serialized, `null` when absent).
    #[serde(default)]
    pub system: Option<String>,
    /// Maximum completion tokens (default 1024).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Sampling temperature (omitted when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Model hint (omitted when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Grounding flag (omitted when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub grounded: bool,
    /// Underspecification flag (omitted when false).
    #[serde(default, skip_serializing_if = "is_false")]
    pub underspecified: bool,
    /// Routing hint such as `"grader"` (omitted when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl LlmQuery {
    /// A query with the given prompt and defaults elsewhere (`max_tokens` 1024).
    pub fn new(prompt: impl Into<String>) -> LlmQuery {
        LlmQuery {
            prompt: prompt.into(),
            system: None,
            max_tokens: default_max_tokens(),
            temperature: None,
            model: None,
            grounded: false,
            underspecified: false,
            role: None,
        }
    }
}

/// A question for a person (`alc.ask`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanQuestion {
    /// The question text.
    pub question: String,
    /// Allowed answers (omitted when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<String>,
    /// Flat object schema the answer must satisfy (omitted when absent).
    #[serde(
        default,
        deserialize_with = "some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub schema: Option<serde_json::Value>,
    /// Value returned to Lua when no reply is accepted (omitted when absent).
    #[serde(
        default,
        deserialize_with = "some_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub default: Option<serde_json::Value>,
    /// Timeout counted from the pause's `issued_at` (omitted when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl HumanQuestion {
    /// A free-text question without choices, schema, default or timeout.
    pub fn new(question: impl Into<String>) -> HumanQuestion {
        HumanQuestion {
            question: question.into(),
            choices: Vec::new(),
            schema: None,
            default: None,
            timeout_ms: None,
        }
    }
}

/// The kind of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// An LLM completion.
    Llm,
    /// A question for a person.
    Human,
}

/// One request (tag `kind`); the payload fields are flattened beside the tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QueryRequest {
    /// `alc.llm` and friends.
    Llm {
        /// The query fields.
        #[serde(flatten)]
        query: LlmQuery,
    },
    /// `alc.ask`.
    Human {
        /// The question fields.
        #[serde(flatten)]
        question: HumanQuestion,
    },
}

impl QueryRequest {
    /// The request's kind.
    pub fn kind(&self) -> QueryKind {
        match self {
            QueryRequest::Llm { .. } => QueryKind::Llm,
            QueryRequest::Human { .. } => QueryKind::Human,
        }
    }

    /// What is asked: an LLM query's prompt or a person's question.
    pub fn text(&self) -> &str {
        match self {
            QueryRequest::Llm { query } => &query.prompt,
            QueryRequest::Human { question } => &question.question,
        }
    }
}

impl From<LlmQuery> for QueryRequest {
    fn from(query: LlmQuery) -> Self {
        QueryRequest::Llm { query }
    }
}

impl From<HumanQuestion> for QueryRequest {
    fn from(question: HumanQuestion) -> Self {
        QueryRequest::Human { question }
    }
}

/// Which VM issued a query (tag `vm`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "vm", rename_all = "snake_case")]
pub enum QueryOrigin {
    /// The main VM.
    Main,
    /// Fork child `index` running `strategy`.
    Child {
        /// 0-based child index.
        index: usize,
        /// The child's strategy name.
        strategy: String,
    },
}

/// One outstanding query of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingQuery {
    /// The query's id within its round.
    pub id: QueryId,
    /// The issuing VM.
    pub origin: QueryOrigin,
    /// The request.
    pub request: QueryRequest,
    /// 32 hex chars, see [`crate::digest_request`].
    pub digest: String,
}

impl PendingQuery {
    /// Bytes of text the query carries (see [`EventBody::text_bytes`](crate::EventBody::text_bytes)).
    pub fn text_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let request = match &self.request {
            QueryRequest::Llm { query } => {
                query.prompt.len() + opt(&query.system) + opt(&query.model) + opt(&query.role)
            }
            QueryRequest::Human { question } => {
                let json = |v: &Option<serde_json::Value>| {
                    v.as_ref().map_or(0, crate::event::json_text_bytes)
                };
                question.question.len()
                    + question.choices.iter().map(String::len).sum::<usize>()
                    + json(&question.schema)
                    + json(&question.default)
            }
        };
        self.id.as_str().len() + self.digest.len() + request
    }
}

/// The public view of a pause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingBatch {
    /// The round number (1-based).
    pub round: u64,
    /// When the pause was issued (Unix ms).
    pub issued_at: i64,
    /// The queries, in issue order.
    pub queries: Arc<[PendingQuery]>,
    /// Ids answered so far, in acceptance order.
    #[serde(default)]
    pub answered: Vec<QueryId>,
}

impl PendingBatch {
    /// Number of queries still unanswered (computed, not serialized).
    pub fn remaining(&self) -> usize {
        self.queries.len().saturating_sub(self.answered.len())
    }
}
