//! Diagnostic logging (interfaces.md §9.4): `tracing` events to stderr and to
//! `<log dir>/alc-YYYY-MM-DD.log` (UTC dates, a new file each day, the newest
//! [`KEEP_FILES`] kept).
//!
//! Levels (§5.2): the log file gets `--log-level` > `ALC_LOG_LEVEL` > `RUST_LOG` (a
//! filter such as `alc=debug,warn`) > `[log] level` > `info`; stderr gets `--log-level` >
//! `-q` (`error`) or `-v` (`info`, `-vv` `debug`, `-vvv` `trace`) > `ALC_LOG_LEVEL` >
//! `RUST_LOG` > `[log] stderr_level` > `warn`. A plain level applies to the engine's own
//! events; other libraries log at most warnings unless `RUST_LOG` names them. `off`
//! disables a destination; with both off nothing is created or written.
//!
//! What is logged: a start-up summary of the configuration (never a key), provider
//! requests (`alc_llm`), MCP tool calls (`alc_mcp`), package operations, session outcomes
//! and failed commands. Prompts, responses and keys never reach these events. A log file
//! that cannot be opened costs one warning on stderr, never the command.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use alc_config::Settings;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// How many daily log files are kept.
pub const KEEP_FILES: usize = 14;

/// Target of events whose message the command has already printed on stderr: they go
/// to the log file only.
pub const FILE_ONLY: &str = "alc::file_only";

/// `--color`: when stderr output may use ANSI colours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// When stderr is a terminal and `NO_COLOR` is unset or empty.
    #[default]
    Auto,
    /// Always (an explicit request beats `NO_COLOR`).
    Always,
    /// Never.
    Never,
}

/// `--log-level`: a diagnostic log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational events (provider requests, tool calls, start-up summary).
    Info,
    /// Debugging detail.
    Debug,
    /// Everything.
    Trace,
    /// Nothing, on stderr or in the log file.
    Off,
}

impl LogLevel {
    fn filter(self) -> LevelFilter {
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
            LogLevel::Off => LevelFilter::OFF,
        }
    }
}

/// What the command line says about diagnostics.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--log-level`.
    pub level: Option<LogLevel>,
    /// `-v` count.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
    /// `--color`.
    pub color: ColorWhen,
    /// The subcommand (`run`, `serve`, ...), for the start-up summary.
    pub command: &'static str,
}

/// Whether stderr output is coloured: `always` and `never` are obeyed; `auto` colours a
/// terminal unless `NO_COLOR` holds a non-empty value.
pub fn use_color(when: ColorWhen, no_color: Option<&str>, stderr_is_terminal: bool) -> bool {
    match when {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => stderr_is_terminal && no_color.is_none_or(str::is_empty),
    }
}

/// A resolved filter: a level for the engine's events, or a `RUST_LOG` directive list.
#[derive(Debug, Clone)]
enum Filter {
    Level(LevelFilter),
    Directives(Targets),
}

impl Filter {
    fn is_off(&self) -> bool {
        match self {
            Filter::Level(l) => *l == LevelFilter::OFF,
            Filter::Directives(t) => {
                t.default_level().unwrap_or(LevelFilter::OFF) == LevelFilter::OFF
                    && t.iter().all(|(_, l)| l == LevelFilter::OFF)
            }
        }
    }

    fn targets(&self) -> Targets {
        match self {
            Filter::Level(l) => Targets::new()
                .with_target("alc", *l)
                .with_default((*l).min(LevelFilter::WARN)),
            Filter::Directives(t) => t.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Filter::Level(l) => l.to_string().to_ascii_lowercase(),
            Filter::Directives(t) => t.to_string(),
        }
    }
}

/// Parses a configured level (`info`, ...) or, from `RUST_LOG`, a directive list.
fn parse_filter(value: &str, source: &str, warnings: &mut Vec<String>) -> Option<Filter> {
    let lower = value.trim().to_ascii_lowercase();
    if let Some(l) = [
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
        ("off", LogLevel::Off),
    ]
    .iter()
    .find(|(name, _)| *name == lower)
    {
        return Some(Filter::Level(l.1.filter()));
    }
    if source == "RUST_LOG" {
        match value.parse::<Targets>() {
            Ok(t) => return Some(Filter::Directives(t)),
            Err(e) => warnings.push(format!("RUST_LOG={value:?} ignored: {e}")),
        }
    }
    None
}

