//! The algocline engine: reasoning strategies as sandboxed Lua 5.4 sessions.
//!
//! A session runs until its script calls `alc.llm` (or another host-yield function);
//! it then pauses with a batch of queries, holding nothing but its VM's heap, until an
//! answerer resumes it through the [`Engine`] facade. See `ARCHITECTURE.md` for the map.

#![warn(missing_docs)]

mod card;
pub mod card_store;
mod changes;
mod durable;
mod engine;
pub mod hook;
pub mod host;
pub mod json;
mod prelude;
pub mod services;
mod state;
mod stdlib;
mod table;
mod timers;
mod update_lock;
pub mod vm;

pub use engine::{Engine, EngineStats, EventStream, ListFilter, ShutdownMode, ShutdownReport};
pub use services::{
    read_data_file_in, valid_package_name, CardStore, Clock, DataFile, FileCardStore, HostServices,
    ManualClock, MemoryCardStore, ModuleFile, ModuleSource, NoModules, PackageRoots, SystemClock,
    MAX_DATA_FILE_BYTES,
};
