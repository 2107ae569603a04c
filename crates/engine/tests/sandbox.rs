//! The session sandbox: `lua-api.md` §1 (§1.3 sandbox table, §1.4 env, §1.5 limits, §1.8
//! `require`, §1.11 errors) and checklist items 1–6, 10, 12–16, 18, 22–24, 26, 28,
//! 126–128, 131 and 133 of §4.
//!
//! Every session runs inline code with seed 42, a manual clock frozen at 1700000000 s and
//! the engine `default_budget` disabled; the n-th query is answered `A<n>`.

mod common;

use std::time::{Duration, Instant};

use alc_core::{BudgetLimits, EngineConfig, LimitOverrides, Program, SessionSpec, Terminal};
use alc_engine::{Engine, PackageRoots};
use common::*;
use serde_json::json;

fn eng_pk(mods: PackageRoots) -> Engine {
    eng_with(base_config(), mods)
}

/// Runs `code` and returns its completed value.
async fn val(e: &Engine, code: &str) -> serde_json::Value {
    let (t, _) = run_code(e, code).await;
    completed(&t)
}

async fn run_spec(e: &Engine, spec: SessionSpec) -> Terminal {
    let id = e.spawn(spec).await.expect("spawn");
    drive(e, &id, |_| alc_core::Answer::text(None, "A")).await.0
}

/// `(level, source, message)` of every log entry of a terminal record.
fn logs(t: &Terminal) -> Vec<(String, String, String)> {
    t.metrics
        .recent_logs
        .iter()
        .map(|l| (l.level.clone(), l.source.clone(), l.message.clone()))
        .collect()
}

fn log(level: &str, source: &str, message: &str) -> (String, String, String) {
    (level.into(), source.into(), message.into())
}

// ---- items 1–3, 5 -------------------------------------------------------------------------

#[tokio::test]
async fn item01_02_03_05_removed_functions() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local names = {}
        local function check(path, value) if value ~= nil then names[#names + 1] = path end end
        for _, k in ipairs({"execute", "remove", "rename", "exit", "tmpname", "setlocale"}) do
          check("os." .. k, os[k])
        end
        for _, k in ipairs({"popen", "read", "lines", "input", "output", "close", "tmpfile", "stdin"}) do
          check("io." .. k, io[k])
        end
        check("dofile", dofile); check("loadfile", loadfile)
        check("string.dump", string.dump); check("debug", debug)
        check("package.loadlib", package.loadlib); check("package.searchpath", package.searchpath)
        check("package.loaded.debug", package.loaded.debug)
        local ok, err = pcall(require, "debug")
        return {names = table.concat(names, ","), path = package.path, cpath = package.cpath, ok = ok,
                err = err:match("^module 'debug' not found:") ~= nil,
                searchers = #package.searchers, version = _VERSION,
                kept = {type(os.difftime), type(io.write), type(io.type), type(collectgarbage),
                        type(string.format), type(utf8.char), type(package.config)},
                flushed = {io.flush(), io.stdout:flush() == io.stdout},
                io_is_loaded = package.loaded.io == io,
                -- `string` and `os` are rebuilt without the removed functions: one table each,
                -- the string metatable included, with every stock function left in place.
                rebuilt = {package.loaded.string == string, package.loaded.os == os,
                           getmetatable("").__index == string, ("ab"):upper(),
                           (function() local n = 0 for _ in pairs(string) do n = n + 1 end return n end)(),
                           (function() local n = 0 for _ in pairs(os) do n = n + 1 end return n end)()}}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!({"names": "", "path": "", "cpath": "", "ok": false, "err": true,
               "searchers": 2, "version": "Lua 5.4",
               "kept": ["function", "function", "function", "function", "function",
                        "function", "string"],
               "flushed": [true, true], "io_is_loaded": true,
               "rebuilt": [true, true, true, "AB", 16, 5]})
    );
}

// ---- item 4 --------------------------------------------------------------------------------

