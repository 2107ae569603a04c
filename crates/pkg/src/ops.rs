//! List, remove, link, unlink and init (interfaces.md §2.11, §6.8, §4.2).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::env::{absolute, PkgEnv};
use crate::error::PkgError;
use crate::fsutil::{
    atomic_write, create_private_dir, is_symlink, now_ms, remove_any, symlink_dir, FileLock,
};
use crate::install::{place, Placed, ProjectFiles};
use crate::manifest;
use crate::records::{self, read_records};
use crate::resolve::{Binding, Resolver, SourceKind};
use crate::{check_name, meta};

/// Summary fields of a listing entry.
pub const SUMMARY_FIELDS: &[&str] = &[
    "name",
    "scope",
    "version",
    "active",
    "resolved_source_path",
    "resolved_source_kind",
];

/// Parameters of `alc_pkg_list`.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Explicit project root.
    pub project_root: Option<PathBuf>,
    /// Maximum entries (default 50; ≤ 0 = all).
    pub limit: Option<i64>,
    /// Sort keys, comma-separated, `-` = descending (default `-active,-installed_at`).
    pub sort: Option<String>,
    /// Exact-match filter per key.
    pub filter: Option<Map<String, Value>>,
    /// Fields to return (overrides `verbose`).
    pub fields: Option<Vec<String>>,
    /// `summary` (default) or `full`.
    pub verbose: Option<String>,
}

/// One search path of a listing.
#[derive(Clone, Debug, Serialize)]
pub struct SearchPath {
    /// Directory or file.
    pub path: String,
    /// Source label.
    pub source: String,
}

/// Result of `alc_pkg_list`.
#[derive(Clone, Debug, Serialize)]
pub struct ListReport {
    /// Entries (objects with the selected fields).
    pub packages: Vec<Value>,
    /// Where packages are looked up, in order.
    pub search_paths: Vec<SearchPath>,
    /// Project root in effect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_root: Option<String>,
    /// `alc.lock` path, when it exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lockfile_path: Option<String>,
    /// Non-fatal problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

fn scope_label(k: SourceKind) -> &'static str {
    match k {
        SourceKind::PackagesPath => "packages_path",
        other => other.label(),
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| crate::valid_package_name(n))
                .collect()
        })
        .unwrap_or_default()
}

