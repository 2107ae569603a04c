use super::*;

fn home_with(config: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("config.toml"), config).unwrap();
    d
}

fn load(home: &Path, env: &[(&str, &str)]) -> Settings {
    let cwd = tempfile::tempdir().unwrap();
    Settings::load_with_env(
        &LoadOptions {
            home: Some(home.to_path_buf()),
            project_root: None,
            cwd: Some(cwd.path().to_path_buf()),
        },
        Env::from_pairs(env.iter().copied()),
    )
    .unwrap()
}

#[test]
fn home_precedence_and_source() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let env = Env::from_pairs([
        ("ALC_HOME", b.path().to_str().unwrap()),
        ("HOME", "/nonexistent-home"),
    ]);
    let opts = |home: Option<&Path>| LoadOptions {
        home: home.map(Path::to_path_buf),
        project_root: None,
        cwd: Some(cwd.path().to_path_buf()),
    };
    let s = Settings::load_with_env(&opts(Some(a.path())), env.clone()).unwrap();
    assert_eq!(s.home, a.path().canonicalize().unwrap());
    assert_eq!(s.home_source, HomeSource::Flag);
    let s = Settings::load_with_env(&opts(None), env).unwrap();
    assert_eq!(s.home, b.path().canonicalize().unwrap());
    assert_eq!(s.home_source.label(), "ALC_HOME");
    let s = Settings::load_with_env(
        &opts(None),
        Env::from_pairs([("HOME", "/nonexistent-home")]),
    )
    .unwrap();
    assert_eq!(s.home, PathBuf::from("/nonexistent-home/.algocline"));
    assert_eq!(s.home_source.label(), "default");
    assert!(!s.config_loaded);
    assert_eq!(s.engine_config(), default_engine_config());
}

#[test]
fn every_section_maps_onto_the_engine_config() {
    let home = home_with(
        r#"
[answerer]
default = "provider"

[provider]
default = "local"
max_concurrency = 3
request_timeout_s = 60
model_policy = "force"

[providers.local]
kind = "openai_chat"
base_url = "http://localhost:11434/v1"
model = "llama3.2"
model_map = { "gpt-4" = "llama3.2" }
prices = { "llama3.2" = { input = 0.1, output = 0.2 } }

[session]
idle_ttl_s = 60
retain_terminal_s = 5
max_retained_terminal = 7
journal_retention_days = 3
transcript_retention_days = 4
memory_limit_mb = 32
max_memory_limit_mb = 128
cpu_limit_ms = 1000
timeout_ms = 2500
max_fork_children = 4

[budget.default]
max_tokens = 500

[budget.ceiling]
max_llm_calls = 50

[sandbox]
trusted = true
env_allow = ["MY_*", "ALC_*", "OPENAI_API_KEY", "SECRET_TOKEN"]

[journal]
durability = "full"
recovery = "eager"

[engine]
workers = 2
hook_interval = 500
slice_ms = 7
max_batch = 64
gc_park_growth_bytes = 1024
event_ring_bytes = 4096

[mcp]
call_wait_ms = 1500
mrtr = "auto"
sampling = "off"
cancel_on_disconnect = true

[log]
transcripts = "metadata"

[setting.cot]
depth = 3
"#,
    );
    let s = load(
        home.path(),
        &[
            ("MY_FLAG", "1"),
            ("ALC_HOME", "/x"),
            ("ALC_SHAPE_CHECK", "1"),
            ("OPENAI_API_KEY", "sk-secret"),
            ("SECRET_TOKEN", "t"),
        ],
    );
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    let e = s.engine_config();
    assert_eq!(e.idle_ttl_ms, 60_000);
    assert_eq!(e.retain_terminal_ms, 5_000);
    assert_eq!(e.max_retained_terminal, 7);
    assert_eq!(e.memory_limit_bytes, 32 << 20);
    assert_eq!(e.max_memory_limit_bytes, 128 << 20);
    assert_eq!(e.cpu_limit_ms, 1000);
    assert_eq!(e.deadline_ms, Some(2500));
    assert_eq!(e.max_fork_children, 4);
    assert_eq!(
        e.default_budget,
        BudgetLimits {
            max_llm_calls: None,
            max_tokens: Some(500),
            max_elapsed_ms: None
        },
        "[budget.default] replaces the built-in default as a whole"
    );
    assert_eq!(e.budget_ceiling.max_llm_calls, Some(50));
    assert_eq!(e.durability, Durability::Full);
    assert_eq!(e.recovery, Recovery::Eager);
    assert_eq!(e.workers, 2);
    assert_eq!(e.hook_interval, 500);
    assert_eq!(e.slice_ms, 7);
    assert_eq!(e.max_batch, 64);
    assert_eq!(e.gc_park_growth_bytes, 1024);
    assert_eq!(e.event_ring, EngineConfig::default().event_ring);
    assert_eq!(e.event_ring_bytes, 4096);
    assert_eq!(
        s.retention(),
        Retention {
            journal_retention_days: 3,
            transcript_retention_days: 4
        }
    );
    assert_eq!(e.terminal_journal_retention_ms, Some(4 * 86_400_000));
    assert!(s.sandbox_trusted());
    assert_eq!(s.mcp().call_wait_ms, 1500);
    assert_eq!(s.mcp().mrtr, "auto");
    assert_eq!(s.mcp().sampling, "off");
    assert!(s.mcp().cancel_on_disconnect);
    assert_eq!(s.log_transcripts(), "metadata");
    assert_eq!(s.config.setting["cot"]["depth"], json!(3));
    assert_eq!(s.answerer(None).unwrap().value, "provider");

    // env_allow: wildcards match, engine-internal names never come back.
    let allowed = s.env_allow();
    assert_eq!(
        allowed.keys().cloned().collect::<Vec<_>>(),
        vec![
            "ALC_SHAPE_CHECK".to_string(),
            "MY_FLAG".into(),
            "SECRET_TOKEN".into()
        ]
    );

    let f = s.providers_file();
    assert_eq!(f.provider.max_concurrency, 3);
    assert_eq!(f.provider.request_timeout_s, 60);
    assert_eq!(f.provider.model_policy, alc_llm::ModelPolicy::Force);
    let p = &f.providers["local"];
    assert_eq!(p.model.as_deref(), Some("llama3.2"));
    assert_eq!(p.model_map["gpt-4"], "llama3.2");
    assert_eq!(p.prices["llama3.2"].output, 0.2);
    let providers = s.providers();
    assert_eq!(providers.default_name(), Some("local"));
    assert!(s.provider_configured());
}

