//! Host services: what the engine needs from its embedder (engine.md §9).
//!
//! The clock and module sources are traits so tests can freeze time and serve
//! packages from memory, and so the package crate can plug in the full resolution
//! chain (variant, project, `ALC_PACKAGES_PATH`, home, bundled).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::card_store::{CardStore, FileCardStore, MemoryCardStore};

/// Wall-clock and monotonic time as scripts see it.
pub trait Clock: Send + Sync + 'static {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
    /// A monotonic reading, used for `os.clock`.
    fn monotonic(&self) -> Duration;
}

/// The real clock.
#[derive(Debug)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
    fn monotonic(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A clock that only moves when told to (tests). Its monotonic reading never moves, so
/// `os.clock()` returns `0.0` under it.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock frozen at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        ManualClock {
            now: AtomicI64::new(now_ms),
        }
    }
    /// Moves the clock forward.
    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
    fn monotonic(&self) -> Duration {
        Duration::ZERO
    }
}

/// One module's source as the resolver found it.
#[derive(Clone, Debug)]
pub struct ModuleFile {
    /// Lua source text.
    pub source: Vec<u8>,
    /// Logical path `<package>/<relative path>` (used as chunk name; never a host path).
    pub logical_path: String,
}

/// Largest package data file `io.open` reads (16 MiB).
pub const MAX_DATA_FILE_BYTES: u64 = 16 << 20;

/// The result of reading a package data file for `io.open` (lua-api.md §1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataFile {
    /// The file's content.
    Content(Vec<u8>),
    /// No installed package (sources 1–5 of §1.8) has that name.
    NoPackage,
    /// The package has no regular file at that path.
    Missing,
    /// The path leaves the package directory (through a symlink).
    Outside,
    /// The file is larger than [`MAX_DATA_FILE_BYTES`].
    TooLarge,
}

/// Resolves `require` names to sources.
pub trait ModuleSource: Send + Sync + 'static {
    /// Finds module `name` under resolver profile `resolver`. `Err` carries the
    /// "not found" note appended to Lua's error (starting with `"\n\t"`).
    fn resolve(&self, resolver: &str, name: &str) -> Result<ModuleFile, String>;

    /// Reads file `rel` (a checked relative path: no empty, `.` or `..` segments, no `\`
    /// or NUL) from the directory `require` loads package `pkg` from. Sources that hold no
    /// package directories refuse every read.
    fn read_data_file(&self, resolver: &str, pkg: &str, rel: &str) -> DataFile {
        let _ = (resolver, pkg, rel);
        DataFile::NoPackage
    }
}

/// Reads `dir/rel` for `io.open`: the canonical path must stay inside the canonical
/// `dir`, name a regular file and fit [`MAX_DATA_FILE_BYTES`].
pub fn read_data_file_in(dir: &Path, rel: &str) -> DataFile {
    let Ok(base) = dir.canonicalize() else {
        return DataFile::Missing;
    };
    let joined = base.join(rel);
    let path = match joined.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            // A dangling symlink is refused like one that leaves the package.
            return if std::fs::symlink_metadata(&joined).is_ok() {
                DataFile::Outside
            } else {
                DataFile::Missing
            };
        }
    };
    if !path.starts_with(&base) {
        return DataFile::Outside;
    }
    let Ok(meta) = std::fs::metadata(&path) else {
        return DataFile::Missing;
    };
    if !meta.is_file() {
        return DataFile::Missing;
    }
    if meta.len() > MAX_DATA_FILE_BYTES {
        return DataFile::TooLarge;
    }
    use std::io::Read;
    let Ok(f) = std::fs::File::open(&path) else {
        return DataFile::Missing;
    };
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // Read one byte past the cap, in case the file grew since `metadata`.
    match f.take(MAX_DATA_FILE_BYTES + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > MAX_DATA_FILE_BYTES => DataFile::TooLarge,
        Ok(_) => DataFile::Content(buf),
        Err(_) => DataFile::Missing,
    }
}

