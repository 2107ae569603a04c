//! Checklist items of `lua-api.md` §4 that no other test file checks in full: sandboxed
//! `io.open`, injected environment, `require` source order and packages, `alc.ask`,
//! token budgets, `alc.state`, log/stats/progress and deterministic iteration.
//!
//! Every session runs inline code with seed 42, a manual clock frozen at 1700000000 s and
//! the engine `default_budget` disabled; the n-th query is answered `A<n>` unless a test
//! answers otherwise.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alc_core::{
    Answer, Answers, AskStatus, PendingQuery, QueryRequest, Terminal, TokenSource, TokenUsage,
    UntilPause,
};
use alc_engine::{Engine, HostServices, ManualClock, PackageRoots};
use common::*;
use serde_json::json;

/// The repository's `packages/` directory (holds the bundled packages such as `cot`).
fn bundled_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../packages")
}

/// Package roots with the bundled packages installed.
fn bundled() -> PackageRoots {
    PackageRoots::new(vec![("bundled".into(), bundled_dir())])
}

async fn val(e: &Engine, code: &str) -> serde_json::Value {
    let (t, _) = run_code(e, code).await;
    completed(&t)
}

async fn val_ctx(e: &Engine, code: &str, ctx: serde_json::Value) -> serde_json::Value {
    let (t, _) = run_code_ctx(e, code, ctx).await;
    completed(&t)
}

/// `(level, source, message)` of every log entry of a terminal record.
fn logs(t: &Terminal) -> Vec<(String, String, String)> {
    t.metrics
        .recent_logs
        .iter()
        .map(|l| (l.level.clone(), l.source.clone(), l.message.clone()))
        .collect()
}

fn write_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn is_human(q: &PendingQuery) -> bool {
    matches!(q.request, QueryRequest::Human { .. })
}

/// Waits for the next pause of `id` and returns its unanswered queries and round.
async fn next_pause(e: &Engine, id: &alc_core::SessionId) -> (Vec<PendingQuery>, u64) {
    match e.run_until_pause(id, HANG).await.expect("session exists") {
        UntilPause::Paused { snapshot } => {
            let batch = snapshot.pending.expect("paused snapshot has a batch");
            let open = batch
                .queries
                .iter()
                .filter(|q| !batch.answered.contains(&q.id))
                .cloned()
                .collect();
            (open, batch.round)
        }
        other => panic!("expected a pause, got {other:?}"),
    }
}

// ---- item 7 --------------------------------------------------------------------------------

#[tokio::test]
async fn item07_io_open_outside_packages_is_denied() {
    let dir = tempfile::tempdir().unwrap();
    let host_file = dir.path().join("host.txt");
    std::fs::write(&host_file, "secret").unwrap();
    let abs = host_file.to_str().unwrap().to_string();
    let e = eng_with(base_config(), bundled());
    let v = val(
        &e,
        &format!(
            r##"
            local a = table.pack(io.open("{abs}"))
            local b = table.pack(io.open("cot/../../secret"))
            return {{a.n, a[1] == nil, a[2], a[3], b.n, b[1] == nil, b[2], b[3]}}
            "##
        ),
    )
    .await;
    assert_eq!(
        v,
        json!([
            3,
            true,
            format!("{abs}: access denied by sandbox"),
            13,
            3,
            true,
            "cot/../../secret: access denied by sandbox",
            13
        ])
    );
}

// ---- item 8 --------------------------------------------------------------------------------

#[tokio::test]
async fn item08_io_open_write_mode_is_read_only() {
    let e = eng_with(base_config(), bundled());
    let v = val(
        &e,
        r##"
        local f, msg = io.open("cot/init.lua", "w")
        return {f == nil, msg}
        "##,
    )
    .await;
    assert_eq!(v[0], json!(true));
    assert!(
        v[1].as_str().unwrap().contains("read-only in sandbox"),
        "{v}"
    );
}

#[tokio::test]
async fn item08_io_open_reads_installed_package_files() {
    let first_line = std::fs::read_to_string(bundled_dir().join("cot/init.lua"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let e = eng_with(base_config(), bundled());
    let v = val(
        &e,
        r##"
        local f = assert(io.open("cot/init.lua"))
        local line = f:read("l")
        local w = table.pack(f:write("x"))
        local m = table.pack(io.open("cot/missing.txt"))
        return {line, w[1] == nil, w[2], m[1] == nil, m[2], m[3]}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            first_line,
            true,
            "read-only file",
            true,
            "cot/missing.txt: No such file or directory",
            2
        ])
    );
}

/// A package root holding `pk` (an `init.lua` and `data.txt`) and, beside it, a file
/// outside every package.
fn data_package() -> (tempfile::TempDir, PackageRoots) {
    let dir = tempfile::tempdir().unwrap();
    let pk = dir.path().join("root/pk");
    std::fs::create_dir_all(&pk).unwrap();
    std::fs::write(pk.join("init.lua"), "return {}\n").unwrap();
    std::fs::write(pk.join("data.txt"), "10 20.5 0x10\nhello\nworld\n").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret\n").unwrap();
    let roots = PackageRoots::new(vec![("global".into(), dir.path().join("root"))]);
    (dir, roots)
}