#[tokio::test]
async fn item04_load_text_only() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local f1, e1 = load("\27Lua\84\0")
        local f2, e2 = load("\27Lua\84\0", "x", "b")
        local env = {y = 5}
        local f3 = load("return y", "x", "t", env)
        local f4, e4 = load("\27Lua\84\0", "x", "bt", env)
        local _, e5 = load("return +", "=chunk")
        return {f1 == nil, e1, f2 == nil, e2, load("return 1", "x", "b")(), load("return 1+1")(),
                f3(), f4 == nil, e4, e5}
        "##,
    )
    .await;
    let msg = "attempt to load a binary chunk (mode is 't')";
    assert_eq!(
        v,
        json!([
            true,
            msg,
            true,
            msg,
            1,
            2,
            5,
            true,
            msg,
            "chunk:1: unexpected symbol near '+'"
        ])
    );
}

// ---- item 6 --------------------------------------------------------------------------------

#[tokio::test]
async fn item06_working_directory_is_never_searched() {
    let name = "alc_sandbox_evil_probe";
    let file = std::env::current_dir().unwrap().join(format!("{name}.lua"));
    std::fs::write(&file, "return 'escaped'").unwrap();
    let e = eng();
    let v = val(
        &e,
        &format!(
            r##"
            local ok1, e1 = pcall(require, "{name}")
            package.path = "./?.lua;?.lua"
            local ok2, e2 = pcall(require, "{name}")
            return {{ok1, e1, ok2, e2}}
            "##
        ),
    )
    .await;
    let _ = std::fs::remove_file(&file);
    let msg = format!(
        "module '{name}' not found:\n\tno field package.preload['{name}']\n\tno package '{name}' in any package root"
    );
    assert_eq!(v, json!([false, msg, false, msg]));
}

// ---- item 10 -------------------------------------------------------------------------------

#[tokio::test]
async fn item10_getenv() {
    let e = eng();
    let v = val(
        &e,
        r##"return {os.getenv("PATH") == nil, os.getenv("HOME"), os.getenv("ALC_PACKAGES_PATH") == nil,
                   os.getenv("ALC_SHAPE_CHECK") == nil, os.getenv(nil) == nil}"##,
    )
    .await;
    assert_eq!(v, json!([true, "", true, true, true]));

    // Entries of the spec's env snapshot are returned.
    let mut spec = code_spec("return {os.getenv('FOO'), os.getenv('HOME')}", json!({}));
    spec.env.insert("FOO".into(), "bar".into());
    let t = run_spec(&e, spec).await;
    assert_eq!(completed(&t), json!(["bar", ""]));
}

// ---- item 12 -------------------------------------------------------------------------------

#[tokio::test]
async fn item12_print_goes_to_the_log() {
    let e = eng();
    let (t, _) = run_code(
        &e,
        r##"
        print("x")
        print(nil, true, 42, 3.14)
        print("a\n\n")
        print(setmetatable({}, {__tostring = function() return "T" end}), setmetatable({}, {__name = "My"}) ~= nil)
        "##,
    )
    .await;
    completed(&t);
    assert_eq!(
        logs(&t),
        vec![
            log("info", "alc.lua.print", "x"),
            log("info", "alc.lua.print", "nil\ttrue\t42\t3.14"),
            log("info", "alc.lua.print", "a"),
            log("info", "alc.lua.print", "T\ttrue"),
        ]
    );
}

// ---- item 13 -------------------------------------------------------------------------------

