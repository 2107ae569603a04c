//! The engine's own Lua chunks, compiled once per process.
//!
//! Every session VM runs the same chunks (sandbox shims, the `alc` core; on first use the
//! rest of the shims and the standard library). Compiling them from source costs most of a spawn, so they are
//! compiled once, dumped as stripped bytecode, and loaded in binary mode into each VM.
//! Binary loading stays unavailable to scripts (`load` is text-only in the sandbox).

use std::sync::OnceLock;

use mlua::chunk::ChunkMode;
use mlua::{Function, Lua};

/// One of the engine's chunks.
#[derive(Clone, Copy, Debug)]
pub enum Prelude {
    /// `lua/sandbox.lua`: shims and the host-yield protocol.
    Sandbox,
    /// `lua/sandbox_more.lua`: the shims loaded on first use.
    SandboxMore,
    /// `lua/alc.lua`: the `alc` table's core members.
    Alc,
    /// `lua/stdlib.lua`: the rest of the standard library.
    Stdlib,
}

impl Prelude {
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Prelude::Sandbox => (include_str!("../lua/sandbox.lua"), "=[alc sandbox]"),
            Prelude::SandboxMore => (include_str!("../lua/sandbox_more.lua"), "=[alc sandbox]"),
            Prelude::Alc => (include_str!("../lua/alc.lua"), "=[alc prelude]"),
            Prelude::Stdlib => (include_str!("../lua/stdlib.lua"), "=[alc stdlib]"),
        }
    }
}

struct Compiled {
    sandbox: Vec<u8>,
    sandbox_more: Vec<u8>,
    alc: Vec<u8>,
    stdlib: Vec<u8>,
}

fn compile(which: Prelude) -> Vec<u8> {
    let lua = Lua::new();
    let (source, name) = which.source();
    lua.load(source)
        .set_name(name)
        .into_function()
        .unwrap_or_else(|e| panic!("the engine's {name} chunk compiles: {e}"))
        .dump(true)
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| Compiled {
        sandbox: compile(Prelude::Sandbox),
        sandbox_more: compile(Prelude::SandboxMore),
        alc: compile(Prelude::Alc),
        stdlib: compile(Prelude::Stdlib),
    })
}

/// The chunk as a function of `lua`, loaded from the process-wide bytecode.
pub fn load(lua: &Lua, which: Prelude) -> mlua::Result<Function> {
    let c = compiled();
    let bytes: &[u8] = match which {
        Prelude::Sandbox => &c.sandbox,
        Prelude::SandboxMore => &c.sandbox_more,
        Prelude::Alc => &c.alc,
        Prelude::Stdlib => &c.stdlib,
    };
    lua.load(bytes).set_mode(ChunkMode::Binary).into_function()
}
