//! Validation of human answers against their question (`interfaces.md` §1.2).

use crate::query::HumanQuestion;
use serde_json::Value;

/// Checks a text answer against a question's `choices` or flat object `schema`.
///
/// Returns the rule broken as a message. Free-text questions accept any text.
pub fn check_human_answer(question: &HumanQuestion, text: &str) -> Result<(), String> {
    if !question.choices.is_empty() {
        if question.choices.iter().any(|c| c == text) {
            return Ok(());
        }
        return Err(format!(
            "answer must be one of the choices: {}",
            question.choices.join(", ")
        ));
    }
    match &question.schema {
        Some(schema) => check_schema(schema, text),
        None => Ok(()),
    }
}

fn check_schema(schema: &Value, text: &str) -> Result<(), String> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| "answer must be a JSON object".to_string())?;
    let obj = value
        .as_object()
        .ok_or_else(|| "answer must be a JSON object".to_string())?;
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let Some(v) = obj.get(name) else { continue };
            if let Some(ty) = prop.get("type").and_then(Value::as_str) {
                if !type_matches(ty, v) {
                    return Err(format!("property '{name}' must be of type {ty}"));
                }
            }
            if let Some(allowed) = prop.get("enum").and_then(Value::as_array) {
                if !allowed.iter().any(|a| json_eq(a, v)) {
                    return Err(format!("property '{name}' must be one of its enum values"));
                }
            }
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(name) {
                return Err(format!("required property '{name}' is missing"));
            }
        }
    }
    Ok(())
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => {
            v.is_i64()
                || v.is_u64()
                || v.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema_q() -> HumanQuestion {
        let mut q = HumanQuestion::new("details?");
        q.schema = Some(json!({"type":"object","properties":{
            "name":{"type":"string"},"age":{"type":"integer"},"score":{"type":"number"},
            "ok":{"type":"boolean"},"color":{"type":"string","enum":["red","blue"]}},
            "required":["name"]}));
        q
    }

    #[test]
    fn choices() {
        let mut q = HumanQuestion::new("ship?");
        q.choices = vec!["yes".into(), "no".into()];
        assert!(check_human_answer(&q, "yes").is_ok());
        assert!(check_human_answer(&q, "Yes").is_err());
        assert!(check_human_answer(&HumanQuestion::new("free"), "anything").is_ok());
    }

    #[test]
    fn schema() {
        let q = schema_q();
        assert!(check_human_answer(&q, r#"{"name":"a"}"#).is_ok());
        assert!(check_human_answer(
            &q,
            r#"{"name":"a","age":3.0,"score":1.5,"ok":true,"color":"red","extra":1}"#
        )
        .is_ok());
        for bad in [
            "not json",
            "[1]",
            r#""str""#,
            r#"{}"#,
            r#"{"name":1}"#,
            r#"{"name":"a","age":1.5}"#,
            r#"{"name":"a","score":"x"}"#,
            r#"{"name":"a","ok":"true"}"#,
            r#"{"name":"a","color":"green"}"#,
            r#"{"name":null}"#,
        ] {
            assert!(check_human_answer(&q, bad).is_err(), "{bad}");
        }
    }
}