#[tokio::test]
async fn item13_io_write_and_warn() {
    let e = eng();
    let (t, _) = run_code(
        &e,
        r##"
        io.write("a\nb")
        print("mark")
        local f = io.write("c"):write("d\n")
        io.stderr:write("e\n")
        warn("w1", "w2")
        warn("@on")
        local bad = {pcall(io.write, {})}
        return {f == io.stdout, io.type(io.stdout), io.type(io.stderr), io.type(42), tostring(io.stdout),
                bad[1], bad[2]}
        "##,
    )
    .await;
    assert_eq!(
        completed(&t),
        json!([
            true,
            "file",
            "file",
            null,
            "file (stdout)",
            false,
            "bad argument #1 to 'write' (string expected, got table)"
        ])
    );
    assert_eq!(
        logs(&t),
        vec![
            log("info", "io", "a"),
            log("info", "alc.lua.print", "mark"),
            log("info", "io", "bcd"),
            log("warn", "io", "e"),
            log("warn", "alc.lua.warn", "w1w2"),
        ]
    );

    let (t, _) = run_code(&e, "io.write('a'):write('b\\n'); io.write(1, 2.5, '\\n')").await;
    assert_eq!(
        logs(&t),
        vec![log("info", "io", "ab"), log("info", "io", "12.5")]
    );

    // A trailing partial line is flushed at session end, also when the session fails.
    let (t, _) = run_code(&e, "io.write('tail'); error('x', 0)").await;
    assert_eq!(failed(&t).1, "x");
    assert_eq!(logs(&t), vec![log("info", "io", "tail")]);
}

// ---- item 14 -------------------------------------------------------------------------------

#[tokio::test]
async fn item14_no_private_members_or_host_paths() {
    let e = eng();
    let cwd = std::env::current_dir().unwrap().display().to_string();
    let manifest = env!("CARGO_MANIFEST_DIR").to_string();
    let mut paths = vec![cwd, manifest];
    if let Ok(home) = std::env::var("HOME") {
        if home.len() > 1 {
            paths.push(home);
        }
    }
    let (t, _) = run_code_ctx(
        &e,
        r##"
        local paths = ctx.paths
        ctx.paths = nil
        local bad, seen, count = {}, {}, 0
        local function walk(v)
          if type(v) == "string" then
            count = count + 1
            for _, p in ipairs(paths) do
              if v:find(p, 1, true) then bad[#bad + 1] = p end
            end
          elseif type(v) == "table" and not seen[v] then
            seen[v] = true
            for k, x in next, v do walk(k); walk(x) end
            local mt = getmetatable(v)
            if type(mt) == "table" then walk(mt) end
          end
        end
        walk(_G); walk(ctx); walk(alc)
        return {dirs = alc._dirs == nil, hash = alc.hash == nil, bad = table.concat(bad, ","),
                some = count > 100}
        "##,
        json!({ "paths": paths }),
    )
    .await;
    assert_eq!(
        completed(&t),
        json!({"dirs": true, "hash": true, "bad": "", "some": true})
    );
}

// ---- item 15 -------------------------------------------------------------------------------

#[tokio::test]
async fn item15_memory_limit() {
    let e = eng();
    let (t, _) = run_code(
        &e,
        r##"
        local ok, err = pcall(function() local t = {}; for i = 1, 1e8 do t[i] = i end end)
        collectgarbage()
        return {ok, err, alc.llm("after")}
        "##,
    )
    .await;
    assert_eq!(completed(&t), json!([false, "not enough memory", "A1"]));

    let (t, _) = run_code(&e, "local t = {}; for i = 1, 1e8 do t[i] = i end").await;
    assert_eq!(
        failed(&t),
        ("out_of_memory".to_string(), "not enough memory".to_string())
    );
    // The engine still runs sessions.
    assert_eq!(val(&e, "return 1 + 1").await, json!(2));
}

// ---- item 16 -------------------------------------------------------------------------------

/// Runs `code` under a deadline of `deadline_ms`, on a two-worker engine with no default
/// budget.
async fn run_with_deadline(code: &str, deadline_ms: u64) -> Terminal {
    let e = eng_with(
        EngineConfig {
            workers: 2,
            default_budget: BudgetLimits::default(),
            ..EngineConfig::default()
        },
        PackageRoots::default(),
    );
    let mut spec = code_spec(code, json!({}));
    spec.limits = LimitOverrides {
        deadline_ms: Some(deadline_ms),
        ..LimitOverrides::default()
    };
    run_spec(&e, spec).await
}

fn assert_timed_out(t: &Terminal) {
    match &t.outcome {
        alc_core::Outcome::Failed { kind, .. } => assert_eq!(kind.wire_code(), "timeout"),
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn item16_deadline_cannot_be_caught() {
    let started = Instant::now();
    let t = run_with_deadline(
        "pcall(function() while true do end end)\nprint('after')\nreturn 'after'",
        500,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_timed_out(&t);
    assert!(logs(&t).is_empty(), "{:?}", logs(&t));
}

// ---- item 18 -------------------------------------------------------------------------------

#[tokio::test]
async fn item18_stock_semantics_survive() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local ok, err = pcall(string.format, "%d", 2.5)
        local n = 0
        ::top:: n = n + 1
        if n < 3 then goto top end
        return {ok, 7 // 2, 3 | 5, n, ("hello world"):find("%f[%w]world"), ("(a(b)c)"):match("%b()"),
                math.type(1), math.type(1.0), 1 // 0.0 == math.huge, string.format("%5.1f", 2.25),
                select("#", table.unpack({1, nil, 3}, 1, 3)), utf8.char(9731)}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([false, 3, 7, 3, 7, "(a(b)c)", "integer", "float", true, "  2.2", 3, "☃"])
    );
}

// ---- shims: setmetatable, coroutine argument errors --------------------------------------

#[tokio::test]
async fn shims_keep_stock_behaviour() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local ok1, e1 = pcall(setmetatable, {}, {__gc = function() end})
        local t = setmetatable({}, {__index = {a = 1}})
        local ok2, e2 = pcall(function() coroutine.resume(nil) end)
        local ok3, e3 = pcall(function() coroutine.wrap(42) end)
        local ok4, e4 = pcall(function() coroutine.close() end)
        local co = coroutine.create(function() coroutine.yield() end)
        coroutine.resume(co)
        local closed = {coroutine.close(co)}
        local w = coroutine.wrap(function() error({code = 7}) end)
        local ok5, e5 = pcall(w)
        local w2 = coroutine.wrap(function() return 1 end)
        w2()
        local ok6, e6 = pcall(function() w2() end)
        return {ok1, e1, t.a, ok2, e2, ok3, e3, ok4, e4, closed, coroutine.status(co),
                ok5, type(e5) == "table" and e5.code, ok6, e6}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            false,
            "setmetatable: __gc metamethods are not allowed in the sandbox",
            1,
            false,
            "session:4: bad argument #1 to 'resume' (thread expected, got nil)",
            false,
            "session:5: bad argument #1 to 'wrap' (function expected, got number)",
            false,
            "session:6: bad argument #1 to 'close' (thread expected, got no value)",
            [true],
            "dead",
            false,
            7,
            false,
            "session:14: cannot resume dead coroutine"
        ])
    );
}