fn cmp_json(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (Value::Null, Value::Null) => Equal,
        (Value::Null, _) => Less,
        (_, Value::Null) => Greater,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .unwrap_or(0.0)
            .partial_cmp(&y.as_f64().unwrap_or(0.0))
            .unwrap_or(Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// Lists packages across all sources without executing any package code.
pub fn list(env: &PkgEnv, opts: &ListOptions) -> Result<ListReport, PkgError> {
    let project = env.project_for(opts.project_root.as_deref())?;
    let env = env.clone().with_project_root(project.clone());
    let resolver = Resolver::new(env.clone());
    let records = read_records(&env);
    let mut warnings = Vec::new();

    let mut names = BTreeSet::new();
    if let Some(root) = &project {
        for (n, _) in manifest::read_variants(root)? {
            names.insert(n);
        }
        let (deps, w) = manifest::path_dependencies(root)?;
        warnings.extend(w);
        for (n, _) in deps {
            names.insert(n);
        }
    }
    for r in &env.packages_path {
        names.extend(names_in(r));
    }
    let global = env.packages_dir();
    names.extend(names_in(&global));
    names.extend(env.bundled.names());

    let mut entries: Vec<Map<String, Value>> = Vec::new();
    for name in &names {
        let mut bindings: Vec<Binding> = resolver.bindings(name);
        // A broken (or, under ALC_PKG_STRICT, unfollowed) link in the global directory.
        let gdir = global.join(name);
        if !bindings.iter().any(|b| b.kind == SourceKind::Global)
            && fs::symlink_metadata(&gdir).is_ok()
        {
            let pos = bindings
                .iter()
                .position(|b| b.kind > SourceKind::Global)
                .unwrap_or(bindings.len());
            bindings.insert(
                pos,
                Binding {
                    kind: SourceKind::Global,
                    dir: Some(gdir.clone()),
                    linked: is_symlink(&gdir),
                },
            );
        }
        let usable = |b: &Binding| match &b.dir {
            None => true,
            Some(d) => d.join("init.lua").is_file() && !(b.linked && env.strict),
        };
        let active_idx = bindings
            .iter()
            .position(|b| b.kind < SourceKind::Global || usable(b));
        let active = active_idx.map(|i| bindings[i].clone());
        for (i, b) in bindings.iter().enumerate() {
            let is_active = Some(i) == active_idx;
            let broken = b
                .dir
                .as_ref()
                .is_some_and(|d| !d.join("init.lua").is_file());
            let m = match &b.dir {
                Some(d) => meta::read_meta(d),
                None => env
                    .bundled
                    .file(name, "init.lua")
                    .and_then(|s| meta::extract_meta(&String::from_utf8_lossy(s))),
            };
            let version = m
                .as_ref()
                .and_then(|m| m.get("version"))
                .cloned()
                .unwrap_or(Value::Null);
            let rec = (b.kind == SourceKind::Global && !b.linked)
                .then(|| records.get(name))
                .flatten();
            let link_target = if b.linked {
                b.dir
                    .as_ref()
                    .and_then(|d| fs::read_link(d).ok())
                    .map(|t| t.display().to_string())
            } else {
                None
            };
            let (source, source_type) = match (b.kind, rec) {
                (SourceKind::Bundled, _) => (json!("algocline"), "bundled"),
                (SourceKind::Global, _) if b.linked => (json!(link_target), "link"),
                (SourceKind::Global, Some(r)) => (json!(r.install_source), r.source_type.as_str()),
                (SourceKind::Global, None) => (Value::Null, "installed"),
                (SourceKind::Variant, _) => (
                    json!(b.dir.as_ref().map(|d| d.display().to_string())),
                    "variant",
                ),
                (_, _) => (
                    json!(b.dir.as_ref().map(|d| d.display().to_string())),
                    "path",
                ),
            };
            let (overrides, override_paths): (Vec<Value>, Vec<Value>) = if is_active {
                bindings
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, o)| {
                        (
                            json!(scope_label(o.kind)),
                            json!(o.dir.as_ref().map(|d| d.display().to_string())),
                        )
                    })
                    .unzip()
            } else {
                (Vec::new(), Vec::new())
            };
            let error = if broken {
                json!("no init.lua in the package directory")
            } else if m.is_none() {
                json!("no M.meta table literal found")
            } else {
                Value::Null
            };
            let mut e = Map::new();
            e.insert("name".into(), json!(name));
            e.insert("scope".into(), json!(scope_label(b.kind)));
            e.insert("version".into(), version);
            e.insert("active".into(), json!(is_active));
            e.insert(
                "resolved_source_path".into(),
                json!(active
                    .as_ref()
                    .and_then(|a| a.dir.as_ref())
                    .map(|d| d.display().to_string())),
            );
            e.insert(
                "resolved_source_kind".into(),
                json!(active.as_ref().map(|a| scope_label(a.kind))),
            );
            e.insert(
                "install_source".into(),
                json!(rec.map(|r| r.install_source.clone())),
            );
            e.insert("installed_at".into(), json!(rec.map(|r| r.installed_at)));
            e.insert("updated_at".into(), json!(rec.map(|r| r.updated_at)));
            e.insert("override_paths".into(), Value::Array(override_paths));
            e.insert("overrides".into(), Value::Array(overrides));
            e.insert("linked".into(), json!(b.linked));
            e.insert("link_target".into(), json!(link_target));
            e.insert("broken".into(), json!(broken));
            e.insert(
                "path".into(),
                json!(b.dir.as_ref().map(|d| d.display().to_string())),
            );
            e.insert("source".into(), source);
            e.insert("source_type".into(), json!(source_type));
            e.insert("meta".into(), m.map(Value::Object).unwrap_or(Value::Null));
            e.insert("error".into(), error);
            entries.push(e);
        }
    }

    if let Some(f) = &opts.filter {
        entries.retain(|e| f.iter().all(|(k, v)| e.get(k) == Some(v)));
    }
    let sort = opts
        .sort
        .clone()
        .unwrap_or_else(|| "-active,-installed_at".into());
    let keys: Vec<(bool, String)> = sort
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| match k.strip_prefix('-') {
            Some(k) => (true, k.to_string()),
            None => (false, k.trim_start_matches('+').to_string()),
        })
        .collect();
    entries.sort_by(|a, b| {
        for (desc, k) in &keys {
            let o = cmp_json(
                a.get(k).unwrap_or(&Value::Null),
                b.get(k).unwrap_or(&Value::Null),
            );
            let o = if *desc { o.reverse() } else { o };
            if o != std::cmp::Ordering::Equal {
                return o;
            }
        }
        cmp_json(&a["name"], &b["name"])
    });
    let limit = opts.limit.unwrap_or(50);
    if limit > 0 {
        entries.truncate(limit as usize);
    }
    let full = opts.verbose.as_deref() == Some("full");
    let fields: Option<Vec<String>> = opts
        .fields
        .clone()
        .or_else(|| (!full).then(|| SUMMARY_FIELDS.iter().map(|s| s.to_string()).collect()));
    let packages = entries
        .into_iter()
        .map(|e| match &fields {
            Some(fs) => Value::Object(
                fs.iter()
                    .filter_map(|f| e.get(f).map(|v| (f.clone(), v.clone())))
                    .collect(),
            ),
            None => Value::Object(e),
        })
        .collect();
    let lockfile_path = project
        .as_ref()
        .map(|r| r.join(manifest::ALC_LOCK))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string());
    Ok(ListReport {
        packages,
        search_paths: resolver
            .search_paths()
            .into_iter()
            .map(|(path, source)| SearchPath { path, source })
            .collect(),
        project_root: project.map(|p| p.display().to_string()),
        lockfile_path,
        warnings: (!warnings.is_empty()).then_some(warnings),
    })
}

