//! The `require` chain (interfaces.md §6.7, lua-api.md §1.8).

use std::path::{Path, PathBuf};

use alc_engine::{read_data_file_in, DataFile, ModuleFile, ModuleSource, MAX_DATA_FILE_BYTES};

use crate::env::PkgEnv;
use crate::fsutil::is_symlink;
use crate::manifest;

/// The source that binds a package name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// `alc.local.toml` variant entry.
    Variant,
    /// Project path dependency (`alc.lock`, else `alc.toml`).
    Project,
    /// An `ALC_PACKAGES_PATH` root.
    PackagesPath,
    /// `<home>/packages` (copies and development links).
    Global,
    /// Embedded in the binary.
    Bundled,
    /// The `scenarios` pseudo-package.
    Scenarios,
}

impl SourceKind {
    /// Label used in not-found messages and listings.
    pub fn label(self) -> &'static str {
        match self {
            SourceKind::Variant => "variant",
            SourceKind::Project => "project",
            SourceKind::PackagesPath => "ALC_PACKAGES_PATH",
            SourceKind::Global => "global",
            SourceKind::Bundled => "bundled",
            SourceKind::Scenarios => "scenarios",
        }
    }
}

/// Where a package name is bound.
#[derive(Clone, Debug)]
pub struct Binding {
    /// Which source.
    pub kind: SourceKind,
    /// Package directory on disk (`None` for bundled packages).
    pub dir: Option<PathBuf>,
    /// The directory is a development link in `<home>/packages`.
    pub linked: bool,
}

/// The full resolution chain over a [`PkgEnv`]. Nothing is cached: every call reads
/// the project files and package roots afresh.
#[derive(Clone, Debug)]
pub struct Resolver {
    env: PkgEnv,
}

impl Resolver {
    /// A resolver over `env`.
    pub fn new(env: PkgEnv) -> Self {
        Resolver { env }
    }

    /// The environment this resolver reads.
    pub fn env(&self) -> &PkgEnv {
        &self.env
    }

    /// Every binding of `pkg` across sources 1–5 in priority order (first = active).
    pub fn bindings(&self, pkg: &str) -> Vec<Binding> {
        let mut out = Vec::new();
        if let Some(root) = &self.env.project_root {
            if let Ok(vs) = manifest::read_variants(root) {
                for (n, dir) in vs {
                    if n == pkg {
                        out.push(Binding {
                            kind: SourceKind::Variant,
                            dir: Some(dir),
                            linked: false,
                        });
                    }
                }
            }
            if let Ok((deps, _)) = manifest::path_dependencies(root) {
                for (n, dir) in deps {
                    if n == pkg {
                        out.push(Binding {
                            kind: SourceKind::Project,
                            dir: Some(dir),
                            linked: false,
                        });
                        break;
                    }
                }
            }
        }
        for root in &self.env.packages_path {
            let dir = root.join(pkg);
            if dir.join("init.lua").is_file() {
                out.push(Binding {
                    kind: SourceKind::PackagesPath,
                    dir: Some(dir),
                    linked: false,
                });
            }
        }
        let dir = self.env.packages_dir().join(pkg);
        let linked = is_symlink(&dir);
        if (!linked || !self.env.strict) && dir.join("init.lua").is_file() {
            out.push(Binding {
                kind: SourceKind::Global,
                dir: Some(dir),
                linked,
            });
        }
        if self.env.bundled.has(pkg) {
            out.push(Binding {
                kind: SourceKind::Bundled,
                dir: None,
                linked: false,
            });
        }
        out
    }

    /// The binding `require` uses for `pkg` (sources 1–6), if any.
    pub fn locate(&self, pkg: &str) -> Option<Binding> {
        if let Some(b) = self.bindings(pkg).into_iter().next() {
            return Some(b);
        }
        (pkg == "scenarios").then(|| Binding {
            kind: SourceKind::Scenarios,
            dir: Some(self.env.scenarios_dir()),
            linked: false,
        })
    }

    /// Search paths in order, as `(path, source label)` (for listings).
    pub fn search_paths(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(root) = &self.env.project_root {
            out.push((
                root.join(manifest::ALC_LOCAL_TOML).display().to_string(),
                "variant".to_string(),
            ));
            out.push((
                root.join(manifest::ALC_TOML).display().to_string(),
                "project".to_string(),
            ));
        }
        for r in &self.env.packages_path {
            out.push((r.display().to_string(), "ALC_PACKAGES_PATH".to_string()));
        }
        out.push((
            self.env.packages_dir().display().to_string(),
            "global".to_string(),
        ));
        out.push(("(embedded)".to_string(), "bundled".to_string()));
        out.push((
            self.env.scenarios_dir().display().to_string(),
            "scenarios".to_string(),
        ));
        out
    }
}

/// Candidate relative paths for the sub-module segments `rest`.
fn candidates(rest: &[&str]) -> Vec<String> {
    if rest.is_empty() {
        return vec!["init.lua".to_string()];
    }
    let joined = rest.join("/");
    vec![format!("{joined}.lua"), format!("{joined}/init.lua")]
}

/// Reads `dir/rel` only if its canonical path stays inside the canonical `dir`.
fn read_inside(dir: &Path, rel: &str) -> Option<Vec<u8>> {
    let base = dir.canonicalize().ok()?;
    let path = base.join(rel).canonicalize().ok()?;
    if !path.starts_with(&base) || !path.is_file() {
        return None;
    }
    std::fs::read(path).ok()
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

impl ModuleSource for Resolver {
    fn resolve(&self, _resolver: &str, name: &str) -> Result<ModuleFile, String> {
        let parts: Vec<&str> = name.split('.').collect();
        let (pkg, rest) = (parts[0], &parts[1..]);
        let not_found = || {
            format!(
                "\n\tno package '{pkg}' in variant, project, ALC_PACKAGES_PATH, global, bundled"
            )
        };
        if !crate::valid_package_name(pkg) || !rest.iter().all(|s| valid_segment(s)) {
            return Err(not_found());
        }
        let Some(binding) = self.locate(pkg) else {
            return Err(not_found());
        };
        let wanted = if binding.kind == SourceKind::Scenarios {
            if rest.is_empty() {
                Vec::new()
            } else {
                vec![format!("{}.lua", rest.join("/"))]
            }
        } else {
            candidates(rest)
        };
        for rel in &wanted {
            let found = match &binding.dir {
                Some(dir) => read_inside(dir, rel),
                None => self.env.bundled.file(pkg, rel).map(<[u8]>::to_vec),
            };
            if let Some(source) = found {
                return Ok(ModuleFile {
                    source,
                    logical_path: format!("{pkg}/{rel}"),
                });
            }
        }
        Err(format!(
            "\n\tpackage '{pkg}' ({}) has no file for '{name}'",
            binding.kind.label()
        ))
    }

    /// `io.open` data files: only packages bound by sources 1–5 (never `scenarios`).
    fn read_data_file(&self, _resolver: &str, pkg: &str, rel: &str) -> DataFile {
        if !crate::valid_package_name(pkg) {
            return DataFile::NoPackage;
        }
        let Some(binding) = self.bindings(pkg).into_iter().next() else {
            return DataFile::NoPackage;
        };
        match &binding.dir {
            Some(dir) => read_data_file_in(dir, rel),
            None => match self.env.bundled.file(pkg, rel) {
                Some(b) if b.len() as u64 > MAX_DATA_FILE_BYTES => DataFile::TooLarge,
                Some(b) => DataFile::Content(b.to_vec()),
                None => DataFile::Missing,
            },
        }
    }
}