/// Resolves nothing (sessions that only run inline code).
#[derive(Debug, Default)]
pub struct NoModules;

impl ModuleSource for NoModules {
    fn resolve(&self, _resolver: &str, name: &str) -> Result<ModuleFile, String> {
        let pkg = name.split('.').next().unwrap_or(name);
        Err(format!("\n\tno package '{pkg}' in any package root"))
    }
}

/// Package roots on disk searched in order, then packages held in memory.
///
/// A root contains package directories; module `pkg.a.b` loads `<root>/pkg/a/b.lua`,
/// else `<root>/pkg/a/b/init.lua`. The first source that has the package is the only
/// one consulted for it (a missing sub-module never falls through).
#[derive(Debug, Default, Clone)]
pub struct PackageRoots {
    /// Directories holding package directories, in priority order, with a label.
    pub roots: Vec<(String, PathBuf)>,
    /// In-memory packages: package name → (relative path → source).
    pub memory: BTreeMap<String, BTreeMap<String, String>>,
    /// The home's scenarios directory: the pseudo-package `scenarios`, consulted after every
    /// package (lua-api.md §1.8 source 6); `scenarios.<name>` loads `<dir>/<name>.lua`.
    pub scenarios: Option<PathBuf>,
}

impl PackageRoots {
    /// Roots from a list of directories.
    pub fn new(roots: Vec<(String, PathBuf)>) -> Self {
        PackageRoots {
            roots,
            memory: BTreeMap::new(),
            scenarios: None,
        }
    }

    /// Sets the scenarios directory (`<home>/scenarios`) behind the `scenarios` pseudo-package.
    pub fn with_scenarios_dir(mut self, dir: PathBuf) -> Self {
        self.scenarios = Some(dir);
        self
    }

    /// Adds an in-memory package file (e.g. `("cot", "init.lua", source)`).
    pub fn with_memory_file(mut self, pkg: &str, rel: &str, source: &str) -> Self {
        self.memory
            .entry(pkg.to_string())
            .or_default()
            .insert(rel.to_string(), source.to_string());
        self
    }
}

fn candidates(rest: &[&str]) -> Vec<String> {
    if rest.is_empty() {
        return vec!["init.lua".to_string()];
    }
    let joined = rest.join("/");
    vec![format!("{joined}.lua"), format!("{joined}/init.lua")]
}

fn read_inside(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    let base = dir.canonicalize().ok()?;
    let path = base.join(rel).canonicalize().ok()?;
    if !path.starts_with(&base) || !path.is_file() {
        return None;
    }
    std::fs::read(path).ok()
}