/// Parameters of `alc_pkg_remove`.
#[derive(Clone, Debug, Default)]
pub struct RemoveOptions {
    /// Package name.
    pub name: String,
    /// `auto` (default), `project`, `global` or `all`.
    pub scope: Option<String>,
    /// Explicit project root.
    pub project_root: Option<PathBuf>,
    /// Expected version of the global copy (mismatch → `package_not_found`).
    pub version: Option<String>,
}

/// Result of `alc_pkg_remove`.
#[derive(Clone, Debug, Serialize)]
pub struct RemoveReport {
    /// The removed name.
    pub removed: String,
    /// `global`, `project` or `all`.
    pub scope: String,
    /// Whether files (or a link) under `<home>/packages` were deleted.
    pub files_removed: bool,
    /// The deleted path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Project files edited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectFiles>,
}

fn project_files(root: &Path) -> ProjectFiles {
    ProjectFiles {
        alc_toml: root.join(manifest::ALC_TOML).display().to_string(),
        alc_lock: root.join(manifest::ALC_LOCK).display().to_string(),
    }
}

fn declared(root: &Path, name: &str) -> Result<bool, PkgError> {
    Ok(manifest::read_dependencies(root)?
        .iter()
        .any(|(n, _)| n == name)
        || manifest::read_lock(root)?
            .unwrap_or_default()
            .iter()
            .any(|e| e.name == name))
}

/// Removes a package (interfaces.md §6.8). A development link is removed without
/// touching its target; path dependencies' files are never deleted.
pub fn remove(env: &PkgEnv, opts: &RemoveOptions) -> Result<RemoveReport, PkgError> {
    check_name(&opts.name)?;
    let name = opts.name.as_str();
    let project = env.project_for(opts.project_root.as_deref())?;
    let scope = match opts.scope.as_deref().unwrap_or("auto") {
        "auto" => match &project {
            Some(r) if declared(r, name)? => "project",
            _ => "global",
        },
        s @ ("global" | "project" | "all") => s,
        other => {
            return Err(PkgError::InvalidParams(format!(
                "scope must be auto, project, global or all, got \"{other}\""
            )))
        }
    };
    let do_global = scope == "global" || scope == "all";
    let do_project = scope == "project" || scope == "all";
    let dest = env.packages_dir().join(name);
    let global_exists = fs::symlink_metadata(&dest).is_ok();
    if do_project && project.is_none() {
        return Err(PkgError::InvalidParams(
            "scope \"project\" needs a project root".into(),
        ));
    }
    let project_has = match &project {
        Some(r) if do_project => declared(r, name)?,
        _ => false,
    };
    if (!do_global || !global_exists) && (!do_project || !project_has) {
        return Err(PkgError::NotFound(format!(
            "package '{name}' not found in scope {scope}"
        )));
    }
    if let (Some(v), true) = (&opts.version, do_global && global_exists) {
        let have = meta::read_meta(&dest)
            .and_then(|m| m.get("version").cloned())
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            });
        if have.as_deref() != Some(v.as_str()) {
            return Err(PkgError::NotFound(format!(
                "package '{name}' version {v} is not installed"
            )));
        }
    }
    let mut report = RemoveReport {
        removed: name.to_string(),
        scope: scope.to_string(),
        files_removed: false,
        path: None,
        project: None,
    };
    if do_global && global_exists {
        let _lock = FileLock::acquire(&env.packages_dir().join(manifest::INSTALL_LOCK))?;
        remove_any(&dest)
            .map_err(|e| PkgError::io(format!("cannot remove {}", dest.display()), e))?;
        records::remove_record(env, name)?;
        report.files_removed = true;
        report.path = Some(dest.display().to_string());
    }
    if let (Some(root), true) = (&project, project_has) {
        let _lock = manifest::lock_project(root)?;
        manifest::remove_dependency(root, name)?;
        manifest::lock_remove(root, name)?;
        report.project = Some(project_files(root));
    }
    Ok(report)
}

