//! Keeps the editor type stub `types/alc.d.lua` honest: it must be valid Lua and must declare every
//! member of the exact `alc` member set of `lua-api.md` §2 (plus the required `alc.math` members of
//! §2.10), so the stub cannot silently fall behind the API.

use std::path::PathBuf;

/// `lua-api.md` §2, first paragraph: function members of `alc`.
const FUNCTIONS: &[&str] = &[
    "llm",
    "llm_batch",
    "ask",
    "fork",
    "json_encode",
    "json_decode",
    "array",
    "object",
    "chunk",
    "match_enum",
    "match_bool",
    "parse_score",
    "parse_number",
    "json_extract",
    "fingerprint",
    "log",
    "progress",
    "time",
    "budget_remaining",
    "budget_check",
    "cache",
    "cache_info",
    "cache_clear",
    "map",
    "reduce",
    "filter",
    "vote",
    "ground",
    "specify",
    "llm_safe",
    "llm_json",
    "tuning",
    "parallel",
    "pipe",
    "eval",
];

/// `lua-api.md` §2, first paragraph: value members of `alc`.
const VALUES: &[&str] = &["json_null", "env", "state", "card", "stats", "math"];

/// `lua-api.md` §2 / §2.8.
const STATE: &[&str] = &[
    "get", "set", "delete", "has", "keys", "set_nx", "incr", "update", "list", "show",
];

/// `lua-api.md` §2 / §2.5.
const STATS: &[&str] = &["record", "get", "llm_calls"];

/// `lua-api.md` §2 / §2.9.
const CARD: &[&str] = &[
    "create",
    "get",
    "list",
    "find",
    "append",
    "write_samples",
    "read_samples",
    "alias_set",
    "alias_list",
    "get_by_alias",
    "lineage",
];

/// `lua-api.md` §2.10, required members.
const MATH: &[&str] = &[
    "rng_create",
    "rng_float",
    "rng_int",
    "median",
    "percentile",
    "wilson_ci",
    "mean",
    "variance",
    "stddev",
];

fn stub_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../types/alc.d.lua")
}

fn stub_source() -> String {
    let path = stub_path();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// True when `line` (trimmed) declares `qualified` as a function or assigns it as a field.
fn declares(src: &str, qualified: &str) -> bool {
    let func = format!("function {qualified}(");
    let field = format!("{qualified} =");
    src.lines()
        .map(str::trim_start)
        .any(|l| l.starts_with(&func) || l.starts_with(&field))
}

#[test]
fn stub_is_valid_lua_and_a_meta_file() {
    let src = stub_source();
    assert!(
        src.trim_start().starts_with("---@meta"),
        "types/alc.d.lua must start with a ---@meta annotation"
    );
    let lua = mlua::Lua::new();
    if let Err(e) = lua
        .load(src.as_str())
        .set_name("=alc.d.lua")
        .into_function()
    {
        panic!("types/alc.d.lua is not valid Lua: {e}");
    }
}

#[test]
fn stub_declares_every_member_of_the_exact_member_set() {
    let src = stub_source();
    let mut missing = Vec::new();
    let mut covered = 0usize;

    for name in FUNCTIONS {
        let q = format!("alc.{name}");
        if src.contains(&format!("function {q}(")) && declares(&src, &q) {
            covered += 1;
        } else {
            missing.push(format!("function {q}(...)"));
        }
    }
    for name in VALUES {
        let q = format!("alc.{name}");
        if declares(&src, &q) {
            covered += 1;
        } else {
            missing.push(format!("{q} = ..."));
        }
    }
    for (group, names) in [
        ("state", STATE),
        ("stats", STATS),
        ("card", CARD),
        ("math", MATH),
    ] {
        for name in names {
            let q = format!("alc.{group}.{name}");
            if src
                .lines()
                .map(str::trim_start)
                .any(|l| l.starts_with(&format!("function {q}(")))
            {
                covered += 1;
            } else {
                missing.push(format!("function {q}(...)"));
            }
        }
    }

    assert!(
        missing.is_empty(),
        "types/alc.d.lua lacks declarations: {missing:#?}"
    );
    let expected =
        FUNCTIONS.len() + VALUES.len() + STATE.len() + STATS.len() + CARD.len() + MATH.len();
    assert_eq!(covered, expected);
}

#[test]
fn stub_declares_the_documented_classes_and_value_types() {
    let src = stub_source();
    for class in [
        "alc.LlmOpts",
        "alc.BatchItem",
        "alc.AskOpts",
        "alc.ForkResult",
        "alc.Card",
        "alc.Rng",
        "alc.VoteResult",
        "alc.WilsonCI",
        "alc.BudgetLimits",
        "alc.BudgetRemaining",
        "alc.PipeHistoryEntry",
        "alc.Ctx",
    ] {
        let decl = format!("---@class {class}");
        assert!(
            src.lines().any(|l| l == decl
                || l.starts_with(&format!("{decl}:"))
                || l.starts_with(&format!("{decl} "))),
            "missing {decl}"
        );
    }
    for (ty, target) in [
        ("alc.JsonNull", "alc.json_null ="),
        ("alc.Env", "alc.env ="),
        ("alc.Ctx", "ctx ="),
    ] {
        let annotated = src
            .lines()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| w[0].trim() == format!("---@type {ty}") && w[1].starts_with(target));
        assert!(annotated, "`{target}` must be annotated with ---@type {ty}");
    }
    for field in [
        "system",
        "max_tokens",
        "temperature",
        "model",
        "role",
        "grounded",
        "underspecified",
        "cache_key",
        "cache_skip",
    ] {
        assert!(
            src.contains(&format!("---@field {field}? ")),
            "alc.LlmOpts lacks field {field}"
        );
    }
    for prefix in [
        "budget_exceeded: ",
        "provider_error[",
        "scripted_no_match: ",
        "not_yieldable: ",
        "invalid_request: ",
        "stats_limit: ",
    ] {
        assert!(
            src.contains(prefix),
            "stub does not document the error prefix `{prefix}`"
        );
    }
}
