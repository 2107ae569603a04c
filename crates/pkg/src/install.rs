//! `alc_pkg_install` / `alc pkg install` (interfaces.md §6.3–§6.5).

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::env::{absolute, PkgEnv};
use crate::error::PkgError;
use crate::fsutil::{create_private_dir, is_symlink, now_ms, remove_any, temp_sibling, FileLock};
use crate::manifest::{self, LockEntry, LockSource};
use crate::records;
use crate::{check_name, meta};

/// Maximum files per install.
pub const MAX_FILES: usize = 10_000;
/// Maximum total bytes per install.
pub const MAX_BYTES: u64 = 50 * 1024 * 1024;
/// Maximum directory depth inside a package.
pub const MAX_DEPTH: usize = 20;
/// Timeout of one `git` invocation.
pub const GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Parameters of an install (the `alc_pkg_install` arguments).
#[derive(Clone, Debug, Default)]
pub struct InstallOptions {
    /// Git URL or local path.
    pub url: String,
    /// Package name (single-package sources only).
    pub name: Option<String>,
    /// Branch, tag or commit (git only).
    pub git_ref: Option<String>,
    /// Replace existing copies.
    pub force: bool,
    /// `"global"` (default) or `"project"`.
    pub scope: Option<String>,
    /// Explicit project root (for `scope: "project"`).
    pub project_root: Option<PathBuf>,
}

/// A source path that was not copied.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RejectedPath {
    /// Path relative to the source root.
    pub path: String,
    /// Why it was not copied.
    pub reason: String,
}

/// Project files touched by a project-scoped operation.
#[derive(Clone, Debug, Serialize)]
pub struct ProjectFiles {
    /// Path of `alc.toml`.
    pub alc_toml: String,
    /// Path of `alc.lock`.
    pub alc_lock: String,
}

/// Result of an install (shape of `alc_pkg_install`, interfaces.md §2.11).
#[derive(Clone, Debug, Serialize, Default)]
pub struct InstallReport {
    /// `collection`, `single`, `local_collection` or `local_single`.
    pub mode: String,
    /// The source as installed from (URL, or absolute local path).
    pub source: String,
    /// Newly installed packages.
    pub installed: Vec<String>,
    /// Replaced packages (`force`).
    pub updated: Vec<String>,
    /// Existing packages left alone (no `force`).
    pub skipped: Vec<String>,
    /// Packages not replaced because the destination is a development link.
    pub skipped_symlinks: Vec<String>,
    /// Source paths not copied (symlinks leaving the tree, special files, bad names).
    pub rejected_paths: Vec<RejectedPath>,
    /// Scenario files copied to `<home>/scenarios`.
    pub scenarios_installed: Vec<String>,
    /// Scenario files not copied, as `"<file>: <reason>"`.
    pub scenarios_failures: Vec<String>,
    /// Cards copied to `<home>/cards/<pkg>/`, as `"<pkg>/<file>"`.
    pub cards_installed: Vec<String>,
    /// Project files written (`scope: "project"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectFiles>,
    /// Non-fatal problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// How a source string is treated (§6.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// Local directory.
    Local(PathBuf),
    /// Git URL.
    Git(String),
}

/// Classifies an install source (§6.3).
pub fn classify_source(url: &str) -> Result<SourceSpec, PkgError> {
    let bad = || {
        PkgError::InvalidParams(format!(
            "url '{url}' is neither a local path (absolute, ./, ../, ~/) nor a git URL"
        ))
    };
    if url.is_empty() || url.starts_with('-') || url.contains('\0') {
        return Err(bad());
    }
    if url.starts_with('/')
        || url.starts_with("./")
        || url.starts_with("../")
        || url == "."
        || url == ".."
    {
        return Ok(SourceSpec::Local(PathBuf::from(url)));
    }
    if let Some(rest) = url.strip_prefix("~/") {
        let home = std::env::var_os("HOME").ok_or_else(bad)?;
        return Ok(SourceSpec::Local(PathBuf::from(home).join(rest)));
    }
    for p in ["http://", "https://", "ssh://", "file://"] {
        if url.starts_with(p) {
            return Ok(SourceSpec::Git(url.to_string()));
        }
    }
    if let Some(rest) = url.strip_prefix("git@") {
        if rest.contains(':') {
            return Ok(SourceSpec::Git(url.to_string()));
        }
    }
    if let Some((first, rest)) = url.split_once('/') {
        if first.contains('.') && !rest.is_empty() {
            return Ok(SourceSpec::Git(format!("https://{url}")));
        }
    }
    Err(bad())
}

