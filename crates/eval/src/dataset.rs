//! Datasets (JSONL), suites (`*.eval.toml`) and simple-form Lua scenarios (§8.1–§8.4).

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::grader::GraderSpec;
use crate::EvalError;

/// One evaluation case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Case id (default `case-<line>`).
    pub id: String,
    /// String → `ctx.task`; object → merged into `ctx`.
    pub input: Value,
    /// Reference answer; an array means "any of these".
    #[serde(default)]
    pub expected: Value,
    /// Per-case graders replacing the suite graders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graders: Option<Vec<GraderSpec>>,
    /// Tags carried into results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Free-form metadata carried into results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// A line that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for BadLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A loaded dataset.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// The cases in file order.
    pub cases: Vec<Case>,
    /// Lines skipped with `skip_bad` (empty otherwise).
    pub skipped: Vec<BadLine>,
}

fn parse_case(value: Value, line: usize) -> Result<Case, String> {
    let Value::Object(mut obj) = value else {
        return Err("not a JSON object".into());
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => format!("case-{line}"),
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err("`id` must be a non-empty string".into()),
    };
    let input = match obj.remove("input") {
        Some(v @ (Value::String(_) | Value::Object(_))) => v,
        Some(_) => return Err("`input` must be a string or an object".into()),
        None => return Err("missing `input`".into()),
    };
    let expected = obj.remove("expected").unwrap_or(Value::Null);
    let graders = match obj.remove("graders") {
        None | Some(Value::Null) => None,
        Some(v) => Some(crate::grader::parse_graders(&v).map_err(|e| e.message)?),
    };
    let tags = match obj.remove("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|t| match t {
                Value::String(s) => Ok(s),
                _ => Err("`tags` must be an array of strings".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`tags` must be an array of strings".into()),
    };
    let meta = match obj.remove("meta") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(v),
        Some(_) => return Err("`meta` must be an object".into()),
    };
    Ok(Case {
        id,
        input,
        expected,
        graders,
        tags,
        meta,
    })
}

/// Parses JSONL text. Without `skip_bad` any bad line is an error listing every bad
/// line with its number; with it, bad lines are reported in [`Dataset::skipped`].
pub fn parse_jsonl(text: &str, skip_bad: bool) -> Result<Dataset, EvalError> {
    let mut cases = Vec::new();
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(raw)
            .map_err(|e| format!("invalid JSON: {e}"))
            .and_then(|v| parse_case(v, line));
        match parsed {
            Ok(case) => {
                if !seen.insert(case.id.clone()) {
                    bad.push(BadLine {
                        line,
                        message: format!("duplicate case id '{}'", case.id),
                    });
                } else {
                    cases.push(case);
                }
            }
            Err(message) => bad.push(BadLine { line, message }),
        }
    }
    if !bad.is_empty() && !skip_bad {
        let list: Vec<String> = bad.iter().map(ToString::to_string).collect();
        return Err(EvalError::invalid(format!(
            "malformed dataset ({} bad line{}): {}",
            bad.len(),
            if bad.len() == 1 { "" } else { "s" },
            list.join("; ")
        ))
        .with_hint("fix the lines, or pass --skip-bad to load the rest"));
    }
    Ok(Dataset {
        cases,
        skipped: bad,
    })
}

/// Cases given as JSON values (the `dataset` tool argument, inline suite cases).
pub fn cases_from_values(values: &[Value]) -> Result<Vec<Case>, EvalError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let case = parse_case(v.clone(), i + 1)
            .map_err(|m| EvalError::invalid(format!("case {}: {m}", i + 1)))?;
        if !seen.insert(case.id.clone()) {
            return Err(EvalError::invalid(format!(
                "case {}: duplicate case id '{}'",
                i + 1,
                case.id
            )));
        }
        out.push(case);
    }
    Ok(out)
}

/// What an eval runs: cases plus grading settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    /// Scenario name (file stem or the suite's `name`).
    pub name: String,
    /// The cases.
    pub cases: Vec<Case>,
    /// Default graders (a bare dataset: one `exact`).
    pub graders: Vec<GraderSpec>,
    /// Pass threshold (default 1.0).
    pub pass_threshold: f64,
    /// Dot path of the output in the returned value.
    pub output_field: Option<String>,
    /// Lines skipped with `skip_bad` (not stored).
    #[serde(skip)]
    pub skipped: Vec<BadLine>,
}