#[test]
fn unknown_keys_and_bad_values_warn_but_never_fail() {
    let home = home_with(
        r#"
colour = "blue"
[session]
idle_ttl_s = "soon"
frobnicate = 1
[mcp]
mrtr = "sometimes"
[providers.x]
kind = "carrier_pigeon"
[providers.y]
model = "m"
temperature = 2
[wat]
a = 1
"#,
    );
    let s = load(home.path(), &[]);
    let w = s.warnings.join("\n");
    for needle in [
        "colour",
        "session.idle_ttl_s",
        "session.frobnicate",
        "mcp.mrtr",
        "providers.x",
        "providers.y.temperature",
        "wat",
    ] {
        assert!(w.contains(needle), "warning about {needle}: {w}");
    }
    assert_eq!(
        s.engine_config().idle_ttl_ms,
        EngineConfig::default().idle_ttl_ms
    );
    assert_eq!(s.mcp().mrtr, "off");
    assert!(!s.providers_file().providers.contains_key("x"));
    assert_eq!(
        s.providers_file().providers["y"].model.as_deref(),
        Some("m")
    );
    let info = s.info_json();
    assert!(info["warnings"].as_array().unwrap().len() >= 7);
}

#[test]
fn invalid_toml_is_a_warning() {
    let home = home_with("[session\nidle_ttl_s = 3");
    let s = load(home.path(), &[]);
    assert!(s.warnings[0].contains("not valid TOML"), "{:?}", s.warnings);
    assert_eq!(s.engine_config(), default_engine_config());
}

#[test]
fn empty_budget_default_means_no_default_budget() {
    let home = home_with("[budget.default]\n");
    let s = load(home.path(), &[]);
    assert_eq!(s.engine_config().default_budget, BudgetLimits::default());
}

