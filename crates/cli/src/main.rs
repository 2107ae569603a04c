//! `alc`: run reasoning strategies written in Lua.
//!
//! stdout carries exactly one JSON document (the session's final payload, or a pause
//! for `--answerer host`); everything else (Lua output, prompts of the terminal
//! answerer, errors) goes to stderr. Exit codes follow interfaces.md §4.3.

mod answer;
mod pkg_cmd;
mod pkg_test;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command-line interface of the algocline engine.
#[derive(Parser, Debug)]
#[command(
    name = "alc",
    version,
    about = "Run LLM reasoning strategies written in Lua"
)]
struct Cli {
    /// Suppress Lua output and notices on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a Lua file (or `-` for stdin) or an installed package until it completes.
    Run(run::RunArgs),
    /// Install, list, remove and link strategy packages.
    Pkg(PkgGroup),
    /// Install the bundled packages into the home (offline), or create `alc.toml`.
    Init(pkg_cmd::InitArgs),
    /// Serve MCP over stdio (the default when no command is given).
    Serve,
}

/// `alc pkg`: the management commands of `pkg_cmd` plus `alc pkg test`.
#[derive(clap::Args, Debug)]
struct PkgGroup {
    /// Home directory (beats `ALC_HOME`).
    #[arg(long, value_name = "DIR")]
    home: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: PkgSub,
}

#[derive(Subcommand, Debug)]
enum PkgSub {
    /// Run a package's `spec/*_spec.lua` files in the session sandbox.
    Test(pkg_test::TestArgs),
    #[command(flatten)]
    Manage(pkg_cmd::PkgCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Run(args)) => run::run(args, cli.quiet),
        Some(Command::Pkg(PkgGroup {
            home,
            command: PkgSub::Test(args),
        })) => pkg_test::run(args, home, cli.quiet),
        Some(Command::Pkg(PkgGroup {
            home,
            command: PkgSub::Manage(command),
        })) => pkg_cmd::run_pkg(pkg_cmd::PkgArgs { home, command }),
        Some(Command::Init(args)) => pkg_cmd::run_init(args),
        Some(Command::Serve) | None => alc_mcp::serve_stdio(alc_mcp::ServeOptions::default()),
    };
    ExitCode::from(code)
}
