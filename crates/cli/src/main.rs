//! `alc`: run reasoning strategies written in Lua.
//!
//! stdout carries exactly one JSON document (the session's final payload, or a pause
//! for `--answerer host`); everything else (Lua output, prompts of the terminal
//! answerer, errors) goes to stderr. Exit codes follow interfaces.md §4.3.

mod answer;
mod diag;
mod eval_cmd;
mod info;
mod pkg_cmd;
mod pkg_test;
mod progress;
mod run;
mod sessions_cmd;

use std::process::ExitCode;

/// mimalloc, sized for Lua's allocations (`alc-alloc`): a session VM is hundreds of small
/// allocations; a size-class allocator makes spawning faster and a paused session smaller
/// than the system allocator does (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: alc_alloc::Allocator = alc_alloc::Allocator;

use clap::{Parser, Subcommand};

/// Command-line interface of the algocline engine.
#[derive(Parser, Debug)]
#[command(
    name = "alc",
    version,
    about = "Run LLM reasoning strategies written in Lua"
)]
struct Cli {
    /// Suppress Lua output and notices on stderr (diagnostics: errors only).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More output on stderr (repeatable): `-v` prints one line per LLM call and the
    /// `info` diagnostics, `-vv` adds `debug`, `-vvv` `trace`.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Home directory (beats `ALC_HOME`); commands also accept it after their name.
    #[arg(long, value_name = "DIR")]
    home: Option<std::path::PathBuf>,
    /// Diagnostic log level on stderr and in `<home>/logs` (beats `ALC_LOG_LEVEL`,
    /// `-v` and `-q`; `off` writes no diagnostics at all).
    #[arg(long, global = true, value_name = "LEVEL", value_enum)]
    log_level: Option<diag::LogLevel>,
    /// Colour on stderr: `auto` (a terminal, unless `NO_COLOR` is set), `always` or `never`.
    #[arg(long, global = true, value_name = "WHEN", value_enum, default_value_t = diag::ColorWhen::Auto)]
    color: diag::ColorWhen,
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
    /// Print the `alc_info` JSON (home, config files, providers, packages) on stdout.
    Info(info::InfoArgs),
    /// Evaluate strategies on datasets; history, reports and comparisons.
    Eval(eval_cmd::EvalArgs),
    /// List, show, resume, cancel and prune durable sessions.
    Sessions(sessions_cmd::SessionsArgs),
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

impl Cli {
    /// The subcommand's name, for diagnostics.
    fn command_name(&self) -> &'static str {
        match &self.command {
            Some(Command::Run(_)) => "run",
            Some(Command::Pkg(_)) => "pkg",
            Some(Command::Init(_)) => "init",
            Some(Command::Serve) | None => "serve",
            Some(Command::Info(_)) => "info",
            Some(Command::Eval(_)) => "eval",
            Some(Command::Sessions(_)) => "sessions",
        }
    }

    /// The home the command will use: its own `--home`, else the global one.
    fn command_home(&self) -> Option<std::path::PathBuf> {
        let own = match &self.command {
            Some(Command::Run(a)) => a.home.clone(),
            Some(Command::Pkg(g)) => g.home.clone(),
            Some(Command::Init(a)) => a.home.clone(),
            Some(Command::Info(a)) => a.home.clone(),
            Some(Command::Eval(a)) => a.home.clone(),
            Some(Command::Sessions(a)) => a.home.clone(),
            Some(Command::Serve) | None => None,
        };
        own.or_else(|| self.home.clone())
    }
}

/// Sets up diagnostic logging (stderr and `<home>/logs`) before the command runs.
fn init_diagnostics(cli: &Cli) -> &'static str {
    let command = cli.command_name();
    let settings = alc_config::Settings::load(&alc_config::LoadOptions {
        home: cli.command_home(),
        project_root: None,
        cwd: None,
    })
    .ok();
    diag::init(
        &diag::Options {
            level: cli.log_level,
            verbose: cli.verbose,
            quiet: cli.quiet,
            color: cli.color,
            command,
        },
        settings.as_ref(),
    );
    command
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = init_diagnostics(&cli);
    let started = std::time::Instant::now();
    let global = run::Global {
        home: cli.home.clone(),
        verbose: cli.verbose,
        quiet: cli.quiet,
    };
    let code = match cli.command {
        Some(Command::Run(args)) => run::run(args, &global),
        Some(Command::Info(args)) => info::run(args, &global),
        Some(Command::Eval(args)) => eval_cmd::run(args, &global),
        Some(Command::Sessions(args)) => sessions_cmd::run(args, &global),
        Some(Command::Pkg(PkgGroup {
            home,
            command: PkgSub::Test(args),
        })) => pkg_test::run(args, home.or(cli.home), cli.quiet),
        Some(Command::Pkg(PkgGroup {
            home,
            command: PkgSub::Manage(command),
        })) => pkg_cmd::run_pkg(pkg_cmd::PkgArgs {
            home: home.or(cli.home),
            command,
        }),
        Some(Command::Init(mut args)) => {
            if args.home.is_none() {
                args.home = cli.home;
            }
            pkg_cmd::run_init(args)
        }
        Some(Command::Serve) => match info::serve_options(&global) {
            Ok(options) => alc_mcp::serve_stdio(options),
            Err(code) => code,
        },
        None => {
            use std::io::IsTerminal;
            if std::io::stdin().is_terminal() && !cli.quiet {
                eprintln!(
                    "alc: serving MCP on stdio (Ctrl-D to stop); see `alc --help` for commands"
                );
            }
            match info::serve_options(&global) {
                Ok(options) => alc_mcp::serve_stdio(options),
                Err(code) => code,
            }
        }
    };
    let elapsed_ms = started.elapsed().as_millis() as u64;
    // 3 is a host pause, not a failure; failures were already explained on stderr.
    if code == 0 || code == 3 {
        tracing::info!(command = %command, exit_code = code, elapsed_ms, "command finished");
    } else {
        tracing::error!(target: diag::FILE_ONLY, command = %command, exit_code = code, elapsed_ms, "command failed");
    }
    ExitCode::from(code)
}
