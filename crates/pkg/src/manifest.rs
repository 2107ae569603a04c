//! Project files (interfaces.md §6.6): `alc.toml`, `alc.lock` (version 1) and
//! `alc.local.toml`. Edits keep the rest of a file (comments included); every write is
//! atomic and happens under the project's `.alc-install.lock`.

use std::path::{Path, PathBuf};

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::error::PkgError;
use crate::fsutil::{atomic_write, FileLock};

/// `alc.toml`.
pub const ALC_TOML: &str = "alc.toml";
/// `alc.lock`.
pub const ALC_LOCK: &str = "alc.lock";
/// `alc.local.toml`.
pub const ALC_LOCAL_TOML: &str = "alc.local.toml";
/// The project lock file.
pub const INSTALL_LOCK: &str = ".alc-install.lock";

/// Takes the project's `.alc-install.lock` for the duration of an edit.
pub fn lock_project(root: &Path) -> Result<FileLock, PkgError> {
    FileLock::acquire(&root.join(INSTALL_LOCK))
}

fn read_doc(path: &Path) -> Result<Option<DocumentMut>, PkgError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(PkgError::io(format!("cannot read {}", path.display()), e)),
    };
    text.parse::<DocumentMut>()
        .map(Some)
        .map_err(|e| PkgError::Io(format!("{}: {}", path.display(), e.to_string().trim())))
}

/// A `[packages]` entry of `alc.toml` / `alc.local.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DepSpec {
    /// `name = "*"` or `name = "0.3.1"`.
    Version(String),
    /// `name = { path = "…" }` (relative to the project root).
    Path(String),
    /// `name = { git = "…", rev = "…" }`.
    Git {
        /// Repository URL.
        url: String,
        /// Revision, if recorded.
        rev: Option<String>,
    },
    /// Anything else (kept, ignored).
    Other,
}

fn dep_from_item(item: &Item) -> DepSpec {
    if let Some(s) = item.as_str() {
        return DepSpec::Version(s.to_string());
    }
    let get = |k: &str| -> Option<String> {
        if let Some(t) = item.as_table_like() {
            return t.get(k).and_then(|v| v.as_str()).map(str::to_string);
        }
        None
    };
    if let Some(p) = get("path") {
        return DepSpec::Path(p);
    }
    if let Some(url) = get("git") {
        return DepSpec::Git {
            url,
            rev: get("rev"),
        };
    }
    DepSpec::Other
}

fn packages_of(doc: &DocumentMut) -> Vec<(String, DepSpec)> {
    doc.get("packages")
        .and_then(|p| p.as_table_like())
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.to_string(), dep_from_item(v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The `[packages]` entries of `<root>/alc.toml` (empty when the file is missing).
pub fn read_dependencies(root: &Path) -> Result<Vec<(String, DepSpec)>, PkgError> {
    Ok(read_doc(&root.join(ALC_TOML))?
        .map(|d| packages_of(&d))
        .unwrap_or_default())
}

/// Variant entries of `<root>/alc.local.toml`: name → directory (absolute, or resolved
/// against the project root).
pub fn read_variants(root: &Path) -> Result<Vec<(String, PathBuf)>, PkgError> {
    Ok(read_doc(&root.join(ALC_LOCAL_TOML))?
        .map(|d| packages_of(&d))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(n, d)| match d {
            DepSpec::Path(p) => Some((n, root.join(p))),
            _ => None,
        })
        .collect())
}

/// Source of a lock entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockSource {
    /// Installed into `<home>/packages`.
    Installed,
    /// Path dependency (relative to the project root).
    Path(String),
    /// Git repository.
    Git {
        /// URL.
        url: String,
        /// Revision.
        rev: Option<String>,
    },
    /// Bundled collection.
    Bundled(String),
}

/// One `[[package]]` of `alc.lock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockEntry {
    /// Package name.
    pub name: String,
    /// Version, when known.
    pub version: Option<String>,
    /// Where it comes from.
    pub source: LockSource,
}

/// Reads `<root>/alc.lock`; `None` when missing. A version other than 1 is an error
/// naming the file; unknown fields are ignored.
pub fn read_lock(root: &Path) -> Result<Option<Vec<LockEntry>>, PkgError> {
    let path = root.join(ALC_LOCK);
    let Some(doc) = read_doc(&path)? else {
        return Ok(None);
    };
    match doc.get("version").and_then(|v| v.as_integer()) {
        Some(1) => {}
        other => {
            return Err(PkgError::Io(format!(
                "{}: unsupported lock file version {}",
                path.display(),
                other
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "(missing)".into())
            )))
        }
    }
    let mut out = Vec::new();
    if let Some(arr) = doc.get("package").and_then(|p| p.as_array_of_tables()) {
        for t in arr.iter() {
            let Some(name) = t.get("name").and_then(|v| v.as_str()) else {
                continue;
            };
            let version = t
                .get("version")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let src = t.get("source").and_then(|s| s.as_table_like());
            let sget = |k: &str| {
                src.and_then(|s| s.get(k))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            let source = match sget("type").as_deref() {
                Some("path") => LockSource::Path(sget("path").unwrap_or_default()),
                Some("git") => LockSource::Git {
                    url: sget("url").unwrap_or_default(),
                    rev: sget("rev"),
                },
                Some("bundled") => LockSource::Bundled(sget("collection").unwrap_or_default()),
                _ => LockSource::Installed,
            };
            out.push(LockEntry {
                name: name.to_string(),
                version,
                source,
            });
        }
    }
    Ok(Some(out))
}

