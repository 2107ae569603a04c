//! Configuration of the algocline engine (interfaces.md §5): home resolution, `config.toml`,
//! the `[run]` keys of project files, environment variables, precedence (§5.4), and the
//! derived pieces other crates consume: [`alc_core::EngineConfig`], the
//! [`alc_llm::ProvidersFile`] / [`alc_llm::Providers`], the `[mcp]` settings, the package
//! environment ([`alc_pkg::PkgEnv`]) and the `alc_info` JSON ([`Settings::info_json`]).
//!
//! Loading never fails on content: unknown keys, values of the wrong type and even a
//! `config.toml` that does not parse become entries of [`Settings::warnings`]. The only
//! load error is an explicit project root that is not a directory (`invalid_params`).

#![warn(missing_docs)]

mod toml_walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alc_core::{BudgetLimits, Durability, EngineConfig, Recovery};
use alc_llm::{ProviderConfig, ProviderSettings, Providers, ProvidersFile};
use serde_json::{json, Value};
use toml::Table;

use toml_walk::{to_json, Walker};

/// Product version (the workspace version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Version of the reference implementation this one is compatible with.
pub const COMPAT_VERSION: &str = "0.38.1";
/// MCP protocol revisions served.
pub const PROTOCOL_VERSIONS: [&str; 2] = ["2026-07-28", "2025-11-25"];

/// Variables `os.getenv` never returns, whatever `[sandbox] env_allow` says (§5.3); every
/// provider's `api_key_env` and any name ending in `_API_KEY` are refused as well.
pub const ENGINE_INTERNAL_VARS: &[&str] = &[
    "ALC_HOME",
    "ALC_PACKAGES_PATH",
    "ALC_PROJECT_ROOT",
    "ALC_LOG_DIR",
    "ALC_HTTP_TOKEN",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
];

/// Load failure (the only one: a bad explicit project root).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--project-root` / `project_root` is not a directory.
    #[error("project_root '{0}' is not a directory")]
    InvalidProjectRoot(PathBuf),
}

/// Where the home came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HomeSource {
    /// `--home`.
    Flag,
    /// `ALC_HOME`.
    Env,
    /// `~/.algocline`.
    Default,
}

impl HomeSource {
    /// The `alc_info` label: `--home`, `ALC_HOME` or `default`.
    pub fn label(self) -> &'static str {
        match self {
            HomeSource::Flag => "--home",
            HomeSource::Env => "ALC_HOME",
            HomeSource::Default => "default",
        }
    }
}

/// A snapshot of the process environment (or a fixed map in tests).
#[derive(Debug, Clone, Default)]
pub struct Env(BTreeMap<String, String>);

impl Env {
    /// The current process environment (non-UTF-8 variables are skipped).
    pub fn process() -> Env {
        Env(std::env::vars().collect())
    }

    /// A fixed environment.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    /// A variable when set and not blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

/// What to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--home`.
    pub home: Option<PathBuf>,
    /// `--project-root`.
    pub project_root: Option<PathBuf>,
    /// Directory to start the `alc.toml` walk from (default: the working directory).
    pub cwd: Option<PathBuf>,
}

/// A value and where it came from (`--answerer`, `ALC_ANSWERER`, `alc.local.toml`,
/// `alc.toml`, `config.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    /// The value.
    pub value: String,
    /// Its source label.
    pub source: String,
}

/// The `[sandbox]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Stock `io`/`os` functions (read from `config.toml` only).
    pub trusted: bool,
    /// Patterns of variables `os.getenv` may return; an entry may end with `*`.
    pub env_allow: Vec<String>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        SandboxSettings {
            trusted: false,
            env_allow: vec!["ALC_SHAPE_CHECK".into()],
        }
    }
}

/// The `[mcp]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpSettings {
    /// Default `wait_ms` of the execution tools (0 = no limit).
    pub call_wait_ms: u64,
    /// `off` | `auto`.
    pub mrtr: String,
    /// `off` | `opt_in`.
    pub sampling: String,
    /// Cancel a connection's sessions when it closes.
    pub cancel_on_disconnect: bool,
}

impl Default for McpSettings {
    fn default() -> Self {
        McpSettings {
            call_wait_ms: 0,
            mrtr: "off".into(),
            sampling: "opt_in".into(),
            cancel_on_disconnect: false,
        }
    }
}

/// Store retention (`[session] *_retention_days`, §9.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Non-terminal journaled sessions older than this are expired.
    pub journal_retention_days: u64,
    /// Finished sessions (journal and transcript) older than this are pruned; 0 keeps them.
    pub transcript_retention_days: u64,
}

