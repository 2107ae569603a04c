//! Install records of `<home>/packages` (`.alc-installs.json`): where each copy came
//! from and when. Kept beside the packages so listing needs no database.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::env::PkgEnv;
use crate::error::PkgError;
use crate::fsutil::atomic_write;

/// File name of the records inside `<home>/packages`.
pub const RECORDS_FILE: &str = ".alc-installs.json";

/// One installed copy.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstallRecord {
    /// URL, local path, or `bundled:<collection>`.
    pub install_source: String,
    /// `git`, `local` or `bundled`.
    pub source_type: String,
    /// Git ref asked for, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// First install, Unix ms.
    pub installed_at: i64,
    /// Last (re)install, Unix ms.
    pub updated_at: i64,
}

/// All records (empty when the file is missing or unreadable).
pub fn read_records(env: &PkgEnv) -> BTreeMap<String, InstallRecord> {
    std::fs::read(env.packages_dir().join(RECORDS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_records(env: &PkgEnv, r: &BTreeMap<String, InstallRecord>) -> Result<(), PkgError> {
    let text = serde_json::to_vec_pretty(r).map_err(|e| PkgError::Io(e.to_string()))?;
    atomic_write(&env.packages_dir().join(RECORDS_FILE), &text)
}

/// Records an install or update of `name`.
pub fn record_install(
    env: &PkgEnv,
    name: &str,
    source: &str,
    source_type: &str,
    git_ref: Option<&str>,
    now: i64,
) -> Result<(), PkgError> {
    let mut all = read_records(env);
    let installed_at = all.get(name).map(|r| r.installed_at).unwrap_or(now);
    all.insert(
        name.to_string(),
        InstallRecord {
            install_source: source.to_string(),
            source_type: source_type.to_string(),
            git_ref: git_ref.map(str::to_string),
            installed_at,
            updated_at: now,
        },
    );
    write_records(env, &all)
}

/// Drops the record of `name` (no error when absent).
pub fn remove_record(env: &PkgEnv, name: &str) -> Result<(), PkgError> {
    let mut all = read_records(env);
    if all.remove(name).is_some() {
        write_records(env, &all)?;
    }
    Ok(())
}