/// Removes a directory when dropped (staging areas).
struct RemoveOnDrop(PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn run_git(args: &[OsString], timeout: Duration) -> Result<(), PkgError> {
    let mut cmd = Command::new("git");
    cmd.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "submodule.recurse=false",
    ])
    .args(args)
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:git:file")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            PkgError::Git("git not found: install git and make sure it is on PATH".into())
        } else {
            PkgError::Git(format!("cannot run git: {e}"))
        }
    })?;
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = t_out.join();
                let _ = t_err.join();
                return Err(PkgError::Git(format!(
                    "git timed out after {} s",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(PkgError::Git(format!("waiting for git: {e}"))),
        }
    };
    let _ = t_out.join();
    let stderr = t_err.join().unwrap_or_default();
    if !status.success() {
        let msg = String::from_utf8_lossy(&stderr);
        let msg: Vec<&str> = msg.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(PkgError::Git(format!(
            "git {} failed: {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .find(|a| ["clone", "fetch", "checkout", "init"].contains(&a.as_ref()))
                .unwrap_or_default(),
            msg.join(" / ")
        )));
    }
    Ok(())
}

fn looks_like_commit(r: &str) -> bool {
    (7..=40).contains(&r.len()) && r.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Clones `url` at `git_ref` into `staging` (which must not exist).
fn git_fetch(url: &str, git_ref: Option<&str>, staging: &Path) -> Result<(), PkgError> {
    let s = staging.as_os_str().to_owned();
    match git_ref {
        Some(r) if r.starts_with('-') => Err(PkgError::InvalidParams(format!("invalid ref '{r}'"))),
        Some(r) if looks_like_commit(r) => {
            let c = |a: &str| OsString::from(a);
            run_git(&[c("init"), c("-q"), s.clone()], GIT_TIMEOUT)?;
            let fetched = run_git(
                &[
                    c("-C"),
                    s.clone(),
                    c("fetch"),
                    c("-q"),
                    c("--depth"),
                    c("1"),
                    c("--"),
                    c(url),
                    c(r),
                ],
                GIT_TIMEOUT,
            );
            if fetched.is_ok() {
                return run_git(
                    &[c("-C"), s, c("checkout"), c("-q"), c("FETCH_HEAD")],
                    GIT_TIMEOUT,
                );
            }
            // Servers refuse abbreviated (or unadvertised) ids: full clone, then checkout.
            let _ = fs::remove_dir_all(staging);
            run_git(
                &[
                    c("clone"),
                    c("-q"),
                    c("--no-checkout"),
                    c("--"),
                    c(url),
                    s.clone(),
                ],
                GIT_TIMEOUT,
            )?;
            run_git(
                &[c("-C"), s, c("checkout"), c("-q"), c(r), c("--")],
                GIT_TIMEOUT,
            )
        }
        other => {
            let mut args: Vec<OsString> =
                vec!["clone".into(), "-q".into(), "--depth".into(), "1".into()];
            if let Some(r) = other {
                args.push("--branch".into());
                args.push(r.into());
            }
            args.push("--".into());
            args.push(url.into());
            args.push(s);
            run_git(&args, GIT_TIMEOUT)
        }
    }
}

/// One file to copy.
struct PlanFile {
    rel: PathBuf,
    src: PathBuf,
    mode: u32,
}

/// What to write for one package.
struct PkgPlan {
    name: String,
    dirs: Vec<PathBuf>,
    files: Vec<PlanFile>,
    version: Option<String>,
    cards: Option<PathBuf>,
}

struct Scanner<'a> {
    tree: PathBuf,
    report_root: &'a Path,
    files: usize,
    bytes: u64,
    rejected: Vec<RejectedPath>,
}

fn limit(msg: String) -> PkgError {
    PkgError::InvalidParams(format!("install limit exceeded: {msg}; nothing installed"))
}

#[cfg(unix)]
fn mode_of(m: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    m.permissions().mode() & 0o777
}
#[cfg(not(unix))]
fn mode_of(_m: &fs::Metadata) -> u32 {
    0o644
}

