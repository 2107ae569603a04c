//! `alc.state` (lua-api.md §2.8), Layer 0: one journaled effect per call.
//!
//! `host.state(op, a, b, c)` returns `(nil, results…)` or `(message)`; the thin wrappers of
//! `lua/alc.lua` raise the message with `error(msg, 0)`. Validation (namespace, key, value
//! encoding) is deterministic and happens before the effect; the store's answer (value or
//! error) is journaled as an `effect` record and served from the journal on replay.

use alc_store::{validate_key_bytes, validate_namespace, StateStore, StateStoreError};
use mlua::{Lua, MultiValue, Value};
use serde_json::{json, Value as J};

use crate::host::{json_number, with_host};

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

fn key_of(lua: &Lua, op: &str, v: &Value, what: &str) -> Result<String, String> {
    let bytes = match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone()) {
            Ok(Some(s)) => s.as_bytes().to_vec(),
            _ => Vec::new(),
        },
        other => {
            return Err(format!(
                "alc.state.{op}: bad argument #1 '{what}' (string expected, got {})",
                type_name(other)
            ))
        }
    };
    validate_key_bytes(&bytes)
        .map(|s| s.to_string())
        .map_err(|e| format!("alc.state: {e}"))
}

fn err_text(op: &str, e: &StateStoreError) -> String {
    match e {
        StateStoreError::InvalidKey { .. } | StateStoreError::InvalidNamespace { .. } => {
            format!("alc.state: {e}")
        }
        _ => format!("alc.state.{op}: {e}"),
    }
}

fn wrap<T: Into<J>>(op: &str, r: Result<T, StateStoreError>) -> J {
    match r {
        Ok(v) => json!({ "ok": v.into() }),
        Err(e) => json!({ "err": err_text(op, &e) }),
    }
}

fn value_arg(lua: &Lua, op: &str, v: &Value) -> Result<Option<J>, String> {
    if v.is_nil() || crate::json::is_json_null(v) {
        return Ok(None);
    }
    crate::json::to_json(lua, v)
        .map(|j| if j.is_null() { None } else { Some(j) })
        .map_err(|e| format!("alc.state.{op}: {e}"))
}

fn number_arg(op: &str, v: &Value, pos: usize, what: &str, default: i64) -> Result<J, String> {
    match v {
        Value::Nil => Ok(json!(default)),
        Value::Integer(i) => Ok(json!(*i)),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(J::Number)
            .ok_or_else(|| {
                format!("alc.state.{op}: bad argument #{pos} '{what}' (finite number expected)")
            }),
        other => Err(format!(
            "alc.state.{op}: bad argument #{pos} '{what}' (number expected, got {})",
            type_name(other)
        )),
    }
}

