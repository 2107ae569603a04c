//! Session specification (§3.2).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything needed to start a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSpec {
    /// The program to run.
    pub program: Program,
    /// The `ctx` object handed to the program (default `{}`).
    #[serde(default = "empty_object")]
    pub ctx: serde_json::Value,
    /// Snapshot behind `alc.env`; never journaled.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Module resolution profile name (default `"default"`).
    #[serde(default = "default_resolver")]
    pub resolver: String,
    /// Per-session limit overrides.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Opaque labels such as `kind` and `strategy`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Fixed PRNG seed (default random, journaled).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Whether `alc.ask` can reach a person (default `true`).
    #[serde(default = "default_true")]
    pub human_channel: bool,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}
fn default_resolver() -> String {
    "default".to_string()
}
fn default_true() -> bool {
    true
}
fn default_entry() -> String {
    "run".to_string()
}

impl SessionSpec {
    /// A spec with the given program and every other field at its default.
    pub fn new(program: Program) -> SessionSpec {
        SessionSpec {
            program,
            ctx: empty_object(),
            env: BTreeMap::new(),
            resolver: default_resolver(),
            limits: LimitOverrides::default(),
            labels: BTreeMap::new(),
            seed: None,
            human_channel: true,
        }
    }
}

/// The program of a session (tag `kind`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Program {
    /// Inline source; `name` (default `session`) is the chunk name.
    Code {
        /// Lua source text.
        source: String,
        /// Chunk name; `None` means `session`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// An installed package and its entry function.
    Package {
        /// Package name.
        name: String,
        /// Entry function (default `run`).
        #[serde(default = "default_entry")]
        entry: String,
    },
}

impl Program {
    /// `"code"` or `"package"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Program::Code { .. } => "code",
            Program::Package { .. } => "package",
        }
    }
}

/// Per-session limit overrides, each capped by the engine ceiling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitOverrides {
    /// Memory limit per VM in bytes.
    pub memory_bytes: Option<u64>,
    /// CPU limit in milliseconds.
    pub cpu_ms: Option<u64>,
    /// Wall-clock deadline from `created_at` in milliseconds.
    pub deadline_ms: Option<u64>,
    /// Idle time-to-live while paused, in milliseconds.
    pub idle_ttl_ms: Option<u64>,
}
