//! Answerers of the CLI that do not need the engine: scripted answers read
//! from a JSONL file (interfaces §1.1, implemented in `alc_mcp::scripted` and shared
//! with the MCP server) and a person at a terminal (§4.2).
//!
//! Both modules take plain inputs and return plain replies; the caller maps
//! them to and from engine types.

pub use alc_mcp::scripted;
pub mod terminal;