#[tokio::test]
async fn item08_io_open_read_formats_lines_and_seek() {
    let (_dir, roots) = data_package();
    let e = eng_with(base_config(), roots);
    let v = val(
        &e,
        r##"
        local f = assert(io.open("pk/data.txt"))
        local a, b, c = f:read("n", "*n", "n")
        local nl = f:read("L")
        local hello = f:read("*l")
        local pos = f:seek()
        local rest = f:read("a")
        local eof = table.pack(f:read("a"), f:read("l"))
        local zero_eof = table.pack(f:read(0))
        local size = f:seek("end")
        local three = (f:seek("set", 3)) and f:read(3)
        local zero = f:read(0)
        local neg = table.pack(f:seek("set", -1))
        local back = f:seek("cur", -3)
        f:seek("set")
        local multi = table.pack(f:read("n", "n", "l", "n"))
        local nan = table.pack(f:read("n", "l"))
        f:seek("set")
        local lines = {}
        for l in f:lines() do lines[#lines + 1] = l end
        f:seek("set")
        local chunks = {}
        for x, y in f:lines(2, "L") do chunks[#chunks + 1] = x .. "|" .. y end
        local bad = table.pack(pcall(f.read, f, "x"))
        return {
            a, b, c, math.type(a), math.type(b), nl, hello, pos, rest,
            eof.n, eof[1], eof[2] == nil, zero_eof[1] == nil,
            size, three, zero, neg[1] == nil, neg[2], neg[3], back,
            multi.n, multi[1], multi[2], multi[3], multi[4] == nil,
            nan.n, nan[1] == nil,
            lines, chunks, bad[1], (bad[2]:find("invalid format", 1, true)) ~= nil,
            io.type(f),
        }
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            10,
            20.5,
            16,
            "integer",
            "float",
            "\n",
            "hello",
            19,
            "world\n",
            2,
            "",
            true,
            true,
            25,
            "20.",
            "",
            true,
            "Invalid argument",
            22,
            3,
            4,
            10,
            20.5,
            " 0x10",
            true,
            1,
            true,
            ["10 20.5 0x10", "hello", "world"],
            ["10| 20.5 0x10\n", "he|llo\n", "wo|rld\n"],
            false,
            true,
            "file"
        ])
    );
}

#[tokio::test]
async fn item08_io_open_closed_handles() {
    let (_dir, roots) = data_package();
    let e = eng_with(base_config(), roots);
    let v = val(
        &e,
        r##"
        local f = assert(io.open("pk/data.txt", "rb"))
        local before = io.type(f)
        local it = f:lines()
        local first = it()
        local closed = f:close()
        local r = table.pack(pcall(f.read, f, "l"))
        local l = table.pack(pcall(it))
        local c = table.pack(pcall(f.close, f))
        local kept
        do
          local h <close> = assert(io.open("pk/data.txt"))
          kept = h
        end
        local g = assert(io.open("pk/data.txt"))
        local w = table.pack(g:write("x"))
        local sv = table.pack(g:setvbuf("no"))
        return {
            before, first, closed, io.type(f), tostring(f),
            r[1], (r[2]:find("attempt to use a closed file", 1, true)) ~= nil,
            l[1], (l[2]:find("file is already closed", 1, true)) ~= nil,
            c[1], io.type(kept), w[1] == nil, w[2], sv[1] == nil, sv[2],
            io.type({}), io.type(io.stdout), io.type(g),
        }
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            "file",
            "10 20.5 0x10",
            true,
            "closed file",
            "file (closed)",
            false,
            true,
            false,
            true,
            false,
            "closed file",
            true,
            "read-only file",
            true,
            "read-only file",
            null,
            "file",
            "file"
        ])
    );
}

#[tokio::test]
async fn item08_io_open_paths_outside_the_rule_and_modes() {
    let (_dir, roots) = data_package();
    let e = eng_with(base_config(), roots);
    let v = val(
        &e,
        r##"
        local out = {}
        for _, p in ipairs({"pk/./data.txt", "pk/", "pk//data.txt", "pk/a\\b", "pk/data.txt\0",
            "nopkg/data.txt", "scenarios/x.lua", "pk", "/pk/data.txt", "pk/../pk/data.txt"}) do
          local r = table.pack(io.open(p))
          out[#out + 1] = {r.n, r[1] == nil, r[2] == p .. ": access denied by sandbox", r[3]}
        end
        local plus = table.pack(io.open("pk/data.txt", "r+"))
        local app = table.pack(io.open("pk/data.txt", "a"))
        local bad = table.pack(pcall(io.open, "pk/data.txt", "x"))
        local dir = table.pack(io.open("pk/nothere/x.txt"))
        return {out, plus[2], plus[3], app[2], bad[1],
            (bad[2]:find("invalid mode", 1, true)) ~= nil, dir[2], dir[3]}
        "##,
    )
    .await;
    let denied = json!([3, true, true, 13]);
    assert_eq!(v[0], json!(vec![denied; 10]), "{v}");
    assert_eq!(
        v,
        json!([
            v[0].clone(),
            "pk/data.txt: read-only in sandbox",
            13,
            "pk/data.txt: read-only in sandbox",
            false,
            true,
            "pk/nothere/x.txt: No such file or directory",
            2
        ])
    );
}

#[cfg(unix)]
#[tokio::test]
async fn item08_io_open_refuses_symlinks_leaving_the_package() {
    let (dir, roots) = data_package();
    let pk = dir.path().join("root/pk");
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), pk.join("leak.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), pk.join("up")).unwrap();
    std::os::unix::fs::symlink(pk.join("data.txt"), pk.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.txt"), pk.join("dangling.txt")).unwrap();
    let e = eng_with(base_config(), roots);
    let v = val(
        &e,
        r##"
        local a = table.pack(io.open("pk/leak.txt"))
        local b = table.pack(io.open("pk/up/outside.txt"))
        local c = table.pack(io.open("pk/dangling.txt"))
        local inside = assert(io.open("pk/alias.txt")):read("l")
        return {a[1] == nil, a[2], a[3], b[1] == nil, b[2], b[3], c[1] == nil, c[2], inside}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            true,
            "pk/leak.txt: access denied by sandbox",
            13,
            true,
            "pk/up/outside.txt: access denied by sandbox",
            13,
            true,
            "pk/dangling.txt: access denied by sandbox",
            "10 20.5 0x10"
        ])
    );
}

