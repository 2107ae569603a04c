//! `alc info`: the `alc_info` JSON (interfaces.md §2.10) on stdout.

use std::path::PathBuf;

use alc_config::{LoadOptions, Settings};
use clap::Args;

use crate::run::{exit, Global};

/// Arguments of `alc info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Home directory (beats `ALC_HOME`).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Project root (default: `ALC_PROJECT_ROOT`, else the nearest `alc.toml` upwards).
    #[arg(long, value_name = "DIR")]
    pub project_root: Option<PathBuf>,
}

/// Prints the `alc_info` document; API keys appear only as `set` / `missing`.
pub fn run(args: InfoArgs, global: &Global) -> u8 {
    let settings = match Settings::load(&LoadOptions {
        home: args.home.or_else(|| global.home.clone()),
        project_root: args.project_root,
        cwd: None,
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    println!("{}", settings.info_json());
    exit::OK
}

/// The MCP server options from the configuration (`[mcp]`).
pub fn serve_options(global: &Global) -> Result<alc_mcp::ServeOptions, u8> {
    let settings = Settings::load(&LoadOptions {
        home: global.home.clone(),
        project_root: None,
        cwd: None,
    })
    .map_err(|e| {
        eprintln!("error: {e}");
        exit::USAGE
    })?;
    if !global.quiet {
        for w in &settings.warnings {
            eprintln!("warning: {w}");
        }
    }
    let providers = settings.providers();
    if !global.quiet {
        for w in providers.warnings() {
            eprintln!("warning: {w}");
        }
    }
    let options = alc_mcp::ServeOptions {
        engine_config: settings.engine_config(),
        call_wait_ms: settings.mcp().call_wait_ms,
        pkg_env: Some(settings.pkg_env()),
        llm: alc_llm::Client::new(providers).ok(),
        default_answerer: settings.mcp_default_answerer(),
        transcripts: alc_mcp::transcripts::TranscriptMode::parse(settings.transcript_mode())
            .unwrap_or_default(),
        mrtr_auto: settings.mcp().mrtr == "auto",
        sampling_enabled: settings.mcp().sampling != "off",
        trusted: settings.sandbox_trusted(),
        env_allow: settings.env_allow(),
    };
    Ok(options)
}
