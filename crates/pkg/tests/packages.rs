//! Install, list, remove, link, init and resolution over real temporary directories
//! (interfaces.md §6, §10 items 50–61; lua-api.md §1.8).

mod common;

use std::fs;
use std::path::Path;

use alc_pkg::*;
use common::*;
use tempfile::TempDir;

fn opts(url: &Path) -> InstallOptions {
    InstallOptions {
        url: url.display().to_string(),
        ..Default::default()
    }
}

fn staging_left(home: &Path) -> Vec<String> {
    fs::read_dir(home)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging"))
        .collect()
}

#[test]
fn item50_local_collection_and_single() {
    let t = TempDir::new().unwrap();
    let home = t.path().join("home");
    let src = t.path().join("coll");
    pkg(&src.join("a"), "a", "1.0", "a1");
    pkg(&src.join("b"), "b", "2.0", "b1");
    write(&src.join("a/sub/x.lua"), "return 'x'");
    write(&src.join("a/cards/card1.json"), "{}");
    write(&src.join("notpkg/readme.md"), "hi");
    write(&src.join("scenarios/s1.jsonl"), "{}\n");
    write(&src.join("scenarios/s2.lua"), "return {}");
    write(&src.join("scenarios/ignored.txt"), "x");
    let e = env(&home);
    let r = install(&e, &opts(&src)).unwrap();
    assert_eq!(r.mode, "local_collection");
    assert_eq!(r.installed, vec!["a", "b"]);
    assert!(r.rejected_paths.is_empty());
    assert_eq!(r.scenarios_installed, vec!["s1.jsonl", "s2.lua"]);
    assert_eq!(r.cards_installed, vec!["a/card1.json"]);
    assert!(home.join("packages/a/sub/x.lua").is_file());
    assert!(!home.join("packages/notpkg").exists());
    assert!(home.join("scenarios/s1.jsonl").is_file());
    assert!(home.join("cards/a/card1.json").is_file());
    let json = serde_json::to_value(&r).unwrap();
    for k in [
        "mode",
        "source",
        "installed",
        "updated",
        "skipped",
        "skipped_symlinks",
        "rejected_paths",
        "scenarios_installed",
        "scenarios_failures",
        "cards_installed",
    ] {
        assert!(json.get(k).is_some(), "{k}");
    }
    assert!(json.get("project").is_none());

    // single named from meta, then from the name argument
    let single = t.path().join("some-dir");
    pkg(&single, "metaname", "0.1", "s");
    let r = install(&e, &opts(&single)).unwrap();
    assert_eq!(r.mode, "local_single");
    assert_eq!(r.installed, vec!["metaname"]);
    let mut o = opts(&single);
    o.name = Some("given".into());
    assert_eq!(install(&e, &o).unwrap().installed, vec!["given"]);
    // name with a collection → invalid_params
    let mut o = opts(&src);
    o.name = Some("x".into());
    assert_eq!(install(&e, &o).unwrap_err().code(), "invalid_params");
    // nothing to install → package_not_found
    let empty = t.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let err = install(&e, &opts(&empty)).unwrap_err();
    assert_eq!(err.code(), "package_not_found");
    assert!(err
        .to_string()
        .contains("no init.lua at the root or in any subdirectory"));
}