#[tokio::test]
async fn item08_io_open_refuses_files_over_the_size_cap() {
    let (dir, roots) = data_package();
    let pk = dir.path().join("root/pk");
    let cap = alc_engine::MAX_DATA_FILE_BYTES as usize;
    std::fs::write(pk.join("big.bin"), vec![b'x'; cap + 1]).unwrap();
    std::fs::write(pk.join("edge.bin"), vec![b'y'; cap]).unwrap();
    let e = eng_with(base_config(), roots);
    let v = val(
        &e,
        r##"
        local r = table.pack(io.open("pk/big.bin"))
        local f = assert(io.open("pk/edge.bin"))
        local n = #f:read("a")
        f:close()
        return {r.n, r[1] == nil, r[2], r[3], n}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            3,
            true,
            "pk/big.bin: file too large for the sandbox (limit 16 MiB)",
            27,
            16 * 1024 * 1024
        ])
    );
}

// ---- item 9 --------------------------------------------------------------------------------

/// A package that, like `flow`, tries the system random device and falls back to the clock.
#[tokio::test]
async fn item09_package_opening_random_device_still_loads() {
    let mods = PackageRoots::default().with_memory_file(
        "flow",
        "init.lua",
        r##"
        local f, msg = io.open("/dev/urandom", "rb")
        local seed
        if f then seed = f:read(4) else seed = os.time() end
        return {seed = seed, opened = f ~= nil, msg = msg}
        "##,
    );
    let e = eng_with(base_config(), mods);
    let v = val(
        &e,
        r##"
        local ok, flow = pcall(require, "flow")
        return {ok, flow.seed, flow.opened}
        "##,
    )
    .await;
    assert_eq!(v, json!([true, 1_700_000_000, false]));
}

// ---- item 11 -------------------------------------------------------------------------------

#[tokio::test]
async fn item11_ctx_env_inject() {
    let e = eng();
    let v = val_ctx(
        &e,
        r##"return {os.getenv("ALC_SHAPE_CHECK"), alc.env.ALC_SHAPE_CHECK, ctx.env == nil}"##,
        json!({"env": {"inject": {"ALC_SHAPE_CHECK": "1"}}}),
    )
    .await;
    assert_eq!(v, json!(["1", "1", true]));
}

// ---- item 17 (engine side) -----------------------------------------------------------------

#[tokio::test]
async fn item17_trusted_mode_off_by_default() {
    let e = eng();
    let v = val(
        &e,
        r##"return {io.popen == nil, load("\27Lua\84\0") == nil}"##,
    )
    .await;
    assert_eq!(v, json!([true, true]));
}

#[tokio::test]
async fn item17_trusted_mode_restores_stock_functions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bin.luac"), b"\x1bLua\x54\x00junk").unwrap();
    let services = HostServices {
        clock: Arc::new(ManualClock::new(1_700_000_000_000)),
        trusted: true,
        ..HostServices::default()
    };
    let e = Engine::start_blocking(base_config(), services).expect("engine starts");
    let (t, _) = run_code_ctx(
        &e,
        r##"
        local d = ctx.dir
        local f = assert(io.open(d .. "/a.txt", "w"))
        f:write("line1\nline2\n")
        f:close()
        local lines = {}
        for l in io.lines(d .. "/a.txt") do lines[#lines + 1] = l end
        assert(os.rename(d .. "/a.txt", d .. "/b.txt"))
        local h = io.open(d .. "/b.txt", "r")
        local moved = h ~= nil
        h:close()
        assert(os.remove(d .. "/b.txt"))
        local gone = io.open(d .. "/b.txt") == nil
        local m = assert(io.open(d .. "/m.lua", "w"))
        m:write("return 40 + 2")
        m:close()
        local p = io.popen("echo hi")
        local echoed = p:read("l")
        p:close()
        local bin_f, bin_err = loadfile(d .. "/bin.luac")
        io.write("to the log\n")
        io.output(d .. "/o.txt")
        io.write("flushed")
        local flushed = io.flush()
        local written = io.open(d .. "/o.txt"):read("a")
        io.output(io.stdout)
        return {
            lines, moved, gone, dofile(d .. "/m.lua"), loadfile(d .. "/m.lua")(), echoed,
            bin_f == nil, (bin_err:find("binary", 1, true)) ~= nil,
            load("\27Lua\84\0") == nil, type(os.tmpname), type(os.execute),
            os.getenv("PATH") ~= nil, type(package.searchpath),
            debug == nil, os.exit == nil, os.setlocale == nil, os.time(),
            flushed, written,
        }
        "##,
        json!({"dir": dir.path().to_str().unwrap()}),
    )
    .await;
    let v = completed(&t);
    assert_eq!(
        v,
        json!([
            ["line1", "line2"],
            true,
            true,
            42,
            42,
            "hi",
            true,
            true,
            true,
            "function",
            "function",
            true,
            "function",
            true,
            true,
            true,
            1_700_000_000,
            true,
            "flushed"
        ])
    );
    assert!(
        logs(&t).iter().any(|(_, _, m)| m == "to the log"),
        "{:?}",
        logs(&t)
    );
}

