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

/// One finished tool call, ready to be logged ([`ToolCall::log`]).
#[derive(Debug)]
pub struct ToolCall {
    tool: String,
    session_id: String,
    outcome: String,
    duration_ms: u64,
    failed: bool,
}

impl ToolCall {
    /// What to log of a call to `name` with `args` that produced `result` in `elapsed`.
    pub fn of(
        name: &str,
        args: &Map<String, Value>,
        result: &ToolResult,
        elapsed: Duration,
    ) -> ToolCall {
        ToolCall {
            tool: name.to_string(),
            session_id: session_id(args, result).unwrap_or_else(|| "-".into()),
            outcome: outcome_code(result),
            duration_ms: elapsed.as_millis() as u64,
            failed: result.is_err(),
        }
    }

    /// Logs the call: `info` for results, `warn` for request errors (`isError: true`).
    pub fn log(&self) {
        let ToolCall {
            tool,
            session_id,
            outcome,
            duration_ms,
            failed,
        } = self;
        if *failed {
            tracing::warn!(tool = %tool, session_id = %session_id, duration_ms, outcome = %outcome, "tool call failed");
        } else {
            tracing::info!(tool = %tool, session_id = %session_id, duration_ms, outcome = %outcome, "tool call");
        }
    }

    /// Logs the call once the task calling this has handed its reply over: the event is
    /// formatted and written after the reply (a task of its own, which yields once), so
    /// the caller does not wait for the log file.
    pub fn log_after_reply(self) {
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            self.log();
        });
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