/// Runs one operation; `Ok(json)` is the journaled result (`{"ok": …}` or `{"err": msg}`).
fn run(lua: &Lua, op: &str, a: &Value, b: &Value, c: &Value) -> Result<(J, String), String> {
    let ns = with_host(lua, |h| h.state_ns.clone());
    let forked = with_host(lua, |h| h.child.is_some());
    if forked {
        alc_store::validate_store_namespace(&ns)
    } else {
        validate_namespace(&ns)
    }
    .map_err(|e| format!("alc.state: {e}"))?;
    // Validated arguments, the journaled args, whether it writes, and the live action.
    type Live = Box<dyn FnOnce(&dyn StateStore, &str) -> J>;
    let (args, writes, live): (J, bool, Live) = match op {
        "get" | "has" | "delete" | "get_versioned" => {
            let key = key_of(lua, op, a, "key")?;
            let k = key.clone();
            let op2 = op.to_string();
            let live: Live = match op {
                "get" => {
                    Box::new(move |s, ns| wrap(&op2, s.get(ns, &k).map(|v| v.unwrap_or(J::Null))))
                }
                "has" => Box::new(move |s, ns| wrap(&op2, s.has(ns, &k))),
                "delete" => Box::new(move |s, ns| wrap(&op2, s.delete(ns, &k))),
                _ => Box::new(move |s, ns| {
                    wrap(
                        &op2,
                        s.get_versioned(ns, &k).map(|v| match v {
                            Some(v) => json!({"value": v.value, "version": v.version}),
                            None => J::Null,
                        }),
                    )
                }),
            };
            (json!({"ns": ns, "key": key}), op == "delete", live)
        }
        "set" | "set_nx" => {
            let key = key_of(lua, op, a, "key")?;
            let value = value_arg(lua, op, b)?;
            if op == "set_nx" && value.is_none() {
                return Err(format!(
                    "alc.state.set_nx: bad argument #2 'value' (value expected, got {})",
                    type_name(b)
                ));
            }
            let (k, v) = (key.clone(), value.clone());
            let op2 = op.to_string();
            let live: Live = if op == "set" {
                Box::new(move |s, ns| wrap(&op2, s.set(ns, &k, v.as_ref()).map(|()| J::Null)))
            } else {
                Box::new(move |s, ns| wrap(&op2, s.set_nx(ns, &k, v.as_ref().unwrap_or(&J::Null))))
            };
            (json!({"ns": ns, "key": key, "value": value}), true, live)
        }
        "cas" => {
            let key = key_of(lua, "update", a, "key")?;
            let expected = match b {
                Value::Integer(i) => Some(*i as u64),
                Value::Number(n) => Some(*n as u64),
                _ => None,
            };
            let value = value_arg(lua, "update", c)?;
            let (k, v) = (key.clone(), value.clone());
            let live: Live = Box::new(move |s, ns| {
                wrap("update", s.compare_and_set(ns, &k, expected, v.as_ref()))
            });
            (
                json!({"ns": ns, "key": key, "expected": expected, "value": value}),
                true,
                live,
            )
        }
        "incr" => {
            let key = key_of(lua, op, a, "key")?;
            let delta = number_arg(op, b, 2, "delta", 1)?;
            let default = number_arg(op, c, 3, "default", 0)?;
            let (k, d, df) = (key.clone(), delta.clone(), default.clone());
            let live: Live = Box::new(move |s, ns| {
                let (J::Number(d), J::Number(df)) = (d, df) else {
                    return json!({"err": "alc.state.incr: invalid number"});
                };
                wrap("incr", s.incr(ns, &k, &d, &df).map(J::Number))
            });
            (
                json!({"ns": ns, "key": key, "delta": delta, "default": default}),
                true,
                live,
            )
        }
        "keys" => {
            let prefix = match a {
                Value::Nil => None,
                Value::String(s) => Some(s.to_string_lossy()),
                Value::Integer(_) | Value::Number(_) => lua
                    .coerce_string(a.clone())
                    .ok()
                    .flatten()
                    .map(|s| s.to_string_lossy()),
                other => {
                    return Err(format!(
                        "alc.state.keys: bad argument #1 'prefix' (string expected, got {})",
                        type_name(other)
                    ))
                }
            };
            let p = prefix.clone();
            let live: Live =
                Box::new(move |s, ns| wrap("keys", s.keys(ns, p.as_deref()).map(J::from)));
            (json!({"ns": ns, "prefix": prefix}), false, live)
        }
        "list" => {
            let prefix = match a {
                Value::String(s) => s.to_string_lossy(),
                other => {
                    return Err(format!(
                        "alc.state.list: bad argument #1 'prefix' (string expected, got {})",
                        type_name(other)
                    ))
                }
            };
            let p = prefix.clone();
            let live: Live = Box::new(move |s, ns| wrap("list", s.list(ns, &p).map(J::from)));
            (json!({"ns": ns, "prefix": prefix}), false, live)
        }
        "show" => {
            let prefix = match a {
                Value::String(s) => s.to_string_lossy(),
                other => {
                    return Err(format!(
                        "alc.state.show: bad argument #1 'prefix' (string expected, got {})",
                        type_name(other)
                    ))
                }
            };
            let id = match b {
                Value::String(s) => s.to_string_lossy(),
                Value::Integer(_) | Value::Number(_) => lua
                    .coerce_string(b.clone())
                    .ok()
                    .flatten()
                    .map(|s| s.to_string_lossy())
                    .unwrap_or_default(),
                other => {
                    return Err(format!(
                        "alc.state.show: bad argument #2 'id' (string expected, got {})",
                        type_name(other)
                    ))
                }
            };
            let key = format!("{prefix}:{id}");
            alc_store::validate_key(&key).map_err(|e| format!("alc.state: {e}"))?;
            let k = key.clone();
            let nsc = ns.clone();
            let live: Live = Box::new(move |s, ns| match s.get(ns, &k) {
                Ok(Some(v)) => json!({"ok": v}),
                Ok(None) => json!({
                    "err": format!("alc.state.show: key '{k}' not found in namespace '{nsc}'")
                }),
                Err(e) => json!({"err": err_text("show", &e)}),
            });
            (json!({"ns": ns, "key": key}), false, live)
        }
        other => return Err(format!("alc.state: unknown operation '{other}'")),
    };
    let result = with_host(lua, |h| {
        h.effect("state", op, args, writes, |h| match h.state.clone() {
            Some(store) => live(store.as_ref(), &h.state_ns.clone()),
            None => json!({"err": "alc.state: no state store"}),
        })
    })
    .map_err(|e| match e {
        mlua::Error::RuntimeError(m) => m,
        other => other.to_string(),
    })?;
    Ok((result, ns))
}

/// `host.state(op, a, b, c)`.
pub fn state_call(
    lua: &Lua,
    (op, a, b, c): (String, Value, Value, Value),
) -> mlua::Result<MultiValue> {
    let (result, _ns) = match run(lua, &op, &a, &b, &c) {
        Ok(r) => r,
        Err(msg) => {
            return Ok(MultiValue::from_iter([Value::String(
                lua.create_string(&msg)?,
            )]));
        }
    };
    if let Some(e) = result.get("err").and_then(|e| e.as_str()) {
        return Ok(MultiValue::from_iter([Value::String(
            lua.create_string(e)?,
        )]));
    }
    let ok = result.get("ok").cloned().unwrap_or(J::Null);
    let mut out = vec![Value::Nil];
    match op.as_str() {
        "get" | "show" => {
            out.push(Value::Boolean(!ok.is_null()));
            out.push(crate::json::from_json(lua, &ok)?);
        }
        "get_versioned" => {
            if ok.is_null() {
                out.push(Value::Nil);
                out.push(Value::Nil);
            } else {
                out.push(crate::json::from_json(lua, &ok["value"])?);
                out.push(json_number(&ok["version"]));
            }
        }
        "incr" => out.push(json_number(&ok)),
        "keys" | "list" => {
            let t = lua.create_table()?;
            if let Some(a) = ok.as_array() {
                for (i, k) in a.iter().enumerate() {
                    t.raw_set(i + 1, k.as_str().unwrap_or_default())?;
                }
            }
            crate::json::mark_array(lua, &t)?;
            out.push(Value::Table(t));
        }
        _ => out.push(crate::json::from_json(lua, &ok)?),
    }
    Ok(MultiValue::from_iter(out))
}