impl Retention {
    /// The engine's journal retention of open sessions, in milliseconds
    /// (`journal_retention_days`; `None` when it is 0, which keeps them).
    pub fn open_journal_retention_ms(&self) -> Option<u64> {
        (self.journal_retention_days > 0)
            .then(|| self.journal_retention_days.saturating_mul(86_400_000))
    }

    /// The engine's journal retention of finished sessions, in milliseconds
    /// (`transcript_retention_days`; `None` when it is 0, which keeps them).
    pub fn terminal_journal_retention_ms(&self) -> Option<u64> {
        (self.transcript_retention_days > 0)
            .then(|| self.transcript_retention_days.saturating_mul(86_400_000))
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            journal_retention_days: 30,
            transcript_retention_days: 90,
        }
    }
}

/// Everything read from `<home>/config.toml` (defaults where absent).
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// `[answerer] default`.
    pub answerer_default: Option<String>,
    /// `[provider]` and `[providers.*]`.
    pub providers: ProvidersFile,
    /// `[session]`, `[budget.*]`, `[journal]`, `[engine]` mapped onto the engine's names.
    pub engine: EngineConfig,
    /// `[session] *_retention_days`.
    pub retention: Retention,
    /// `[sandbox]`.
    pub sandbox: SandboxSettings,
    /// `[mcp]`.
    pub mcp: McpSettings,
    /// `[log] transcripts`: `full` | `metadata` | `off`.
    pub log_transcripts: String,
    /// `[log] level`: diagnostic log level of the log file (`None`: built-in `info`).
    pub log_level: Option<String>,
    /// `[log] stderr_level`: diagnostic log level on stderr (`None`: built-in `warn`).
    pub log_stderr_level: Option<String>,
    /// `[setting.<target>]` tables, kept verbatim (the engine ignores them).
    pub setting: BTreeMap<String, Value>,
}

const MB: u64 = 1 << 20;

/// The diagnostic log levels (`ALC_LOG_LEVEL`, `[log] level`, `--log-level`).
pub const LOG_LEVELS: &[&str] = &["error", "warn", "info", "debug", "trace", "off"];

impl ConfigFile {
    /// Parses the text of a `config.toml`; problems go to `warnings`.
    pub fn parse(text: &str, file: &str, warnings: &mut Vec<String>) -> ConfigFile {
        let mut cfg = ConfigFile {
            log_transcripts: "full".into(),
            ..ConfigFile::default()
        };
        let root: Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let msg = e.to_string();
                let first = msg.lines().next().unwrap_or("invalid TOML").to_string();
                warnings.push(format!("{file}: not valid TOML ({first}); file ignored"));
                return cfg;
            }
        };
        let mut w = Walker { file, warnings };
        w.unknown(
            &root,
            "",
            &[
                "answerer",
                "provider",
                "providers",
                "session",
                "budget",
                "sandbox",
                "journal",
                "engine",
                "mcp",
                "log",
                "setting",
            ],
        );
        if let Some(t) = w.table(&root, "", "answerer") {
            w.unknown(t, "answerer", &["default"]);
            cfg.answerer_default = w.string(t, "answerer", "default");
        }
        cfg.providers = parse_providers(&mut w, &root);
        parse_engine(&mut w, &root, &mut cfg);
        if let Some(t) = w.table(&root, "", "sandbox") {
            w.unknown(t, "sandbox", &["trusted", "env_allow"]);
            if let Some(b) = w.bool(t, "sandbox", "trusted") {
                cfg.sandbox.trusted = b;
            }
            if let Some(l) = w.string_list(t, "sandbox", "env_allow") {
                cfg.sandbox.env_allow = l;
            }
        }
        if let Some(t) = w.table(&root, "", "mcp") {
            w.unknown(
                t,
                "mcp",
                &["call_wait_ms", "mrtr", "sampling", "cancel_on_disconnect"],
            );
            if let Some(v) = w.u64(t, "mcp", "call_wait_ms") {
                cfg.mcp.call_wait_ms = v;
            }
            if let Some(v) = w.choice(t, "mcp", "mrtr", &["off", "auto"]) {
                cfg.mcp.mrtr = v;
            }
            if let Some(v) = w.choice(t, "mcp", "sampling", &["off", "opt_in"]) {
                cfg.mcp.sampling = v;
            }
            if let Some(v) = w.bool(t, "mcp", "cancel_on_disconnect") {
                cfg.mcp.cancel_on_disconnect = v;
            }
        }
        if let Some(t) = w.table(&root, "", "log") {
            w.unknown(t, "log", &["transcripts", "level", "stderr_level"]);
            if let Some(v) = w.choice(t, "log", "transcripts", &["full", "metadata", "off"]) {
                cfg.log_transcripts = v;
            }
            cfg.log_level = w.choice(t, "log", "level", LOG_LEVELS);
            cfg.log_stderr_level = w.choice(t, "log", "stderr_level", LOG_LEVELS);
        }
        if let Some(t) = w.table(&root, "", "setting") {
            cfg.setting = t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
        }
        cfg
    }
}

