//! `ALC_HOME` alone selects the home for install and `require` (item 59). One test per
//! process section: the environment is global.

mod common;

use alc_pkg::*;
use common::*;
use tempfile::TempDir;

#[test]
fn item59_alc_home_honoured() {
    let t = TempDir::new().unwrap();
    let home = t.path().join("custom-home");
    std::env::set_var("ALC_HOME", &home);
    std::env::remove_var("ALC_PACKAGES_PATH");
    std::env::remove_var("ALC_PROJECT_ROOT");
    std::env::set_current_dir(t.path()).unwrap();
    assert_eq!(resolve_home(None), home);
    assert_eq!(
        resolve_home(Some(std::path::Path::new("/x"))),
        std::path::PathBuf::from("/x")
    );
    let e = PkgEnv::from_env(None, None).unwrap();
    assert_eq!(e.home, home);
    assert!(e.project_root.is_none());
    let src = t.path().join("hp");
    pkg(&src, "hp", "1", "hp");
    install(
        &e,
        &InstallOptions {
            url: src.display().to_string(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(home.join("packages/hp/init.lua").is_file());
    assert_eq!(tag_of(&resolve(&Resolver::new(e), "hp").unwrap()), "hp");
    // ALC_PACKAGES_PATH and ALC_PKG_STRICT
    std::env::set_var(
        "ALC_PACKAGES_PATH",
        format!(
            "{}:{}",
            t.path().join("a").display(),
            t.path().join("b").display()
        ),
    );
    std::env::set_var("ALC_PKG_STRICT", "true");
    let e = PkgEnv::from_env(None, None).unwrap();
    assert_eq!(e.packages_path.len(), 2);
    assert!(e.strict);
    // project root discovery walks up to alc.toml; explicit non-directory is invalid
    write(&t.path().join("proj/alc.toml"), "[packages]\n");
    std::fs::create_dir_all(t.path().join("proj/sub/dir")).unwrap();
    std::env::set_current_dir(t.path().join("proj/sub/dir")).unwrap();
    let e = PkgEnv::from_env(None, None).unwrap();
    assert_eq!(
        e.project_root.unwrap(),
        t.path().join("proj").canonicalize().unwrap()
    );
    let err = PkgEnv::from_env(None, Some(&t.path().join("nope"))).unwrap_err();
    assert_eq!(err.code(), "invalid_params");
}