#[test]
fn item51_git_file_url_branch_tag_commit() {
    let t = TempDir::new().unwrap();
    let repo = t.path().join("repo");
    fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    pkg(&repo, "gitpkg", "1.0", "v1");
    write(&repo.join("helper.lua"), "return 1");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "v1"]);
    git(&repo, &["tag", "v1"]);
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(&repo)
        .output()
        .unwrap();
    let commit1 = String::from_utf8(out.stdout).unwrap().trim().to_string();
    pkg(&repo, "gitpkg", "2.0", "v2");
    git(&repo, &["commit", "-q", "-am", "v2"]);
    let url = format!("file://{}", repo.display());
    let home = t.path().join("home");
    let e = env(&home);

    let r = install(
        &e,
        &InstallOptions {
            url: url.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.mode, "single");
    assert_eq!(r.source, url);
    assert_eq!(r.installed, vec!["gitpkg"]);
    assert!(!home.join("packages/gitpkg/.git").exists());
    let res = Resolver::new(e.clone());
    assert_eq!(tag_of(&resolve(&res, "gitpkg").unwrap()), "v2");
    assert!(staging_left(&home).is_empty());

    let r = install(
        &e,
        &InstallOptions {
            url: url.clone(),
            git_ref: Some("v1".into()),
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.updated, vec!["gitpkg"]);
    assert_eq!(tag_of(&resolve(&res, "gitpkg").unwrap()), "v1");

    let r = install(
        &e,
        &InstallOptions {
            url: url.clone(),
            git_ref: Some(commit1[..12].to_string()),
            force: true,
            name: Some("bycommit".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.installed, vec!["bycommit"]);
    assert_eq!(tag_of(&resolve(&res, "bycommit").unwrap()), "v1");
    let r = install(
        &e,
        &InstallOptions {
            url: url.clone(),
            git_ref: Some(commit1.clone()),
            name: Some("fullcommit".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.installed, vec!["fullcommit"]);
    assert_eq!(tag_of(&resolve(&res, "fullcommit").unwrap()), "v1");

    // a bad ref fails with git_error, and the staging directory is still removed
    let err = install(
        &e,
        &InstallOptions {
            url: url.clone(),
            git_ref: Some("nope".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "git_error");
    let err = install(
        &e,
        &InstallOptions {
            url: format!("file://{}/missing", t.path().display()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "git_error");
    assert!(staging_left(&home).is_empty(), "{:?}", staging_left(&home));
}

#[test]
fn git_collection_mode() {
    let t = TempDir::new().unwrap();
    let repo = t.path().join("coll.git");
    fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    pkg(&repo.join("p1"), "p1", "1", "p1");
    pkg(&repo.join("p2"), "p2", "1", "p2");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "c"]);
    let home = t.path().join("home");
    let r = install(
        &env(&home),
        &InstallOptions {
            url: format!("file://{}", repo.display()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.mode, "collection");
    assert_eq!(r.installed, vec!["p1", "p2"]);
}

#[cfg(unix)]
#[test]
fn item52_symlinks_inside_outside_dangling() {
    use std::os::unix::fs::symlink;
    let t = TempDir::new().unwrap();
    let src = t.path().join("src");
    pkg(&src, "sl", "1", "sl");
    write(&src.join("data/real.txt"), "inside");
    write(&t.path().join("secret.txt"), "outside");
    symlink(src.join("data/real.txt"), src.join("inlink.txt")).unwrap();
    symlink(t.path().join("secret.txt"), src.join("outlink.txt")).unwrap();
    symlink(src.join("nothing"), src.join("dangling.txt")).unwrap();
    let home = t.path().join("home");
    let r = install(&env(&home), &opts(&src)).unwrap();
    let dest = home.join("packages/sl");
    let m = fs::symlink_metadata(dest.join("inlink.txt")).unwrap();
    assert!(m.is_file(), "inside link copied as a file");
    assert_eq!(
        fs::read_to_string(dest.join("inlink.txt")).unwrap(),
        "inside"
    );
    assert!(fs::symlink_metadata(dest.join("outlink.txt")).is_err());
    assert!(fs::symlink_metadata(dest.join("dangling.txt")).is_err());
    let paths: Vec<&str> = r.rejected_paths.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, vec!["dangling.txt", "outlink.txt"]);
    assert!(r.rejected_paths[1].reason.contains("outside"));
}

#[test]
fn item53_bad_names_rejected() {
    let t = TempDir::new().unwrap();
    let src = t.path().join("coll");
    pkg(&src.join("..evil"), "x", "1", "e");
    pkg(&src.join("a.b"), "x", "1", "ab");
    pkg(&src.join("good"), "good", "1", "g");
    let home = t.path().join("home");
    let e = env(&home);
    let r = install(&e, &opts(&src)).unwrap();
    assert_eq!(r.installed, vec!["good"]);
    let rej: Vec<&str> = r.rejected_paths.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(rej, vec!["..evil", "a.b"]);
    let inside: Vec<String> = fs::read_dir(home.join("packages"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(".alc"))
        .collect();
    assert_eq!(inside, vec!["good"]);
    assert!(!t.path().join("evil").exists() && !home.join("evil").exists());
    // name-carrying calls refuse bad names before touching anything
    for bad in ["..evil", "a.b", "a/b", "../x", "-x", "a\\b", ""] {
        let mut o = opts(&src.join("good"));
        o.name = Some(bad.into());
        assert_eq!(
            install(&e, &o).unwrap_err().code(),
            "invalid_params",
            "{bad}"
        );
        assert_eq!(
            remove(
                &e,
                &RemoveOptions {
                    name: bad.into(),
                    ..Default::default()
                }
            )
            .unwrap_err()
            .code(),
            "invalid_params"
        );
        assert_eq!(
            unlink(&e, bad, None, None).unwrap_err().code(),
            "invalid_params"
        );
        assert_eq!(
            link(
                &e,
                &LinkOptions {
                    path: src.join("good"),
                    name: Some(bad.into()),
                    ..Default::default()
                }
            )
            .unwrap_err()
            .code(),
            "invalid_params"
        );
    }
    // a single package whose meta name is bad
    let s = t.path().join("single");
    pkg(&s, "../../escape", "1", "x");
    assert_eq!(install(&e, &opts(&s)).unwrap_err().code(), "invalid_params");
    // bad source strings
    for u in ["-rf", "plainword", "", "foo/bar"] {
        assert_eq!(
            install(
                &e,
                &InstallOptions {
                    url: u.into(),
                    ..Default::default()
                }
            )
            .unwrap_err()
            .code(),
            "invalid_params",
            "{u}"
        );
    }
}

#[cfg(unix)]
#[test]
fn item54_reinstall_skip_force_and_links() {
    let t = TempDir::new().unwrap();
    let src = t.path().join("p");
    pkg(&src, "p", "1", "one");
    let home = t.path().join("home");
    let e = env(&home);
    assert_eq!(install(&e, &opts(&src)).unwrap().installed, vec!["p"]);
    pkg(&src, "p", "2", "two");
    let r = install(&e, &opts(&src)).unwrap();
    assert_eq!(r.skipped, vec!["p"]);
    let res = Resolver::new(e.clone());
    assert_eq!(tag_of(&resolve(&res, "p").unwrap()), "one");
    let mut o = opts(&src);
    o.force = true;
    assert_eq!(install(&e, &o).unwrap().updated, vec!["p"]);
    assert_eq!(tag_of(&resolve(&res, "p").unwrap()), "two");
    let leftovers: Vec<String> = fs::read_dir(home.join("packages"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp-") || n.contains("old-"))
        .collect();
    assert!(leftovers.is_empty());

    // a development link at the destination is never replaced
    let dev = t.path().join("dev/p");
    pkg(&dev, "p", "9", "dev");
    let l = link(
        &e,
        &LinkOptions {
            path: dev.clone(),
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(l.linked, vec!["p"]);
    assert_eq!(l.mode, "single");
    for force in [false, true] {
        let mut o = opts(&src);
        o.force = force;
        let r = install(&e, &o).unwrap();
        assert_eq!(r.skipped_symlinks, vec!["p"]);
        assert!(r.updated.is_empty() && r.skipped.is_empty());
    }
    assert_eq!(
        tag_of(&fs::read_to_string(dev.join("init.lua")).unwrap()),
        "dev"
    );
    assert_eq!(tag_of(&resolve(&res, "p").unwrap()), "dev");
}

#[test]
fn item55_project_scope_writes_manifest_and_lock() {
    let t = TempDir::new().unwrap();
    let proj = t.path().join("proj");
    fs::create_dir_all(&proj).unwrap();
    write(
        &proj.join("alc.toml"),
        "# my project\n[packages]\nother = \"0.1\"\n",
    );
    let src = t.path().join("pp");
    pkg(&src, "pp", "0.3.0", "pp");
    let home = t.path().join("home");
    let e = env(&home);
    // default scope leaves the project alone
    install(
        &e,
        &InstallOptions {
            url: src.display().to_string(),
            project_root: Some(proj.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!proj.join("alc.lock").exists());
    let r = install(
        &e,
        &InstallOptions {
            url: src.display().to_string(),
            scope: Some("project".into()),
            project_root: Some(proj.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.skipped, vec!["pp"]);
    let pf = r.project.unwrap();
    assert!(pf.alc_toml.ends_with("alc.toml") && pf.alc_lock.ends_with("alc.lock"));
    let toml = fs::read_to_string(proj.join("alc.toml")).unwrap();
    assert!(toml.contains("# my project"), "{toml}");
    assert!(toml.contains("pp = \"*\""), "{toml}");
    assert!(toml.contains("other = \"0.1\""));
    let lock = fs::read_to_string(proj.join("alc.lock")).unwrap();
    assert!(lock.starts_with("version = 1\n"), "{lock}");
    assert!(
        lock.contains("name = \"pp\"")
            && lock.contains("version = \"0.3.0\"")
            && lock.contains("type = \"installed\""),
        "{lock}"
    );
    let entries = manifest::read_lock(&proj).unwrap().unwrap();
    assert_eq!(entries.len(), 1);
    // scope project without a project root
    let err = install(
        &e,
        &InstallOptions {
            url: src.display().to_string(),
            scope: Some("project".into()),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.code(), "invalid_params");
    // project remove edits both files and deletes nothing
    let r = remove(
        &e,
        &RemoveOptions {
            name: "pp".into(),
            project_root: Some(proj.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.scope, "project");
    assert!(!r.files_removed);
    assert!(home.join("packages/pp/init.lua").is_file());
    assert!(!fs::read_to_string(proj.join("alc.toml"))
        .unwrap()
        .contains("pp ="));
    assert!(manifest::read_lock(&proj).unwrap().unwrap().is_empty());
}

#[cfg(unix)]
#[test]
fn item56_remove_global_and_links() {
    let t = TempDir::new().unwrap();
    let src = t.path().join("rm");
    pkg(&src, "rm", "1", "rm");
    let home = t.path().join("home");
    let e = env(&home);
    install(&e, &opts(&src)).unwrap();
    let res = Resolver::new(e.clone());
    assert!(resolve(&res, "rm").is_ok());
    let r = remove(
        &e,
        &RemoveOptions {
            name: "rm".into(),
            scope: Some("global".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.files_removed);
    assert_eq!(serde_json::to_value(&r).unwrap()["scope"], "global");
    assert!(!home.join("packages/rm").exists());
    let err = resolve(&res, "rm").unwrap_err();
    assert_eq!(
        err,
        "\n\tno package 'rm' in variant, project, ALC_PACKAGES_PATH, global, bundled"
    );
    // removing again → not found
    assert_eq!(
        remove(
            &e,
            &RemoveOptions {
                name: "rm".into(),
                ..Default::default()
            }
        )
        .unwrap_err()
        .code(),
        "package_not_found"
    );
    // bundled fallback after removal
    let eb = PkgEnv {
        bundled: BundledSet::from_files([("rm", "init.lua", b"M.tag = \"bundled\"" as &[u8])]),
        ..e.clone()
    };
    install(&eb, &opts(&src)).unwrap();
    remove(
        &eb,
        &RemoveOptions {
            name: "rm".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        tag_of(&resolve(&Resolver::new(eb), "rm").unwrap()),
        "bundled"
    );
    // a linked package: only the link goes
    let dev = t.path().join("devrm");
    pkg(&dev, "devrm", "1", "d");
    link(
        &e,
        &LinkOptions {
            path: dev.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let r = remove(
        &e,
        &RemoveOptions {
            name: "devrm".into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(r.files_removed);
    assert!(fs::symlink_metadata(home.join("packages/devrm")).is_err());
    assert!(dev.join("init.lua").is_file());
}

#[cfg(unix)]
#[test]
fn item57_variant_link_shadows_global() {
    let t = TempDir::new().unwrap();
    let proj = t.path().join("proj");
    fs::create_dir_all(&proj).unwrap();
    write(&proj.join("alc.toml"), "[packages]\n");
    let src = t.path().join("v");
    pkg(&src, "v", "1.0", "home-copy");
    let home = t.path().join("home");
    let e = env(&home).with_project_root(Some(proj.clone()));
    install(&e, &opts(&src)).unwrap();
    let var = t.path().join("work/v");
    pkg(&var, "v", "1.1-dev", "variant");
    let l = link(
        &e,
        &LinkOptions {
            path: var.clone(),
            scope: Some("variant".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(l.scope, "variant");
    assert!(l
        .alc_local_toml
        .as_deref()
        .unwrap()
        .ends_with("alc.local.toml"));
    assert!(fs::read_to_string(proj.join("alc.local.toml"))
        .unwrap()
        .contains("[packages.v]"));
    let res = Resolver::new(e.clone());
    assert_eq!(tag_of(&resolve(&res, "v").unwrap()), "variant");
    // a sub-module missing from the variant does not fall through to the home copy
    write(&home.join("packages/v/extra.lua"), "return 1");
    assert_eq!(
        resolve(&res, "v.extra").unwrap_err(),
        "\n\tpackage 'v' (variant) has no file for 'v.extra'"
    );

    let l = list(
        &e,
        &ListOptions {
            verbose: Some("full".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let v: Vec<&serde_json::Value> = l.packages.iter().filter(|p| p["name"] == "v").collect();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["scope"], "variant");
    assert_eq!(v[0]["active"], true);
    assert_eq!(v[0]["overrides"], serde_json::json!(["global"]));
    assert_eq!(v[0]["version"], "1.1-dev");
    assert_eq!(v[1]["scope"], "global");
    assert_eq!(v[1]["active"], false);
    assert_eq!(v[1]["resolved_source_kind"], "variant");
    assert_eq!(
        l.project_root.as_deref(),
        Some(proj.canonicalize().unwrap().to_str().unwrap())
    );

    unlink(&e, "v", Some("variant"), None).unwrap();
    assert_eq!(tag_of(&resolve(&res, "v").unwrap()), "home-copy");
    assert_eq!(
        unlink(&e, "v", Some("variant"), None).unwrap_err().code(),
        "package_not_found"
    );
    // global unlink of a real directory → not found; of a link → removed
    assert_eq!(
        unlink(&e, "v", None, None).unwrap_err().code(),
        "package_not_found"
    );
    assert_eq!(
        link(
            &e,
            &LinkOptions {
                path: var.clone(),
                ..Default::default()
            }
        )
        .unwrap_err()
        .code(),
        "conflict"
    );
    link(
        &e,
        &LinkOptions {
            path: var.clone(),
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(tag_of(&resolve(&res, "v").unwrap()), "variant");
    let strict = Resolver::new(PkgEnv {
        strict: true,
        ..e.clone()
    });
    assert!(resolve(&strict, "v").is_err());
    unlink(&e, "v", None, None).unwrap();
    assert!(var.join("init.lua").is_file());
    assert!(resolve(&res, "v").is_err());
}

#[test]
fn item58_list_never_executes_code() {
    let t = TempDir::new().unwrap();
    let src = t.path().join("mk");
    let marker = t.path().join("MARKER");
    write(
        &src.join("init.lua"),
        &format!(
            "local f = io.open({:?}, 'w') f:write('ran') f:close()\nos.execute('touch {}')\nlocal M = {{}}\nM.meta = {{ name = 'mk', version = '0.' .. 2, description = \"a \" .. \"b\" }}\nreturn M\n",
            marker.display().to_string(),
            marker.display()
        ),
    );
    let home = t.path().join("home");
    let e = env(&home);
    install(&e, &opts(&src)).unwrap();
    let l = list(
        &e,
        &ListOptions {
            verbose: Some("full".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(!marker.exists());
    let p = &l.packages[0];
    assert_eq!(p["name"], "mk");
    assert_eq!(p["version"], "0.2");
    assert_eq!(p["meta"]["description"], "a b");
    assert_eq!(p["source_type"], "local");
    assert!(p["installed_at"].is_i64());
    // summary fields only by default
    let l = list(&e, &ListOptions::default()).unwrap();
    let keys: Vec<&String> = l.packages[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6);
    assert!(l.search_paths.iter().any(|s| s.source == "global"));
    // filter and fields
    let l = list(
        &e,
        &ListOptions {
            filter: Some(
                serde_json::json!({"name": "nope"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(l.packages.is_empty());
    let l = list(
        &e,
        &ListOptions {
            fields: Some(vec!["name".into()]),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(l.packages[0], serde_json::json!({"name": "mk"}));
}

#[cfg(unix)]
#[test]
fn resolution_order_across_all_sources() {
    let t = TempDir::new().unwrap();
    let proj = t.path().join("proj");
    let home = t.path().join("home");
    let extra1 = t.path().join("extra1");
    let extra2 = t.path().join("extra2");
    pkg(&proj.join("vdir"), "p", "1", "variant");
    pkg(&proj.join("packages/p"), "p", "1", "project");
    write(
        &proj.join("alc.toml"),
        "[packages]\np = { path = \"packages/p\" }\n",
    );
    write(
        &proj.join("alc.local.toml"),
        "[packages.p]\npath = \"vdir\"\n",
    );
    pkg(&extra1.join("p"), "p", "1", "path1");
    pkg(&extra2.join("p"), "p", "1", "path2");
    pkg(&extra2.join("q"), "q", "1", "q-path2");
    pkg(&home.join("packages/p"), "p", "1", "global");
    write(&home.join("scenarios/sc1.lua"), "return 'scenario'");
    let bundled = BundledSet::from_files([
        ("p", "init.lua", b"M.tag = \"bundled\"" as &[u8]),
        ("bp", "init.lua", b"M.tag = \"bp\""),
        ("bp", "sub/mod.lua", b"return 'bp.sub.mod'"),
    ]);
    let e = PkgEnv {
        home: home.clone(),
        project_root: Some(proj.clone()),
        packages_path: vec![extra1.clone(), extra2.clone()],
        strict: false,
        bundled,
    };
    let res = Resolver::new(e.clone());
    let m = alc_engine::ModuleSource::resolve(&res, "default", "p").unwrap();
    assert_eq!(m.logical_path, "p/init.lua");
    let order = ["variant", "project", "path1", "path2", "global", "bundled"];
    for (i, want) in order.iter().enumerate() {
        assert_eq!(tag_of(&resolve(&res, "p").unwrap()), *want, "step {i}");
        match i {
            0 => fs::remove_file(proj.join("alc.local.toml")).unwrap(),
            1 => fs::remove_file(proj.join("alc.toml")).unwrap(),
            2 => fs::remove_dir_all(extra1.join("p")).unwrap(),
            3 => fs::remove_dir_all(extra2.join("p")).unwrap(),
            4 => fs::remove_dir_all(home.join("packages/p")).unwrap(),
            _ => {}
        }
    }
    assert_eq!(tag_of(&resolve(&res, "q").unwrap()), "q-path2");
    assert_eq!(resolve(&res, "bp.sub.mod").unwrap(), "return 'bp.sub.mod'");
    let m = alc_engine::ModuleSource::resolve(&res, "default", "scenarios.sc1").unwrap();
    assert_eq!(m.logical_path, "scenarios/sc1.lua");
    assert_eq!(
        resolve(&res, "scenarios.none").unwrap_err(),
        "\n\tpackage 'scenarios' (scenarios) has no file for 'scenarios.none'"
    );
    assert_eq!(
        resolve(&res, "bp.nope").unwrap_err(),
        "\n\tpackage 'bp' (bundled) has no file for 'bp.nope'"
    );
    // sub-module files: a/b.lua before a/b/init.lua; nothing escapes the package
    pkg(&home.join("packages/s"), "s", "1", "s");
    write(&home.join("packages/s/a/b.lua"), "return 'file'");
    write(&home.join("packages/s/a/b/init.lua"), "return 'dir'");
    write(&home.join("packages/s/c/init.lua"), "return 'c'");
    write(&home.join("secret.lua"), "return 'secret'");
    std::os::unix::fs::symlink(home.join("secret.lua"), home.join("packages/s/leak.lua")).unwrap();
    assert_eq!(resolve(&res, "s.a.b").unwrap(), "return 'file'");
    assert_eq!(resolve(&res, "s.c").unwrap(), "return 'c'");
    let err = resolve(&res, "s.leak").unwrap_err();
    assert_eq!(err, "\n\tpackage 's' (global) has no file for 's.leak'");
    // sub-module missing from a bound package does not fall through to bundled
    pkg(&home.join("packages/bp"), "bp", "1", "global-bp");
    assert_eq!(
        resolve(&res, "bp.sub.mod").unwrap_err(),
        "\n\tpackage 'bp' (global) has no file for 'bp.sub.mod'"
    );
    assert!(!err.contains(&*home.to_string_lossy()));
}

#[test]
fn path_dependency_from_toml_without_lock_entry_warns() {
    let t = TempDir::new().unwrap();
    let proj = t.path().join("proj");
    pkg(&proj.join("libs/h"), "h", "1", "h");
    write(
        &proj.join("alc.toml"),
        "[packages]\nh = { path = \"libs/h\" }\n",
    );
    write(&proj.join("alc.lock"), "version = 1\n");
    let e = env(&t.path().join("home")).with_project_root(Some(proj.clone()));
    assert_eq!(
        tag_of(&resolve(&Resolver::new(e.clone()), "h").unwrap()),
        "h"
    );
    let l = list(&e, &ListOptions::default()).unwrap();
    assert!(l.warnings.unwrap()[0].contains("'h'"));
    assert!(l.lockfile_path.is_some());
    write(&proj.join("alc.lock"), "version = 2\n");
    let err = manifest::read_lock(&proj).unwrap_err();
    assert!(err.to_string().contains("alc.lock"));
}

#[cfg(unix)]
#[test]
fn item60_init_home_bundled_offline() {
    let t = TempDir::new().unwrap();
    let home = t.path().join("home");
    let e = PkgEnv {
        bundled: BundledSet::from_files([
            (
                "b1",
                "init.lua",
                b"local M = {} M.meta = {name='b1', version='1'} return M" as &[u8],
            ),
            ("b1", "lib/x.lua", b"return 1"),
            ("b2", "init.lua", b"return {}"),
        ]),
        ..env(&home)
    };
    let r = init_home(
        &e,
        &InitHomeOptions {
            types_stub: Some("---@meta\n".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.installed, vec!["b1", "b2"]);
    assert!(r.types_written && !r.config_written);
    assert!(home.join("packages/b1/lib/x.lua").is_file());
    assert!(home.join("types/alc.d.lua").is_file());
    let r = init_home(
        &e,
        &InitHomeOptions {
            types_stub: Some("---@meta\n".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.skipped, vec!["b1", "b2"]);
    assert!(!r.types_written);
    // a development link is never replaced, even with force
    fs::remove_dir_all(home.join("packages/b2")).unwrap();
    let dev = t.path().join("devb2");
    pkg(&dev, "b2", "1", "dev");
    link(
        &e,
        &LinkOptions {
            path: dev.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let r = init_home(
        &e,
        &InitHomeOptions {
            force: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(r.updated, vec!["b1"]);
    assert_eq!(r.skipped_symlinks, vec!["b2"]);
    let l = list(
        &e,
        &ListOptions {
            verbose: Some("full".into()),
            filter: Some(
                serde_json::json!({"name":"b1","scope":"global"})
                    .as_object()
                    .unwrap()
                    .clone(),
            ),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(l.packages[0]["source_type"], "bundled");
    assert_eq!(l.packages[0]["overrides"], serde_json::json!(["bundled"]));
}

#[test]
fn item61_init_project() {
    let t = TempDir::new().unwrap();
    let proj = t.path().join("proj");
    fs::create_dir_all(&proj).unwrap();
    write(&proj.join(".gitignore"), "target");
    let e = env(&t.path().join("home"));
    let r = init_project(&e, &proj, false).unwrap();
    assert!(r.created.ends_with("alc.toml") && r.gitignore_updated);
    let gi = fs::read_to_string(proj.join(".gitignore")).unwrap();
    assert_eq!(gi, "target\nalc.local.toml\n.alc-install.lock\n");
    assert_eq!(
        init_project(&e, &proj, false).unwrap_err().code(),
        "conflict"
    );
    assert!(serde_json::to_value(&r)
        .unwrap()
        .get("bundled_installed")
        .is_none());
}

#[test]
fn limits_depth_and_git_dir_and_modes() {
    let t = TempDir::new().unwrap();
    let src = t.path().join("deep");
    pkg(&src, "deep", "1", "d");
    let mut p = src.clone();
    for i in 0..22 {
        p = p.join(format!("d{i}"));
    }
    write(&p.join("f.txt"), "x");
    let home = t.path().join("home");
    let e = env(&home);
    let err = install(&e, &opts(&src)).unwrap_err();
    assert!(err.to_string().contains("deeper than 20"), "{err}");
    assert!(!home.join("packages/deep").exists());

    let src = t.path().join("ok");
    pkg(&src, "ok", "1", "o");
    write(&src.join(".git/config"), "[core]");
    write(&src.join("bin/tool.sh"), "#!/bin/sh");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(src.join("bin/tool.sh"), fs::Permissions::from_mode(0o6755)).unwrap();
    }
    install(&e, &opts(&src)).unwrap();
    assert!(!home.join("packages/ok/.git").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = fs::metadata(home.join("packages/ok/bin/tool.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o7777, 0o755);
    }
}

#[test]
fn embedded_bundled_set_matches_workspace_packages() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packages");
    let set = BundledSet::embedded();
    let Ok(rd) = fs::read_dir(&dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().join("init.lua").is_file() {
            assert!(set.has(&name), "{name} embedded");
            let m = alc_pkg::meta::extract_meta(&String::from_utf8_lossy(
                set.file(&name, "init.lua").unwrap(),
            ));
            assert!(m.is_some(), "{name}: static meta");
        }
    }
}