const PROVIDER_KEYS: &[&str] = &[
    "default",
    "max_concurrency",
    "max_retries",
    "connect_timeout_s",
    "request_timeout_s",
    "retry_base_ms",
    "retry_max_ms",
    "max_retry_after_s",
    "model_policy",
];
const PROVIDERS_ENTRY_KEYS: &[&str] = &[
    "kind",
    "base_url",
    "api_key_env",
    "model",
    "max_tokens_param",
    "max_concurrency",
    "model_map",
    "prices",
];

fn parse_providers(w: &mut Walker<'_>, root: &Table) -> ProvidersFile {
    let mut out = ProvidersFile::default();
    if let Some(t) = w.table(root, "", "provider") {
        w.unknown(t, "provider", PROVIDER_KEYS);
        let known: Table = t
            .iter()
            .filter(|(k, _)| PROVIDER_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match toml::Value::Table(known).try_into::<ProviderSettings>() {
            Ok(s) => out.provider = s,
            Err(e) => w.warn(format_args!("[provider] ignored: {}", first_line(&e))),
        }
    }
    if let Some(t) = w.table(root, "", "providers") {
        for (name, v) in t {
            let section = format!("providers.{name}");
            let Some(entry) = v.as_table() else {
                w.warn(format_args!("`{section}` must be a table; ignored"));
                continue;
            };
            w.unknown(entry, &section, PROVIDERS_ENTRY_KEYS);
            let known: Table = entry
                .iter()
                .filter(|(k, _)| PROVIDERS_ENTRY_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            match toml::Value::Table(known).try_into::<ProviderConfig>() {
                Ok(c) => {
                    out.providers.insert(name.clone(), c);
                }
                Err(e) => w.warn(format_args!("[{section}] ignored: {}", first_line(&e))),
            }
        }
    }
    out
}

fn first_line(e: &dyn std::fmt::Display) -> String {
    e.to_string()
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid value")
        .trim()
        .to_string()
}

fn parse_budget(w: &mut Walker<'_>, t: &Table, section: &str) -> BudgetLimits {
    w.unknown(
        t,
        section,
        &["max_llm_calls", "max_tokens", "max_elapsed_ms"],
    );
    BudgetLimits {
        max_llm_calls: w.u64(t, section, "max_llm_calls"),
        max_tokens: w.u64(t, section, "max_tokens"),
        max_elapsed_ms: w.u64(t, section, "max_elapsed_ms"),
    }
}

fn parse_engine(w: &mut Walker<'_>, root: &Table, cfg: &mut ConfigFile) {
    let e = &mut cfg.engine;
    if let Some(t) = w.table(root, "", "session") {
        let s = "session";
        w.unknown(
            t,
            s,
            &[
                "idle_ttl_s",
                "retain_terminal_s",
                "max_retained_terminal",
                "journal_retention_days",
                "transcript_retention_days",
                "memory_limit_mb",
                "max_memory_limit_mb",
                "cpu_limit_ms",
                "timeout_ms",
                "max_fork_children",
            ],
        );
        if let Some(v) = w.u64(t, s, "idle_ttl_s") {
            e.idle_ttl_ms = v.saturating_mul(1000);
        }
        if let Some(v) = w.u64(t, s, "retain_terminal_s") {
            e.retain_terminal_ms = v.saturating_mul(1000);
        }
        if let Some(v) = w.u64(t, s, "max_retained_terminal") {
            e.max_retained_terminal = v;
        }
        if let Some(v) = w.u64(t, s, "journal_retention_days") {
            cfg.retention.journal_retention_days = v;
        }
        if let Some(v) = w.u64(t, s, "transcript_retention_days") {
            cfg.retention.transcript_retention_days = v;
        }
        if let Some(v) = w.u64(t, s, "memory_limit_mb") {
            e.memory_limit_bytes = v.saturating_mul(MB);
        }
        if let Some(v) = w.u64(t, s, "max_memory_limit_mb") {
            e.max_memory_limit_bytes = v.saturating_mul(MB);
        }
        if let Some(v) = w.u64(t, s, "cpu_limit_ms") {
            e.cpu_limit_ms = v;
        }
        if let Some(v) = w.u64(t, s, "timeout_ms") {
            e.deadline_ms = (v > 0).then_some(v);
        }
        if let Some(v) = w.u64(t, s, "max_fork_children") {
            e.max_fork_children = v as usize;
        }
        if e.memory_limit_bytes > e.max_memory_limit_bytes {
            w.warn(format_args!(
                "session.memory_limit_mb exceeds session.max_memory_limit_mb; the ceiling is raised to match"
            ));
            e.max_memory_limit_bytes = e.memory_limit_bytes;
        }
    }
    if let Some(b) = w.table(root, "", "budget") {
        w.unknown(b, "budget", &["default", "ceiling"]);
        if let Some(t) = w.table(b, "budget", "default") {
            e.default_budget = parse_budget(w, t, "budget.default");
        }
        if let Some(t) = w.table(b, "budget", "ceiling") {
            e.budget_ceiling = parse_budget(w, t, "budget.ceiling");
        }
    }
    if let Some(t) = w.table(root, "", "journal") {
        w.unknown(t, "journal", &["durability", "recovery"]);
        match w
            .choice(t, "journal", "durability", &["normal", "full"])
            .as_deref()
        {
            Some("full") => e.durability = Durability::Full,
            Some(_) => e.durability = Durability::Normal,
            None => {}
        }
        match w
            .choice(t, "journal", "recovery", &["on_demand", "eager"])
            .as_deref()
        {
            Some("eager") => e.recovery = Recovery::Eager,
            Some(_) => e.recovery = Recovery::OnDemand,
            None => {}
        }
    }
    if let Some(t) = w.table(root, "", "engine") {
        let s = "engine";
        w.unknown(
            t,
            s,
            &[
                "workers",
                "hook_interval",
                "slice_ms",
                "max_live_sessions",
                "event_ring",
                "event_ring_bytes",
                "log_ring",
                "max_batch",
                "max_request_bytes",
                "max_answer_bytes",
                "max_result_bytes",
                "max_code_bytes",
                "gc_park_growth_bytes",
            ],
        );
        macro_rules! set {
            ($key:literal, $field:ident, $ty:ty) => {
                if let Some(v) = w.u64(t, s, $key) {
                    e.$field = <$ty>::try_from(v).unwrap_or(<$ty>::MAX);
                }
            };
        }
        set!("workers", workers, usize);
        set!("hook_interval", hook_interval, u32);
        set!("slice_ms", slice_ms, u64);
        set!("max_live_sessions", max_live_sessions, u64);
        set!("event_ring", event_ring, usize);
        set!("event_ring_bytes", event_ring_bytes, usize);
        set!("log_ring", log_ring, usize);
        set!("max_batch", max_batch, usize);
        set!("max_request_bytes", max_request_bytes, usize);
        set!("max_answer_bytes", max_answer_bytes, usize);
        set!("max_result_bytes", max_result_bytes, usize);
        set!("max_code_bytes", max_code_bytes, usize);
        set!("gc_park_growth_bytes", gc_park_growth_bytes, u64);
        if e.hook_interval == 0 {
            w.warn("engine.hook_interval = 0 treated as 1");
            e.hook_interval = 1;
        }
    }
}

/// The `[run]` keys of the project files (the only run settings they may give, §5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectRun {
    /// `[run] answerer` with its file name.
    pub answerer: Option<Sourced>,
    /// `[run] model` with its file name.
    pub model: Option<Sourced>,
}

/// Sections of `config.toml` a project file may not set (§5.4).
const HOME_ONLY_SECTIONS: &[&str] = &[
    "answerer", "session", "budget", "sandbox", "journal", "engine", "mcp", "log",
];

/// Provider settings that would let a project redirect the user's API keys (§5.4).
const PROVIDER_KEYS_IN_RUN: &[&str] = &[
    "provider",
    "providers",
    "base_url",
    "api_key",
    "api_key_env",
    "headers",
    "prices",
    "kind",
    "model_map",
];

/// The `[run]` keys of the project at `root` (`alc.local.toml` over `alc.toml`), the
/// project files read, and warnings for everything a project file may not set
/// (providers, their base URLs, key variables, headers, prices, and the home-only
/// sections). A relative `scripted:FILE` answerer is taken from the project root.
pub fn project_run(root: &Path) -> (ProjectRun, Vec<PathBuf>, Vec<String>) {
    let mut warnings = Vec::new();
    let (run, files) = read_project(root, &mut warnings);
    (run, files, warnings)
}

fn read_project(root: &Path, warnings: &mut Vec<String>) -> (ProjectRun, Vec<PathBuf>) {
    let mut run = ProjectRun::default();
    let mut files = Vec::new();
    // Lower priority first; `alc.local.toml` overrides `alc.toml`.
    for name in ["alc.toml", "alc.local.toml"] {
        let path = root.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        files.push(path);
        let table: Table = match toml::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                warnings.push(format!(
                    "{name}: not valid TOML ({}); its [run] keys are ignored",
                    first_line(&e)
                ));
                continue;
            }
        };
        for forbidden in ["provider", "providers"] {
            if table.contains_key(forbidden) {
                warnings.push(format!(
                    "{name}: [{forbidden}] ignored: providers are configured only in config.toml \
                     (a project file cannot set provider base URLs, key variables, headers or prices)"
                ));
            }
        }
        for section in HOME_ONLY_SECTIONS {
            if table.contains_key(*section) {
                warnings.push(format!(
                    "{name}: [{section}] ignored: project files may set only [packages], [env], \
                     [setting.*] and [run] answerer/model; put [{section}] in <home>/config.toml"
                ));
            }
        }
        let mut w = Walker {
            file: name,
            warnings,
        };
        if let Some(t) = w.table(&table, "", "run") {
            for k in t.keys() {
                if PROVIDER_KEYS_IN_RUN.contains(&k.as_str()) {
                    w.warn(format_args!(
                        "`run.{k}` ignored: a project file cannot set provider base URLs, key \
                         variables, headers or prices; configure providers in <home>/config.toml"
                    ));
                }
            }
            let known: Vec<&str> = ["answerer", "model"]
                .into_iter()
                .chain(PROVIDER_KEYS_IN_RUN.iter().copied())
                .collect();
            w.unknown(t, "run", &known);
            if let Some(v) = w
                .string(t, "run", "answerer")
                .filter(|v| !v.trim().is_empty())
            {
                run.answerer = Some(Sourced {
                    value: project_answerer(root, v.trim()),
                    source: name.into(),
                });
            }
            if let Some(v) = w.string(t, "run", "model").filter(|v| !v.trim().is_empty()) {
                run.model = Some(Sourced {
                    value: v,
                    source: name.into(),
                });
            }
        }
    }
    (run, files)
}

