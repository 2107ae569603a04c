//! Strategy packages (interfaces.md §5.1, §5.2, §5.5, §6; lua-api.md §1.8).
//!
//! * [`PkgEnv`] — the resolved home, project root, `ALC_PACKAGES_PATH` roots and the
//!   bundled set; every operation takes one.
//! * [`Resolver`] — the six-source `require` chain, an [`alc_engine::ModuleSource`].
//! * [`install`], [`list`], [`remove`], [`link`], [`unlink`], [`init_home`],
//!   [`init_project`] — the package operations; each returns a serialisable report in
//!   the exact shape of the `alc_pkg_*` tool results (interfaces.md §2.11).
//! * [`manifest`] — `alc.toml`, `alc.lock`, `alc.local.toml` read/write.
//! * [`meta`] — static `M.meta` extraction (package code is never executed).
//! * [`check`] — `lib_path_warnings`: expected versions and `alc.toml` / `alc.lock`
//!   disagreements of a project.

pub mod bundled;
pub mod check;
pub mod env;
pub mod error;
mod fsutil;
pub mod install;
pub mod manifest;
pub mod meta;
pub mod ops;
pub mod records;
pub mod resolve;

pub use bundled::BundledSet;
pub use env::{resolve_home, PkgEnv};
pub use error::PkgError;
pub use install::{install, InstallOptions, InstallReport, RejectedPath};
pub use ops::{
    init_home, init_project, link, list, remove, unlink, InitHomeOptions, InitHomeReport,
    InitProjectReport, LinkOptions, LinkReport, ListOptions, ListReport, RemoveOptions,
    RemoveReport, UnlinkReport,
};
pub use resolve::{Resolver, SourceKind};

/// Package-name rule (interfaces.md §6.2): `^[A-Za-z_][A-Za-z0-9_-]{0,63}$`.
pub fn valid_package_name(name: &str) -> bool {
    alc_engine::valid_package_name(name)
}

/// Validates a package name, returning `invalid_params` naming it otherwise.
pub fn check_name(name: &str) -> Result<(), PkgError> {
    if valid_package_name(name) {
        Ok(())
    } else {
        Err(PkgError::InvalidParams(format!(
            "invalid package name '{}': names match ^[A-Za-z_][A-Za-z0-9_-]{{0,63}}$",
            name.escape_debug()
        )))
    }
}

/// LuaCATS definitions of the `alc` API, installed by `alc init` as `types/alc.d.lua`.
pub const TYPES_STUB: &str = include_str!("../../../types/alc.d.lua");

/// The commented `config.toml` that `alc init` writes when the home has none.
pub const CONFIG_TEMPLATE: &str = include_str!("../../../docs/config.example.toml");