// ---- item 22 -------------------------------------------------------------------------------

#[tokio::test]
async fn item22_require_caches_and_prefers_file_modules() {
    let mods = PackageRoots::default()
        .with_memory_file(
            "pk",
            "init.lua",
            "local n, path = ...\nreturn {name = n, path = path}",
        )
        .with_memory_file("pk", "a/b.lua", "return 'file'")
        .with_memory_file("pk", "a/b/init.lua", "return 'dir'")
        .with_memory_file("pk", "c/init.lua", "return 'c-dir'")
        .with_memory_file("pk", "nil.lua", "x_loaded = (x_loaded or 0) + 1");
    let e = eng_pk(mods);
    let v = val(
        &e,
        r##"
        local a, extra = require("pk")
        local b, extra2 = require("pk")
        package.loaded.pk = nil
        local c = require("pk")
        package.preload.pre = function(n, x) return {n = n, x = x} end
        local p = require("pre")
        return {same = a == b, fresh = a ~= c, name = a.name, path = a.path, extra = extra,
                extra2 = extra2 == nil, ab = require("pk.a.b"), c = require("pk.c"),
                nilmod = require("pk.nil"), twice = require("pk.nil") and x_loaded,
                pre = p, loaded = package.loaded["pk.a.b"]}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!({"same": true, "fresh": true, "name": "pk", "path": "pk/init.lua",
               "extra": "pk/init.lua", "extra2": true, "ab": "file", "c": "c-dir",
               "nilmod": true, "twice": 1, "pre": {"n": "pre", "x": ":preload:"},
               "loaded": "file"})
    );
}