/// A `scripted:FILE` answerer of a project file with a relative `FILE` names a file
/// of the project, wherever the command runs from.
fn project_answerer(root: &Path, value: &str) -> String {
    match value.strip_prefix("scripted:") {
        Some(file) if !file.is_empty() && Path::new(file).is_relative() => {
            format!("scripted:{}", root.join(file).display())
        }
        _ => value.to_string(),
    }
}

fn absolute(p: &Path, cwd: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// Matches `name` against an `env_allow` entry (exact, or prefix when it ends with `*`).
fn env_pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// The resolved configuration of one process or command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Resolved absolute home.
    pub home: PathBuf,
    /// Where the home came from.
    pub home_source: HomeSource,
    /// `<home>/config.toml`.
    pub config_path: PathBuf,
    /// Whether `config.toml` existed and was read.
    pub config_loaded: bool,
    /// Its content (defaults when absent).
    pub config: ConfigFile,
    /// Project root (§5.5), if any.
    pub project_root: Option<PathBuf>,
    /// Project `[run]` keys.
    pub project: ProjectRun,
    /// Project files read.
    pub project_files: Vec<PathBuf>,
    /// Warnings: unknown keys, ignored values, invalid environment values.
    pub warnings: Vec<String>,
    env: Env,
}

impl Settings {
    /// Loads from the process environment.
    pub fn load(opts: &LoadOptions) -> Result<Settings, ConfigError> {
        Settings::load_with_env(opts, Env::process())
    }