impl Scenario {
    /// SHA-256 (hex, first 16 bytes) of the cases, for "same dataset" checks.
    pub fn content_hash(&self) -> String {
        let text = serde_json::to_string(&self.cases).unwrap_or_default();
        let d = Sha256::digest(text.as_bytes());
        d.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}

fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for ext in [".eval.toml", ".jsonl", ".lua", ".toml", ".json"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s.to_string();
        }
    }
    name
}

fn read(path: &Path) -> Result<String, EvalError> {
    std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            EvalError::not_found(format!("{}: no such file", path.display()))
        } else {
            EvalError::io(format!("cannot read {}: {e}", path.display()))
        }
    })
}

/// Loads a bare JSONL dataset (one `exact` grader).
pub fn load_dataset(path: &Path, skip_bad: bool) -> Result<Scenario, EvalError> {
    let text = read(path)?;
    let ds =
        parse_jsonl(&text, skip_bad).map_err(|e| e.prefix(&format!("{}: ", path.display())))?;
    Ok(Scenario {
        name: stem(path),
        cases: ds.cases,
        graders: vec![GraderSpec::exact()],
        pass_threshold: 1.0,
        output_field: None,
        skipped: ds.skipped,
    })
}

/// Loads a suite file (`*.eval.toml`, §8.3).
pub fn load_suite(path: &Path, skip_bad: bool) -> Result<Scenario, EvalError> {
    let text = read(path)?;
    let doc: Value = toml::from_str(&text)
        .map_err(|e| EvalError::invalid(format!("{}: invalid TOML: {e}", path.display())))?;
    let Value::Object(mut doc) = doc else {
        return Err(EvalError::invalid("suite is not a table"));
    };
    let name = match doc.remove("name") {
        Some(Value::String(s)) => s,
        _ => stem(path),
    };
    let (cases, skipped) = match (doc.remove("dataset"), doc.remove("cases")) {
        (Some(Value::String(rel)), None) => {
            let base = path.parent().unwrap_or(Path::new("."));
            let ds_path = base.join(rel);
            let ds_text = read(&ds_path)?;
            let ds = parse_jsonl(&ds_text, skip_bad)
                .map_err(|e| e.prefix(&format!("{}: ", ds_path.display())))?;
            (ds.cases, ds.skipped)
        }
        (None, Some(Value::Array(cs))) => (cases_from_values(&cs)?, Vec::new()),
        (Some(_), Some(_)) => {
            return Err(EvalError::invalid(
                "suite gives both `dataset` and inline [[cases]]; keep one",
            ))
        }
        _ => {
            return Err(EvalError::invalid(
                "suite needs `dataset = \"file.jsonl\"` or inline [[cases]] tables",
            ))
        }
    };
    let graders = match doc.remove("graders") {
        Some(v) => crate::grader::parse_graders(&v)?,
        None => vec![GraderSpec::exact()],
    };
    let pass_threshold = match doc.remove("pass_threshold") {
        Some(v) => v
            .as_f64()
            .ok_or_else(|| EvalError::invalid("`pass_threshold` must be a number"))?,
        None => 1.0,
    };
    let output_field = match doc.remove("output_field") {
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(EvalError::invalid("`output_field` must be a string")),
        None => None,
    };
    Ok(Scenario {
        name,
        cases,
        graders,
        pass_threshold,
        output_field,
        skipped,
    })
}

fn lua_to_json(v: mlua::Value, depth: usize) -> Result<Value, String> {
    if depth > 64 {
        return Err("table nesting too deep".into());
    }
    Ok(match v {
        mlua::Value::Nil => Value::Null,
        mlua::Value::Boolean(b) => Value::Bool(b),
        mlua::Value::Integer(i) => Value::from(i),
        mlua::Value::Number(n) => serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        mlua::Value::String(s) => Value::String(s.to_string_lossy()),
        mlua::Value::Table(t) => {
            let len = t.raw_len();
            let mut pairs = 0usize;
            for pair in t.clone().pairs::<mlua::Value, mlua::Value>() {
                pair.map_err(|e| e.to_string())?;
                pairs += 1;
            }
            if len > 0 && pairs == len {
                let mut arr = Vec::with_capacity(len);
                for i in 1..=len {
                    let item: mlua::Value = t.raw_get(i).map_err(|e| e.to_string())?;
                    arr.push(lua_to_json(item, depth + 1)?);
                }
                Value::Array(arr)
            } else {
                let mut map = Map::new();
                for pair in t.pairs::<mlua::Value, mlua::Value>() {
                    let (k, v) = pair.map_err(|e| e.to_string())?;
                    let key = match k {
                        mlua::Value::String(s) => s.to_string_lossy(),
                        mlua::Value::Integer(i) => i.to_string(),
                        other => return Err(format!("unsupported table key {other:?}")),
                    };
                    map.insert(key, lua_to_json(v, depth + 1)?);
                }
                Value::Object(map)
            }
        }
        other => return Err(format!("unsupported value of type {}", other.type_name())),
    })
}