/// The file and stderr filters from the flags and the settings (see the module docs).
fn resolve(
    opts: &Options,
    settings: Option<&Settings>,
    warnings: &mut Vec<String>,
) -> (Filter, Filter) {
    if let Some(l) = opts.level {
        return (Filter::Level(l.filter()), Filter::Level(l.filter()));
    }
    let from_settings = |s: Option<alc_config::Sourced>, warnings: &mut Vec<String>| {
        s.and_then(|s| parse_filter(&s.value, &s.source, warnings))
    };
    let file = from_settings(settings.and_then(Settings::diag_file_level), warnings)
        .unwrap_or(Filter::Level(LevelFilter::INFO));
    let stderr = if opts.quiet {
        Filter::Level(LevelFilter::ERROR)
    } else if opts.verbose > 0 {
        Filter::Level(match opts.verbose {
            1 => LevelFilter::INFO,
            2 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        })
    } else {
        from_settings(settings.and_then(Settings::diag_stderr_level), warnings)
            .unwrap_or(Filter::Level(LevelFilter::WARN))
    };
    (file, stderr)
}

/// Installs the process-wide subscriber and logs the start-up summary. `settings` is
/// `None` when the configuration could not be loaded (the command reports that itself);
/// the log file then stays closed.
pub fn init(opts: &Options, settings: Option<&Settings>) {
    use std::io::IsTerminal;
    let mut warnings = Vec::new();
    let (file_filter, stderr_filter) = resolve(opts, settings, &mut warnings);
    let no_color = std::env::var("NO_COLOR").ok();
    let color = use_color(opts.color, no_color.as_deref(), io::stderr().is_terminal());

    let stderr_layer = (!stderr_filter.is_off()).then(|| {
        let not_file_only = tracing_subscriber::filter::filter_fn(|m| m.target() != FILE_ONLY);
        tracing_subscriber::fmt::layer()
            .with_writer(io::stderr)
            .with_ansi(color)
            .without_time()
            .with_target(false)
            .with_filter(stderr_filter.targets().and(not_file_only))
    });
    let mut file_path = None;
    let file_layer = match settings {
        Some(s) if !file_filter.is_off() => {
            let (dir, _) = s.log_dir();
            match DailyFile::open(&dir, KEEP_FILES) {
                Ok(f) => {
                    file_path = Some(f.current_path());
                    Some(
                        tracing_subscriber::fmt::layer()
                            .with_writer(f)
                            .with_ansi(false)
                            .with_filter(file_filter.targets()),
                    )
                }
                Err(e) => {
                    if !opts.quiet {
                        eprintln!(
                            "warning: diagnostic log disabled: cannot open a log file in {}: {e}",
                            dir.display()
                        );
                    }
                    None
                }
            }
        }
        _ => None,
    };
    let subscriber = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer);
    // Only fails when a subscriber is already installed (never, in this binary).
    let _ = tracing::subscriber::set_global_default(subscriber);

    for w in &warnings {
        tracing::warn!("{w}");
    }
    if let Some(s) = settings {
        summary(s, opts, &file_filter, &stderr_filter, file_path.as_deref());
    }
}

/// Removes userinfo, query and fragment from a URL (they may carry credentials).
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let rest = match rest.split_once('/') {
        Some((authority, path)) => {
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{host}/{path}")
        }
        None => rest.rsplit('@').next().unwrap_or(rest).to_string(),
    };
    match scheme {
        Some(s) => format!("{s}://{rest}"),
        None => rest,
    }
}

/// The start-up configuration summary (no secrets: keys appear as `set` / `missing`).
fn summary(s: &Settings, opts: &Options, file: &Filter, stderr: &Filter, path: Option<&Path>) {
    let providers = s.providers();
    let list: Vec<String> = providers
        .iter()
        .map(|p| {
            let kind = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            format!(
                "{}({kind}, {}, model {}, key {})",
                p.name,
                redact_url(&p.base_url),
                p.model.as_deref().unwrap_or("-"),
                if p.api_key.is_some() {
                    "set"
                } else {
                    "missing"
                }
            )
        })
        .collect();
    let engine = s.engine_config();
    tracing::info!(
        version = %env!("CARGO_PKG_VERSION"),
        command = %opts.command,
        pid = std::process::id(),
        home = %s.home.display(),
        home_source = %s.home_source.label(),
        config = %s.config_path.display(),
        config_loaded = s.config_loaded,
        project_root = %s.project_root.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
        log_file = %path.map(|p| p.display().to_string()).unwrap_or_else(|| "-".into()),
        file_level = %file.describe(),
        stderr_level = %stderr.describe(),
        default_answerer = %s.mcp_default_answerer(),
        default_provider = %providers.default_name().unwrap_or("-"),
        providers = %if list.is_empty() { "-".to_string() } else { list.join("; ") },
        workers = engine.workers,
        durability = ?engine.durability,
        transcripts = %s.log_transcripts(),
        warnings = s.warnings.len(),
        "alc started"
    );
}

