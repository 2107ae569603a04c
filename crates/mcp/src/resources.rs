//! Resource URIs and the `advice` prompt (interfaces.md §3.6, §3.7).

use alc_core::SessionId;

/// A parsed `alc://` resource URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceUri {
    /// `alc://packages/{name}/init.lua`.
    PackageSource(String),
    /// `alc://packages/{name}/meta`.
    PackageMeta(String),
    /// `alc://logs/{session_id}[?max_chars=N]`.
    Logs(SessionId, u64),
    /// `alc://sessions/{session_id}`.
    Session(SessionId),
    /// `alc://scenarios/{name}`: the raw scenario file.
    Scenario(String),
    /// `alc://eval/{eval_id}`: as `alc_eval_detail`.
    Eval(String),
    /// `alc://types/alc.d.lua`: the LuaCATS definitions of the `alc` API.
    Types,
}

/// The fixed resource with the type definitions of the `alc` API.
pub const TYPES_URI: &str = "alc://types/alc.d.lua";

/// Default and cap of `max_chars` for `alc://logs/{id}`.
pub const LOGS_DEFAULT_CHARS: u64 = 20_000;
/// Cap of `max_chars` for `alc://logs/{id}`.
pub const LOGS_MAX_CHARS: u64 = 1_000_000;

/// Templates: (uri template, name, MIME type, description).
pub const TEMPLATES: &[(&str, &str, &str, &str)] = &[
    (
        "alc://packages/{name}/init.lua",
        "package source",
        "text/x-lua",
        "Resolved source of a strategy package.",
    ),
    (
        "alc://packages/{name}/meta",
        "package meta",
        "application/json",
        "M.meta of a package, extracted statically (no Lua execution).",
    ),
    (
        "alc://scenarios/{name}",
        "scenario",
        "text/x-lua",
        "Raw scenario file: text/x-lua (.lua), application/x-ndjson (.jsonl) or application/toml (.eval.toml).",
    ),
    (
        "alc://eval/{eval_id}",
        "eval run",
        "application/json",
        "As alc_eval_detail.",
    ),
    (
        "alc://logs/{session_id}",
        "session transcript",
        "application/json",
        "As alc_log_view detail; query max_chars (default 20000, cap 1000000).",
    ),
    (
        "alc://sessions/{session_id}",
        "session snapshot",
        "application/json",
        "As alc_status single mode with pending_filter \"full\".",
    ),
];

/// Parses an `alc://` URI; `Err` carries the invalid-params message, `Ok(None)` = unknown
/// resource (not found).
pub fn parse(uri: &str) -> Result<Option<ResourceUri>, String> {
    let Some(rest) = uri.strip_prefix("alc://") else {
        return Err(format!(
            "unsupported URI {uri:?}: the scheme must be alc://"
        ));
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let segs: Vec<&str> = path.split('/').collect();
    if segs.iter().any(|s| *s == "." || *s == ".." || s.is_empty()) {
        return Err(format!("invalid URI {uri:?}: empty, '.' or '..' segment"));
    }
    let mut max_chars = LOGS_DEFAULT_CHARS;
    if let Some(q) = query {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (segs.first().copied(), k) {
                (Some("logs"), "max_chars") => {
                    max_chars = v
                        .parse::<u64>()
                        .map_err(|_| format!("invalid max_chars {v:?}"))?
                        .min(LOGS_MAX_CHARS);
                }
                _ => return Err(format!("unknown query key {k:?} in {uri:?}")),
            }
        }
    }
    let name = |n: &str| -> Result<String, String> {
        if alc_engine::valid_package_name(n) {
            Ok(n.to_string())
        } else {
            Err(format!("invalid package name {n:?}"))
        }
    };
    let session = |s: &str| SessionId::parse(s).map_err(|_| format!("invalid session id {s:?}"));
    Ok(match segs.as_slice() {
        ["packages", n, "init.lua"] => Some(ResourceUri::PackageSource(name(n)?)),
        ["packages", n, "meta"] => Some(ResourceUri::PackageMeta(name(n)?)),
        ["logs", id] => Some(ResourceUri::Logs(session(id)?, max_chars)),
        ["sessions", id] => Some(ResourceUri::Session(session(id)?)),
        ["types", "alc.d.lua"] => Some(ResourceUri::Types),
        ["scenarios", n] if alc_eval::scenarios::valid_name(n) => {
            Some(ResourceUri::Scenario(n.to_string()))
        }
        ["scenarios", n] => return Err(format!("invalid scenario name {n:?}")),
        ["eval", id] if alc_eval::scenarios::valid_name(id) => {
            Some(ResourceUri::Eval(id.to_string()))
        }
        ["eval", id] => return Err(format!("invalid eval id {id:?}")),
        _ => None,
    })
}

/// The text of the `advice` prompt.
pub fn advice_prompt(task: &str) -> String {
    format!(
        "Solve the following task with an algocline reasoning strategy.\n\n\
         1. Call alc_pkg_list to see the installed and bundled strategies and pick the one that suits the task best.\n\
         2. Run it with alc_advice {{strategy, task}}.\n\
         3. While the result has status `needs_response`, answer every pending query yourself with alc_continue \
         (pass `round`; a query with kind \"human\" is a question for me: ask me, do not answer it yourself).\n\
         4. When the status is `completed`, summarise the answer (usually at result.result) and how the strategy reached it.\n\n\
         Task: {task}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            parse("alc://packages/cot/init.lua").unwrap(),
            Some(ResourceUri::PackageSource("cot".into()))
        );
        assert_eq!(
            parse("alc://packages/cot/meta").unwrap(),
            Some(ResourceUri::PackageMeta("cot".into()))
        );
        let id = "s-0123456789abcdef0123456789abcdef";
        assert!(matches!(
            parse(&format!("alc://logs/{id}?max_chars=5000000")).unwrap(),
            Some(ResourceUri::Logs(_, LOGS_MAX_CHARS))
        ));
        assert!(parse("alc://packages/../init.lua").is_err());
        assert!(parse("alc://packages/a.b/init.lua").is_err());
        assert!(parse(&format!("alc://sessions/{id}?x=1")).is_err());
        assert!(parse("file:///etc/passwd").is_err());
        assert_eq!(parse("alc://other/x").unwrap(), None);
        assert_eq!(
            parse("alc://scenarios/math_basic").unwrap(),
            Some(ResourceUri::Scenario("math_basic".into()))
        );
        assert_eq!(
            parse("alc://eval/ev_1").unwrap(),
            Some(ResourceUri::Eval("ev_1".into()))
        );
        assert!(parse("alc://scenarios/.hidden").is_err());
        assert!(parse("alc://eval/a..b").is_err());
    }
}