/// Parameters of `alc_pkg_link`.
#[derive(Clone, Debug, Default)]
pub struct LinkOptions {
    /// Package or collection directory.
    pub path: PathBuf,
    /// Name (single packages only).
    pub name: Option<String>,
    /// Replace an existing directory (global scope).
    pub force: bool,
    /// `global` (default) or `variant`.
    pub scope: Option<String>,
    /// Explicit project root (variant scope).
    pub project_root: Option<PathBuf>,
}

/// Result of `alc_pkg_link`.
#[derive(Clone, Debug, Serialize)]
pub struct LinkReport {
    /// Linked names.
    pub linked: Vec<String>,
    /// `collection` or `single`.
    pub mode: String,
    /// Name → absolute target directory.
    pub targets: BTreeMap<String, String>,
    /// `global` or `variant`.
    pub scope: String,
    /// `alc.local.toml` written (variant scope).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alc_local_toml: Option<String>,
}

/// Packages of a directory: `(single?, [(name, dir)])`.
fn detect(path: &Path, name: Option<&str>) -> Result<(bool, Vec<(String, PathBuf)>), PkgError> {
    if !path.is_dir() {
        return Err(PkgError::NotFound(format!(
            "directory '{}' not found",
            path.display()
        )));
    }
    let abs = absolute(path);
    if abs.join("init.lua").is_file() {
        let n = match name {
            Some(n) => n.to_string(),
            None => meta::read_meta(&abs)
                .and_then(|m| m.get("name").and_then(|v| v.as_str()).map(str::to_string))
                .unwrap_or_else(|| {
                    abs.file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default()
                }),
        };
        check_name(&n)?;
        return Ok((true, vec![(n, abs)]));
    }
    if name.is_some() {
        return Err(PkgError::InvalidParams(
            "name is only valid for a single package (init.lua at the root)".into(),
        ));
    }
    let mut out = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(&abs)
        .map_err(|e| PkgError::io(format!("cannot read {}", abs.display()), e))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let n = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if p.is_dir() && p.join("init.lua").is_file() && crate::valid_package_name(&n) {
            out.push((n, absolute(&p)));
        }
    }
    if out.is_empty() {
        return Err(PkgError::NotFound(
            "no package found: no init.lua at the root or in any subdirectory".into(),
        ));
    }
    Ok((false, out))
}