// ---- item 23 -------------------------------------------------------------------------------

#[tokio::test]
async fn item23_invalid_module_names() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local out = {}
        for _, n in ipairs({"../x", "a/b", "a..b", "", ".a", "a.", "1abc", string.rep("a", 257)}) do
          local ok, err = pcall(require, n)
          out[#out + 1] = {ok, err}
        end
        local ok, err = pcall(require, 42)
        out[#out + 1] = {ok, err}
        return out
        "##,
    )
    .await;
    let mut expected: Vec<serde_json::Value> = ["../x", "a/b", "a..b", "", ".a", "a.", "1abc"]
        .iter()
        .map(|n| json!([false, format!("invalid module name '{n}'")]))
        .collect();
    expected.push(json!([
        false,
        format!("invalid module name '{}'", "a".repeat(257))
    ]));
    expected.push(json!([
        false,
        "bad argument #1 to 'require' (string expected, got number)"
    ]));
    assert_eq!(v, json!(expected));
}

// ---- item 24 -------------------------------------------------------------------------------

#[tokio::test]
async fn item24_not_found_lists_sources_without_paths() {
    let mods = PackageRoots::default().with_memory_file("pk", "init.lua", "return {}");
    let e = eng_pk(mods);
    let v = val(
        &e,
        r##"
        local _, e1 = pcall(require, "nope")
        local _, e2 = pcall(require, "pk.missing")
        return {e1, e2}
        "##,
    )
    .await;
    let e1 = v[0].as_str().unwrap();
    let e2 = v[1].as_str().unwrap();
    assert_eq!(
        e1,
        "module 'nope' not found:\n\tno field package.preload['nope']\n\tno package 'nope' in bundled"
    );
    assert_eq!(
        e2,
        "module 'pk.missing' not found:\n\tno field package.preload['pk.missing']\n\tpackage 'pk' (bundled) has no file for 'pk.missing'"
    );
    assert!(!e1.contains('/'), "{e1}");
}

// ---- item 26 -------------------------------------------------------------------------------

#[tokio::test]
async fn item26_module_errors_name_logical_paths() {
    let mods = PackageRoots::default()
        .with_memory_file("bad", "init.lua", "local x = = 1")
        .with_memory_file("pk", "init.lua", "local M = {}\n\nerror('oops')\nreturn M")
        .with_memory_file(
            "rt",
            "init.lua",
            "local M = {}\nfunction M.f()\n  error('late')\nend\nreturn M",
        );
    let e = eng_pk(mods);
    let v = val(
        &e,
        r##"
        local _, e1 = pcall(require, "bad")
        local _, e2 = pcall(require, "pk")
        local _, e3 = pcall(require("rt").f)
        return {e1, e2, e3, package.loaded.bad == nil, package.loaded.pk == nil}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            "error loading module 'bad' from 'bad/init.lua':\n\tbad/init.lua:1: unexpected symbol near '='",
            "pk/init.lua:3: oops",
            "rt/init.lua:3: late",
            true,
            true
        ])
    );

    // Uncaught: the traceback names the module's logical path.
    let (t, _) = run_code(&e, "local rt = require('rt')\nrt.f()").await;
    match &t.outcome {
        alc_core::Outcome::Failed {
            message, traceback, ..
        } => {
            assert_eq!(message, "rt/init.lua:3: late");
            assert_eq!(
                traceback.as_deref(),
                Some(
                    "stack traceback:\n\t[C]: in function 'error'\n\trt/init.lua:3: in function 'f'\n\tsession:2: in main chunk"
                )
            );
        }
        other => panic!("expected failure, got {other:?}"),
    }
}

// ---- item 28 -------------------------------------------------------------------------------

