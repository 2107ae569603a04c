//! Consistency checks of a project's package files (interfaces.md §2.1 `lib_path_warnings`,
//! §6.6, §6.7): the versions `alc.toml` expects against the `M.meta.version` of the
//! packages `require` would load, and the path dependencies of `alc.toml` against
//! `alc.lock`. Metadata is read statically ([`crate::meta`]); no package code runs.
//!
//! Every finding is a warning: sessions still run with what the resolution chain finds.

use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::env::PkgEnv;
use crate::manifest::{self, DepSpec, LockEntry, LockSource};
use crate::meta;
use crate::resolve::{Binding, Resolver, SourceKind};

/// The warnings of the project of `env` (empty without a project root): one clear
/// sentence per problem, naming the package, both values and what `require` uses.
pub fn lib_path_warnings(env: &PkgEnv) -> Vec<String> {
    let Some(root) = &env.project_root else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let deps = match manifest::read_dependencies(root) {
        Ok(d) => d,
        Err(e) => {
            out.push(format!("{e}; its [packages] entries are not checked"));
            Vec::new()
        }
    };
    let lock = match manifest::read_lock(root) {
        Ok(l) => l,
        Err(e) => {
            out.push(format!("{e}; alc.lock is not checked"));
            None
        }
    };
    if let Some(lock) = &lock {
        check_toml_against_lock(root, &deps, lock, &mut out);
        check_locked_versions(root, lock, &mut out);
    }
    check_expected_versions(env, &deps, &mut out);
    out
}

/// Path dependencies of `alc.toml` against the entries of `alc.lock`.
fn check_toml_against_lock(
    root: &Path,
    deps: &[(String, DepSpec)],
    lock: &[LockEntry],
    out: &mut Vec<String>,
) {
    for (name, spec) in deps {
        let entry = lock.iter().find(|e| &e.name == name);
        match (spec, entry) {
            (DepSpec::Path(p), None) => out.push(format!(
                "package '{name}': alc.toml declares path \"{p}\" but alc.lock has no entry for it; \
                 require uses the alc.toml path — add a [[package]] entry with source type \"path\" to alc.lock"
            )),
            (DepSpec::Path(p), Some(e)) => match &e.source {
                LockSource::Path(q) if same_path(root, p, q) => {}
                LockSource::Path(q) => out.push(format!(
                    "package '{name}': alc.toml declares path \"{p}\" but alc.lock records path \"{q}\"; \
                     require uses alc.lock's — make the two files agree"
                )),
                other => out.push(format!(
                    "package '{name}': alc.toml declares path \"{p}\" but alc.lock records it as {}; \
                     the path is not used — make the two files agree",
                    source_label(other)
                )),
            },
            _ => {}
        }
    }
    for e in lock {
        if let LockSource::Path(q) = &e.source {
            match deps.iter().find(|(n, _)| n == &e.name) {
                None => out.push(format!(
                    "package '{}': alc.lock records path \"{q}\" but alc.toml does not declare it; \
                     require still uses the path — add `{} = {{ path = \"{q}\" }}` to alc.toml or remove the lock entry",
                    e.name, e.name
                )),
                Some((_, DepSpec::Path(_))) => {}
                Some((_, other)) => out.push(format!(
                    "package '{}': alc.lock records path \"{q}\" but alc.toml declares {}; \
                     require uses the path — make the two files agree",
                    e.name,
                    spec_label(other)
                )),
            }
            let dir = root.join(q);
            if !dir.join("init.lua").is_file() {
                out.push(format!(
                    "package '{}': path dependency {} has no init.lua",
                    e.name,
                    dir.display()
                ));
            }
        }
    }
}

/// `version` of path entries in `alc.lock` against the package's own `M.meta.version`.
fn check_locked_versions(root: &Path, lock: &[LockEntry], out: &mut Vec<String>) {
    for e in lock {
        let (LockSource::Path(q), Some(locked)) = (&e.source, &e.version) else {
            continue;
        };
        let dir = root.join(q);
        if !dir.join("init.lua").is_file() {
            continue;
        }
        match meta::read_meta(&dir).as_ref().and_then(version_of) {
            Some(v) if same_version(locked, &v) => {}
            Some(v) => out.push(format!(
                "package '{}': alc.lock records version {locked} but {} declares M.meta.version {v}",
                e.name,
                dir.join("init.lua").display()
            )),
            None => out.push(format!(
                "package '{}': alc.lock records version {locked} but {} declares no M.meta.version",
                e.name,
                dir.join("init.lua").display()
            )),
        }
    }
}

