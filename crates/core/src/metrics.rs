//! Metrics, budget types and token estimation (§3.6, §6).

use crate::answer::TokenSource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Per-session metrics (semantics in §6.2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionMetrics {
    /// (ended_at or now) − created_at.
    pub elapsed_ms: u64,
    /// Sum of Paused intervals.
    pub paused_ms: u64,
    /// Sum of step durations in this process.
    pub cpu_ms: u64,
    /// `llm` queries issued at pauses.
    pub llm_calls: u64,
    /// `human` queries issued at pauses.
    pub human_asks: u64,
    /// Pauses issued.
    pub pauses: u64,
    /// Rounds completed.
    pub rounds: u64,
    /// UTF-8 bytes of prompt + system of every `llm` query.
    pub total_prompt_chars: u64,
    /// UTF-8 bytes of every accepted `llm` answer text.
    pub total_response_chars: u64,
    /// Prompt tokens.
    pub prompt_tokens: TokenCount,
    /// Response tokens.
    pub response_tokens: TokenCount,
    /// Prompt + response tokens.
    pub total_tokens: TokenCount,
    /// Accepted answers per answerer (`unknown` when absent).
    pub answered_by: BTreeMap<String, u64>,
    /// Usage per `"<provider>:<model>"`.
    pub usage_by_model: BTreeMap<String, ModelUsage>,
    /// VM-set memory at the end of the last step.
    pub vm_bytes: u64,
    /// Peak of `vm_bytes`.
    pub peak_vm_bytes: u64,
    /// `alc.stats.record` values.
    pub custom: BTreeMap<String, serde_json::Value>,
    /// Last `alc.progress`.
    pub progress: Option<Progress>,
    /// Ring of the last log entries.
    pub recent_logs: Vec<LogEntry>,
}

/// A token count and the weakest source that contributed to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    /// Token count.
    pub tokens: u64,
    /// Weakest contributing source (`estimated` when nothing contributed).
    pub source: TokenSource,
}

/// Usage aggregated per model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelUsage {
    /// Answers attributed to the model.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Cached tokens.
    pub cached_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
}

/// Last progress report (`total` 0 = unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// Current step.
    pub step: u64,
    /// Total steps (0 = unknown).
    pub total: u64,
    /// Message.
    pub message: String,
}

/// One log line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogEntry {
    /// Time (Unix ms).
    pub ts: i64,
    /// Level (`debug`, `info`, `warn`, `error`).
    pub level: String,
    /// Source such as `alc.log` or `alc.lua.print`.
    pub source: String,
    /// Message (truncated to 4 KiB by the engine).
    pub message: String,
}

/// Effective budget limits (`None` = no limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetLimits {
    /// Maximum `llm` queries.
    pub max_llm_calls: Option<u64>,
    /// Maximum total tokens.
    pub max_tokens: Option<u64>,
    /// Maximum elapsed wall time in ms.
    pub max_elapsed_ms: Option<u64>,
}

/// Limits and what remains of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetStatus {
    /// The limits.
    pub limits: BudgetLimits,
    /// Remainders (saturating at 0; `None` = no limit).
    pub remaining: BudgetRemaining,
}

/// Remainders of a budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BudgetRemaining {
    /// `llm` calls left.
    pub llm_calls: Option<u64>,
    /// Tokens left.
    pub tokens: Option<u64>,
    /// Milliseconds left.
    pub elapsed_ms: Option<u64>,
}

/// Token estimate: `ceil(ascii/4) + ceil(2*other/3)` over Unicode scalar values.
pub fn estimate_tokens(s: &str) -> u64 {
    let (mut ascii, mut other) = (0u64, 0u64);
    for c in s.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    ascii.div_ceil(4) + (2 * other).div_ceil(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("é"), 1);
        assert_eq!(estimate_tokens("日本語"), 2);
        assert_eq!(estimate_tokens("ab日本"), 1 + 2);
    }
}