// ---- item 19 -------------------------------------------------------------------------------

#[tokio::test]
async fn item19_alc_shapes_is_available() {
    // A stand-in `alc_shapes` installed in a package root (the real package is not shipped).
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("global");
    write_file(
        &root.join("alc_shapes/init.lua"),
        "local t = require('alc_shapes.t'); return {T = t, instrument = function(f) return f end}",
    );
    write_file(
        &root.join("alc_shapes/t.lua"),
        "return {string = {kind = 'string'}}",
    );
    let mods = PackageRoots::new(vec![("global".into(), root)]);
    let e = eng_with(base_config(), mods);
    let v = val(
        &e,
        r##"
        local S = require("alc_shapes")
        local ok, t = pcall(require, "alc_shapes.t")
        return {type(S), S.T ~= nil, S.instrument ~= nil, ok, t == S.T, t.string.kind}
        "##,
    )
    .await;
    assert_eq!(v, json!(["table", true, true, true, true, "string"]));
}

// ---- item 20 -------------------------------------------------------------------------------

#[tokio::test]
async fn item20_source_order_variant_project_env_global_bundled() {
    let dir = tempfile::tempdir().unwrap();
    let labels = ["variant", "project", "ALC_PACKAGES_PATH", "global"];
    let mut roots = Vec::new();
    for l in labels {
        let root = dir.path().join(l);
        write_file(
            &root.join("dup/init.lua"),
            &format!("return {{from = '{l}'}}"),
        );
        roots.push((l.to_string(), root));
    }
    let mut seen = Vec::new();
    for skip in 0..=labels.len() {
        let mods = PackageRoots::new(roots[skip..].to_vec()).with_memory_file(
            "dup",
            "init.lua",
            "return {from = 'bundled'}",
        );
        let e = eng_with(base_config(), mods);
        seen.push(val(&e, r#"return require("dup").from"#).await);
    }
    assert_eq!(
        seen,
        vec![
            json!("variant"),
            json!("project"),
            json!("ALC_PACKAGES_PATH"),
            json!("global"),
            json!("bundled")
        ]
    );
}

// ---- item 21 -------------------------------------------------------------------------------

#[tokio::test]
async fn item21_variant_hides_global_submodules() {
    let dir = tempfile::tempdir().unwrap();
    let variant = dir.path().join("variant");
    let global = dir.path().join("global");
    write_file(&variant.join("flow/init.lua"), "return {from = 'variant'}");
    write_file(&global.join("flow/init.lua"), "return {from = 'global'}");
    write_file(&global.join("flow/util.lua"), "return {util = true}");
    let mods = PackageRoots::new(vec![("variant".into(), variant), ("global".into(), global)]);
    let e = eng_with(base_config(), mods);
    let v = val(
        &e,
        r##"
        local ok, err = pcall(require, "flow.util")
        return {ok, err, require("flow").from}
        "##,
    )
    .await;
    assert_eq!(v[0], json!(false));
    assert!(
        v[1].as_str()
            .unwrap()
            .starts_with("module 'flow.util' not found:"),
        "{v}"
    );
    assert_eq!(v[2], json!("variant"));
}

// ---- item 25 -------------------------------------------------------------------------------

/// A package requiring a shape library that has its own `reflect` sub-module still gets the
/// installed `reflect` package from `require("reflect")`.
#[tokio::test]
async fn item25_reflect_resolves_to_the_package() {
    let mods = bundled()
        .with_memory_file(
            "alc_shapes",
            "init.lua",
            "return {T = {}, instrument = function() end, reflect = require('alc_shapes.reflect')}",
        )
        .with_memory_file("alc_shapes", "reflect.lua", "return {meta = {name = 'shapes-reflect'}}")
        .with_memory_file(
            "pk",
            "init.lua",
            "local S = require('alc_shapes'); local R = require('reflect'); return {name = R.meta.name, inner = S.reflect.meta.name}",
        );
    let e = eng_with(base_config(), mods);
    let v = val(&e, r#"return require("pk")"#).await;
    assert_eq!(v, json!({"name": "reflect", "inner": "shapes-reflect"}));
}

// ---- item 27 -------------------------------------------------------------------------------

#[tokio::test]
async fn item27_scenario_file_loads() {
    // A temp home with one installed scenario file; the packages come before it.
    let home = tempfile::tempdir().unwrap();
    write_file(
        &home.path().join("scenarios/math_basic.lua"),
        "return {name = 'math_basic', cases = {{input = '1+1', expected = '2'}}}",
    );
    write_file(&home.path().join("outside.lua"), "return 'escaped'");
    let mods = PackageRoots::new(vec![("global".into(), home.path().join("packages"))])
        .with_scenarios_dir(home.path().join("scenarios"));
    let e = eng_with(base_config(), mods);
    let v = val(
        &e,
        r##"
        local s = require("scenarios.math_basic")
        local again = require("scenarios.math_basic")
        local ok1, e1 = pcall(require, "scenarios.nope")
        local ok2 = pcall(require, "scenarios")
        local ok3, e3 = pcall(require, "scenarios.../outside")
        return {type(s), s.name, #s.cases, s == again, ok1, e1:find("module 'scenarios.nope' not found:", 1, true) == 1, ok2, ok3, e3:find("invalid module name", 1, true) ~= nil}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            "table",
            "math_basic",
            1,
            true,
            false,
            true,
            false,
            false,
            true
        ])
    );
}

#[cfg(unix)]
#[tokio::test]
async fn item27_symlink_outside_package_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write_file(&root.join("pk/init.lua"), "return {}");
    let outside = dir.path().join("outside.lua");
    std::fs::write(&outside, "return 'escaped'").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("pk/link.lua")).unwrap();
    let e = eng_with(
        base_config(),
        PackageRoots::new(vec![("global".into(), root)]),
    );
    let v = val(
        &e,
        r##"
        local ok, err = pcall(require, "pk.link")
        return {ok, err}
        "##,
    )
    .await;
    assert_eq!(v[0], json!(false));
    assert!(
        v[1].as_str()
            .unwrap()
            .starts_with("module 'pk.link' not found:"),
        "{v}"
    );
}

