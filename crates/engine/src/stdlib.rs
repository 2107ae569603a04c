//! The rest of the `alc` standard library (lua-api.md §2): text helpers, combinators,
//! statistics. Installed into the `alc` table after the core members of `lua/alc.lua`.

use mlua::{Lua, Table};

/// Adds the standard-library members to `alc`. `p` is the private table the sandbox
/// prelude returned (host functions, `host_yield`, `can_host_yield`).
pub fn install(_lua: &Lua, _alc: &Table, _p: &Table) -> mlua::Result<()> {
    Ok(())
}