/// `name = "<version>"` entries of `alc.toml` against the resolved package.
fn check_expected_versions(env: &PkgEnv, deps: &[(String, DepSpec)], out: &mut Vec<String>) {
    let resolver = Resolver::new(env.clone());
    for (name, spec) in deps {
        let DepSpec::Version(expected) = spec else {
            continue;
        };
        let expected = expected.trim();
        if expected.is_empty() || expected == "*" {
            continue;
        }
        let Some(binding) = resolver.locate(name) else {
            out.push(format!(
                "package '{name}': alc.toml expects version {expected} but no source provides it \
                 (variant, project, ALC_PACKAGES_PATH, global, bundled) — install it with `alc pkg install`"
            ));
            continue;
        };
        let found = binding_meta(env, name, &binding);
        let place = describe(&binding);
        match found.as_ref().and_then(version_of) {
            Some(v) if same_version(expected, &v) => {}
            Some(v) => out.push(format!(
                "package '{name}': alc.toml expects version {expected} but the resolved package \
                 ({place}) is version {v}; require uses it anyway — install version {expected} or update alc.toml"
            )),
            None => out.push(format!(
                "package '{name}': alc.toml expects version {expected} but the resolved package \
                 ({place}) declares no M.meta.version"
            )),
        }
    }
}

fn binding_meta(env: &PkgEnv, name: &str, b: &Binding) -> Option<serde_json::Map<String, Value>> {
    match &b.dir {
        Some(dir) => meta::read_meta(dir),
        None => env
            .bundled
            .file(name, "init.lua")
            .and_then(|src| meta::extract_meta(&String::from_utf8_lossy(src))),
    }
}

fn describe(b: &Binding) -> String {
    match (&b.dir, b.kind) {
        (Some(dir), kind) => format!("{}: {}", kind.label(), dir.display()),
        (None, SourceKind::Bundled) => "bundled with alc".into(),
        (None, kind) => kind.label().into(),
    }
}

fn version_of(m: &serde_json::Map<String, Value>) -> Option<String> {
    match m.get("version")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Exact match after trimming a leading `=` or `v`.
fn same_version(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim();
        let s = s.strip_prefix('=').unwrap_or(s).trim();
        s.strip_prefix('v').unwrap_or(s).to_string()
    };
    norm(a) == norm(b)
}

fn source_label(s: &LockSource) -> String {
    match s {
        LockSource::Installed => "installed (type \"installed\")".into(),
        LockSource::Path(p) => format!("path \"{p}\""),
        LockSource::Git { url, .. } => format!("a git dependency ({url})"),
        LockSource::Bundled(c) => format!("bundled (collection \"{c}\")"),
    }
}

fn spec_label(s: &DepSpec) -> String {
    match s {
        DepSpec::Version(v) => format!("version \"{v}\""),
        DepSpec::Path(p) => format!("path \"{p}\""),
        DepSpec::Git { url, .. } => format!("a git dependency ({url})"),
        DepSpec::Other => "an entry of another form".into(),
    }
}

/// Whether two project-relative paths name the same directory.
fn same_path(root: &Path, a: &str, b: &str) -> bool {
    let (pa, pb) = (root.join(a), root.join(b));
    match (pa.canonicalize(), pb.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => lexical(&pa) == lexical(&pb),
    }
}

fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn pkg(dir: &Path, name: &str, version: &str) {
        write(
            &dir.join("init.lua"),
            &format!(
                "local M = {{}}\nM.meta = {{ name = \"{name}\", version = \"{version}\" }}\nfunction M.run(ctx) return ctx end\nreturn M\n"
            ),
        );
    }

    fn env(home: &Path, root: &Path) -> PkgEnv {
        PkgEnv::new(home).with_project_root(Some(root.to_path_buf()))
    }

    #[test]
    fn no_project_or_consistent_project_gives_nothing() {
        let home = tempfile::tempdir().unwrap();
        assert!(lib_path_warnings(&PkgEnv::new(home.path())).is_empty());
        let proj = tempfile::tempdir().unwrap();
        pkg(&home.path().join("packages/sc"), "sc", "0.3.1");
        pkg(&proj.path().join("packages/helpers"), "helpers", "0.3.0");
        write(
            &proj.path().join("alc.toml"),
            "[packages]\nsc = \"0.3.1\"\ncot = \"*\"\nhelpers = { path = \"packages/helpers\" }\n",
        );
        write(
            &proj.path().join("alc.lock"),
            "version = 1\n\n[[package]]\nname = \"helpers\"\nversion = \"0.3.0\"\n\n[package.source]\ntype = \"path\"\npath = \"./packages/helpers\"\n",
        );
        assert_eq!(
            lib_path_warnings(&env(home.path(), proj.path())),
            Vec::<String>::new()
        );
    }

    #[test]
    fn expected_version_mismatch_missing_and_undeclared() {
        let home = tempfile::tempdir().unwrap();
        let proj = tempfile::tempdir().unwrap();
        pkg(&home.path().join("packages/sc"), "sc", "0.2.0");
        write(
            &home.path().join("packages/nov/init.lua"),
            "return { run = function(ctx) return ctx end }",
        );
        write(
            &proj.path().join("alc.toml"),
            "[packages]\nsc = \"0.3.1\"\nghost = \"1.0\"\nnov = \"=1.0\"\n",
        );
        let w = lib_path_warnings(&env(home.path(), proj.path()));
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("'sc'") && w[0].contains("0.3.1") && w[0].contains("version 0.2.0"));
        assert!(w[0].contains("global"), "{}", w[0]);
        assert!(w[1].contains("'ghost'") && w[1].contains("no source provides it"));
        assert!(w[2].contains("'nov'") && w[2].contains("no M.meta.version"));
        // `v` and `=` prefixes do not count as a difference.
        write(
            &proj.path().join("alc.toml"),
            "[packages]\nsc = \"v0.2.0\"\n",
        );
        assert!(lib_path_warnings(&env(home.path(), proj.path())).is_empty());
    }

    #[test]
    fn path_dependency_disagreements_between_toml_and_lock() {
        let home = tempfile::tempdir().unwrap();
        let proj = tempfile::tempdir().unwrap();
        pkg(&proj.path().join("packages/helpers"), "helpers", "0.4.0");
        pkg(&proj.path().join("vendor/helpers"), "helpers", "0.3.0");
        write(
            &proj.path().join("alc.toml"),
            "[packages]\nhelpers = { path = \"packages/helpers\" }\nextra = { path = \"packages/extra\" }\n",
        );
        write(
            &proj.path().join("alc.lock"),
            "version = 1\n\n[[package]]\nname = \"helpers\"\nversion = \"0.3.1\"\n\n[package.source]\ntype = \"path\"\npath = \"vendor/helpers\"\n\n[[package]]\nname = \"stray\"\n\n[package.source]\ntype = \"path\"\npath = \"gone\"\n",
        );
        let w = lib_path_warnings(&env(home.path(), proj.path()));
        let has = |needle: &[&str]| w.iter().any(|m| needle.iter().all(|n| m.contains(n)));
        assert!(
            has(&[
                "'helpers'",
                "\"packages/helpers\"",
                "\"vendor/helpers\"",
                "alc.lock's"
            ]),
            "{w:?}"
        );
        assert!(has(&["'extra'", "no entry"]), "{w:?}");
        assert!(has(&["'stray'", "does not declare"]), "{w:?}");
        assert!(has(&["'stray'", "no init.lua"]), "{w:?}");
        assert!(has(&["'helpers'", "version 0.3.1", "0.3.0"]), "{w:?}");
        assert_eq!(w.len(), 5, "{w:?}");

        // A lock entry of another kind shadows the alc.toml path.
        write(
            &proj.path().join("alc.lock"),
            "version = 1\n\n[[package]]\nname = \"helpers\"\n\n[package.source]\ntype = \"installed\"\n",
        );
        let w = lib_path_warnings(&env(home.path(), proj.path()));
        assert!(
            w.iter().any(|m| m.contains("'helpers'")
                && m.contains("installed")
                && m.contains("not used")),
            "{w:?}"
        );

        // An unreadable lock is reported, not fatal.
        write(&proj.path().join("alc.lock"), "version = 7\n");
        let w = lib_path_warnings(&env(home.path(), proj.path()));
        assert!(
            w.iter()
                .any(|m| m.contains("unsupported lock file version 7")),
            "{w:?}"
        );
    }
}