// ---- item 65 -------------------------------------------------------------------------------

#[tokio::test]
async fn item65_failing_provider_raises_provider_error() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"
            local ok, err = pcall(alc.llm, "p")
            return {ok, err}
            "##,
            json!({}),
        ))
        .await
        .unwrap();
    let (t, _) = drive(&e, &id, |_| {
        Answer::error(None, "provider_error", "provider_error[http]: boom")
    })
    .await;
    let v = completed(&t);
    assert_eq!(v[0], json!(false));
    assert!(v[1].as_str().unwrap().starts_with("provider_error["), "{v}");
}

// ---- items 66–68 ---------------------------------------------------------------------------

#[tokio::test]
async fn item66_ask_accepted_and_argument_errors() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"
            local before = alc.budget_remaining().llm_calls
            local v, status = alc.ask("Proceed?")
            local _, e1 = pcall(alc.ask, "q", {choices = {"a"}, schema = {type = "object"}})
            local _, e2 = pcall(alc.ask, "")
            return {v, status, alc.stats.llm_calls(), before, alc.budget_remaining().llm_calls, e1, e2}
            "##,
            json!({"budget": {"max_llm_calls": 5}}),
        ))
        .await
        .unwrap();
    let (t, pauses) = drive(&e, &id, |_| Answer::text(None, "yes")).await;
    assert_eq!(
        completed(&t),
        json!([
            "yes",
            "accepted",
            0,
            5,
            5,
            "alc.ask: opts.choices and opts.schema are mutually exclusive",
            "alc.ask: question must be a non-empty string"
        ])
    );
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].len(), 1);
    assert!(is_human(&pauses[0][0]));
    assert_eq!(pauses[0][0].id.to_string(), "q-0");
    assert_eq!(prompt_of(&pauses[0][0]), "Proceed?");
}

#[tokio::test]
async fn item67_ask_choices_refuse_other_answers() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"return {alc.ask("Pick", {choices = {"a", "b"}})}"##,
            json!({}),
        ))
        .await
        .unwrap();
    let (open, round) = next_pause(&e, &id).await;
    assert_eq!(open.len(), 1);
    let qid = open[0].id.clone();
    let refused = e
        .resume(
            &id,
            Answers {
                round: Some(round),
                answers: vec![Answer::text(Some(qid.clone()), "c")],
            },
        )
        .await;
    assert!(refused.is_err(), "answer 'c' must be refused");
    // Still paused on the same question.
    let (open2, round2) = next_pause(&e, &id).await;
    assert_eq!(round2, round);
    assert_eq!(open2.len(), 1);
    assert_eq!(open2[0].id, qid);
    e.resume(
        &id,
        Answers {
            round: Some(round),
            answers: vec![Answer::text(Some(qid), "b")],
        },
    )
    .await
    .expect("answer 'b' accepted");
    let t = e.wait(&id).await.unwrap();
    assert_eq!(completed(&t), json!(["b", "accepted"]));
}

