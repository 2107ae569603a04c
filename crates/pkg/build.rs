//! Embeds the bundled packages (`<workspace>/packages/<name>/…`) into the binary as a
//! generated table of `(name, relative path, bytes)` entries.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&p, out);
        } else if ft.is_file() {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../../packages");
    println!("cargo:rerun-if-changed={}", root.display());
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    if let Ok(rd) = fs::read_dir(&root) {
        let mut pkgs: Vec<_> = rd.flatten().collect();
        pkgs.sort_by_key(|e| e.file_name());
        for e in pkgs {
            let p = e.path();
            if p.is_dir() && p.join("init.lua").is_file() {
                walk(&p, &mut files);
            }
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("bundled.rs");
    let mut f = fs::File::create(out).unwrap();
    writeln!(
        f,
        "/// Generated: bundled package files as (package, relative path, bytes)."
    )
    .unwrap();
    writeln!(f, "pub static BUNDLED_FILES: &[(&str, &str, &[u8])] = &[").unwrap();
    for p in files {
        let rel = p.strip_prefix(&root).unwrap();
        let mut comps = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        let pkg = comps.next().unwrap();
        let rest: Vec<String> = comps.collect();
        let abs = p.canonicalize().unwrap();
        writeln!(
            f,
            "    ({:?}, {:?}, include_bytes!({:?})),",
            pkg,
            rest.join("/"),
            abs.to_string_lossy()
        )
        .unwrap();
    }
    writeln!(f, "];").unwrap();
}