impl Scanner<'_> {
    fn reject(&mut self, p: &Path, reason: &str) {
        let rel = p.strip_prefix(self.report_root).unwrap_or(p);
        self.rejected.push(RejectedPath {
            path: rel.to_string_lossy().into_owned(),
            reason: reason.to_string(),
        });
    }

    fn add_file(
        &mut self,
        plan: &mut PkgPlan,
        rel: PathBuf,
        src: PathBuf,
        m: &fs::Metadata,
    ) -> Result<(), PkgError> {
        self.files += 1;
        self.bytes += m.len();
        if self.files > MAX_FILES {
            return Err(limit(format!("more than {MAX_FILES} files")));
        }
        if self.bytes > MAX_BYTES {
            return Err(limit(format!("more than {MAX_BYTES} bytes")));
        }
        plan.files.push(PlanFile {
            rel,
            src,
            mode: mode_of(m),
        });
        Ok(())
    }

    fn walk(
        &mut self,
        plan: &mut PkgPlan,
        dir: &Path,
        rel: &Path,
        depth: usize,
    ) -> Result<(), PkgError> {
        if depth > MAX_DEPTH {
            return Err(limit(format!("deeper than {MAX_DEPTH} levels")));
        }
        let mut entries: Vec<_> = fs::read_dir(dir)
            .map_err(|e| PkgError::io(format!("cannot read {}", dir.display()), e))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let fname = e.file_name();
            if fname == ".git" {
                continue;
            }
            let r = rel.join(&fname);
            let m = fs::symlink_metadata(&p)
                .map_err(|e| PkgError::io(format!("cannot stat {}", p.display()), e))?;
            let ft = m.file_type();
            if ft.is_dir() {
                plan.dirs.push(r.clone());
                self.walk(plan, &p, &r, depth + 1)?;
            } else if ft.is_file() {
                self.add_file(plan, r, p, &m)?;
            } else if ft.is_symlink() {
                match p.canonicalize() {
                    Err(_) => self.reject(&p, "dangling symlink"),
                    Ok(t) if !t.starts_with(&self.tree) => {
                        self.reject(&p, "symlink points outside the source tree")
                    }
                    Ok(t) => match fs::metadata(&t) {
                        Ok(tm) if tm.is_file() => self.add_file(plan, r, t, &tm)?,
                        Ok(tm) if tm.is_dir() => {
                            self.reject(&p, "symlink to a directory is not copied")
                        }
                        _ => self.reject(&p, "symlink to a special file"),
                    },
                }
            } else {
                self.reject(&p, "special file (device, FIFO or socket)");
            }
        }
        Ok(())
    }
}

fn basename_of(spec: &SourceSpec) -> String {
    match spec {
        SourceSpec::Local(p) => absolute(p)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        SourceSpec::Git(u) => {
            let u = u.trim_end_matches('/');
            let last = u.rsplit(['/', ':']).next().unwrap_or(u);
            last.strip_suffix(".git").unwrap_or(last).to_string()
        }
    }
}

/// Copies a planned package into `dest` (a fresh directory).
fn write_plan(plan: &PkgPlan, dest: &Path) -> Result<(), PkgError> {
    let io = |p: &Path, e: std::io::Error| PkgError::io(format!("cannot write {}", p.display()), e);
    fs::create_dir_all(dest).map_err(|e| io(dest, e))?;
    for d in &plan.dirs {
        let p = safe_join(dest, d)?;
        fs::create_dir_all(&p).map_err(|e| io(&p, e))?;
    }
    for f in &plan.files {
        let p = safe_join(dest, &f.rel)?;
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let bytes = fs::read(&f.src)
            .map_err(|e| PkgError::io(format!("cannot read {}", f.src.display()), e))?;
        fs::write(&p, bytes).map_err(|e| io(&p, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&p, fs::Permissions::from_mode(f.mode & 0o777))
                .map_err(|e| io(&p, e))?;
        }
    }
    Ok(())
}

/// `base/rel`, refusing any `rel` that is not a plain relative path.
fn safe_join(base: &Path, rel: &Path) -> Result<PathBuf, PkgError> {
    if rel.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(base.join(rel))
    } else {
        Err(PkgError::Io(format!(
            "refusing path outside the package: {}",
            rel.display()
        )))
    }
}

/// Outcome of placing one package.
pub(crate) enum Placed {
    Installed,
    Updated,
    Skipped,
    SkippedSymlink,
}

/// Places a package at `<packages>/<name>` via a temporary sibling and renames.
pub(crate) fn place(
    packages: &Path,
    name: &str,
    force: bool,
    fill: impl FnOnce(&Path) -> Result<(), PkgError>,
) -> Result<Placed, PkgError> {
    check_name(name)?;
    let dest = packages.join(name);
    if is_symlink(&dest) {
        return Ok(Placed::SkippedSymlink);
    }
    let exists = fs::symlink_metadata(&dest).is_ok();
    if exists && !force {
        return Ok(Placed::Skipped);
    }
    let tmp = temp_sibling(packages, &format!("tmp-{name}"));
    if let Err(e) = fill(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let io = |e| PkgError::io(format!("cannot move package into {}", dest.display()), e);
    if exists {
        let old = temp_sibling(packages, &format!("old-{name}"));
        fs::rename(&dest, &old).map_err(io)?;
        if let Err(e) = fs::rename(&tmp, &dest) {
            let _ = fs::rename(&old, &dest);
            let _ = fs::remove_dir_all(&tmp);
            return Err(io(e));
        }
        let _ = remove_any(&old);
        Ok(Placed::Updated)
    } else {
        if let Err(e) = fs::rename(&tmp, &dest) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(io(e));
        }
        Ok(Placed::Installed)
    }
}