    /// Loads with an explicit environment (tests, embedders).
    pub fn load_with_env(opts: &LoadOptions, env: Env) -> Result<Settings, ConfigError> {
        let cwd = opts
            .cwd
            .clone()
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("."));
        let (home, home_source) = if let Some(h) = &opts.home {
            (h.clone(), HomeSource::Flag)
        } else if let Some(h) = env.get("ALC_HOME") {
            (PathBuf::from(h), HomeSource::Env)
        } else {
            let base = env
                .get("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| cwd.clone());
            (base.join(".algocline"), HomeSource::Default)
        };
        let home = absolute(&home, &cwd);
        let mut warnings = Vec::new();
        let config_path = home.join("config.toml");
        let (config, config_loaded) = match std::fs::read_to_string(&config_path) {
            Ok(text) => (ConfigFile::parse(&text, "config.toml", &mut warnings), true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
                ConfigFile {
                    log_transcripts: "full".into(),
                    ..ConfigFile::default()
                },
                false,
            ),
            Err(e) => {
                warnings.push(format!("config.toml: cannot be read ({e}); using defaults"));
                (
                    ConfigFile {
                        log_transcripts: "full".into(),
                        ..ConfigFile::default()
                    },
                    false,
                )
            }
        };

        let project_root = if let Some(p) = &opts.project_root {
            let p = if p.is_absolute() {
                p.clone()
            } else {
                cwd.join(p)
            };
            if !p.is_dir() {
                return Err(ConfigError::InvalidProjectRoot(p));
            }
            Some(absolute(&p, &cwd))
        } else if let Some(p) = env.get("ALC_PROJECT_ROOT").map(PathBuf::from) {
            if p.is_dir() {
                Some(absolute(&p, &cwd))
            } else {
                warnings.push(format!(
                    "ALC_PROJECT_ROOT={} ignored: not a directory",
                    p.display()
                ));
                None
            }
        } else {
            let mut found = None;
            let mut cur = Some(cwd.as_path());
            while let Some(d) = cur {
                if d.join("alc.toml").is_file() {
                    found = Some(absolute(d, &cwd));
                    break;
                }
                cur = d.parent();
            }
            found
        };
        let (project, project_files) = match &project_root {
            Some(root) => read_project(root, &mut warnings),
            None => (ProjectRun::default(), Vec::new()),
        };

        for (var, what) in [
            ("ALC_PROMPT_PREVIEW_CHARS", "a non-negative integer"),
            ("ALC_MAX_CONCURRENCY", "a positive integer"),
            ("ALC_REQUEST_TIMEOUT", "a positive integer"),
        ] {
            if let Some(v) = env.get(var) {
                if v.trim().parse::<u64>().is_err() {
                    warnings.push(format!("{var}={v:?} ignored: not {what}"));
                }
            }
        }
        if let Some(v) = env.get("ALC_LOG_LEVEL") {
            if !["error", "warn", "info", "debug", "trace", "off"]
                .contains(&v.trim().to_ascii_lowercase().as_str())
            {
                warnings.push(format!("ALC_LOG_LEVEL={v:?} ignored: not a log level"));
            }
        }

        Ok(Settings {
            home,
            home_source,
            config_path,
            config_loaded,
            config,
            project_root,
            project,
            project_files,
            warnings,
            env,
        })
    }

