//! Engine configuration with the defaults of §5.8.

use crate::metrics::BudgetLimits;
use serde::{Deserialize, Serialize};

/// When open sessions are adopted at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// On first access.
    #[default]
    OnDemand,
    /// All at start.
    Eager,
}

/// Journal durability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// SQLite `synchronous=NORMAL`.
    #[default]
    Normal,
    /// SQLite `synchronous=FULL`.
    Full,
}

/// Engine configuration; every field defaults as in §5.8.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// Worker threads (0 = available parallelism).
    pub workers: usize,
    /// Instructions between hook calls.
    pub hook_interval: u32,
    /// Slice length in ms.
    pub slice_ms: u64,
    /// Memory limit per VM in bytes.
    pub memory_limit_bytes: u64,
    /// Ceiling for per-session memory overrides.
    pub max_memory_limit_bytes: u64,
    /// CPU limit in ms (0 = none).
    pub cpu_limit_ms: u64,
    /// Default deadline in ms (none by default).
    pub deadline_ms: Option<u64>,
    /// Idle TTL while paused, in ms.
    pub idle_ttl_ms: u64,
    /// Retention of terminal sessions, in ms.
    pub retain_terminal_ms: u64,
    /// Recovery mode.
    pub recovery: Recovery,
    /// Maximum live sessions.
    pub max_live_sessions: u64,
    /// Maximum retained terminal sessions.
    pub max_retained_terminal: u64,
    /// Events kept per session.
    pub event_ring: usize,
    /// Bytes of events kept per session, each counted as its record plus its text
    /// (prompts, messages, values; [`EventBody::text_bytes`]). The oldest events give way
    /// first (an observer that lags behind them gets a `gap`); the newest event is
    /// always kept.
    ///
    /// [`EventBody::text_bytes`]: crate::EventBody::text_bytes
    pub event_ring_bytes: usize,
    /// Log entries kept per session.
    pub log_ring: usize,
    /// Maximum fork children.
    pub max_fork_children: usize,
    /// Maximum queries per pause.
    pub max_batch: usize,
    /// Maximum bytes of prompt + system.
    pub max_request_bytes: usize,
    /// Maximum bytes of an answer text.
    pub max_answer_bytes: usize,
    /// Maximum bytes of a result.
    pub max_result_bytes: usize,
    /// Maximum bytes of inline code.
    pub max_code_bytes: usize,
    /// Default budget.
    pub default_budget: BudgetLimits,
    /// Budget ceiling.
    pub budget_ceiling: BudgetLimits,
    /// Journal durability.
    pub durability: Durability,
    /// Heap growth since the last full GC that triggers one before parking (a heap larger
    /// than four times this is allowed a quarter of itself instead). What a paused session
    /// holds beyond its live data is about this much.
    pub gc_park_growth_bytes: u64,
    /// Journal retention of finished sessions (`interfaces.md` §9.5): with a durable
    /// journal, terminal sessions whose row was last updated longer ago than this are
    /// deleted (row and records) at start and then hourly; open sessions are never
    /// touched. `None` (the default) keeps them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminal_journal_retention_ms: Option<u64>,
    /// Journal retention of open sessions (`interfaces.md` §9.5): with a durable journal, at
    /// start, non-terminal sessions no live process holds whose row was last updated longer
    /// ago than this are cancelled with code `expired`. `None` (the default) keeps them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_journal_retention_ms: Option<u64>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 0,
            hook_interval: 1000,
            slice_ms: 5,
            memory_limit_bytes: 64 << 20,
            max_memory_limit_bytes: 1 << 30,
            cpu_limit_ms: 300_000,
            deadline_ms: None,
            idle_ttl_ms: 10_800_000,
            retain_terminal_ms: 3_600_000,
            recovery: Recovery::OnDemand,
            max_live_sessions: 250_000,
            max_retained_terminal: 10_000,
            event_ring: 128,
            event_ring_bytes: 16 << 10,
            log_ring: 20,
            max_fork_children: 16,
            max_batch: 256,
            max_request_bytes: 1 << 20,
            max_answer_bytes: 4 << 20,
            max_result_bytes: 16 << 20,
            max_code_bytes: 1 << 20,
            default_budget: BudgetLimits {
                max_llm_calls: Some(10_000),
                max_tokens: None,
                max_elapsed_ms: None,
            },
            budget_ceiling: BudgetLimits::default(),
            durability: Durability::Normal,
            gc_park_growth_bytes: 16_384,
            terminal_journal_retention_ms: None,
            open_journal_retention_ms: None,
        }
    }
}