fn copy_scenarios(dir: &Path, env: &PkgEnv, force: bool, report: &mut InstallReport) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let fname = e.file_name().to_string_lossy().into_owned();
        if !(fname.ends_with(".lua") || fname.ends_with(".jsonl") || fname.ends_with(".eval.toml"))
        {
            continue;
        }
        let is_file = fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_file());
        if !is_file || fname.starts_with('.') {
            report
                .scenarios_failures
                .push(format!("{fname}: not a regular file"));
            continue;
        }
        let scen = env.scenarios_dir();
        if let Err(err) = create_private_dir(&scen) {
            report.scenarios_failures.push(format!("{fname}: {err}"));
            continue;
        }
        let dest = scen.join(&fname);
        if dest.exists() && !force {
            report
                .scenarios_failures
                .push(format!("{fname}: already exists (use force)"));
            continue;
        }
        match fs::read(e.path()).and_then(|b| fs::write(&dest, b)) {
            Ok(()) => report.scenarios_installed.push(fname),
            Err(err) => report.scenarios_failures.push(format!("{fname}: {err}")),
        }
    }
}

fn copy_cards(pkg: &str, dir: &Path, env: &PkgEnv, report: &mut InstallReport) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let dest_dir = env.cards_dir().join(pkg);
    for e in entries {
        let fname = e.file_name().to_string_lossy().into_owned();
        if fname.starts_with('.') || !fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_file()) {
            continue;
        }
        if create_private_dir(&dest_dir).is_err() {
            return;
        }
        let dest = dest_dir.join(&fname);
        if dest.exists() {
            continue;
        }
        if fs::read(e.path()).and_then(|b| fs::write(&dest, b)).is_ok() {
            report.cards_installed.push(format!("{pkg}/{fname}"));
        }
    }
}

