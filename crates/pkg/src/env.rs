//! Home, project root and package roots (interfaces.md §5.1, §5.2, §5.5).

use std::path::{Path, PathBuf};

use crate::bundled::BundledSet;
use crate::error::PkgError;

/// Home = explicit (`--home`) > `ALC_HOME` > `~/.algocline`.
pub fn resolve_home(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(h) = std::env::var_os("ALC_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h);
    }
    let base = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    base.join(".algocline")
}

/// `ALC_PACKAGES_PATH` split on `:` (`;` on Windows); empty entries dropped.
pub fn packages_path_from_env() -> Vec<PathBuf> {
    let Some(v) = std::env::var_os("ALC_PACKAGES_PATH") else {
        return Vec::new();
    };
    std::env::split_paths(&v)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// `ALC_PKG_STRICT` is `1` or `true`.
pub fn strict_from_env() -> bool {
    matches!(
        std::env::var("ALC_PKG_STRICT")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Ok("1") | Ok("true")
    )
}

/// Project root (§5.5): explicit (must be a directory, else `invalid_params`) >
/// `ALC_PROJECT_ROOT` > first ancestor of `cwd` holding `alc.toml` > none.
pub fn discover_project_root(
    explicit: Option<&Path>,
    cwd: Option<&Path>,
) -> Result<Option<PathBuf>, PkgError> {
    if let Some(p) = explicit {
        if !p.is_dir() {
            return Err(PkgError::InvalidParams(format!(
                "project_root '{}' is not a directory",
                p.display()
            )));
        }
        return Ok(Some(absolute(p)));
    }
    if let Some(v) = std::env::var_os("ALC_PROJECT_ROOT").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        if p.is_dir() {
            return Ok(Some(absolute(&p)));
        }
    }
    let start = match cwd {
        Some(c) => c.to_path_buf(),
        None => match std::env::current_dir() {
            Ok(c) => c,
            Err(_) => return Ok(None),
        },
    };
    let mut cur: Option<&Path> = Some(&start);
    while let Some(d) = cur {
        if d.join("alc.toml").is_file() {
            return Ok(Some(absolute(d)));
        }
        cur = d.parent();
    }
    Ok(None)
}

/// Absolute form of `p` (canonical when it exists).
pub fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Everything a package operation needs to know about its surroundings.
#[derive(Clone, Debug)]
pub struct PkgEnv {
    /// Resolved home directory.
    pub home: PathBuf,
    /// Project root, if any (project files are not consulted without one).
    pub project_root: Option<PathBuf>,
    /// `ALC_PACKAGES_PATH` roots, in order.
    pub packages_path: Vec<PathBuf>,
    /// `ALC_PKG_STRICT`: development links in `<home>/packages` are not followed.
    pub strict: bool,
    /// Bundled packages (resolution source 5, `alc init`).
    pub bundled: BundledSet,
}

impl PkgEnv {
    /// From the process environment: `home` override (`--home`), explicit project root,
    /// `ALC_PACKAGES_PATH`, `ALC_PKG_STRICT`, and the embedded bundled set.
    pub fn from_env(home: Option<&Path>, project_root: Option<&Path>) -> Result<Self, PkgError> {
        Ok(PkgEnv {
            home: resolve_home(home),
            project_root: discover_project_root(project_root, None)?,
            packages_path: packages_path_from_env(),
            strict: strict_from_env(),
            bundled: BundledSet::embedded(),
        })
    }

    /// A fixed environment (tests, embedders): no project, no extra roots, no bundled set.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        PkgEnv {
            home: home.into(),
            project_root: None,
            packages_path: Vec::new(),
            strict: false,
            bundled: BundledSet::default(),
        }
    }

    /// Same environment with another project root.
    pub fn with_project_root(mut self, root: Option<PathBuf>) -> Self {
        self.project_root = root;
        self
    }

    /// `<home>/packages`.
    pub fn packages_dir(&self) -> PathBuf {
        self.home.join("packages")
    }
    /// `<home>/scenarios`.
    pub fn scenarios_dir(&self) -> PathBuf {
        self.home.join("scenarios")
    }
    /// `<home>/cards`.
    pub fn cards_dir(&self) -> PathBuf {
        self.home.join("cards")
    }

    /// The project root for one call: explicit (validated) else this environment's.
    pub fn project_for(&self, explicit: Option<&Path>) -> Result<Option<PathBuf>, PkgError> {
        match explicit {
            Some(p) => discover_project_root(Some(p), None),
            None => Ok(self.project_root.clone()),
        }
    }
}