#[tokio::test]
async fn item28_session_values() {
    let mods = PackageRoots::default().with_memory_file(
        "cot",
        "init.lua",
        "local M = {}\nfunction M.run(ctx) ctx.result = 'r:' .. ctx.task; return ctx end\nreturn M",
    );
    let e = eng_pk(mods);
    assert_eq!(val(&e, "return 1, 2").await, json!(1));
    assert_eq!(val(&e, "return nil").await, json!(null));
    assert_eq!(val(&e, "local x = 1").await, json!(null));
    let (t, _) = run_code(&e, "return print").await;
    let (code, message) = failed(&t);
    assert_eq!(code, "result_not_serializable");
    assert!(
        message.starts_with("session result: cannot encode value of type 'function'"),
        "{message}"
    );

    let mut spec = SessionSpec::new(Program::Package {
        name: "cot".into(),
        entry: "run".into(),
    });
    spec.ctx = json!({"task": "T"});
    let t = run_spec(&e, spec).await;
    assert_eq!(completed(&t), json!({"task": "T", "result": "r:T"}));

    let spec = SessionSpec::new(Program::Package {
        name: "cot".into(),
        entry: "nope".into(),
    });
    let t = run_spec(&e, spec).await;
    assert_eq!(
        failed(&t),
        (
            "lua_error".to_string(),
            "package 'cot' has no function 'nope'".to_string()
        )
    );
}

// ---- item 126 ------------------------------------------------------------------------------

#[tokio::test]
async fn item126_seeded_random() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local r = {}
        for i = 1, 5 do r[i] = math.random(1, 100) end
        local a, b = math.randomseed(42)
        return {r, a, b, string.format("%.17g", math.random())}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([[50, 76, 86, 54, 64], 42, 0, "0.93081217803956817"])
    );
}

// ---- item 127 ------------------------------------------------------------------------------

#[tokio::test]
async fn item127_argumentless_randomseed_is_deterministic() {
    let e = eng();
    let code = "math.randomseed(); return {math.random(0), math.random(0)}";
    let run = |seed: u64| {
        let mut spec = code_spec(code, json!({}));
        spec.seed = Some(seed);
        spec
    };
    let a = completed(&run_spec(&e, run(7)).await);
    let b = completed(&run_spec(&e, run(7)).await);
    let c = completed(&run_spec(&e, run(8)).await);
    assert_eq!(a, b);
    assert_ne!(a[0], c[0]);
    // Successive argument-less reseeds take successive stream values.
    let v = val(
        &e,
        "math.randomseed(); local x = math.random(0); math.randomseed(); return x ~= math.random(0)",
    )
    .await;
    assert_eq!(v, json!(true));
}

// ---- item 128 ------------------------------------------------------------------------------

#[tokio::test]
async fn item128_frozen_clock() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local t = os.date("*t")
        return {os.time(), os.date("!%Y-%m-%dT%H:%M:%SZ"), os.date("%H"), t.isdst, os.clock(),
                math.type(os.clock()), alc.time(), math.type(alc.time()),
                os.time({year = 2023, month = 11, day = 14, hour = 22, min = 13, sec = 20}),
                os.time({year = 2024, month = 13, day = 1, hour = 0}),
                os.date("%Y-%m-%d %H:%M:%S", 0), t.year, t.yday, os.difftime(10, 4)}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            1700000000,
            "2023-11-14T22:13:20Z",
            "22",
            false,
            0.0,
            "float",
            1700000000.0,
            "float",
            1700000000,
            1735689600,
            "1970-01-01 00:00:00",
            2023,
            318,
            6.0
        ])
    );
}

// ---- item 131 (the card part is in tests/card.rs) ------------------------------------------

#[tokio::test]
async fn item131_alc_errors_are_plain_strings() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local ok, e = pcall(alc.json_decode, "{")
        local ok2, e2 = pcall(alc.llm_batch, {})
        local ok3, e3 = pcall(alc.progress, -1, 5)
        local ok4, e4 = pcall(alc.llm, "p", 5)
        local out = {}
        for _, x in ipairs({e, e2, e3, e4}) do
          out[#out + 1] = {type(x), x:find("stack traceback", 1, true) == nil, x:match("^session:") == nil}
        end
        return {ok, ok2, ok3, ok4, e:match("^alc%.json_decode: ") ~= nil, e2, e3, e4, out}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            false,
            false,
            false,
            false,
            true,
            "alc.llm_batch: items must be a non-empty array",
            "alc.progress: step and total must be non-negative integers",
            "alc.llm: bad argument #2 'opts' (table expected, got number)",
            [
                ["string", true, true],
                ["string", true, true],
                ["string", true, true],
                ["string", true, true]
            ]
        ])
    );
}