    /// The environment snapshot the settings were loaded with.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// `<home>/alc.db`.
    pub fn database_path(&self) -> PathBuf {
        self.home.join("alc.db")
    }

    /// `<home>/packages`.
    pub fn packages_dir(&self) -> PathBuf {
        self.home.join("packages")
    }

    /// The answerer for a run: `--answerer` > `ALC_ANSWERER` > `alc.local.toml` /
    /// `alc.toml` `[run] answerer` > `config.toml` `[answerer] default`; `None` when no
    /// layer says (the caller applies its built-in default).
    pub fn answerer(&self, flag: Option<&str>) -> Option<Sourced> {
        if let Some(f) = flag.filter(|f| !f.trim().is_empty()) {
            return Some(Sourced {
                value: f.to_string(),
                source: "--answerer".into(),
            });
        }
        if let Some(v) = self.env.get("ALC_ANSWERER") {
            return Some(Sourced {
                value: v.to_string(),
                source: "ALC_ANSWERER".into(),
            });
        }
        if let Some(p) = &self.project.answerer {
            return Some(p.clone());
        }
        self.config
            .answerer_default
            .as_ref()
            .filter(|v| !v.trim().is_empty())
            .map(|v| Sourced {
                value: v.clone(),
                source: "config.toml".into(),
            })
    }

    /// The MCP default answerer: as [`Settings::answerer`] without a flag, else `host`.
    pub fn mcp_default_answerer(&self) -> String {
        self.answerer(None)
            .map(|s| s.value)
            .unwrap_or_else(|| "host".into())
    }

    /// The run's model selector handed to the provider client: `--model` > project
    /// `[run] model` (§7.1; `ALC_MODEL` and the provider's `model` apply beneath it inside
    /// [`Providers::route`]).
    pub fn run_model(&self, flag: Option<&str>) -> Option<String> {
        flag.filter(|f| !f.trim().is_empty())
            .map(str::to_string)
            .or_else(|| self.project.model.as_ref().map(|m| m.value.clone()))
    }

    /// The effective model selector with its source, for display: `--model` > `[run]
    /// model` > `ALC_MODEL`; `None` = the default provider's own `model`.
    pub fn model_selector(&self, flag: Option<&str>) -> Option<Sourced> {
        if let Some(f) = flag.filter(|f| !f.trim().is_empty()) {
            return Some(Sourced {
                value: f.into(),
                source: "--model".into(),
            });
        }
        if let Some(m) = &self.project.model {
            return Some(m.clone());
        }
        self.env.get("ALC_MODEL").map(|m| Sourced {
            value: m.into(),
            source: "ALC_MODEL".into(),
        })
    }