impl ModuleSource for PackageRoots {
    fn resolve(&self, _resolver: &str, name: &str) -> Result<ModuleFile, String> {
        let parts: Vec<&str> = name.split('.').collect();
        let (pkg, rest) = (parts[0], &parts[1..]);
        let wanted = candidates(rest);
        for (label, root) in &self.roots {
            let dir = root.join(pkg);
            if !dir.join("init.lua").is_file() {
                continue;
            }
            for rel in &wanted {
                if let Some(source) = read_inside(&dir, rel) {
                    return Ok(ModuleFile {
                        source,
                        logical_path: format!("{pkg}/{rel}"),
                    });
                }
            }
            return Err(format!(
                "\n\tpackage '{pkg}' ({label}) has no file for '{name}'"
            ));
        }
        if let Some(files) = self.memory.get(pkg) {
            for rel in &wanted {
                if let Some(src) = files.get(rel) {
                    return Ok(ModuleFile {
                        source: src.as_bytes().to_vec(),
                        logical_path: format!("{pkg}/{rel}"),
                    });
                }
            }
            return Err(format!(
                "\n\tpackage '{pkg}' (bundled) has no file for '{name}'"
            ));
        }
        if let (Some(dir), "scenarios") = (&self.scenarios, pkg) {
            // Source 6: `scenarios.<name>` is one file `<name>.lua`; segments follow the module
            // name rules and the file must stay inside the directory.
            let ok = !rest.is_empty()
                && rest.iter().all(|s| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                });
            if ok {
                let rel = format!("{}.lua", rest.join("/"));
                if let Some(source) = read_inside(dir, &rel) {
                    return Ok(ModuleFile {
                        source,
                        logical_path: format!("scenarios/{rel}"),
                    });
                }
            }
            return Err(format!(
                "\n\tpackage 'scenarios' (scenarios) has no file for '{name}'"
            ));
        }
        let labels: Vec<&str> = self.roots.iter().map(|(l, _)| l.as_str()).collect();
        let mut sources = labels.join(", ");
        if !self.memory.is_empty() {
            if !sources.is_empty() {
                sources.push_str(", ");
            }
            sources.push_str("bundled");
        }
        if sources.is_empty() {
            sources.push_str("any package root");
        }
        Err(format!("\n\tno package '{pkg}' in {sources}"))
    }

    fn read_data_file(&self, _resolver: &str, pkg: &str, rel: &str) -> DataFile {
        if !valid_package_name(pkg) {
            return DataFile::NoPackage;
        }
        for (_, root) in &self.roots {
            let dir = root.join(pkg);
            if dir.join("init.lua").is_file() {
                return read_data_file_in(&dir, rel);
            }
        }
        match self.memory.get(pkg) {
            Some(files) => match files.get(rel) {
                Some(src) if src.len() as u64 > MAX_DATA_FILE_BYTES => DataFile::TooLarge,
                Some(src) => DataFile::Content(src.as_bytes().to_vec()),
                None => DataFile::Missing,
            },
            None => DataFile::NoPackage,
        }
    }
}

/// Package names: `^[A-Za-z_][A-Za-z0-9_-]{0,63}$` (interfaces.md §6.2).
pub fn valid_package_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
}

/// Everything the engine asks of its embedder.
#[derive(Clone)]
pub struct HostServices {
    /// `require` resolution.
    pub modules: Arc<dyn ModuleSource>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Process variables `os.getenv` may return (already filtered by `[sandbox] env_allow`).
    pub env_allow: Arc<BTreeMap<String, String>>,
    /// Environment values of every session's `alc.env` (and so `os.getenv`) for the keys its
    /// spawn's `spec.env` and `ctx.env.inject` leave out: the embedder's configured sources
    /// (a dotenv file, allowed process variables). Never journaled; every adoption —
    /// explicit, implicit or at start — supplies them again, so a recovered session replays
    /// as long as the values it read are unchanged.
    pub env: Arc<BTreeMap<String, String>>,
    /// `alc.state` storage (lua-api.md §2.8).
    pub state: Arc<dyn alc_store::StateStore>,
    /// `state` shares the journal's database connection (`SqliteJournal::state_store` of the
    /// journal handle given to `Engine::start`): writing `alc.state` calls then commit in one
    /// transaction with their `effect` record (`Journal::append_with`), so a crash never
    /// repeats them. Leave `false` for any other store.
    pub state_shares_journal: bool,
    /// `alc.card` storage (lua-api.md §2.9): a [`FileCardStore`] over `<home>/cards` in the
    /// CLI and the server, a [`MemoryCardStore`] by default.
    pub cards: Arc<dyn CardStore>,
    /// Trusted mode (`[sandbox] trusted = true` in the user's `config.toml` only): sessions
    /// get the stock `io`, `os.execute`, `os.remove`, `os.rename`, `os.tmpname`, the real
    /// `os.getenv`, `dofile`, `loadfile` (text chunks) and `package.searchpath`
    /// (lua-api.md §1). Their effects are not journaled. Off by default.
    pub trusted: bool,
}

impl Default for HostServices {
    fn default() -> Self {
        HostServices {
            modules: Arc::new(NoModules),
            clock: Arc::new(SystemClock::default()),
            env_allow: Arc::new(BTreeMap::new()),
            env: Arc::new(BTreeMap::new()),
            state: Arc::new(alc_store::MemoryStateStore::new()),
            state_shares_journal: false,
            cards: Arc::new(MemoryCardStore::new()),
            trusted: false,
        }
    }
}