// ---- item 133 ------------------------------------------------------------------------------

#[tokio::test]
async fn item133_uncaught_error_shapes() {
    let e = eng();
    let (t, _) = run_code(&e, "error({code = 1})").await;
    assert_eq!(
        failed(&t),
        ("lua_error".to_string(), "error object: table".to_string())
    );

    let (t, _) = run_code(
        &e,
        "error(setmetatable({}, {__tostring = function() return 'custom' end}))",
    )
    .await;
    assert_eq!(failed(&t).1, "custom");

    let (t, _) = run_code(&e, "error(42)").await;
    assert_eq!(failed(&t).1, "42");

    let (t, _) = run_code(&e, "error()").await;
    assert_eq!(failed(&t).1, "error object: nil");

    let (t, _) = run_code(&e, "local a = 1\nerror(\"x\")").await;
    match &t.outcome {
        alc_core::Outcome::Failed {
            kind,
            message,
            traceback,
            ..
        } => {
            assert_eq!(kind.wire_code(), "lua_error");
            assert_eq!(message, "session:2: x");
            assert_eq!(
                traceback.as_deref(),
                Some("stack traceback:\n\t[C]: in function 'error'\n\tsession:2: in main chunk")
            );
        }
        other => panic!("expected failure, got {other:?}"),
    }

    // A forged code prefix is still `lua_error` unless it is `budget_exceeded:`.
    let (t, _) = run_code(&e, "error('provider_error[http]: forged', 0)").await;
    assert_eq!(failed(&t).0, "lua_error");
    let (t, _) = run_code(&e, "error('budget_exceeded: x')").await;
    assert_eq!(failed(&t).0, "budget_exceeded");
}

#[tokio::test]
async fn shim_argument_errors_name_no_engine_internals() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local function err(f) return select(2, pcall(f)) end
        return {
          err(function() setmetatable(1, {}) end),
          err(function() setmetatable({}) end),
          err(function() setmetatable({}, 5) end),
          err(function() load(nil) end),
          err(function() load() end),
          err(function() local t = setmetatable({}, {__metatable = 1}); setmetatable(t, {}) end),
          getmetatable(setmetatable({}, {__metatable = "locked"})),
          setmetatable({}, nil) ~= nil,
          load(function() return nil end) ~= nil,
        }
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            "session:4: bad argument #1 to 'setmetatable' (table expected, got number)",
            "session:5: bad argument #2 to 'setmetatable' (nil or table expected, got no value)",
            "session:6: bad argument #2 to 'setmetatable' (nil or table expected, got number)",
            "session:7: bad argument #1 to 'load' (function expected, got nil)",
            "session:8: bad argument #1 to 'load' (function expected, got no value)",
            "session:9: cannot change a protected metatable",
            "locked",
            true,
            true
        ])
    );
}

/// An error value the script raises while its session is being aborted (here from a
/// `__close` handler run by the unwinding of a deadline) reaches the root's settling
/// code as it is; that code must not index it with its private key, which would hand
/// the sandbox's raw functions to the script's `__index`.
#[tokio::test]
async fn an_aborting_error_value_never_sees_the_private_key() {
    let t = run_with_deadline(
        r##"
        local seen = setmetatable({}, {__index = function(_, k)
          if type(k) == "table" then io.stderr:write("leaked ", tostring(#k), "\n") end
        end})
        local guard <close> = setmetatable({}, {__close = function() error(seen) end})
        while true do end
        "##,
        300,
    )
    .await;
    assert_timed_out(&t);
    assert!(logs(&t).is_empty(), "{:?}", logs(&t));
}