    /// `[provider]` / `[providers.*]` of `config.toml` (never from project files).
    pub fn providers_file(&self) -> ProvidersFile {
        self.config.providers.clone()
    }

    /// The providers with the environment applied (implicit `openai` / `anthropic`,
    /// `*_BASE_URL`, `ALC_PROVIDER`, `ALC_MODEL`, `ALC_MAX_CONCURRENCY`,
    /// `ALC_REQUEST_TIMEOUT`).
    pub fn providers(&self) -> Providers {
        let env = &self.env;
        Providers::from_env_and_config(
            &|k: &str| env.get(k).map(str::to_string),
            self.providers_file(),
        )
    }

    /// Whether a default provider exists (§7.1).
    pub fn provider_configured(&self) -> bool {
        self.providers().check_available().is_ok()
    }

    /// The engine configuration from `[session]`, `[budget.*]`, `[journal]`, `[engine]`;
    /// `terminal_journal_retention_ms` comes from `[session] transcript_retention_days`.
    pub fn engine_config(&self) -> EngineConfig {
        let mut e = self.config.engine.clone();
        e.terminal_journal_retention_ms = self.config.retention.terminal_journal_retention_ms();
        e.open_journal_retention_ms = self.config.retention.open_journal_retention_ms();
        e
    }

    /// Store retention.
    pub fn retention(&self) -> Retention {
        self.config.retention
    }

    /// `[sandbox] trusted`.
    pub fn sandbox_trusted(&self) -> bool {
        self.config.sandbox.trusted
    }

    /// `[mcp]`.
    pub fn mcp(&self) -> &McpSettings {
        &self.config.mcp
    }

    /// `[log] transcripts`.
    pub fn log_transcripts(&self) -> &str {
        &self.config.log_transcripts
    }

    /// What finished sessions' transcripts keep (§9.1): `off` when `ALC_LOG_LEVEL=off`,
    /// else `[log] transcripts` (`full` | `metadata` | `off`; default `full`).
    pub fn transcript_mode(&self) -> &str {
        if self.log_level().as_deref() == Some("off") {
            "off"
        } else {
            &self.config.log_transcripts
        }
    }

    /// Whether `name` may ever be returned by `os.getenv`.
    fn env_name_internal(&self, name: &str) -> bool {
        if ENGINE_INTERNAL_VARS.contains(&name) || name.ends_with("_API_KEY") {
            return true;
        }
        self.config
            .providers
            .providers
            .values()
            .any(|p| p.api_key_env.as_deref() == Some(name))
    }