#[test]
fn precedence_flag_env_project_config() {
    let home = home_with("[answerer]\ndefault = \"host\"\n");
    let proj = tempfile::tempdir().unwrap();
    std::fs::write(
        proj.path().join("alc.toml"),
        "[run]\nanswerer = \"terminal\"\nmodel = \"proj-model\"\n[providers.evil]\nbase_url = \"http://evil\"\n",
    )
    .unwrap();
    let sub = proj.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let settings = |env: &[(&str, &str)]| {
        Settings::load_with_env(
            &LoadOptions {
                home: Some(home.path().to_path_buf()),
                project_root: None,
                cwd: Some(sub.clone()),
            },
            Env::from_pairs(env.iter().copied()),
        )
        .unwrap()
    };
    // Project found by walking up from the working directory.
    let s = settings(&[]);
    assert_eq!(
        s.project_root.as_deref(),
        Some(proj.path().canonicalize().unwrap().as_path())
    );
    assert!(s.warnings.iter().any(|w| w.contains("[providers] ignored")));
    assert!(s.providers_file().providers.is_empty());
    let a = s.answerer(None).unwrap();
    assert_eq!(
        (a.value.as_str(), a.source.as_str()),
        ("terminal", "alc.toml")
    );
    assert_eq!(s.run_model(None).as_deref(), Some("proj-model"));
    assert_eq!(
        s.run_model(Some("flag-model")).as_deref(),
        Some("flag-model")
    );

    // alc.local.toml beats alc.toml.
    std::fs::write(
        proj.path().join("alc.local.toml"),
        "[run]\nanswerer = \"scripted:x\"\n",
    )
    .unwrap();
    let s = settings(&[]);
    // A relative scripted file of a project file is a file of the project.
    assert_eq!(
        s.answerer(None).unwrap().value,
        format!(
            "scripted:{}",
            proj.path().canonicalize().unwrap().join("x").display()
        )
    );
    assert_eq!(s.answerer(None).unwrap().source, "alc.local.toml");

    // env beats project; flag beats env.
    let s = settings(&[("ALC_ANSWERER", "provider")]);
    assert_eq!(s.answerer(None).unwrap().value, "provider");
    assert_eq!(s.answerer(Some("host")).unwrap().value, "host");
    assert_eq!(s.answerer(Some("host")).unwrap().source, "--answerer");

    // Without project files, config.toml; without anything, none.
    std::fs::remove_file(proj.path().join("alc.toml")).unwrap();
    std::fs::remove_file(proj.path().join("alc.local.toml")).unwrap();
    let s = settings(&[]);
    assert!(s.project_root.is_none());
    assert_eq!(s.answerer(None).unwrap().source, "config.toml");
    assert_eq!(s.mcp_default_answerer(), "host");
    let bare = load(tempfile::tempdir().unwrap().path(), &[]);
    assert!(bare.answerer(None).is_none());
    assert_eq!(bare.mcp_default_answerer(), "host");
}