fn q(s: &str) -> String {
    Value::from(s).to_string().trim().to_string()
}

/// Renders a lock file (only the documented fields).
pub fn render_lock(entries: &[LockEntry]) -> String {
    let mut s = String::from("version = 1\n");
    for e in entries {
        s.push_str(&format!("\n[[package]]\nname = {}\n", q(&e.name)));
        if let Some(v) = &e.version {
            s.push_str(&format!("version = {}\n", q(v)));
        }
        s.push_str("\n[package.source]\n");
        match &e.source {
            LockSource::Installed => s.push_str("type = \"installed\"\n"),
            LockSource::Path(p) => s.push_str(&format!("type = \"path\"\npath = {}\n", q(p))),
            LockSource::Git { url, rev } => {
                s.push_str(&format!("type = \"git\"\nurl = {}\n", q(url)));
                if let Some(r) = rev {
                    s.push_str(&format!("rev = {}\n", q(r)));
                }
            }
            LockSource::Bundled(c) => {
                s.push_str(&format!("type = \"bundled\"\ncollection = {}\n", q(c)))
            }
        }
    }
    s
}

/// Inserts or replaces the lock entry for `entry.name` (caller holds the project lock).
pub fn lock_upsert(root: &Path, entry: LockEntry) -> Result<(), PkgError> {
    let mut entries = read_lock(root)?.unwrap_or_default();
    entries.retain(|e| e.name != entry.name);
    entries.push(entry);
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    atomic_write(&root.join(ALC_LOCK), render_lock(&entries).as_bytes())
}

/// Removes the lock entry for `name`; returns whether one existed.
pub fn lock_remove(root: &Path, name: &str) -> Result<bool, PkgError> {
    let Some(mut entries) = read_lock(root)? else {
        return Ok(false);
    };
    let before = entries.len();
    entries.retain(|e| e.name != name);
    if entries.len() == before {
        return Ok(false);
    }
    atomic_write(&root.join(ALC_LOCK), render_lock(&entries).as_bytes())?;
    Ok(true)
}

fn edit_packages(
    path: &Path,
    create: bool,
    f: impl FnOnce(&mut Table) -> bool,
) -> Result<bool, PkgError> {
    let mut doc = match read_doc(path)? {
        Some(d) => d,
        None if create => DocumentMut::new(),
        None => return Ok(false),
    };
    if doc.get("packages").is_none() {
        if !create {
            return Ok(false);
        }
        doc.insert("packages", Item::Table(Table::new()));
    }
    let Some(t) = doc.get_mut("packages").and_then(|p| p.as_table_mut()) else {
        return Err(PkgError::Io(format!(
            "{}: [packages] is not a table",
            path.display()
        )));
    };
    if !f(t) {
        return Ok(false);
    }
    atomic_write(path, doc.to_string().as_bytes())?;
    Ok(true)
}

/// Sets `[packages] name = value` in `alc.toml` (created if missing).
pub fn set_dependency(root: &Path, name: &str, value: Value) -> Result<(), PkgError> {
    edit_packages(&root.join(ALC_TOML), true, |t| {
        t.insert(name, Item::Value(value));
        true
    })?;
    Ok(())
}

/// Removes `name` from `[packages]` of `alc.toml`; returns whether it was there.
pub fn remove_dependency(root: &Path, name: &str) -> Result<bool, PkgError> {
    edit_packages(&root.join(ALC_TOML), false, |t| t.remove(name).is_some())
}

/// Writes `[packages.<name>] path = "<path>"` into `alc.local.toml`.
pub fn set_variant(root: &Path, name: &str, path: &str) -> Result<(), PkgError> {
    edit_packages(&root.join(ALC_LOCAL_TOML), true, |t| {
        let mut e = Table::new();
        e.insert("path", toml_edit::value(path));
        t.insert(name, Item::Table(e));
        true
    })?;
    Ok(())
}

/// Removes the variant entry `name` from `alc.local.toml`; returns whether it existed.
pub fn remove_variant(root: &Path, name: &str) -> Result<bool, PkgError> {
    edit_packages(&root.join(ALC_LOCAL_TOML), false, |t| {
        t.remove(name).is_some()
    })
}

/// Path dependencies `(name, directory)` and warnings.
pub type PathDeps = (Vec<(String, PathBuf)>, Vec<String>);

/// Project path dependencies: from `alc.lock` (`type = "path"`), and from `alc.toml`
/// `{ path = … }` entries that have no lock entry (each reported in the warnings).
pub fn path_dependencies(root: &Path) -> Result<PathDeps, PkgError> {
    let lock = read_lock(root)?;
    let deps = read_dependencies(root)?;
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    let locked: Vec<LockEntry> = lock.clone().unwrap_or_default();
    for e in &locked {
        if let LockSource::Path(p) = &e.source {
            out.push((e.name.clone(), root.join(p)));
        }
    }
    for (name, d) in deps {
        if let DepSpec::Path(p) = d {
            if !locked.iter().any(|e| e.name == name) {
                if lock.is_some() {
                    warnings.push(format!(
                        "path dependency '{name}' is declared in alc.toml but missing from alc.lock"
                    ));
                }
                out.push((name, root.join(p)));
            }
        }
    }
    Ok((out, warnings))
}