    /// The process variables `os.getenv` may return: those matching `[sandbox] env_allow`,
    /// minus the engine-internal ones.
    pub fn env_allow(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .filter(|(k, _)| {
                self.config
                    .sandbox
                    .env_allow
                    .iter()
                    .any(|p| env_pattern_matches(p, k))
                    && !self.env_name_internal(k)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Diagnostic log directory and its source (`ALC_LOG_DIR` | `default`).
    pub fn log_dir(&self) -> (PathBuf, &'static str) {
        match self.env.get("ALC_LOG_DIR") {
            Some(d) => (PathBuf::from(d), "ALC_LOG_DIR"),
            None => (self.home.join("logs"), "default"),
        }
    }

    /// `ALC_LOG_LEVEL` when valid.
    pub fn log_level(&self) -> Option<String> {
        self.env
            .get("ALC_LOG_LEVEL")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| ["error", "warn", "info", "debug", "trace", "off"].contains(&v.as_str()))
    }

    /// The diagnostic level of the log file with its source: `ALC_LOG_LEVEL` >
    /// `RUST_LOG` (a filter such as `alc=debug,warn`, used only when `ALC_LOG_LEVEL` is
    /// unset) > `[log] level`; `None` means the built-in default (`info`).
    pub fn diag_file_level(&self) -> Option<Sourced> {
        self.diag_level(self.config.log_level.as_deref(), "config.toml [log] level")
    }

    /// The diagnostic level on stderr with its source, like [`Settings::diag_file_level`]
    /// but from `[log] stderr_level`; `None` means the built-in default (`warn`).
    pub fn diag_stderr_level(&self) -> Option<Sourced> {
        self.diag_level(
            self.config.log_stderr_level.as_deref(),
            "config.toml [log] stderr_level",
        )
    }

    fn diag_level(&self, configured: Option<&str>, config_source: &str) -> Option<Sourced> {
        if let Some(v) = self.log_level() {
            return Some(Sourced {
                value: v,
                source: "ALC_LOG_LEVEL".into(),
            });
        }
        if let Some(v) = self.env.get("RUST_LOG").filter(|v| !v.trim().is_empty()) {
            return Some(Sourced {
                value: v.trim().to_string(),
                source: "RUST_LOG".into(),
            });
        }
        configured.map(|v| Sourced {
            value: v.to_string(),
            source: config_source.into(),
        })
    }

    /// False when `ALC_LOG_LEVEL=off`.
    pub fn log_enabled(&self) -> bool {
        self.log_level().as_deref() != Some("off")
    }

    /// `ALC_PROMPT_PREVIEW_CHARS` (200).
    pub fn prompt_preview_chars(&self) -> usize {
        self.env
            .get("ALC_PROMPT_PREVIEW_CHARS")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(200)
    }

    /// `ALC_HTTP_TOKEN` (never printed).
    pub fn http_token(&self) -> Option<String> {
        self.env.get("ALC_HTTP_TOKEN").map(str::to_string)
    }

    /// `ALC_PACKAGES_PATH` roots in order.
    pub fn packages_path(&self) -> Vec<PathBuf> {
        match self.env.get("ALC_PACKAGES_PATH") {
            Some(v) => std::env::split_paths(v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            None => Vec::new(),
        }
    }

    /// `ALC_PKG_STRICT` is `1` or `true`.
    pub fn pkg_strict(&self) -> bool {
        matches!(
            self.env
                .get("ALC_PKG_STRICT")
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref(),
            Some("1") | Some("true")
        )
    }

    /// The package environment (home, project root, extra roots, strictness, bundled set).
    pub fn pkg_env(&self) -> alc_pkg::PkgEnv {
        alc_pkg::PkgEnv {
            home: self.home.clone(),
            project_root: self.project_root.clone(),
            packages_path: self.packages_path(),
            strict: self.pkg_strict(),
            bundled: alc_pkg::BundledSet::embedded(),
        }
    }

    /// Package search paths with their `alc_info` source labels.
    pub fn search_paths(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        if let Some(root) = &self.project_root {
            let local = root.join("alc.local.toml");
            if local.is_file() {
                out.push((local.display().to_string(), "variant"));
            }
            let proj = root.join("alc.toml");
            if proj.is_file() {
                out.push((proj.display().to_string(), "project"));
            }
        }
        for p in self.packages_path() {
            out.push((p.display().to_string(), "ALC_PACKAGES_PATH"));
        }
        out.push((self.packages_dir().display().to_string(), "default"));
        out.push(("(bundled)".into(), "bundled"));
        out
    }

    /// The `alc_info` document (§2.10). API keys appear only as `set` / `missing`.
    pub fn info_json(&self) -> Value {
        let providers = self.providers();
        let mut warnings = self.warnings.clone();
        warnings.extend(providers.warnings().iter().cloned());
        let mut config_files: Vec<String> = Vec::new();
        if self.config_loaded {
            config_files.push(self.config_path.display().to_string());
        }
        config_files.extend(self.project_files.iter().map(|p| p.display().to_string()));
        let (log_dir, log_source) = self.log_dir();
        let search_paths: Vec<Value> = self
            .search_paths()
            .into_iter()
            .map(|(path, source)| json!({"path": path, "source": source}))
            .collect();
        let provider_list: Vec<Value> = providers
            .iter()
            .map(|p| {
                let kind = serde_json::to_value(p.kind).unwrap_or(Value::Null);
                json!({
                    "name": p.name,
                    "kind": kind,
                    "base_url": p.base_url,
                    "model": p.model,
                    "api_key": if p.api_key.is_some() { "set" } else { "missing" },
                })
            })
            .collect();
        let mut bundled = alc_pkg::BundledSet::embedded().names();
        bundled.sort();
        json!({
            "name": "algocline",
            "version": VERSION,
            "compat_version": COMPAT_VERSION,
            "protocol_versions": PROTOCOL_VERSIONS,
            "home": {"path": self.home.display().to_string(), "source": self.home_source.label()},
            "database": self.database_path().display().to_string(),
            "config_files": config_files,
            "log_dir": {"resolved": log_dir.display().to_string(), "source": log_source},
            "log_enabled": self.log_enabled(),
            "tracing": if self.log_enabled() { "file + stderr" } else { "off" },
            "search_paths": search_paths,
            "packages_dir": self.packages_dir().display().to_string(),
            "project_root": self.project_root.as_ref().map(|p| p.display().to_string()),
            "bundled_packages": bundled,
            "default_answerer": self.mcp_default_answerer(),
            "default_provider": providers.default_name(),
            "providers": provider_list,
            "warnings": warnings,
        })
    }
}

#[cfg(test)]
mod tests;