/// Creates development links (global) or variant entries (interfaces.md §6.8).
pub fn link(env: &PkgEnv, opts: &LinkOptions) -> Result<LinkReport, PkgError> {
    if let Some(n) = &opts.name {
        check_name(n)?;
    }
    let scope = opts.scope.as_deref().unwrap_or("global");
    if scope != "global" && scope != "variant" {
        return Err(PkgError::InvalidParams(format!(
            "scope must be \"global\" or \"variant\", got \"{scope}\""
        )));
    }
    let (single, pkgs) = detect(&opts.path, opts.name.as_deref())?;
    let mut report = LinkReport {
        linked: pkgs.iter().map(|(n, _)| n.clone()).collect(),
        mode: if single { "single" } else { "collection" }.into(),
        targets: pkgs
            .iter()
            .map(|(n, p)| (n.clone(), p.display().to_string()))
            .collect(),
        scope: scope.into(),
        alc_local_toml: None,
    };
    if scope == "variant" {
        let root = env
            .project_for(opts.project_root.as_deref())?
            .ok_or_else(|| {
                PkgError::InvalidParams("scope \"variant\" needs a project root".into())
            })?;
        let _lock = manifest::lock_project(&root)?;
        for (n, p) in &pkgs {
            manifest::set_variant(&root, n, &p.display().to_string())?;
        }
        report.alc_local_toml = Some(root.join(manifest::ALC_LOCAL_TOML).display().to_string());
        return Ok(report);
    }
    let packages = env.packages_dir();
    create_private_dir(&packages)?;
    let _lock = FileLock::acquire(&packages.join(manifest::INSTALL_LOCK))?;
    for (n, _) in &pkgs {
        let dest = packages.join(n);
        if !is_symlink(&dest) && fs::symlink_metadata(&dest).is_ok() && !opts.force {
            return Err(PkgError::Conflict(format!(
                "package '{n}' is installed as a directory; use force to replace it with a link"
            )));
        }
    }
    for (n, p) in &pkgs {
        let dest = packages.join(n);
        if fs::symlink_metadata(&dest).is_ok() {
            remove_any(&dest)
                .map_err(|e| PkgError::io(format!("cannot remove {}", dest.display()), e))?;
            records::remove_record(env, n)?;
        }
        symlink_dir(p, &dest)
            .map_err(|e| PkgError::io(format!("cannot link {}", dest.display()), e))?;
    }
    Ok(report)
}

/// Result of `alc_pkg_unlink`.
#[derive(Clone, Debug, Serialize)]
pub struct UnlinkReport {
    /// The unlinked name.
    pub unlinked: String,
    /// `global` or `variant`.
    pub scope: String,
}

/// Removes a development link (global) or a variant entry; anything else is
/// `package_not_found`.
pub fn unlink(
    env: &PkgEnv,
    name: &str,
    scope: Option<&str>,
    project_root: Option<&Path>,
) -> Result<UnlinkReport, PkgError> {
    check_name(name)?;
    let scope = scope.unwrap_or("global");
    match scope {
        "global" => {
            let dest = env.packages_dir().join(name);
            if !is_symlink(&dest) {
                return Err(PkgError::NotFound(format!(
                    "package '{name}' is not a development link"
                )));
            }
            fs::remove_file(&dest)
                .map_err(|e| PkgError::io(format!("cannot remove {}", dest.display()), e))?;
        }
        "variant" => {
            let root = env.project_for(project_root)?.ok_or_else(|| {
                PkgError::InvalidParams("scope \"variant\" needs a project root".into())
            })?;
            let _lock = manifest::lock_project(&root)?;
            if !manifest::remove_variant(&root, name)? {
                return Err(PkgError::NotFound(format!(
                    "package '{name}' has no variant entry in alc.local.toml"
                )));
            }
        }
        other => {
            return Err(PkgError::InvalidParams(format!(
                "scope must be \"global\" or \"variant\", got \"{other}\""
            )))
        }
    }
    Ok(UnlinkReport {
        unlinked: name.into(),
        scope: scope.into(),
    })
}

/// Parameters of `alc init` (home set-up).
#[derive(Clone, Debug, Default)]
pub struct InitHomeOptions {
    /// Replace existing copies of bundled packages (development links never).
    pub force: bool,
    /// Content of `types/alc.d.lua`, written when it differs (none: not written).
    pub types_stub: Option<String>,
    /// Content of `config.toml`, written only when absent (none: not written).
    pub config_template: Option<String>,
}

/// Result of `alc init`.
#[derive(Clone, Debug, Serialize, Default)]
pub struct InitHomeReport {
    /// Home directory.
    pub home: String,
    /// Newly installed bundled packages.
    pub installed: Vec<String>,
    /// Replaced (`force`).
    pub updated: Vec<String>,
    /// Already present.
    pub skipped: Vec<String>,
    /// Development links left alone.
    pub skipped_symlinks: Vec<String>,
    /// Whether `types/alc.d.lua` was (re)written.
    pub types_written: bool,
    /// Whether `config.toml` was written.
    pub config_written: bool,
}