/// The log file name of a UTC day (`YYYY-MM-DD`).
pub fn file_name(day: &str) -> String {
    format!("alc-{day}.log")
}

/// Whether `name` is a daily log file name (`alc-YYYY-MM-DD.log`).
pub fn is_log_file_name(name: &str) -> bool {
    let Some(day) = name
        .strip_prefix("alc-")
        .and_then(|r| r.strip_suffix(".log"))
    else {
        return false;
    };
    day.len() == 10
        && day.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
}

/// Deletes the oldest daily log files in `dir` so that at most `keep` remain; returns
/// the removed paths. Other files are never touched.
pub fn prune(dir: &Path, keep: usize) -> io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_log_file_name(n))
        .collect();
    // The date in the name sorts chronologically.
    names.sort();
    let excess = names.len().saturating_sub(keep);
    let mut removed = Vec::with_capacity(excess);
    for n in names.into_iter().take(excess) {
        let p = dir.join(n);
        std::fs::remove_file(&p)?;
        removed.push(p);
    }
    Ok(removed)
}

/// Today's UTC date, `YYYY-MM-DD`.
fn today() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    crate::answer::terminal::format_utc_ms(ms)[..10].to_string()
}

/// Creates the log directory (mode 0700 on Unix, parents included).
fn create_dir(dir: &Path) -> io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Opens (appending) a log file, mode 0600 on Unix when created.
fn open_file(path: &Path) -> io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// The daily log file writer: appends to today's `alc-YYYY-MM-DD.log`, switches to a
/// new file when the UTC date changes and then prunes old ones. Each event is written
/// with one `write` on an append-mode file, so concurrent processes do not interleave
/// lines.
pub struct DailyFile {
    dir: PathBuf,
    keep: usize,
    state: Mutex<FileState>,
}

struct FileState {
    day: String,
    file: Option<File>,
    /// A rotation failure was reported (reported once).
    warned: bool,
}

impl DailyFile {
    /// Creates `dir` if needed, opens today's file and prunes old files.
    pub fn open(dir: &Path, keep: usize) -> io::Result<DailyFile> {
        create_dir(dir)?;
        let day = today();
        let file = open_file(&dir.join(file_name(&day)))?;
        // Pruning is best effort: a file that cannot be removed is tried again next time.
        let _ = prune(dir, keep);
        Ok(DailyFile {
            dir: dir.to_path_buf(),
            keep,
            state: Mutex::new(FileState {
                day,
                file: Some(file),
                warned: false,
            }),
        })
    }

    /// The path of the file being written.
    pub fn current_path(&self) -> PathBuf {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.dir.join(file_name(&st.day))
    }
}

