//! `alc pkg install|list|remove|link|unlink` and `alc init` (interfaces.md §4.2, §6).
//!
//! stdout carries only the result (a table or one JSON document with `--json`);
//! errors go to stderr as `error: …` with the exit codes of §4.3 (2 usage, 4 not found,
//! 5 conflict, 7 I/O or git).

use std::path::{Path, PathBuf};

use alc_pkg::{
    init_home, init_project, install, link, list, remove, unlink, InitHomeOptions, InstallOptions,
    LinkOptions, ListOptions, PkgEnv, PkgError, RemoveOptions,
};
use clap::{Args, Subcommand};
use serde::Serialize;

/// Arguments of `alc pkg`.
#[derive(Args, Debug)]
pub struct PkgArgs {
    /// Home directory (beats `ALC_HOME`).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    #[command(subcommand)]
    pub command: PkgCommand,
}

/// `alc pkg` sub-commands.
#[derive(Subcommand, Debug)]
pub enum PkgCommand {
    /// Install packages from a local directory or a git repository.
    Install {
        /// Local path (absolute, ./, ../, ~/) or git URL.
        source: String,
        /// Package name (single-package sources only).
        #[arg(long)]
        name: Option<String>,
        /// Branch, tag or commit.
        #[arg(long = "ref", value_name = "REV")]
        git_ref: Option<String>,
        /// Replace existing copies.
        #[arg(long)]
        force: bool,
        /// `global` (default) or `project`.
        #[arg(long)]
        scope: Option<String>,
        /// Project root (for `--scope project`).
        #[arg(long, value_name = "DIR")]
        project_root: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List packages across all sources.
    List {
        /// All entries (no limit) with every field.
        #[arg(long)]
        all: bool,
        /// Print the `alc_pkg_list` JSON.
        #[arg(long)]
        json: bool,
        /// Project root.
        #[arg(long, value_name = "DIR")]
        project_root: Option<PathBuf>,
    },
    /// Remove a package (a development link is removed, never its target).
    Remove {
        /// Package name.
        name: String,
        /// `auto` (default), `project`, `global` or `all`.
        #[arg(long)]
        scope: Option<String>,
        /// Expected installed version.
        #[arg(long)]
        version: Option<String>,
        /// Project root.
        #[arg(long, value_name = "DIR")]
        project_root: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Link a development package (or collection) directory.
    Link {
        /// Package or collection directory.
        path: PathBuf,
        /// Package name (single package only).
        #[arg(long)]
        name: Option<String>,
        /// `global` (default) or `variant`.
        #[arg(long)]
        scope: Option<String>,
        /// Replace an installed directory.
        #[arg(long)]
        force: bool,
        /// Project root (variant scope).
        #[arg(long, value_name = "DIR")]
        project_root: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a development link or variant entry.
    Unlink {
        /// Package name.
        name: String,
        /// `global` (default) or `variant`.
        #[arg(long)]
        scope: Option<String>,
        /// Project root (variant scope).
        #[arg(long, value_name = "DIR")]
        project_root: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Arguments of `alc init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// Home directory (beats `ALC_HOME`).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Replace existing copies of the bundled packages (development links never).
    #[arg(long)]
    pub force: bool,
    /// Create `alc.toml` in DIR (default: the working directory) instead.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    pub project: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

fn fail(e: &PkgError) -> u8 {
    eprintln!("error: {e}");
    e.exit_code()
}

fn emit<T: Serialize>(json: bool, value: &T, human: impl FnOnce() -> String) -> u8 {
    if json {
        match serde_json::to_string(value) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 70;
            }
        }
    } else {
        print!("{}", human());
    }
    0
}

fn env_for(home: Option<&Path>, project_root: Option<&Path>) -> Result<PkgEnv, PkgError> {
    PkgEnv::from_env(home, project_root)
}

fn names_line(label: &str, names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!("{label}: {}\n", names.join(", "))
    }
}

/// Runs `alc pkg …`; returns the exit code.
pub fn run_pkg(args: PkgArgs) -> u8 {
    let operation = match &args.command {
        PkgCommand::Install { .. } => "install",
        PkgCommand::List { .. } => "list",
        PkgCommand::Remove { .. } => "remove",
        PkgCommand::Link { .. } => "link",
        PkgCommand::Unlink { .. } => "unlink",
    };
    let started = std::time::Instant::now();
    let result = run_pkg_inner(args);
    log_operation(operation, &result, started);
    match result {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

/// The diagnostic event of a package operation: its name, outcome and duration (no
/// sources: a git URL may carry credentials).
fn log_operation(operation: &str, result: &Result<u8, PkgError>, started: std::time::Instant) {
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(code) => {
            tracing::info!(operation = %operation, exit_code = code, duration_ms, "package operation")
        }
        Err(e) => tracing::error!(
            target: crate::diag::FILE_ONLY,
            operation = %operation,
            code = %e.code(),
            duration_ms,
            "package operation failed"
        ),
    }
}

fn run_pkg_inner(args: PkgArgs) -> Result<u8, PkgError> {
    let home = args.home.as_deref();
    Ok(match args.command {
        PkgCommand::Install {
            source,
            name,
            git_ref,
            force,
            scope,
            project_root,
            json,
        } => {
            let env = env_for(home, project_root.as_deref())?;
            let r = install(
                &env,
                &InstallOptions {
                    url: source,
                    name,
                    git_ref,
                    force,
                    scope,
                    project_root,
                },
            )?;
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            emit(json, &r, || {
                let mut s = String::new();
                s += &names_line("installed", &r.installed);
                s += &names_line("updated", &r.updated);
                s += &names_line("skipped (exists; use --force)", &r.skipped);
                s += &names_line("skipped (development link)", &r.skipped_symlinks);
                s += &names_line("scenarios", &r.scenarios_installed);
                s += &names_line("cards", &r.cards_installed);
                for p in &r.rejected_paths {
                    s += &format!("rejected: {} ({})\n", p.path, p.reason);
                }
                s
            })
        }
        PkgCommand::List {
            all,
            json,
            project_root,
        } => {
            let env = env_for(home, project_root.as_deref())?;
            let r = list(
                &env,
                &ListOptions {
                    limit: all.then_some(0),
                    verbose: all.then(|| "full".to_string()),
                    ..Default::default()
                },
            )?;
            emit(json, &r, || {
                let cell = |v: &serde_json::Value| match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "-".into(),
                    other => other.to_string(),
                };
                let rows: Vec<[String; 5]> = r
                    .packages
                    .iter()
                    .map(|p| {
                        [
                            cell(&p["name"]),
                            cell(&p["scope"]),
                            cell(&p["version"]),
                            if p["active"] == true {
                                "*".into()
                            } else {
                                String::new()
                            },
                            cell(&p["resolved_source_path"]),
                        ]
                    })
                    .collect();
                let head = ["NAME", "SCOPE", "VERSION", "ACTIVE", "RESOLVED"];
                let mut w = head.map(str::len);
                for row in &rows {
                    for (i, c) in row.iter().enumerate() {
                        w[i] = w[i].max(c.chars().count());
                    }
                }
                let line = |cols: [&str; 5]| {
                    let mut s = String::new();
                    for (i, c) in cols.iter().enumerate() {
                        if i == 4 {
                            s += c;
                        } else {
                            s += &format!("{c:<width$}  ", width = w[i]);
                        }
                    }
                    s.trim_end().to_string() + "\n"
                };
                let mut s = line(head);
                for row in &rows {
                    s += &line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
                }
                s
            })
        }
        PkgCommand::Remove {
            name,
            scope,
            version,
            project_root,
            json,
        } => {
            let env = env_for(home, project_root.as_deref())?;
            let r = remove(
                &env,
                &RemoveOptions {
                    name,
                    scope,
                    project_root,
                    version,
                },
            )?;
            emit(json, &r, || {
                format!("removed {} ({})\n", r.removed, r.scope)
            })
        }
        PkgCommand::Link {
            path,
            name,
            scope,
            force,
            project_root,
            json,
        } => {
            let env = env_for(home, project_root.as_deref())?;
            let r = link(
                &env,
                &LinkOptions {
                    path,
                    name,
                    force,
                    scope,
                    project_root,
                },
            )?;
            emit(json, &r, || {
                r.targets
                    .iter()
                    .map(|(n, t)| format!("linked {n} -> {t} ({})\n", r.scope))
                    .collect()
            })
        }
        PkgCommand::Unlink {
            name,
            scope,
            project_root,
            json,
        } => {
            let env = env_for(home, project_root.as_deref())?;
            let r = unlink(&env, &name, scope.as_deref(), project_root.as_deref())?;
            emit(json, &r, || {
                format!("unlinked {} ({})\n", r.unlinked, r.scope)
            })
        }
    })
}

/// Runs `alc init`; returns the exit code.
pub fn run_init(args: InitArgs) -> u8 {
    let started = std::time::Instant::now();
    let res = (|| -> Result<u8, PkgError> {
        let env = env_for(args.home.as_deref(), None)?;
        if let Some(dir) = &args.project {
            let r = init_project(&env, dir, false)?;
            return Ok(emit(args.json, &r, || {
                format!(
                    "created {}\n{}",
                    r.created,
                    if r.gitignore_updated {
                        format!("updated {}\n", r.gitignore_path)
                    } else {
                        String::new()
                    }
                )
            }));
        }
        let r = init_home(
            &env,
            &InitHomeOptions {
                force: args.force,
                types_stub: Some(alc_pkg::TYPES_STUB.to_string()),
                config_template: Some(alc_pkg::CONFIG_TEMPLATE.to_string()),
            },
        )?;
        Ok(emit(args.json, &r, || {
            let mut s = format!("home: {}\n", r.home);
            s += &names_line("installed", &r.installed);
            s += &names_line("updated", &r.updated);
            s += &names_line("skipped (exists; use --force)", &r.skipped);
            s += &names_line("skipped (development link)", &r.skipped_symlinks);
            s
        }))
    })();
    log_operation("init", &res, started);
    res.unwrap_or_else(|e| fail(&e))
}