/// Installs packages from a local directory or git repository (interfaces.md §6.3–6.5).
///
/// Never runs package code or repository hooks; project files are edited only for
/// `scope: "project"`.
pub fn install(env: &PkgEnv, opts: &InstallOptions) -> Result<InstallReport, PkgError> {
    let scope = opts.scope.as_deref().unwrap_or("global");
    if scope != "global" && scope != "project" {
        return Err(PkgError::InvalidParams(format!(
            "scope must be \"global\" or \"project\", got \"{scope}\""
        )));
    }
    if let Some(n) = &opts.name {
        check_name(n)?;
    }
    let spec = classify_source(&opts.url)?;
    let project = if scope == "project" {
        Some(env.project_for(opts.project_root.as_deref())?.ok_or_else(|| {
            PkgError::InvalidParams(
                "scope \"project\" needs a project root (project_root, ALC_PROJECT_ROOT or an alc.toml above the working directory)".into(),
            )
        })?)
    } else {
        None
    };
    create_private_dir(&env.home)?;
    let packages = env.packages_dir();
    create_private_dir(&packages)?;

    let mut _staging_guard = None;
    let (root, source, git) = match &spec {
        SourceSpec::Local(p) => {
            if opts.git_ref.is_some() {
                return Err(PkgError::InvalidParams(
                    "ref is only valid for git sources".into(),
                ));
            }
            if !p.is_dir() {
                return Err(PkgError::NotFound(format!(
                    "source directory '{}' not found",
                    p.display()
                )));
            }
            let abs = absolute(p);
            (abs.clone(), abs.display().to_string(), false)
        }
        SourceSpec::Git(url) => {
            let staging = temp_sibling(&env.home, "alc-staging");
            _staging_guard = Some(RemoveOnDrop(staging.clone()));
            git_fetch(url, opts.git_ref.as_deref(), &staging)?;
            (staging.canonicalize().unwrap_or(staging), url.clone(), true)
        }
    };
    let tree = root
        .canonicalize()
        .map_err(|e| PkgError::io(format!("cannot read {}", root.display()), e))?;
    let mut sc = Scanner {
        tree: tree.clone(),
        report_root: &tree,
        files: 0,
        bytes: 0,
        rejected: Vec::new(),
    };
    let mut plans = Vec::new();
    let single = tree.join("init.lua").is_file();
    if single {
        let meta = meta::read_meta(&tree);
        let meta_name = meta
            .as_ref()
            .and_then(|m| m.get("name"))
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let name = opts
            .name
            .clone()
            .or(meta_name)
            .unwrap_or_else(|| basename_of(&spec));
        check_name(&name)?;
        let mut plan = PkgPlan {
            name,
            dirs: Vec::new(),
            files: Vec::new(),
            version: meta_version(meta.as_ref()),
            cards: tree.join("cards").is_dir().then(|| tree.join("cards")),
        };
        sc.walk(&mut plan, &tree, Path::new(""), 0)?;
        plans.push(plan);
    } else {
        if opts.name.is_some() {
            return Err(PkgError::InvalidParams(
                "name is only valid for a single-package source (init.lua at the root)".into(),
            ));
        }
        let mut entries: Vec<_> = fs::read_dir(&tree)
            .map_err(|e| PkgError::io(format!("cannot read {}", tree.display()), e))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let fname = e.file_name().to_string_lossy().into_owned();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if !m.is_dir() || fname == ".git" {
                continue;
            }
            if !p.join("init.lua").is_file() {
                continue;
            }
            if !crate::valid_package_name(&fname) {
                sc.reject(&p, "invalid package name");
                continue;
            }
            let meta = meta::read_meta(&p);
            let mut plan = PkgPlan {
                name: fname.clone(),
                dirs: Vec::new(),
                files: Vec::new(),
                version: meta_version(meta.as_ref()),
                cards: p.join("cards").is_dir().then(|| p.join("cards")),
            };
            sc.walk(&mut plan, &p, Path::new(""), 0)?;
            plans.push(plan);
        }
    }
    let mut report = InstallReport {
        mode: match (git, single) {
            (true, true) => "single",
            (true, false) => "collection",
            (false, true) => "local_single",
            (false, false) => "local_collection",
        }
        .to_string(),
        source,
        rejected_paths: std::mem::take(&mut sc.rejected),
        ..Default::default()
    };
    if plans.is_empty() {
        return Err(PkgError::NotFound(
            "no package found: no init.lua at the root or in any subdirectory".into(),
        ));
    }

    let _lock = FileLock::acquire(&packages.join(manifest::INSTALL_LOCK))?;
    let source_type = if git { "git" } else { "local" };
    for plan in &plans {
        let placed = place(&packages, &plan.name, opts.force, |tmp| {
            write_plan(plan, tmp)
        })?;
        let wrote = matches!(placed, Placed::Installed | Placed::Updated);
        match placed {
            Placed::Installed => report.installed.push(plan.name.clone()),
            Placed::Updated => report.updated.push(plan.name.clone()),
            Placed::Skipped => report.skipped.push(plan.name.clone()),
            Placed::SkippedSymlink => report.skipped_symlinks.push(plan.name.clone()),
        }
        if wrote {
            if let Err(e) = records::record_install(
                env,
                &plan.name,
                &report.source,
                source_type,
                opts.git_ref.as_deref(),
                now_ms(),
            ) {
                report
                    .warnings
                    .push(format!("install record for '{}' not saved: {e}", plan.name));
            }
            if let Some(c) = &plan.cards {
                copy_cards(&plan.name, c, env, &mut report);
            }
        }
    }
    let scen = tree.join("scenarios");
    if fs::symlink_metadata(&scen).is_ok_and(|m| m.is_dir()) && !scen.join("init.lua").exists() {
        copy_scenarios(&scen, env, opts.force, &mut report);
    }

    if let Some(root) = project {
        let _plock = manifest::lock_project(&root)?;
        let existing = manifest::read_dependencies(&root)?;
        for plan in &plans {
            if report.skipped_symlinks.contains(&plan.name) {
                continue;
            }
            if !existing.iter().any(|(n, _)| n == &plan.name) {
                manifest::set_dependency(&root, &plan.name, toml_edit::Value::from("*"))?;
            }
            manifest::lock_upsert(
                &root,
                LockEntry {
                    name: plan.name.clone(),
                    version: plan.version.clone(),
                    source: LockSource::Installed,
                },
            )?;
        }
        report.project = Some(ProjectFiles {
            alc_toml: root.join(manifest::ALC_TOML).display().to_string(),
            alc_lock: root.join(manifest::ALC_LOCK).display().to_string(),
        });
    }
    Ok(report)
}

fn meta_version(m: Option<&serde_json::Map<String, serde_json::Value>>) -> Option<String> {
    m?.get("version").map(|v| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}
