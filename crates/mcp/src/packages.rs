//! Package resolution for sessions and the package tools (interfaces.md §2.5, §2.11, §6).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use alc_engine::{DataFile, ModuleFile, ModuleSource};
use alc_pkg::{PkgEnv, PkgError, Resolver};
use serde_json::{json, Value};

use crate::args::{Args, ToolError, ToolResult};

/// Resolver-profile prefix naming a project root (`SessionSpec::resolver`).
pub const PROJECT_PREFIX: &str = "project:";

/// The full `require` chain of §6.7 for every session of the server. The session's
/// resolver profile selects the project: `project:<abs path>`, else the server's.
#[derive(Clone, Debug)]
pub struct ChainModules {
    env: PkgEnv,
}

impl ChainModules {
    /// A module source over `env`.
    pub fn new(env: PkgEnv) -> ChainModules {
        ChainModules { env }
    }
}

/// The package environment of a resolver profile.
pub fn env_for_profile(base: &PkgEnv, profile: &str) -> PkgEnv {
    match profile.strip_prefix(PROJECT_PREFIX) {
        Some(p) if !p.is_empty() => base.clone().with_project_root(Some(PathBuf::from(p))),
        _ => base.clone(),
    }
}

impl ModuleSource for ChainModules {
    fn resolve(&self, resolver: &str, name: &str) -> Result<ModuleFile, String> {
        Resolver::new(env_for_profile(&self.env, resolver)).resolve(resolver, name)
    }

    fn read_data_file(&self, resolver: &str, pkg: &str, rel: &str) -> DataFile {
        Resolver::new(env_for_profile(&self.env, resolver)).read_data_file(resolver, pkg, rel)
    }
}

/// The `lib_path_warnings` of a session's project (resolver profile `profile`, else the
/// server's project): expected versions and `alc.toml` / `alc.lock` disagreements
/// (interfaces.md §2.1, §6.6). Empty without a project or problems.
pub fn lib_path_warnings(base: &PkgEnv, profile: &str) -> Vec<String> {
    alc_pkg::check::lib_path_warnings(&env_for_profile(base, profile))
}

/// Adds `lib_path_warnings` to an object payload when there are any (additive field).
pub fn add_lib_path_warnings(payload: &mut Value, warnings: Vec<String>) {
    if let (Value::Object(m), false) = (payload, warnings.is_empty()) {
        m.insert("lib_path_warnings".into(), json!(warnings));
    }
}

/// The `[run]` defaults of a project (interfaces.md §5.4, §6.6).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunDefaults {
    /// `[run] answerer` (`alc.local.toml` over `alc.toml`; a relative `scripted:FILE`
    /// is a file of the project).
    pub answerer: Option<String>,
    /// `[run] model`.
    pub model: Option<String>,
}

/// The `[run] answerer` and `[run] model` of the project at `root` (nothing without one),
/// read afresh for every call. Project files never configure providers: such keys are
/// ignored (and reported by `alc_info` and at server start).
pub fn run_defaults(root: Option<&Path>) -> RunDefaults {
    let Some(root) = root else {
        return RunDefaults::default();
    };
    let (run, _, _) = alc_config::project_run(root);
    RunDefaults {
        answerer: run.answerer.map(|s| s.value),
        model: run.model.map(|s| s.value),
    }
}

/// A package error as a tool error (same code and message).
pub fn pkg_error(e: PkgError) -> ToolError {
    ToolError::new(e.code(), e.to_string())
}

fn dir_names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("init.lua").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| alc_engine::valid_package_name(n))
                .collect()
        })
        .unwrap_or_default()
}

/// Every package name the chain can resolve (for suggestions).
pub fn resolvable_names(env: &PkgEnv) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = env.bundled.names().into_iter().collect();
    for root in &env.packages_path {
        names.extend(dir_names(root));
    }
    names.extend(dir_names(&env.packages_dir()));
    if let Some(root) = &env.project_root {
        if let Ok(vs) = alc_pkg::manifest::read_variants(root) {
            names.extend(vs.into_iter().map(|(n, _)| n));
        }
        if let Ok((deps, _)) = alc_pkg::manifest::path_dependencies(root) {
            names.extend(deps.into_iter().map(|(n, _)| n));
        }
    }
    names
}

/// Levenshtein distance over Unicode scalar values (case-insensitive).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest name within `max(2, len/3)` edits, if any.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a String>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|x, y| x.0.cmp(&y.0).then_with(|| x.1.cmp(y.1)))
        .map(|(_, c)| c.clone())
}

/// The `package_not_found` error of `alc_advice`, with a suggestion when one is close.
pub fn advice_not_found(env: &PkgEnv, name: &str) -> ToolError {
    let mut msg = format!(
        "package '{name}' not found (searched variant, project, ALC_PACKAGES_PATH, {}, bundled)",
        env.packages_dir().display()
    );
    if let Some(s) = suggest(name, resolvable_names(env).iter()) {
        msg.push_str(&format!("; did you mean '{s}'?"));
    }
    ToolError::new("package_not_found", msg)
}