/// Parses a simple-form evalframe-style scenario (§8.4): the chunk returns
/// `{name?, cases = {{input, expected}, …}, graders = {"exact_match", …}}`.
/// The chunk runs in a bare Lua state (table, string and math libraries only).
pub fn parse_lua_scenario(source: &str, default_name: &str) -> Result<Scenario, EvalError> {
    let lua = mlua::Lua::new_with(
        mlua::StdLib::TABLE | mlua::StdLib::STRING | mlua::StdLib::MATH,
        mlua::LuaOptions::default(),
    )
    .map_err(|e| EvalError::internal(format!("cannot create a Lua state: {e}")))?;
    let value: mlua::Value = lua
        .load(source)
        .set_name(format!("={default_name}"))
        .eval()
        .map_err(|e| EvalError::invalid(format!("scenario {default_name}: {e}")))?;
    let mlua::Value::Table(t) = &value else {
        return Err(EvalError::invalid(format!(
            "scenario {default_name} must return a table"
        )));
    };
    if t.raw_len() > 0 {
        return Err(EvalError::invalid(format!(
            "scenario {default_name} uses the evalframe full form (grader bindings in the array part); \
             it needs the `evalframe` package, which this build does not run — use the simple form \
             {{cases = …, graders = {{\"exact_match\"}}}}"
        )));
    }
    let json = lua_to_json(value, 0)
        .map_err(|e| EvalError::invalid(format!("scenario {default_name}: {e}")))?;
    let Value::Object(mut obj) = json else {
        return Err(EvalError::invalid("scenario must return a table"));
    };
    let name = match obj.remove("name") {
        Some(Value::String(s)) => s,
        _ => default_name.to_string(),
    };
    let cases = match obj.remove("cases") {
        Some(Value::Array(cs)) => cases_from_values(&cs)?,
        Some(Value::Object(m)) if m.is_empty() => Vec::new(),
        _ => {
            return Err(EvalError::invalid(format!(
                "scenario {default_name}: `cases` must be a list of {{input = …, expected = …}}"
            )))
        }
    };
    let graders = match obj.remove("graders") {
        None => vec![GraderSpec::exact()],
        Some(Value::Array(gs)) => {
            let mut out = Vec::new();
            for g in gs {
                let spec = match g {
                    Value::String(s) => {
                        let ty = match s.as_str() {
                            "exact_match" | "exact" => "exact",
                            "contains" => "contains",
                            "regex" => "regex",
                            "numeric" => "numeric",
                            other => {
                                return Err(EvalError::invalid(format!(
                                    "unknown grader '{other}' in scenario {default_name} \
                                     (known: exact_match, contains, regex, numeric)"
                                )))
                            }
                        };
                        Value::String(ty.into())
                    }
                    other => other,
                };
                out.extend(crate::grader::parse_graders(&Value::Array(vec![spec]))?);
            }
            out
        }
        Some(_) => {
            return Err(EvalError::invalid(
                "scenario `graders` must be a list of grader names",
            ))
        }
    };
    let pass_threshold = obj
        .remove("pass_threshold")
        .and_then(|v| v.as_f64())
        .unwrap_or(1.0);
    let output_field = match obj.remove("output_field") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Ok(Scenario {
        name,
        cases,
        graders,
        pass_threshold,
        output_field,
        skipped: Vec::new(),
    })
}

/// Loads a `.lua` scenario file.
pub fn load_lua_scenario(path: &Path) -> Result<Scenario, EvalError> {
    let text = read(path)?;
    parse_lua_scenario(&text, &stem(path))
}

/// Loads any scenario file by extension: `.jsonl`, `.eval.toml` / `.toml`, `.lua`.
pub fn load_any(path: &Path, skip_bad: bool) -> Result<Scenario, EvalError> {
    let name = path.to_string_lossy();
    if name.ends_with(".lua") {
        load_lua_scenario(path)
    } else if name.ends_with(".toml") {
        load_suite(path, skip_bad)
    } else {
        load_dataset(path, skip_bad)
    }
}
