//! Installed scenarios (interfaces.md §2.12, §8.4): `<home>/scenarios/<name>.{lua,jsonl,eval.toml}`.
//! Lookup by name (traversal rejected), listing, and installation from a local directory.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::dataset;
use crate::EvalError;

/// Scenario file extensions in lookup order, with their `format` label.
pub const FORMATS: &[(&str, &str)] = &[("lua", "lua"), ("jsonl", "jsonl"), ("eval.toml", "suite")];

/// `(name, format)` of a scenario file name, or `None` for other files.
pub fn split_name(file_name: &str) -> Option<(&str, &'static str)> {
    if file_name.starts_with('.') {
        return None;
    }
    // `eval.toml` before anything shorter.
    let mut by_len: Vec<&(&str, &str)> = FORMATS.iter().collect();
    by_len.sort_by_key(|(ext, _)| std::cmp::Reverse(ext.len()));
    by_len.into_iter().find_map(|(ext, fmt)| {
        file_name
            .strip_suffix(ext)
            .and_then(|s| s.strip_suffix('.'))
            .filter(|s| !s.is_empty())
            .map(|s| (s, *fmt))
    })
}

/// Whether `name` is an acceptable scenario name: 1–128 characters of `A-Z a-z 0-9 _ - .`,
/// not starting with `.`, no `..`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// The file of scenario `name` in `dir` (`.lua`, then `.jsonl`, then `.eval.toml`).
/// An invalid name → `invalid_params`; none found → `scenario_not_found`.
pub fn find(dir: &Path, name: &str) -> Result<(PathBuf, &'static str), EvalError> {
    if !valid_name(name) {
        return Err(EvalError::invalid(format!(
            "invalid scenario name '{name}' (letters, digits, `_`, `-`, `.`; no path)"
        )));
    }
    for (ext, fmt) in FORMATS {
        let p = dir.join(format!("{name}.{ext}"));
        if p.is_file() {
            return Ok((p, fmt));
        }
    }
    Err(EvalError::scenario_not_found(name, dir))
}

/// Loads scenario `name` from `dir` (see [`find`]).
pub fn load(dir: &Path, name: &str) -> Result<dataset::Scenario, EvalError> {
    let (path, _) = find(dir, name)?;
    dataset::load_any(&path, false)
}

/// `{"scenarios":[{name, path, format, size_bytes, cases?}], "failures":[{name, path, error}]}`
/// for `dir`, sorted by name; a file that does not parse is listed without `cases` and
/// reported in `failures`. A missing directory lists nothing.
pub fn list(dir: &Path) -> Value {
    let mut scenarios = Vec::new();
    let mut failures = Vec::new();
    let mut entries: Vec<(String, PathBuf, &'static str, u64)> = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let fname = e.file_name().to_string_lossy().into_owned();
            let Some((name, fmt)) = split_name(&fname) else {
                continue;
            };
            let Ok(meta) = fs::metadata(e.path()) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            entries.push((name.to_string(), e.path(), fmt, meta.len()));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    for (name, path, fmt, size) in entries {
        let mut v = json!({
            "name": name,
            "path": path.display().to_string(),
            "format": fmt,
            "size_bytes": size,
        });
        match dataset::load_any(&path, false) {
            Ok(s) => v["cases"] = json!(s.cases.len()),
            Err(e) => failures.push(json!({
                "name": name,
                "path": path.display().to_string(),
                "error": e.message,
            })),
        }
        scenarios.push(v);
    }
    json!({"scenarios": scenarios, "failures": failures})
}

/// `{"name","path","format","content"}` of scenario `name` in `dir`.
pub fn show(dir: &Path, name: &str) -> Result<Value, EvalError> {
    let (path, fmt) = find(dir, name)?;
    let content = fs::read_to_string(&path)
        .map_err(|e| EvalError::io(format!("cannot read {}: {e}", path.display())))?;
    Ok(json!({
        "name": name,
        "path": path.display().to_string(),
        "format": fmt,
        "content": content,
    }))
}

/// Result of [`install_dir`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Installed {
    /// File names copied.
    pub installed: Vec<String>,
    /// File names already present (no `force`).
    pub skipped: Vec<String>,
    /// `"<file>: <reason>"` for files not copied.
    pub failures: Vec<String>,
}

impl Installed {
    /// `{"installed":[…],"skipped":[…],"failures":[…]}`.
    pub fn to_json(&self) -> Value {
        json!({"installed": self.installed, "skipped": self.skipped, "failures": self.failures})
    }
}