#[tokio::test]
async fn item68_ask_declined_timeout_unavailable() {
    let e = eng();
    // Declined.
    let id = e
        .spawn(code_spec(
            r##"return {alc.ask("q", {default = "a"})}"##,
            json!({}),
        ))
        .await
        .unwrap();
    let (t, _) = drive(&e, &id, |_| Answer::ask_status(None, AskStatus::Declined)).await;
    assert_eq!(completed(&t), json!(["a", "declined"]));

    // Timeout without an answer.
    let id = e
        .spawn(code_spec(
            r##"return {alc.ask("q", {default = "a", timeout_ms = 100})}"##,
            json!({}),
        ))
        .await
        .unwrap();
    let t = tokio::time::timeout(HANG, e.wait(&id))
        .await
        .expect("the question times out")
        .unwrap();
    assert_eq!(completed(&t), json!(["a", "timeout"]));

    // No human channel: no pause at all.
    let mut spec = code_spec(r##"return {alc.ask("q", {default = 1})}"##, json!({}));
    spec.human_channel = false;
    let id = e.spawn(spec).await.unwrap();
    let (t, pauses) = drive(&e, &id, |_| Answer::text(None, "x")).await;
    assert_eq!(completed(&t), json!([1, "unavailable"]));
    assert!(pauses.is_empty());
}

// ---- item 77 -------------------------------------------------------------------------------

#[tokio::test]
async fn item77_token_budget() {
    let e = eng();
    let id = e
        .spawn(code_spec(
            r##"
            alc.llm("p")
            local check = alc.budget_check()
            local ok, err = pcall(alc.llm, "again")
            return {check, ok, err}
            "##,
            json!({"budget": {"max_tokens": 10}}),
        ))
        .await
        .unwrap();
    let (t, pauses) = drive(&e, &id, |_| {
        let mut a = Answer::text(None, "A");
        a.usage = Some(TokenUsage {
            prompt_tokens: Some(6),
            completion_tokens: Some(5),
            cached_tokens: None,
            reasoning_tokens: None,
            source: TokenSource::Provided,
        });
        a
    })
    .await;
    assert_eq!(
        completed(&t),
        json!([
            false,
            false,
            "budget_exceeded: max_tokens (10) reached (11 used)"
        ])
    );
    assert_eq!(pauses.len(), 1);
}

// ---- items 103–109 -------------------------------------------------------------------------

#[tokio::test]
async fn item103_state_get_returns_copies() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local s = alc.state
        s.set("x", {a = {1, 2}})
        local g = s.get("x")
        g.a[1] = 99
        g.b = true
        return {s.get("x"), s.get("missing", 0), s.get("missing") == nil, s.has("missing")}
        "##,
    )
    .await;
    assert_eq!(v, json!([{"a": [1, 2]}, 0, true, false]));
}

#[tokio::test]
async fn item104_set_nx_delete_and_nil() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local s = alc.state
        local a = s.set_nx("k", "first")
        local b = s.set_nx("k", "second")
        local k = s.get("k")
        local d1, d2 = s.delete("k"), s.delete("k")
        s.set("j", 1); s.set("j", nil)
        return {a, b, k, d1, d2, s.has("j")}
        "##,
    )
    .await;
    assert_eq!(v, json!([true, false, "first", true, false, false]));
}

#[tokio::test]
async fn item105_incr() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local s = alc.state
        local c1 = s.incr("c")
        local t = math.type(c1)
        local c2, c3 = s.incr("c", 5), s.incr("c", 0.5)
        local n = s.incr("n", 10, 100)
        s.set("s", "text")
        local _, err = pcall(s.incr, "s")
        return {c1, t, c2, c3, n, err}
        "##,
    )
    .await;
    assert_eq!(
        v,
        json!([
            1,
            "integer",
            6,
            6.5,
            110,
            "alc.state.incr: value at 's' is not a number"
        ])
    );
}

#[tokio::test]
async fn item106_keys_list_show() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local s = alc.state
        for _, k in ipairs({"b", "a", "B", "_", "flow_orch:x", "flow_orc"}) do s.set(k, 1) end
        local all = s.keys()
        local pre = s.keys("flow_orch:")
        s.set("flow_orch:abc", 1)
        local _, err = pcall(s.show, "flow_orch", "zzz")
        return {all, pre, s.list("flow_orch"), s.show("flow_orch", "abc"), err}
        "##,
    )
    .await;
    assert_eq!(v[0], json!(["B", "_", "a", "b", "flow_orc", "flow_orch:x"]));
    assert_eq!(v[1], json!(["flow_orch:x"]));
    assert_eq!(v[2], json!(["abc", "x"]));
    assert_eq!(v[3], json!(1));
    assert!(v[4].as_str().unwrap().contains("not found"), "{v}");
}

/// `list("flow_orch")` with only `flow_orch:abc` stored gives exactly `{"abc"}`.
#[tokio::test]
async fn item106_list_single_entry() {
    let e = eng();
    let v = val(
        &e,
        r##"alc.state.set("flow_orch:abc", 1); return alc.state.list("flow_orch")"##,
    )
    .await;
    assert_eq!(v, json!(["abc"]));
}

