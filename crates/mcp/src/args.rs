//! Tool argument decoding and request errors (interfaces.md §2.1, §2.2).

use serde_json::{json, Map, Value};

/// A request error: the call could not do what it was asked (isError result).
#[derive(Debug, Clone)]
pub struct ToolError {
    /// Wire code (`invalid_params`, `session_not_found`, ...).
    pub code: &'static str,
    /// Human message.
    pub message: String,
    /// The session involved, if any.
    pub session_id: Option<String>,
}

impl ToolError {
    /// A request error without a session.
    pub fn new(code: &'static str, message: impl Into<String>) -> ToolError {
        ToolError {
            code,
            message: message.into(),
            session_id: None,
        }
    }

    /// `invalid_params` naming the problem.
    pub fn invalid(message: impl Into<String>) -> ToolError {
        ToolError::new("invalid_params", message)
    }

    /// Attaches the session involved.
    pub fn with_session(mut self, id: impl Into<String>) -> ToolError {
        self.session_id = Some(id.into());
        self
    }

    /// The error body `{"status":"error","code","error"[,"session_id"]}`.
    pub fn to_value(&self) -> Value {
        let mut v = json!({"status": "error", "code": self.code, "error": self.message});
        if let Some(id) = &self.session_id {
            v["session_id"] = json!(id);
        }
        v
    }
}

/// Result of a tool body.
pub type ToolResult = Result<Value, ToolError>;

/// Typed access to a tool's arguments (unknown extra keys are ignored).
pub struct Args<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Wraps an argument object.
    pub fn new(map: &'a Map<String, Value>) -> Args<'a> {
        Args { map }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// True when the argument is present and not null.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// An optional string.
    pub fn str(&self, name: &str) -> Result<Option<&'a str>, ToolError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ToolError::invalid(format!("`{name}` must be a string"))),
        }
    }

    /// A required string.
    pub fn req_str(&self, name: &str) -> Result<&'a str, ToolError> {
        self.str(name)?
            .ok_or_else(|| ToolError::invalid(format!("`{name}` is required")))
    }

    /// An optional bool.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ToolError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" || s == "false" => Ok(Some(s == "true")),
            Some(_) => Err(ToolError::invalid(format!("`{name}` must be a boolean"))),
        }
    }

    /// An optional non-negative integer (integral floats and numeric strings accepted).
    pub fn u64(&self, name: &str) -> Result<Option<u64>, ToolError> {
        let bad = || ToolError::invalid(format!("`{name}` must be a non-negative integer"));
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(u) = n.as_u64() {
                    Ok(Some(u))
                } else {
                    match n.as_f64() {
                        Some(f) if f >= 0.0 && f.fract() == 0.0 && f < 1.8e19 => Ok(Some(f as u64)),
                        _ => Err(bad()),
                    }
                }
            }
            Some(Value::String(s)) => s.trim().parse::<u64>().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }

    /// An optional JSON value that may also be given as a string holding JSON
    /// (object-typed parameters, §2.1). Strings that are not JSON objects/arrays are
    /// returned unchanged.
    pub fn decoded(&self, name: &str) -> Option<Value> {
        match self.get(name)? {
            Value::String(s) => {
                let t = s.trim_start();
                if t.starts_with('{') || t.starts_with('[') {
                    if let Ok(v) = serde_json::from_str::<Value>(s) {
                        return Some(v);
                    }
                }
                Some(Value::String(s.clone()))
            }
            v => Some(v.clone()),
        }
    }

    /// An optional object parameter (a string holding a JSON object is decoded).
    pub fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, ToolError> {
        match self.decoded(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(ToolError::invalid(format!(
                "`{name}` must be an object (or a string holding a JSON object)"
            ))),
        }
    }
}

/// First `n` Unicode scalar values of `s`.
pub fn preview(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// A session's task hint drawn from `text` (its task, or its first question): the first
/// 100 characters.
pub fn task_hint(text: &str) -> String {
    preview(text, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn object_params_accept_json_strings() {
        let m = args(json!({"ctx": "{\"a\": 1}", "bad": "[1]", "obj": {"b": 2}, "n": null}));
        let a = Args::new(&m);
        assert_eq!(a.object("ctx").unwrap().unwrap()["a"], json!(1));
        assert_eq!(a.object("obj").unwrap().unwrap()["b"], json!(2));
        assert!(a.object("n").unwrap().is_none());
        assert!(a.object("missing").unwrap().is_none());
        let e = a.object("bad").unwrap_err();
        assert_eq!(e.code, "invalid_params");
        assert!(e.message.contains("`bad`"));
    }

    #[test]
    fn integers_and_strings_are_checked() {
        let m = args(json!({"w": 5, "f": 2.0, "s": "7", "neg": -1, "x": true, "t": 3}));
        let a = Args::new(&m);
        assert_eq!(a.u64("w").unwrap(), Some(5));
        assert_eq!(a.u64("f").unwrap(), Some(2));
        assert_eq!(a.u64("s").unwrap(), Some(7));
        assert!(a.u64("neg").is_err());
        assert!(a.u64("x").is_err());
        assert!(a.str("t").is_err());
        assert_eq!(a.req_str("zz").unwrap_err().code, "invalid_params");
    }

    #[test]
    fn error_body_shape() {
        let e = ToolError::new("stale_round", "old").with_session("s-1");
        assert_eq!(
            e.to_value(),
            json!({"status": "error", "code": "stale_round", "error": "old", "session_id": "s-1"})
        );
        assert_eq!(preview("héllo", 2), "hé");
    }
}
