//! `alc.env` (lua-api.md §2.7): read-only userdata over the session's environment snapshot.
//!
//! The userdata carries no data; its `__index` and `__newindex` are Lua functions defined
//! in `lua/stdlib.lua` (so the readonly error is a plain string raised from Lua), looked
//! up from the registry when the metatable is first built.

use mlua::{Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use crate::host::with_host;

/// Registry names of the metamethods `lua/stdlib.lua` provides.
const INDEX: &str = "alc.stdlib.env_index";
const NEWINDEX: &str = "alc.stdlib.env_newindex";

/// The `alc.env` handle.
pub struct EnvHandle;

impl UserData for EnvHandle {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua| lua.named_registry_value::<Value>(INDEX));
        fields.add_meta_field_with("__newindex", |lua| {
            lua.named_registry_value::<Value>(NEWINDEX)
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(mlua::MetaMethod::ToString, |_, _, ()| Ok("alc.env"));
    }
}

/// Registers `env_get(key) → string | nil` into `raw`.
pub fn register(lua: &Lua, raw: &Table) -> mlua::Result<()> {
    raw.raw_set(
        "env_get",
        lua.create_function(|lua, key: Value| {
            let key = match &key {
                Value::String(s) => s.to_string_lossy(),
                Value::Integer(_) | Value::Number(_) => match lua.coerce_string(key.clone())? {
                    Some(s) => s.to_string_lossy(),
                    None => return Ok(None),
                },
                _ => return Ok(None),
            };
            with_host(lua, |h| {
                let v = h.env.get(&key).cloned();
                h.env_read(&key, v.as_deref())?;
                Ok(v)
            })
        })?,
    )?;
    Ok(())
}

/// Creates the `alc.env` userdata from the metamethods the Lua prelude returned.
pub fn create(lua: &Lua, index: Value, newindex: Value) -> mlua::Result<Value> {
    lua.set_named_registry_value(INDEX, index)?;
    lua.set_named_registry_value(NEWINDEX, newindex)?;
    Ok(Value::UserData(lua.create_userdata(EnvHandle)?))
}