/// Copies the scenario files (`*.lua`, `*.jsonl`, `*.eval.toml`) of `src` and of
/// `src/scenarios` into `dest`. Only regular files are copied (symlinks and dotfiles are
/// refused); an existing file is kept unless `force`. Nothing installable (no scenario
/// file at all) → `invalid_params`.
pub fn install_dir(src: &Path, dest: &Path, force: bool) -> Result<Installed, EvalError> {
    if !src.is_dir() {
        return Err(EvalError::not_found(format!(
            "{}: not a directory",
            src.display()
        )));
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    for dir in [src.to_path_buf(), src.join("scenarios")] {
        let Ok(rd) = fs::read_dir(&dir) else {
            continue;
        };
        let mut found: Vec<(String, PathBuf)> = rd
            .flatten()
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(n, _)| {
                n.ends_with(".lua") || n.ends_with(".jsonl") || n.ends_with(".eval.toml")
            })
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut out = Installed::default();
    if files.is_empty() {
        return Err(EvalError::invalid(format!(
            "nothing to install: no *.lua, *.jsonl or *.eval.toml file in {} or its scenarios/ directory",
            src.display()
        )));
    }
    for (fname, path) in files {
        let regular = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        let name_ok = split_name(&fname).is_some_and(|(n, _)| valid_name(n));
        if !regular || !name_ok {
            out.failures.push(format!(
                "{fname}: {}",
                if regular {
                    "invalid scenario name"
                } else {
                    "not a regular file"
                }
            ));
            continue;
        }
        if out.installed.contains(&fname) || out.skipped.contains(&fname) {
            out.failures
                .push(format!("{fname}: duplicate file name (first one kept)"));
            continue;
        }
        if let Err(e) = fs::create_dir_all(dest) {
            out.failures.push(format!("{fname}: {e}"));
            continue;
        }
        let target = dest.join(&fname);
        if target.exists() && !force {
            out.skipped.push(fname);
            continue;
        }
        match fs::read(&path).and_then(|b| fs::write(&target, b)) {
            Ok(()) => out.installed.push(fname),
            Err(e) => out.failures.push(format!("{fname}: {e}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_formats() {
        assert_eq!(split_name("a.eval.toml"), Some(("a", "suite")));
        assert_eq!(split_name("a.jsonl"), Some(("a", "jsonl")));
        assert_eq!(split_name("x.y.lua"), Some(("x.y", "lua")));
        assert_eq!(split_name(".lua"), None);
        assert_eq!(split_name("a.toml"), None);
        assert!(valid_name("arith_small"));
        assert!(!valid_name("../x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(""));
    }

    #[test]
    fn install_list_show_find() {
        let src = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let dest = home.path().join("scenarios");
        fs::write(
            src.path().join("arith.jsonl"),
            "{\"id\":\"a\",\"input\":\"1+1\",\"expected\":\"2\"}\n",
        )
        .unwrap();
        fs::create_dir(src.path().join("scenarios")).unwrap();
        fs::write(
            src.path().join("scenarios/simple.lua"),
            "return {cases = {{input = 'x', expected = 'y'}}, graders = {'exact_match'}}",
        )
        .unwrap();
        fs::write(src.path().join("README.md"), "no").unwrap();
        let r = install_dir(src.path(), &dest, false).unwrap();
        assert_eq!(r.installed, vec!["arith.jsonl", "simple.lua"]);
        let again = install_dir(src.path(), &dest, false).unwrap();
        assert_eq!(again.skipped, vec!["arith.jsonl", "simple.lua"]);
        let forced = install_dir(src.path(), &dest, true).unwrap();
        assert_eq!(forced.installed.len(), 2);
        let l = list(&dest);
        assert_eq!(l["scenarios"][0]["name"], "arith");
        assert_eq!(l["scenarios"][0]["cases"], 1);
        assert_eq!(l["scenarios"][1]["format"], "lua");
        let s = show(&dest, "simple").unwrap();
        assert!(s["content"].as_str().unwrap().contains("exact_match"));
        assert_eq!(find(&dest, "nope").unwrap_err().code, "scenario_not_found");
        assert_eq!(find(&dest, "../x").unwrap_err().code, "invalid_params");
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            install_dir(empty.path(), &dest, false).unwrap_err().code,
            "invalid_params"
        );
    }
}
