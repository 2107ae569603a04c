//! Diagnostic events of the MCP server (interfaces.md §9.4): one event per tool call
//! with the tool name, the session id, the duration and the outcome code. Arguments and
//! results are never logged (they can hold prompts and responses).

use std::time::Duration;

use serde_json::{Map, Value};

use crate::args::ToolResult;

/// The outcome code of a tool result: the error `code` of a failed call or of a session
/// that ended badly, else its `status` (`completed`, `paused`, ...), else `ok`.
pub fn outcome_code(result: &ToolResult) -> String {
    match result {
        Err(e) => e.code.to_string(),
        Ok(v) => {
            let status = v.get("status").and_then(Value::as_str);
            match (status, v.get("code").and_then(Value::as_str)) {
                (Some("error"), Some(code)) => code.to_string(),
                (Some(s), _) => s.to_string(),
                (None, _) => "ok".to_string(),
            }
        }
    }
}

/// The session a tool call concerned: from the result, else from the arguments.
pub fn session_id(args: &Map<String, Value>, result: &ToolResult) -> Option<String> {
    let from_result = match result {
        Ok(v) => v
            .get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        Err(e) => e.session_id.clone(),
    };
    from_result.or_else(|| {
        args.get("session_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

/// Logs one finished tool call: `info` for results, `warn` for request errors
/// (`isError: true`).
pub fn tool_call(name: &str, args: &Map<String, Value>, result: &ToolResult, elapsed: Duration) {
    let session_id = session_id(args, result).unwrap_or_else(|| "-".into());
    let outcome = outcome_code(result);
    let duration_ms = elapsed.as_millis() as u64;
    if result.is_ok() {
        tracing::info!(tool = %name, session_id = %session_id, duration_ms, outcome = %outcome, "tool call");
    } else {
        tracing::warn!(tool = %name, session_id = %session_id, duration_ms, outcome = %outcome, "tool call failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::ToolError;
    use serde_json::json;

    #[test]
    fn outcome_and_session_of_results_and_errors() {
        let args: Map<String, Value> = json!({"session_id": "s-arg"}).as_object().unwrap().clone();
        let ok: ToolResult = Ok(json!({"status": "paused", "session_id": "s-1"}));
        assert_eq!(outcome_code(&ok), "paused");
        assert_eq!(session_id(&args, &ok).as_deref(), Some("s-1"));
        let failed: ToolResult =
            Ok(json!({"status": "error", "code": "lua_error", "session_id": "s-2"}));
        assert_eq!(outcome_code(&failed), "lua_error");
        let listing: ToolResult = Ok(json!({"sessions": []}));
        assert_eq!(outcome_code(&listing), "ok");
        assert_eq!(session_id(&args, &listing).as_deref(), Some("s-arg"));
        let err: ToolResult = Err(ToolError::new("invalid_params", "bad"));
        assert_eq!(outcome_code(&err), "invalid_params");
        assert_eq!(session_id(&Map::new(), &err), None);
    }
}