#[tokio::test]
async fn item107_invalid_keys() {
    let e = eng();
    let v = val(
        &e,
        r##"
        local out = {}
        for _, k in ipairs({"../x", "a/b", "a\\b", "a\0b", "", string.rep("k", 257)}) do
            local ok, err = pcall(alc.state.set, k, 1)
            out[#out + 1] = {ok, err}
        end
        local ok = pcall(alc.state.set, "my run:1", 1)
        local _, ferr = pcall(alc.state.set, "f", {g = print})
        return {out, ok, alc.state.get("my run:1"), ferr}
        "##,
    )
    .await;
    for entry in v[0].as_array().unwrap() {
        assert_eq!(entry[0], json!(false), "{entry}");
        assert!(
            entry[1]
                .as_str()
                .unwrap()
                .starts_with("alc.state: invalid key"),
            "{entry}"
        );
    }
    assert_eq!(v[0].as_array().unwrap().len(), 6);
    assert_eq!(v[1], json!(true));
    assert_eq!(v[2], json!(1));
    assert_eq!(
        v[3],
        json!("alc.state.set: cannot encode value of type 'function' at $.g")
    );
}

#[tokio::test]
async fn item108_namespaces() {
    let e = eng();
    let (t, _) = run_code_ctx(
        &e,
        r##"return select(2, pcall(alc.state.get, "k"))"##,
        json!({"_ns": "../evil"}),
    )
    .await;
    assert_eq!(
        completed(&t),
        json!("alc.state: invalid namespace '../evil'")
    );
    let a = val_ctx(
        &e,
        r##"alc.state.set("k", "A"); alc.state.set("p:q", "A"); return alc.state.keys()"##,
        json!({"_ns": "a"}),
    )
    .await;
    assert_eq!(a, json!(["k", "p:q"]));
    let b = val_ctx(
        &e,
        r##"return {alc.state.get("k") == nil, alc.state.get("p:q") == nil, #alc.state.keys(), alc.state.list("p")}"##,
        json!({"_ns": "b"}),
    )
    .await;
    assert_eq!(b, json!([true, true, 0, []]));
}

#[tokio::test]
async fn item109_concurrent_updates() {
    let e = eng();
    let code = r##"
        for _ = 1, 100 do alc.state.update("n", function(v) return v + 1 end, 0) end
        return true
    "##;
    let ctx = json!({"_ns": "item109"});
    let s1 = e.spawn(code_spec(code, ctx.clone())).await.unwrap();
    let s2 = e.spawn(code_spec(code, ctx.clone())).await.unwrap();
    let t1 = e.wait(&s1).await.unwrap();
    let t2 = e.wait(&s2).await.unwrap();
    assert_eq!(completed(&t1), json!(true));
    assert_eq!(completed(&t2), json!(true));
    let v = val_ctx(&e, r#"return alc.state.get("n")"#, ctx).await;
    assert_eq!(v, json!(200));
}

/// The atomicity part of item 109 on its own: every update that returns is counted exactly
/// once, whether or not some attempts gave up on conflicts.
#[tokio::test]
async fn item109_no_lost_updates_under_contention() {
    let e = eng();
    let code = r##"
        local done = 0
        for _ = 1, 100 do
            if pcall(alc.state.update, "n", function(v) return v + 1 end, 0) then done = done + 1 end
        end
        return done
    "##;
    let ctx = json!({"_ns": "item109b"});
    let s1 = e.spawn(code_spec(code, ctx.clone())).await.unwrap();
    let s2 = e.spawn(code_spec(code, ctx.clone())).await.unwrap();
    let d1 = completed(&e.wait(&s1).await.unwrap()).as_i64().unwrap();
    let d2 = completed(&e.wait(&s2).await.unwrap()).as_i64().unwrap();
    let v = val_ctx(&e, r#"return alc.state.get("n")"#, ctx).await;
    assert_eq!(v, json!(d1 + d2));
    assert!(d1 + d2 > 100, "{d1} + {d2}");
}

// ---- items 122–124 -------------------------------------------------------------------------

#[tokio::test]
async fn item122_alc_log() {
    let e = eng();
    let (t, _) = run_code(
        &e,
        r##"
        alc.log("info", "m")
        alc.log("custom", "m")
        alc.log("info", "")
        alc.log("warn", 42)
        return true
        "##,
    )
    .await;
    assert_eq!(completed(&t), json!(true));
    let l: Vec<_> = logs(&t).into_iter().filter(|l| l.1 == "alc.log").collect();
    let ent = |a: &str, c: &str| (a.to_string(), "alc.log".to_string(), c.to_string());
    assert_eq!(
        l,
        vec![
            ent("info", "m"),
            ent("custom", "m"),
            ent("info", ""),
            ent("warn", "42")
        ]
    );
}

#[tokio::test]
async fn item123_stats_record() {
    let e = eng();
    let (t, _) = run_code(
        &e,
        r##"
        alc.stats.record("score", 42)
        local v = {1, 2}
        alc.stats.record("t", v)
        v[1] = 99
        return {alc.stats.get("score"), alc.stats.get("missing") == nil, alc.stats.get("t")}
        "##,
    )
    .await;
    assert_eq!(completed(&t), json!([42, true, [1, 2]]));
    assert_eq!(t.metrics.custom.get("score"), Some(&json!(42)));
}

#[tokio::test]
async fn item124_llm_calls_and_progress() {
    let e = eng();
    let (t, _) = run_code(
        &e,
        r##"
        local c0 = alc.stats.llm_calls()
        alc.llm("p")
        local c1 = alc.stats.llm_calls()
        alc.llm_batch({{prompt = "a"}, {prompt = "b"}})
        local c3 = alc.stats.llm_calls()
        local ok = pcall(alc.progress, -1, 5)
        alc.progress(2, 5, "x")
        return {c0, c1, c3, ok}
        "##,
    )
    .await;
    assert_eq!(completed(&t), json!([0, 1, 3, false]));
    let p = t.metrics.progress.clone().expect("progress set");
    assert_eq!((p.step, p.total, p.message.as_str()), (2, 5, "x"));
}

// ---- item 129 ------------------------------------------------------------------------------

#[tokio::test]
async fn item129_pairs_order_and_seeded_helpers_repeat() {
    let mods = PackageRoots::default()
        .with_memory_file("flow", "init.lua", "return {}")
        .with_memory_file(
            "flow",
            "util.lua",
            r##"
            local M = {}
            function M.random_hex(n)
                local t = {}
                for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
                return table.concat(t)
            end
            return M
            "##,
        );
    let code = r##"
        local t = {}
        for i = 1, 50 do t["key" .. i .. "_" .. string.rep("x", i % 7)] = i end
        local parts = {}
        for k in pairs(t) do parts[#parts + 1] = k end
        return {require("flow.util").random_hex(16), table.concat(parts, ",")}
    "##;
    let mut out = Vec::new();
    for _ in 0..2 {
        let e = eng_with(base_config(), mods.clone());
        out.push(val(&e, code).await);
    }
    assert_eq!(out[0], out[1]);
    assert_eq!(out[0][0].as_str().unwrap().len(), 16);
}

// ---- items 65 (journal) and 130 ------------------------------------------------------------

fn durable_engine(db: &Path, clock_ms: i64) -> Engine {
    let journal =
        alc_store::SqliteJournal::open(db, alc_core::Durability::Normal).expect("journal opens");
    let services = HostServices {
        modules: Arc::new(PackageRoots::default()),
        clock: Arc::new(ManualClock::new(clock_ms)),
        state: Arc::new(journal.state_store()),
        state_shares_journal: true,
        ..HostServices::default()
    };
    Engine::start_with_journal(base_config(), Arc::new(journal), services).expect("engine starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item65_failed_batch_item_journals_its_siblings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let e = durable_engine(&db, 1_700_000_000_000);
    let id = e
        .spawn(code_spec(
            r##"return {pcall(alc.llm_batch, {{prompt = "x1"}, {prompt = "x2"}, {prompt = "x3"}})}"##,
            json!({}),
        ))
        .await
        .unwrap();
    let (t, pauses) = drive(&e, &id, |q| {
        let p = prompt_of(q);
        if p == "x2" {
            Answer::error(None, "provider_error", "provider_error[http]: x2 failed")
        } else {
            Answer::text(None, format!("r-{p}"))
        }
    })
    .await;
    assert_eq!(pauses.len(), 1);
    let v = completed(&t);
    assert_eq!(v[0], json!(false));
    assert!(v[1].as_str().unwrap().starts_with("provider_error["), "{v}");
    e.shutdown(alc_engine::ShutdownMode::Drain).await;
    drop(e);
    let j = alc_store::SqliteJournal::open(&db, alc_core::Durability::Normal).unwrap();
    let texts: Vec<(String, Option<String>)> = alc_core::Journal::read(&j, &id, 1)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.body {
            alc_core::RecordBody::Answer { answer, .. } => Some((
                answer.query_id.map(|q| q.to_string()).unwrap_or_default(),
                answer.text,
            )),
            _ => None,
        })
        .filter(|(_, text)| text.is_some())
        .collect();
    assert_eq!(
        texts,
        vec![
            ("q-0".to_string(), Some("r-x1".to_string())),
            ("q-2".to_string(), Some("r-x3".to_string()))
        ]
    );
}

/// The kill after the first answer is an engine stopped without finishing the session;
/// a second engine on the same journal (later clock) replays it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item130_replay_reproduces_inputs_before_the_stop() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("alc.db");
    let code = r##"
        local t, c, at, r = os.time(), os.clock(), alc.time(), math.random(1, 1000000000)
        local s = alc.state.get("k")
        local a1 = alc.llm(string.format("one %d %s %s %d %s", t, c, at, r, tostring(s)))
        local a2 = alc.llm("two")
        return {t = t, c = c, at = at, r = r, s = s, a1 = a1, a2 = a2}
    "##;
    let a = durable_engine(&db, 1_700_000_000_000);
    let seed_writer = a
        .spawn(code_spec(r#"alc.state.set("k", 1) return true"#, json!({})))
        .await
        .unwrap();
    completed(&a.wait(&seed_writer).await.unwrap());
    let mut spec = code_spec(code, json!({}));
    spec.seed = None;
    let id = a.spawn(spec).await.unwrap();
    let (open, round) = next_pause(&a, &id).await;
    assert_eq!(open.len(), 1);
    let first_prompt = prompt_of(&open[0]);
    a.resume(
        &id,
        Answers {
            round: Some(round),
            answers: vec![Answer::text(Some(open[0].id.clone()), "ans1")],
        },
    )
    .await
    .unwrap();
    let (open2, _) = next_pause(&a, &id).await;
    assert_eq!(prompt_of(&open2[0]), "two");
    // The store changes before the replay.
    let writer = a
        .spawn(code_spec(r#"alc.state.set("k", 2) return true"#, json!({})))
        .await
        .unwrap();
    completed(&a.wait(&writer).await.unwrap());
    a.shutdown(alc_engine::ShutdownMode::Drain).await;
    drop(a);

    let b = durable_engine(&db, 1_700_000_900_000);
    let (open3, round3) = next_pause(&b, &id).await;
    assert_eq!(open3.len(), 1, "no first-round query is published again");
    assert_eq!(prompt_of(&open3[0]), "two");
    b.resume(
        &id,
        Answers {
            round: Some(round3),
            answers: vec![Answer::text(Some(open3[0].id.clone()), "ans2")],
        },
    )
    .await
    .unwrap();
    let v = completed(&b.wait(&id).await.unwrap());
    let expected = format!(
        "one {} {} {} {} {}",
        v["t"],
        lua_num(&v["c"]),
        lua_num(&v["at"]),
        v["r"],
        v["s"]
    );
    assert_eq!(
        first_prompt, expected,
        "replayed values equal the first run's"
    );
    assert_eq!(v["t"], json!(1_700_000_000));
    assert_eq!(v["s"], json!(1));
    assert_eq!(v["a1"], json!("ans1"));
    assert_eq!(v["a2"], json!("ans2"));
    b.shutdown(alc_engine::ShutdownMode::Drain).await;
}

/// Lua's `%s` rendering of a float.
fn lua_num(v: &serde_json::Value) -> String {
    let f = v.as_f64().unwrap();
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}
