//! The MCP server of the algocline engine (interfaces.md §2, §3).
//!
//! `alc serve` (and `alc` without a command) calls [`serve_stdio`]: newline-delimited
//! JSON-RPC over stdin/stdout through `rmcp`. Before anything else runs, the real stdout
//! is duplicated for the transport and file descriptor 1 is pointed at stderr, so Lua
//! output, panics or native writes can never corrupt the protocol stream (§4.4).
//!
//! Tools shipped so far: `alc_run`, `alc_advice`, `alc_continue`, `alc_status`,
//! `alc_cancel`, `alc_sessions`, `alc_info`, and the package tools `alc_pkg_list`,
//! `alc_pkg_install`, `alc_pkg_remove`, `alc_pkg_link`, `alc_pkg_unlink`, `alc_init`.
//! Sessions are answered by the `host` (the MCP caller), or by the server itself through
//! the `provider` (an LLM API) or `scripted` (JSONL rules) answerers, or by the client's
//! own model: `mrtr` (2026-07-28 Multi Round-Trip results) and `sampling`
//! (`sampling/createMessage` on 2025-11-25 connections).
//!
//! The server is dual-era (§3.1): `initialize` selects a legacy revision for the
//! connection; requests carrying the revision and client capabilities in their `_meta`
//! are served under 2026-07-28 (`server/discover` included).

#![warn(missing_docs)]

mod args;
mod auto;
mod diag;
mod evals;
mod mrtr;
pub mod packages;
mod pipe;
mod resources;
mod sampling;
mod schema;
pub mod scripted;
mod server;
pub mod transcripts;
pub mod wire;

use std::io;
use std::sync::Arc;

use alc_engine::{Engine, HostServices, ShutdownMode};

pub use server::{home_dir, package_roots, serve_io, AlcServer, ServeOptions, VERSION};

/// Duplicates the real stdout for the protocol and points fd 1 at stderr.
///
/// Returns the duplicated descriptor as a file (close-on-exec). Afterwards anything
/// written to fd 1 (`print!`, Lua `io.write`, C libraries, panics) lands on stderr.
pub fn take_stdout() -> io::Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain descriptor syscalls on fds 1 and 2; the new descriptor is owned by
    // the returned `File` and by nothing else.
    unsafe {
        let fd = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::dup2(2, 1) < 0 {
            let e = io::Error::last_os_error();
            libc::close(fd);
            return Err(e);
        }
        Ok(std::fs::File::from_raw_fd(fd))
    }
}

/// The protocol's input and output: stdin and `out` (the real stdout), read and written on
/// the runtime's threads when they are pipes, else through tokio's blocking wrappers.
fn protocol_io(
    out: std::fs::File,
) -> (
    Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
) {
    use std::os::fd::AsRawFd;
    let input: Box<dyn tokio::io::AsyncRead + Send + Unpin> = match pipe::Pipe::reader(0) {
        Some(p) => Box::new(p),
        None => Box::new(tokio::io::stdin()),
    };
    let output: Box<dyn tokio::io::AsyncWrite + Send + Unpin> =
        match pipe::Pipe::writer(out.as_raw_fd()) {
            Some(p) => Box::new(p),
            None => Box::new(tokio::fs::File::from_std(out)),
        };
    (input, output)
}

/// Runs the MCP server over stdio until stdin closes or SIGINT/SIGTERM; returns the
/// process exit code (0 on a normal stop).
pub fn serve_stdio(options: ServeOptions) -> u8 {
    let out = match take_stdout() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot set up stdout for the protocol: {e}");
            return 70;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 70;
        }
    };
    let mut options = options;
    let pkg_env = match options.pkg_env.clone() {
        Some(env) => env,
        None => match alc_pkg::PkgEnv::from_env(None, None) {
            Ok(env) => env,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        },
    };
    options.pkg_env = Some(pkg_env.clone());
    // Sessions are journaled in `<home>/alc.db`, so a paused session survives a
    // restart of the server; `alc.state` shares the database (exactly-once writes).
    let db_path = pkg_env.home.join("alc.db");
    if let Err(e) = std::fs::create_dir_all(&pkg_env.home) {
        eprintln!("error: cannot create {}: {e}", pkg_env.home.display());
        return 7;
    }
    let mut journal =
        match alc_store::SqliteJournal::open(&db_path, options.engine_config.durability) {
            Ok(j) => j,
            Err(e) => {
                eprintln!("error: {e}");
                return 7;
            }
        };
    // A checkpoint copies the log into the database and syncs it: leave that to a
    // background thread rather than to whichever request commits last. Without it the
    // connection checkpoints by itself, as SQLite does by default.
    if let Err(e) = journal.checkpoint_in_background() {
        tracing::warn!(error = %e, "checkpoints stay with the writers");
    }
    // Transcripts go through the journal's connection: their rows are written in the
    // journal's own transactions (no commit of their own), and one page cache serves both.
    let transcripts =
        transcripts::Transcripts::record_journal(&mut journal, &db_path, options.transcripts);
    if let Err(e) = &transcripts {
        tracing::warn!(error = %e, "sessions are not recorded in transcripts");
    }
    let cards_dir = pkg_env.home.join("cards");
    let services = HostServices {
        modules: Arc::new(packages::ChainModules::new(pkg_env)),
        state: Arc::new(journal.state_store()),
        state_shares_journal: true,
        cards: Arc::new(alc_engine::FileCardStore::new(cards_dir)),
        trusted: options.trusted,
        env_allow: Arc::new(options.env_allow.clone()),
        ..HostServices::default()
    };
    let journal: Arc<dyn alc_core::Journal> = Arc::new(journal);
    let engine = match Engine::start_with_journal(
        options.engine_config.clone(),
        journal.clone(),
        services,
    ) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot start the engine: {e}");
            return 70;
        }
    };
    let server = AlcServer::new(engine.clone(), options);
    server.set_journal(journal);
    server.set_transcripts(transcripts);
    let code = rt.block_on(async {
        let server = server.clone();
        let (stdin, stdout) = protocol_io(out);
        let serve = server::serve_io(server, stdin, stdout);
        let stop = async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        };
        tokio::select! {
            r = serve => match r {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e}");
                    70
                }
            },
            _ = stop => 0,
        }
    });
    engine.shutdown_now(ShutdownMode::Drain);
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}
