//! The rest of the `alc` standard library (lua-api.md §2): text helpers, combinators,
//! statistics. Installed into the `alc` table after the core members of `lua/alc.lua`.
//!
//! Layer 0 (Rust) lives in the submodules: [`text`] (`chunk`, `match_enum`, `match_bool`),
//! [`math`] (`alc.math`) and [`env`] (`alc.env`). Their functions never raise: they return
//! `(value, nil)` or `(nil, message)`, and the thin wrappers of `lua/stdlib.lua` raise the
//! message with `error(msg, 0)`, so every error a script sees is a plain string. Layer 1
//! (the combinators, `pipe`, `eval`, the parsing helpers) is `lua/stdlib.lua` itself.

mod env;
mod math;
mod text;

use mlua::{Function, Lua, Table, Value};

/// `(value, error message)` returned by the raw Layer-0 functions.
pub(crate) type Reply = (Value, Option<String>);

/// A `(nil, message)` reply.
pub(crate) fn fail(msg: String) -> mlua::Result<Reply> {
    Ok((Value::Nil, Some(msg)))
}

/// Lua `type()` name of a value.
pub(crate) fn lua_type_name(v: &Value) -> &'static str {
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

/// Adds the standard-library members, the JSON helpers and the core members built on
/// demand to `alc`. `p` is the private table the sandbox
/// prelude returned (host functions, `host_yield`, `can_host_yield`).
pub fn install(lua: &Lua, alc: &Table, p: &Table) -> mlua::Result<()> {
    let json = lua.create_table()?;
    crate::json::register(lua, &json)?;
    p.raw_set("json", json)?;
    let raw = lua.create_table()?;
    text::register(lua, &raw)?;
    math::register(lua, &raw)?;
    env::register(lua, &raw)?;
    let f: Function = crate::prelude::load(lua, crate::prelude::Prelude::Stdlib)?;
    let (index, newindex): (Value, Value) = f.call((p.clone(), alc.clone(), raw))?;
    alc.raw_set("env", env::create(lua, index, newindex)?)?;
    Ok(())
}
