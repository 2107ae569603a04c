//! Shared test helpers.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use alc_engine::ModuleSource;
use alc_pkg::{PkgEnv, Resolver};

pub fn write(p: &Path, content: &str) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A package directory `dir` with meta `name`/`version` and a marker return value.
pub fn pkg(dir: &Path, name: &str, version: &str, tag: &str) {
    write(
        &dir.join("init.lua"),
        &format!(
            "local M = {{}}\nM.meta = {{ name = \"{name}\", version = \"{version}\" }}\nM.tag = \"{tag}\"\nfunction M.run(ctx) ctx.result = M.tag return ctx end\nreturn M\n"
        ),
    );
}

pub fn resolve(r: &Resolver, name: &str) -> Result<String, String> {
    r.resolve("default", name)
        .map(|m| String::from_utf8(m.source).unwrap())
}

pub fn tag_of(src: &str) -> String {
    src.lines()
        .find_map(|l| l.strip_prefix("M.tag = \""))
        .map(|s| s.trim_end_matches('"').to_string())
        .unwrap_or_default()
}

pub fn env(home: &Path) -> PkgEnv {
    PkgEnv::new(home.to_path_buf())
}

pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.org",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
