//! `alc`: run reasoning strategies written in Lua.
//!
//! stdout carries exactly one JSON document (the session's final payload, or a pause
//! for `--answerer host`); everything else (Lua output, prompts of the terminal
//! answerer, errors) goes to stderr. Exit codes follow interfaces.md §4.3.

mod answer;
mod payload;
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
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a Lua file (or `-` for stdin) or an installed package until it completes.
    Run(run::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(args) => run::run(args, cli.quiet),
    };
    ExitCode::from(code)
}