impl Write for &DailyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let day = today();
        if day != st.day {
            st.day = day;
            st.file = match open_file(&self.dir.join(file_name(&st.day))) {
                Ok(f) => {
                    let _ = prune(&self.dir, self.keep);
                    Some(f)
                }
                Err(e) => {
                    if !st.warned {
                        st.warned = true;
                        eprintln!(
                            "warning: diagnostic log disabled: cannot open a log file in {}: {e}",
                            self.dir.display()
                        );
                    }
                    None
                }
            };
        }
        if let Some(f) = st.file.as_mut() {
            // A failing disk must not fail the command; the event is dropped.
            let _ = f.write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for DailyFile {
    type Writer = &'a DailyFile;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("alc-diag-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn prune_keeps_the_newest_fourteen_daily_files_and_nothing_else_is_touched() {
        let dir = temp_dir("prune");
        let mut days = Vec::new();
        for month in [10, 11] {
            for day in 1..=10 {
                days.push(format!("2026-{month:02}-{day:02}"));
            }
        }
        // Created in shuffled order: the name, not the creation time, decides.
        for (i, d) in days.iter().enumerate().rev().filter(|(i, _)| i % 2 == 0) {
            std::fs::write(dir.join(file_name(d)), format!("{i}")).unwrap();
        }
        for (i, d) in days.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            std::fs::write(dir.join(file_name(d)), format!("{i}")).unwrap();
        }
        for other in ["notes.txt", "alc-latest.log", "alc-2020-01-01.log.bak"] {
            std::fs::write(dir.join(other), "x").unwrap();
        }
        let removed = prune(&dir, KEEP_FILES).unwrap();
        assert_eq!(removed.len(), 6);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut expected: Vec<String> = days[6..].iter().map(|d| file_name(d)).collect();
        expected
            .extend(["alc-2020-01-01.log.bak", "alc-latest.log", "notes.txt"].map(String::from));
        expected.sort();
        assert_eq!(left, expected);
        // Already within the limit: nothing more goes.
        assert!(prune(&dir, KEEP_FILES).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn daily_file_opens_todays_file_with_private_modes_and_prunes_on_open() {
        let base = temp_dir("open");
        let dir = base.join("logs");
        std::fs::create_dir_all(&dir).unwrap();
        for day in 1..=20 {
            std::fs::write(dir.join(file_name(&format!("2000-01-{day:02}"))), "old").unwrap();
        }
        let f = DailyFile::open(&dir, KEEP_FILES).unwrap();
        (&f).write_all(b"line one\n").unwrap();
        (&f).write_all(b"line two\n").unwrap();
        let path = f.current_path();
        assert_eq!(path, dir.join(file_name(&today())));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "line one\nline two\n"
        );
        let count = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            count, KEEP_FILES,
            "today's file plus the 13 newest old ones"
        );
        assert!(!dir.join(file_name("2000-01-07")).exists());
        assert!(dir.join(file_name("2000-01-08")).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let nested = base.join("a/b/logs");
            DailyFile::open(&nested, KEEP_FILES).unwrap();
            for d in [base.join("a"), base.join("a/b"), nested.clone()] {
                let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o700, "{}", d.display());
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn log_file_names() {
        assert!(is_log_file_name("alc-2026-11-26.log"));
        for bad in [
            "alc-2026-11-26.log.1",
            "alc-20261126.log",
            "alc-2026_11_26.log",
            "x-2026-11-26.log",
            "alc-2026-11-2a.log",
        ] {
            assert!(!is_log_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn color_choice() {
        assert!(use_color(ColorWhen::Always, Some("1"), false));
        assert!(!use_color(ColorWhen::Never, None, true));
        assert!(use_color(ColorWhen::Auto, None, true));
        assert!(use_color(ColorWhen::Auto, Some(""), true));
        assert!(!use_color(ColorWhen::Auto, Some("1"), true));
        assert!(!use_color(ColorWhen::Auto, None, false));
    }

    #[test]
    fn levels_follow_flags_then_environment_then_defaults() {
        let mut w = Vec::new();
        let opts = |level, verbose, quiet| Options {
            level,
            verbose,
            quiet,
            ..Options::default()
        };
        let (f, s) = resolve(&opts(None, 0, false), None, &mut w);
        assert_eq!((f.describe(), s.describe()), ("info".into(), "warn".into()));
        let (f, s) = resolve(&opts(None, 2, false), None, &mut w);
        assert_eq!(
            (f.describe(), s.describe()),
            ("info".into(), "debug".into())
        );
        let (_, s) = resolve(&opts(None, 0, true), None, &mut w);
        assert_eq!(s.describe(), "error");
        let (f, s) = resolve(&opts(Some(LogLevel::Off), 1, false), None, &mut w);
        assert!(f.is_off() && s.is_off());
        assert!(w.is_empty());
        assert!(parse_filter("alc=debug,warn", "RUST_LOG", &mut w).is_some());
        assert!(parse_filter("alc=debug", "config.toml [log] level", &mut w).is_none());
        assert!(parse_filter("alc=notalevel", "RUST_LOG", &mut w).is_none());
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn urls_lose_credentials() {
        assert_eq!(
            redact_url("https://user:pw@example.com/v1?key=abc"),
            "https://example.com/v1"
        );
        assert_eq!(
            redact_url("http://localhost:11434/v1"),
            "http://localhost:11434/v1"
        );
        assert_eq!(redact_url("https://u:p@host"), "https://host");
    }
}