#[test]
fn explicit_project_root_must_be_a_directory() {
    let home = tempfile::tempdir().unwrap();
    let err = Settings::load_with_env(
        &LoadOptions {
            home: Some(home.path().to_path_buf()),
            project_root: Some(home.path().join("missing")),
            cwd: None,
        },
        Env::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not a directory"));
}

#[test]
fn env_overrides_provider_settings_and_base_url() {
    let home = home_with(
        "[provider]\nmax_concurrency = 3\n[providers.openai]\nbase_url = \"https://example.invalid/v1\"\nmodel = \"cfg-model\"\n",
    );
    let s = load(
        home.path(),
        &[
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
            ("ALC_MAX_CONCURRENCY", "5"),
            ("OPENAI_API_KEY", "sk-secret"),
        ],
    );
    let p = s.providers();
    assert_eq!(p.settings.max_concurrency, 5);
    assert_eq!(p.get("openai").unwrap().base_url, "http://127.0.0.1:9/v1");
    let info = s.info_json().to_string();
    assert!(!info.contains("sk-secret"));
    assert!(info.contains("\"api_key\":\"set\""));
}

#[test]
fn info_shape_and_masking() {
    let home = tempfile::tempdir().unwrap();
    let s = load(
        home.path(),
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("ALC_PACKAGES_PATH", "/opt/pkgs"),
            ("ALC_LOG_DIR", "/var/log/alc"),
        ],
    );
    let info = s.info_json();
    assert_eq!(info["name"], "algocline");
    assert_eq!(info["compat_version"], "0.38.1");
    assert_eq!(info["home"]["source"], "--home");
    assert_eq!(
        info["database"],
        json!(s.home.join("alc.db").display().to_string())
    );
    assert_eq!(info["config_files"], json!([]));
    assert_eq!(info["log_dir"]["source"], "ALC_LOG_DIR");
    assert_eq!(info["log_enabled"], true);
    assert_eq!(info["project_root"], Value::Null);
    assert_eq!(info["default_answerer"], "host");
    let sources: Vec<&str> = info["search_paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["ALC_PACKAGES_PATH", "default", "bundled"]);
    let providers = info["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["name"], "anthropic");
    assert_eq!(providers[0]["kind"], "anthropic_messages");
    assert_eq!(providers[0]["api_key"], "set");
    assert!(!info.to_string().contains("sk-ant-secret"));
    assert!(info["bundled_packages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "cot"));
}

/// The engine configuration of an absent or empty `config.toml`: the engine's defaults, plus
/// the journal retention of finished sessions from `transcript_retention_days` (90).
fn default_engine_config() -> EngineConfig {
    EngineConfig {
        terminal_journal_retention_ms: Some(90 * 86_400_000),
        open_journal_retention_ms: Some(30 * 86_400_000),
        ..EngineConfig::default()
    }
}

#[test]
fn transcript_mode_follows_the_log_table_and_alc_log_level_off() {
    let bare = load(tempfile::tempdir().unwrap().path(), &[]);
    assert_eq!(bare.transcript_mode(), "full");
    let home = home_with("[log]\ntranscripts = \"metadata\"\n");
    assert_eq!(load(home.path(), &[]).transcript_mode(), "metadata");
    assert_eq!(
        load(home.path(), &[("ALC_LOG_LEVEL", "debug")]).transcript_mode(),
        "metadata"
    );
    // ALC_LOG_LEVEL=off also drops transcript text, logs and notes at the end.
    assert_eq!(
        load(home.path(), &[("ALC_LOG_LEVEL", "off")]).transcript_mode(),
        "off"
    );
    let bad = home_with("[log]\ntranscripts = \"verbose\"\n");
    let s = load(bad.path(), &[]);
    assert_eq!(s.transcript_mode(), "full");
    assert!(s.warnings.iter().any(|w| w.contains("transcripts")));
}

#[test]
fn diagnostic_levels_follow_env_then_rust_log_then_the_log_table() {
    let home = home_with("[log]\nlevel = \"debug\"\nstderr_level = \"error\"\ncolour = 1\n");
    let s = load(home.path(), &[]);
    let file = s.diag_file_level().unwrap();
    assert_eq!(
        (file.value.as_str(), file.source.as_str()),
        ("debug", "config.toml [log] level")
    );
    assert_eq!(s.diag_stderr_level().unwrap().value, "error");
    assert!(
        s.warnings.iter().any(|w| w.contains("colour")),
        "{:?}",
        s.warnings
    );
    let s = load(home.path(), &[("RUST_LOG", "alc=trace,warn")]);
    let file = s.diag_file_level().unwrap();
    assert_eq!(
        (file.value.as_str(), file.source.as_str()),
        ("alc=trace,warn", "RUST_LOG")
    );
    let s = load(
        home.path(),
        &[("RUST_LOG", "trace"), ("ALC_LOG_LEVEL", "WARN")],
    );
    for level in [s.diag_file_level(), s.diag_stderr_level()] {
        let level = level.unwrap();
        assert_eq!(
            (level.value.as_str(), level.source.as_str()),
            ("warn", "ALC_LOG_LEVEL")
        );
    }
    let bad = home_with("[log]\nlevel = \"loud\"\n");
    let s = load(bad.path(), &[]);
    assert!(s.diag_file_level().is_none());
    assert!(
        s.warnings.iter().any(|w| w.contains("level")),
        "{:?}",
        s.warnings
    );
    let none = tempfile::tempdir().unwrap();
    let s = load(none.path(), &[]);
    assert!(s.diag_file_level().is_none() && s.diag_stderr_level().is_none());
}

#[test]
fn project_files_cannot_configure_providers_or_home_sections() {
    let proj = tempfile::tempdir().unwrap();
    std::fs::write(
        proj.path().join("alc.toml"),
        "[run]\nanswerer = \"scripted:rules/a.jsonl\"\nmodel = \"m\"\nbase_url = \"http://x\"\n\
         api_key_env = \"MY_KEY\"\nheaders = { a = \"b\" }\nprices = {}\ncolour = \"red\"\n\
         [provider]\ndefault = \"evil\"\n[sandbox]\ntrusted = true\n[session]\ncpu_limit_ms = 0\n\
         [packages]\ncot = \"*\"\n[env]\nallow = [\"X\"]\n[setting.journal]\npath = \"n.md\"\n",
    )
    .unwrap();
    let (run, files, w) = project_run(proj.path());
    assert_eq!(files, vec![proj.path().join("alc.toml")]);
    assert_eq!(
        run.answerer.as_ref().unwrap().value,
        format!("scripted:{}", proj.path().join("rules/a.jsonl").display())
    );
    assert_eq!(run.model.as_ref().unwrap().value, "m");
    let has = |needle: &str| w.iter().any(|m| m.contains(needle));
    for key in ["base_url", "api_key_env", "headers", "prices"] {
        assert!(
            has(&format!(
                "`run.{key}` ignored: a project file cannot set provider base URLs"
            )),
            "{key}: {w:?}"
        );
    }
    assert!(has(
        "alc.toml: [provider] ignored: providers are configured only in config.toml"
    ));
    assert!(
        has("alc.toml: [sandbox] ignored: project files may set only"),
        "{w:?}"
    );
    assert!(has("[session] ignored"), "{w:?}");
    assert!(has("unknown key `run.colour` ignored"), "{w:?}");
    // [packages], [env] and [setting.*] are project keys: no warning names them.
    for section in ["[packages]", "[env]", "[setting"] {
        assert!(
            !w.iter()
                .any(|m| m.starts_with(&format!("alc.toml: {section}"))),
            "{w:?}"
        );
    }
    assert_eq!(w.len(), 8, "{w:?}");
    // An absolute scripted path and other answerers are kept as written.
    std::fs::write(
        proj.path().join("alc.local.toml"),
        "[run]\nanswerer = \"scripted:/abs/rules.jsonl\"\n",
    )
    .unwrap();
    let (run, _, _) = project_run(proj.path());
    assert_eq!(run.answerer.unwrap().value, "scripted:/abs/rules.jsonl");
}

#[test]
fn model_precedence_flag_project_env() {
    let home = tempfile::tempdir().unwrap();
    let proj = tempfile::tempdir().unwrap();
    let load_in = |env: &[(&str, &str)]| {
        Settings::load_with_env(
            &LoadOptions {
                home: Some(home.path().to_path_buf()),
                project_root: Some(proj.path().to_path_buf()),
                cwd: None,
            },
            Env::from_pairs(env.iter().copied()),
        )
        .unwrap()
    };
    // Only ALC_MODEL: the selector shown is the variable's.
    let s = load_in(&[("ALC_MODEL", "env-m")]);
    assert_eq!(s.model_selector(None).unwrap().source, "ALC_MODEL");
    assert_eq!(s.run_model(None), None);
    // [run] model beats ALC_MODEL; --model beats both.
    std::fs::write(proj.path().join("alc.toml"), "[run]\nmodel = \"proj-m\"\n").unwrap();
    let s = load_in(&[("ALC_MODEL", "env-m")]);
    let m = s.model_selector(None).unwrap();
    assert_eq!(
        (m.value.as_str(), m.source.as_str()),
        ("proj-m", "alc.toml")
    );
    assert_eq!(s.run_model(None).as_deref(), Some("proj-m"));
    assert_eq!(s.model_selector(Some("flag-m")).unwrap().source, "--model");
    // alc.local.toml beats alc.toml.
    std::fs::write(
        proj.path().join("alc.local.toml"),
        "[run]\nmodel = \"local-m\"\n",
    )
    .unwrap();
    assert_eq!(load_in(&[]).run_model(None).as_deref(), Some("local-m"));
}