/// Copies the bundled packages into `<home>/packages` (offline), recording source
/// `{type: "bundled", collection: "algocline"}`.
pub fn init_home(env: &PkgEnv, opts: &InitHomeOptions) -> Result<InitHomeReport, PkgError> {
    create_private_dir(&env.home)?;
    let packages = env.packages_dir();
    create_private_dir(&packages)?;
    let mut report = InitHomeReport {
        home: env.home.display().to_string(),
        ..Default::default()
    };
    {
        let _lock = FileLock::acquire(&packages.join(manifest::INSTALL_LOCK))?;
        for name in env.bundled.names() {
            let files = env.bundled.files(&name);
            let placed = place(&packages, &name, opts.force, |tmp| {
                for (rel, bytes) in &files {
                    let rel = Path::new(rel);
                    if !rel
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)))
                    {
                        continue;
                    }
                    let p = tmp.join(rel);
                    if let Some(parent) = p.parent() {
                        fs::create_dir_all(parent)
                            .map_err(|e| PkgError::io(parent.display(), e))?;
                    }
                    fs::write(&p, bytes).map_err(|e| PkgError::io(p.display(), e))?;
                }
                fs::create_dir_all(tmp).map_err(|e| PkgError::io(tmp.display(), e))
            })?;
            let wrote = matches!(placed, Placed::Installed | Placed::Updated);
            match placed {
                Placed::Installed => report.installed.push(name.clone()),
                Placed::Updated => report.updated.push(name.clone()),
                Placed::Skipped => report.skipped.push(name.clone()),
                Placed::SkippedSymlink => report.skipped_symlinks.push(name.clone()),
            }
            if wrote {
                records::record_install(
                    env,
                    &name,
                    "bundled:algocline",
                    "bundled",
                    None,
                    now_ms(),
                )?;
            }
        }
    }
    if let Some(stub) = &opts.types_stub {
        let dir = env.home.join("types");
        create_private_dir(&dir)?;
        let p = dir.join("alc.d.lua");
        if fs::read(&p).ok().as_deref() != Some(stub.as_bytes()) {
            atomic_write(&p, stub.as_bytes())?;
            report.types_written = true;
        }
    }
    if let Some(cfg) = &opts.config_template {
        let p = env.home.join("config.toml");
        if !p.exists() {
            atomic_write(&p, cfg.as_bytes())?;
            report.config_written = true;
        }
    }
    Ok(report)
}

/// Result of `alc_init`.
#[derive(Clone, Debug, Serialize)]
pub struct InitProjectReport {
    /// Path of the created `alc.toml`.
    pub created: String,
    /// Path of `.gitignore`.
    pub gitignore_path: String,
    /// Whether `.gitignore` was changed.
    pub gitignore_updated: bool,
    /// Bundled packages installed (`bundled: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundled_installed: Option<Vec<String>>,
}

/// Creates `alc.toml` in `root` (existing → `conflict`) and adds `alc.local.toml` and
/// `.alc-install.lock` to `.gitignore`; optionally installs the bundled packages.
pub fn init_project(
    env: &PkgEnv,
    root: &Path,
    bundled: bool,
) -> Result<InitProjectReport, PkgError> {
    if !root.is_dir() {
        return Err(PkgError::InvalidParams(format!(
            "project_root '{}' is not a directory",
            root.display()
        )));
    }
    let root = absolute(root);
    let toml = root.join(manifest::ALC_TOML);
    if toml.exists() {
        return Err(PkgError::Conflict(format!(
            "{} already exists",
            toml.display()
        )));
    }
    let _lock = manifest::lock_project(&root)?;
    atomic_write(
        &toml,
        b"# algocline project file (see `alc pkg install --scope project`)\n[packages]\n",
    )?;
    let gi = root.join(".gitignore");
    let current = fs::read_to_string(&gi).unwrap_or_default();
    let have: BTreeSet<&str> = current.lines().map(str::trim).collect();
    let mut add = String::new();
    for line in [manifest::ALC_LOCAL_TOML, manifest::INSTALL_LOCK] {
        if !have.contains(line) {
            add.push_str(line);
            add.push('\n');
        }
    }
    let updated = !add.is_empty();
    if updated {
        let mut text = current.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&add);
        atomic_write(&gi, text.as_bytes())?;
    }
    let bundled_installed = if bundled {
        let r = init_home(env, &InitHomeOptions::default())?;
        Some(r.installed)
    } else {
        None
    };
    Ok(InitProjectReport {
        created: toml.display().to_string(),
        gitignore_path: gi.display().to_string(),
        gitignore_updated: updated,
        bundled_installed,
    })
}