fn to_value<T: serde::Serialize>(r: Result<T, PkgError>) -> ToolResult {
    let r = r.map_err(pkg_error)?;
    serde_json::to_value(r).map_err(|e| ToolError::new("internal", e.to_string()))
}

fn path_arg(a: &Args<'_>, name: &str) -> Result<Option<PathBuf>, ToolError> {
    Ok(a.str(name)?.map(PathBuf::from))
}

fn i64_arg(a: &Args<'_>, name: &str) -> Result<Option<i64>, ToolError> {
    match a.decoded(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| ToolError::invalid(format!("`{name}` must be an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ToolError::invalid(format!("`{name}` must be an integer"))),
        Some(_) => Err(ToolError::invalid(format!("`{name}` must be an integer"))),
    }
}

/// `alc_pkg_list`.
pub fn pkg_list(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let fields = match a.decoded("fields") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| ToolError::invalid("`fields` must be an array of strings"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(Value::String(s)) => Some(s.split(',').map(|f| f.trim().to_string()).collect()),
        Some(_) => return Err(ToolError::invalid("`fields` must be an array of strings")),
    };
    let opts = alc_pkg::ListOptions {
        project_root: path_arg(a, "project_root")?,
        limit: i64_arg(a, "limit")?,
        sort: a.str("sort")?.map(str::to_string),
        filter: a.object("filter")?,
        fields,
        verbose: a.str("verbose")?.map(str::to_string),
    };
    to_value(alc_pkg::list(env, &opts))
}

/// `alc_pkg_install`.
pub fn pkg_install(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let url = a.req_str("url")?.to_string();
    // A relative local path is taken from the server's working directory.
    let opts = alc_pkg::InstallOptions {
        url,
        name: a.str("name")?.map(str::to_string),
        git_ref: a.str("ref")?.map(str::to_string),
        force: a.bool("force")?.unwrap_or(false),
        scope: a.str("scope")?.map(str::to_string),
        project_root: path_arg(a, "project_root")?,
    };
    to_value(alc_pkg::install(env, &opts))
}

/// `alc_pkg_remove`.
pub fn pkg_remove(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let opts = alc_pkg::RemoveOptions {
        name: a.req_str("name")?.to_string(),
        scope: a.str("scope")?.map(str::to_string),
        project_root: path_arg(a, "project_root")?,
        version: a.str("version")?.map(str::to_string),
    };
    to_value(alc_pkg::remove(env, &opts))
}

/// `alc_pkg_link`.
pub fn pkg_link(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let opts = alc_pkg::LinkOptions {
        path: PathBuf::from(a.req_str("path")?),
        name: a.str("name")?.map(str::to_string),
        force: a.bool("force")?.unwrap_or(false),
        scope: a.str("scope")?.map(str::to_string),
        project_root: path_arg(a, "project_root")?,
    };
    to_value(alc_pkg::link(env, &opts))
}

/// `alc_pkg_unlink`.
pub fn pkg_unlink(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let name = a.req_str("name")?;
    let root = path_arg(a, "project_root")?;
    to_value(alc_pkg::unlink(env, name, a.str("scope")?, root.as_deref()))
}

/// `alc_init`: `alc.toml` in `project_root`, else the server's project, else its cwd.
pub fn init(env: &PkgEnv, a: &Args<'_>) -> ToolResult {
    let root = match path_arg(a, "project_root")? {
        Some(p) => p,
        None => match &env.project_root {
            Some(p) => p.clone(),
            None => std::env::current_dir()
                .map_err(|e| ToolError::new("io_error", format!("no working directory: {e}")))?,
        },
    };
    let bundled = a.bool("bundled")?.unwrap_or(false);
    to_value(alc_pkg::init_project(env, &root, bundled))
}

/// `search_paths` of `alc_info` (§2.10 labels).
pub fn info_search_paths(env: &PkgEnv) -> Vec<Value> {
    Resolver::new(env.clone())
        .search_paths()
        .into_iter()
        .filter(|(_, label)| label != "scenarios")
        .map(|(path, label)| {
            let source = if label == "global" {
                "default".to_string()
            } else {
                label
            };
            json!({"path": path, "source": source})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_and_suggestion() {
        assert_eq!(edit_distance("cot", "cot"), 0);
        assert_eq!(edit_distance("cto", "cot"), 2);
        assert_eq!(edit_distance("reflexoin", "reflexion"), 2);
        assert_eq!(edit_distance("", "ab"), 2);
        let names: Vec<String> = ["cot", "sc", "reflexion"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            suggest("reflexon", names.iter()).as_deref(),
            Some("reflexion")
        );
        assert_eq!(suggest("cott", names.iter()).as_deref(), Some("cot"));
        assert_eq!(suggest("zzzzzzzzzz", names.iter()), None);
    }

    #[test]
    fn profiles_select_the_project() {
        let base = PkgEnv::new("/tmp/h");
        assert!(env_for_profile(&base, "default").project_root.is_none());
        assert_eq!(
            env_for_profile(&base, "project:/p").project_root,
            Some(PathBuf::from("/p"))
        );
    }
}
