//! JSON conversion rules: `lua-api.md` §3 and the JSON items 41–57 of §4, run against a plain
//! Lua state with `alc` holding only the JSON members.

use alc_engine::json;
use mlua::{Lua, Value};

fn vm() -> Lua {
    let lua = Lua::new();
    let alc = lua.create_table().unwrap();
    json::register(&lua, &alc).unwrap();
    lua.globals().set("alc", alc).unwrap();
    lua.load("json_encode = alc.json_encode; json_decode = alc.json_decode")
        .exec()
        .unwrap();
    lua
}

fn s(lua: &Lua, code: &str) -> String {
    lua.load(code)
        .eval::<String>()
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

fn b(lua: &Lua, code: &str) -> bool {
    lua.load(code)
        .eval::<bool>()
        .unwrap_or_else(|e| panic!("{code}: {e}"))
}

/// Runs `code` (a function body) under `pcall`, asserts it fails with a plain string and
/// returns the string.
fn err(lua: &Lua, code: &str) -> String {
    let wrapped = format!(
        "local ok, e = pcall(function() {code} end)\n\
         assert(not ok, 'expected an error')\n\
         assert(type(e) == 'string', 'error is a ' .. type(e))\n\
         return e"
    );
    s(lua, &wrapped)
}

fn enc(lua: &Lua, expr: &str) -> String {
    s(lua, &format!("return json_encode({expr})"))
}

// ---- item 41 -------------------------------------------------------------------------------

#[test]
fn item41_scalars() {
    let lua = vm();
    assert_eq!(enc(&lua, "42"), "42");
    assert_eq!(enc(&lua, "3.0"), "3.0");
    assert_eq!(enc(&lua, "-0.0"), "-0.0");
    assert_eq!(enc(&lua, "1e20"), "1e+20");
    assert_eq!(enc(&lua, "1e-5"), "0.00001");
    assert_eq!(enc(&lua, "1.5e-7"), "1.5e-7");
    assert_eq!(enc(&lua, "nil"), "null");
    assert_eq!(enc(&lua, "alc.json_null"), "null");
    assert_eq!(enc(&lua, "true"), "true");
}

#[test]
fn float_formatting_table_of_3_1() {
    let lua = vm();
    let cases = [
        ("1.0", "1.0"),
        ("0.1", "0.1"),
        ("2.5", "2.5"),
        ("-0.0", "-0.0"),
        ("3e15", "3000000000000000.0"),
        ("1e16", "1e+16"),
        ("1e20", "1e+20"),
        ("1e-5", "0.00001"),
        ("1.5e-7", "1.5e-7"),
        ("123456.789", "123456.789"),
        ("-2.5e-300", "-2.5e-300"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("5e-324", "5e-324"),
        ("0.0001", "0.0001"),
        ("2^53 + 0.0", "9007199254740992.0"),
        ("math.maxinteger", "9223372036854775807"),
        ("math.mininteger", "-9223372036854775808"),
    ];
    for (lua_expr, want) in cases {
        assert_eq!(enc(&lua, lua_expr), want, "{lua_expr}");
    }
}

#[test]
fn float_formatting_matches_serde_json() {
    let lua = vm();
    let mut x: f64 = 1.2345678901234567e-12;
    for _ in 0..60 {
        for f in [x, -x, x.round(), 1.0 / x] {
            if !f.is_finite() {
                continue;
            }
            let got = json::encode(&lua, &Value::Number(f)).unwrap();
            assert_eq!(got, serde_json::to_string(&f).unwrap(), "{f:e}");
            assert_eq!(got.parse::<f64>().unwrap(), f);
        }
        x *= 7.3;
    }
}

// ---- item 42 -------------------------------------------------------------------------------

#[test]
fn item42_string_escapes() {
    let lua = vm();
    assert_eq!(enc(&lua, "'a\"b\\n☺/'"), "\"a\\\"b\\n☺/\"");
    assert!(b(
        &lua,
        r#"return json_encode('a"b\n☺/') == '"a\\"b\\n☺/"'"#
    ));
    assert_eq!(
        enc(&lua, r#""\r\t\b\f\1\31\127\\""#),
        r#""\r\t\b\f\u0001\u001f\u007f\\""#.replace("\\u007f", "\u{7f}")
    );
    assert_eq!(enc(&lua, r#""a\0b""#), r#""a\u0000b""#);
}

// ---- item 43 -------------------------------------------------------------------------------

#[test]
fn item43_sorted_keys() {
    let lua = vm();
    assert_eq!(
        enc(&lua, "{zeta=1, alpha=2, mid=3}"),
        r#"{"alpha":2,"mid":3,"zeta":1}"#
    );
    // Byte order: upper case before lower case, "a" before "a b" before "ab", UTF-8 after ASCII.
    assert_eq!(
        enc(&lua, r#"{b=1, B=2, ab=3, ["a b"]=4, a=5, ["é"]=6, z=7}"#),
        r#"{"B":2,"a":5,"a b":4,"ab":3,"b":1,"z":7,"é":6}"#
    );
}

// ---- item 44 -------------------------------------------------------------------------------

#[test]
fn item44_empty_tables() {
    let lua = vm();
    assert_eq!(enc(&lua, "{}"), "{}");
    assert_eq!(enc(&lua, "alc.array({})"), "[]");
    assert_eq!(enc(&lua, "alc.object({})"), "{}");
    assert_eq!(enc(&lua, "alc.array()"), "[]");
    assert_eq!(enc(&lua, "alc.object()"), "{}");
    assert_eq!(enc(&lua, "alc.object({1, 2})"), r#"{"1":1,"2":2}"#);
}

// ---- item 45 -------------------------------------------------------------------------------

#[test]
fn item45_mixed_tables() {
    let lua = vm();
    assert_eq!(enc(&lua, "{1, 2, x = 3}"), r#"{"1":1,"2":2,"x":3}"#);
    assert_eq!(enc(&lua, r#"{[0] = "z"}"#), r#"{"0":"z"}"#);
    assert_eq!(
        enc(&lua, r#"{[-1] = "m", [2] = "b"}"#),
        r#"{"-1":"m","2":"b"}"#
    );
    assert_eq!(
        enc(&lua, r#"{[10] = 1, [9] = 2, k = 3}"#),
        r#"{"10":1,"9":2,"k":3}"#
    );
}

// ---- item 46 -------------------------------------------------------------------------------

#[test]
fn item46_sparse_arrays() {
    let lua = vm();
    assert_eq!(
        s(
            &lua,
            "local t = {}; t[1] = 1; t[3] = 3; return json_encode(t)"
        ),
        "[1,null,3]"
    );
    assert_eq!(enc(&lua, r#"alc.array({[2] = "b"})"#), r#"[null,"b"]"#);
    assert_eq!(enc(&lua, r#"{[2] = "b"}"#), r#"[null,"b"]"#);
    // Largest index 1 000 000 is allowed, above it is an error.
    assert_eq!(
        s(&lua, "return #json_encode({[1000000] = 1})"),
        (5 * 999_999 + 2 + 1).to_string()
    );
    assert_eq!(
        err(&lua, "json_encode({[1000001] = 1})"),
        "alc.json_encode: array index too large at $"
    );
    assert_eq!(
        err(&lua, "json_encode({a = alc.array({[1000001] = 1})})"),
        "alc.json_encode: array index too large at $.a"
    );
}

// ---- item 47 -------------------------------------------------------------------------------

#[test]
fn item47_key_errors() {
    let lua = vm();
    assert_eq!(
        err(&lua, r#"json_encode({[1] = "a", ["1"] = "b"})"#),
        "alc.json_encode: duplicate key '1' at $"
    );
    assert_eq!(
        err(&lua, "json_encode({[true] = 1})"),
        "alc.json_encode: unsupported key type 'boolean' at $"
    );
    assert_eq!(
        err(&lua, "json_encode({x = {[{}] = 1}})"),
        "alc.json_encode: unsupported key type 'table' at $.x"
    );
    assert_eq!(
        err(&lua, "json_encode({[print] = 1})"),
        "alc.json_encode: unsupported key type 'function' at $"
    );
    assert_eq!(
        err(&lua, "json_encode({[1.5] = 1})"),
        "alc.json_encode: unsupported key type 'float' at $"
    );
    assert_eq!(
        err(&lua, "json_encode({[alc.json_null] = 1})"),
        "alc.json_encode: unsupported key type 'userdata' at $"
    );
    assert_eq!(
        err(
            &lua,
            r#"json_encode(alc.object({[2] = 1, ["2"] = 2, [1] = 0, ["1"] = 1}))"#
        ),
        "alc.json_encode: duplicate key '1' at $"
    );
}

// ---- item 48 -------------------------------------------------------------------------------

#[test]
fn item48_value_errors_and_cycles() {
    let lua = vm();
    assert_eq!(
        err(&lua, "json_encode({f = print})"),
        "alc.json_encode: cannot encode value of type 'function' at $.f"
    );
    let e = err(&lua, "local t = {}; t.self = t; json_encode(t)");
    assert!(e.contains("cycle detected at $.self"), "{e}");
    assert_eq!(e, "alc.json_encode: cycle detected at $.self");
    assert_eq!(
        err(&lua, "local t = {}; t[1] = {a = {t}}; json_encode(t)"),
        "alc.json_encode: cycle detected at $[1].a[1]"
    );
    assert_eq!(
        err(
            &lua,
            "json_encode({['key with space'] = {1, 2, coroutine.create(print)}})"
        ),
        r#"alc.json_encode: cannot encode value of type 'thread' at $["key with space"][3]"#
    );
    assert_eq!(
        err(&lua, "json_encode({a = {b = {print}}})"),
        "alc.json_encode: cannot encode value of type 'function' at $.a.b[1]"
    );
    assert_eq!(
        err(&lua, "json_encode(io.stdout)"),
        "alc.json_encode: cannot encode value of type 'userdata' at $"
    );
    // Shared (non-cyclic) references are fine.
    assert_eq!(
        s(&lua, "local s = {1}; return json_encode({a = s, b = s})"),
        r#"{"a":[1],"b":[1]}"#
    );
}

// ---- item 49 -------------------------------------------------------------------------------

#[test]
fn item49_utf8_and_non_finite() {
    let lua = vm();
    let e = err(&lua, r#"json_encode("\xff")"#);
    assert!(e.contains("invalid UTF-8"), "{e}");
    assert_eq!(e, "alc.json_encode: invalid UTF-8 at $");
    assert_eq!(enc(&lua, "{0/0, 1/0, -1/0}"), "[null,null,null]");
    let e = err(&lua, r#"json_encode({["\xff"] = 1})"#);
    assert!(e.contains("invalid UTF-8"), "{e}");
}

// ---- item 50 -------------------------------------------------------------------------------

#[test]
fn item50_marks() {
    let lua = vm();
    let e = err(&lua, "json_encode(alc.array({x = 1}))");
    assert!(
        e.contains("array-marked table has non-index key 'x'"),
        "{e}"
    );
    assert_eq!(
        e,
        "alc.json_encode: array-marked table has non-index key 'x' at $"
    );
    assert_eq!(
        err(&lua, "json_encode(alc.array({[0] = 1}))"),
        "alc.json_encode: array-marked table has non-index key '0' at $"
    );
    assert!(b(
        &lua,
        "local mt = {}; local t = setmetatable({}, mt); return alc.array(t) == t and getmetatable(t) == mt"
    ));
    assert!(b(
        &lua,
        "local t = {}; alc.array(t); return getmetatable(t) == nil"
    ));
    assert_eq!(
        err(&lua, "alc.array(5)"),
        "alc.array: bad argument #1 't' (table expected, got number)"
    );
    assert_eq!(
        err(&lua, "alc.object('x')"),
        "alc.object: bad argument #1 't' (table expected, got string)"
    );
    // The later mark wins.
    assert_eq!(enc(&lua, "alc.object(alc.array({}))"), "{}");
    assert_eq!(enc(&lua, "alc.array(alc.object({}))"), "[]");
}

#[test]
fn metamethods_are_ignored() {
    let lua = vm();
    let code = r#"
        local t = setmetatable({a = 1}, {
            __index = function() return 99 end,
            __pairs = function() error("__pairs called") end,
            __len = function() return 7 end,
            __newindex = function() error("__newindex called") end,
        })
        return json_encode(t)
    "#;
    assert_eq!(s(&lua, code), r#"{"a":1}"#);
    assert_eq!(
        s(
            &lua,
            "return json_encode(setmetatable({1, 2}, {__len = function() return 5 end}))"
        ),
        "[1,2]"
    );
}

#[test]
fn marks_are_weak() {
    let lua = vm();
    let code = r#"
        local probe = setmetatable({}, {__mode = "v"})
        probe[1] = alc.array({})
        probe[2] = alc.object({})
        collectgarbage(); collectgarbage()
        return probe[1] == nil and probe[2] == nil
    "#;
    assert!(b(&lua, code), "marks keep tables alive");
}

// ---- item 51 -------------------------------------------------------------------------------

#[test]
fn item51_null_members() {
    let lua = vm();
    assert!(b(&lua, r#"return json_decode("null") == nil"#));
    assert!(b(&lua, r##"return select("#", json_decode("null")) == 1"##));
    assert!(b(
        &lua,
        r#"local t = json_decode('{"a":null,"b":1}'); return t.b == 1 and rawget(t, "a") == nil"#
    ));
    assert!(b(
        &lua,
        r#"local t = json_decode('{"a":null,"b":1}'); return next(t) == "b" and next(t, "b") == nil"#
    ));
}

// ---- item 52 -------------------------------------------------------------------------------

#[test]
fn item52_null_in_arrays() {
    let lua = vm();
    assert!(b(
        &lua,
        r#"local t = json_decode("[1,null,3]"); return #t == 3 and t[2] == alc.json_null and t[3] == 3"#
    ));
    assert!(b(&lua, r#"return type(alc.json_null) == "userdata""#));
    assert!(b(&lua, "return alc.json_null ~= nil"));
    assert!(b(&lua, "return alc.json_null and true or false"));
    assert_eq!(s(&lua, "return tostring(alc.json_null)"), "null");
    assert_eq!(
        s(&lua, r#"return json_encode(json_decode("[1,null,3]"))"#),
        "[1,null,3]"
    );
    assert!(b(
        &lua,
        r#"return json_decode("[null]")[1] == alc.json_null"#
    ));
    assert!(b(
        &lua,
        "return rawequal(alc.json_null, alc.json_null) and alc.json_null ~= {}"
    ));
    // Same sentinel from Rust.
    let null = json::json_null(&lua).unwrap();
    let alc_null: Value = lua.load("return alc.json_null").eval().unwrap();
    assert!(json::is_json_null(&null));
    assert_eq!(null.to_pointer(), alc_null.to_pointer());
}

// ---- item 53 -------------------------------------------------------------------------------

#[test]
fn item53_number_subtypes() {
    let lua = vm();
    assert_eq!(s(&lua, r#"return math.type(json_decode("3"))"#), "integer");
    assert_eq!(s(&lua, r#"return math.type(json_decode("3.0"))"#), "float");
    assert!(b(
        &lua,
        r#"return json_decode("1e2") == 100.0 and math.type(json_decode("1e2")) == "float""#
    ));
    assert_eq!(
        s(
            &lua,
            r#"return math.type(json_decode("9223372036854775808"))"#
        ),
        "float"
    );
    assert!(b(
        &lua,
        r#"return json_decode("9223372036854775808") == 9.2233720368547758e18"#
    ));
    assert!(b(
        &lua,
        r#"return json_decode("9223372036854775807") == math.maxinteger"#
    ));
    assert!(b(
        &lua,
        r#"return json_decode("-9223372036854775808") == math.mininteger"#
    ));
    assert_eq!(
        s(
            &lua,
            r#"return math.type(json_decode("-9223372036854775809"))"#
        ),
        "float"
    );
    // -0 is the float -0.0.
    assert!(b(
        &lua,
        r#"local z = json_decode("-0"); return math.type(z) == "float" and 1/z == -math.huge"#
    ));
    assert!(b(
        &lua,
        r#"return json_decode("0") == 0 and math.type(json_decode("0")) == "integer""#
    ));
    assert!(b(&lua, r#"return json_decode("-1.5E-2") == -0.015"#));
}

// ---- item 54 -------------------------------------------------------------------------------

#[test]
fn item54_empty_containers_round_trip() {
    let lua = vm();
    assert_eq!(s(&lua, r#"return json_encode(json_decode("[]"))"#), "[]");
    assert_eq!(s(&lua, r#"return json_encode(json_decode("{}"))"#), "{}");
    assert_eq!(
        s(
            &lua,
            r#"return json_encode(json_decode('{"b":[],"a":{}}'))"#
        ),
        r#"{"a":{},"b":[]}"#
    );
}

// ---- item 55 -------------------------------------------------------------------------------

#[test]
fn item55_duplicates_string_keys_depth() {
    let lua = vm();
    assert!(b(&lua, r#"return json_decode('{"a":1,"a":2}').a == 2"#));
    assert!(b(
        &lua,
        r#"local t = json_decode('{"1":"x"}'); return t["1"] == "x" and t[1] == nil"#
    ));
    // 128 nested arrays decode; 129 fail.
    assert!(b(
        &lua,
        r#"local t = json_decode(string.rep("[", 128) .. string.rep("]", 128))
           local d = 0; while type(t) == "table" do d = d + 1; t = t[1] end; return d == 128"#
    ));
    let e = err(
        &lua,
        r#"json_decode(string.rep("[", 129) .. string.rep("]", 129))"#,
    );
    assert_eq!(
        e,
        "alc.json_decode: nesting deeper than 128 at line 1 column 129"
    );
    let e = err(
        &lua,
        r#"json_decode(string.rep('{"a":', 129) .. "1" .. string.rep("}", 129))"#,
    );
    assert!(
        e.starts_with("alc.json_decode: nesting deeper than 128 at line 1 column "),
        "{e}"
    );
    // 128 nested Lua tables encode; 129 fail mentioning nesting.
    assert_eq!(
        s(
            &lua,
            "local t = {}; for i = 1, 127 do t = {t} end; return json_encode(t)"
        ),
        format!("{}{{}}{}", "[".repeat(127), "]".repeat(127))
    );
    let e = err(
        &lua,
        "local t = {}; for i = 1, 128 do t = {t} end; json_encode(t)",
    );
    assert!(e.contains("nesting"), "{e}");
    assert_eq!(
        e,
        format!(
            "alc.json_encode: nesting deeper than 128 at ${}",
            "[1]".repeat(128)
        )
    );
}

// ---- item 56 -------------------------------------------------------------------------------

#[test]
fn item56_decode_errors() {
    let lua = vm();
    let cases = [
        (
            r#""[1,]""#,
            "alc.json_decode: trailing comma at line 1 column 4",
        ),
        (
            r#""""#,
            "alc.json_decode: EOF while parsing a value at line 1 column 0",
        ),
        (
            r#"'{"a":1} x'"#,
            "alc.json_decode: trailing characters at line 1 column 9",
        ),
        (
            r#""NaN""#,
            "alc.json_decode: expected value at line 1 column 1",
        ),
        (
            r#"'"\\ud800"'"#,
            "alc.json_decode: lone leading surrogate in hex escape at line 1 column 2",
        ),
    ];
    for (arg, want) in cases {
        let e = err(&lua, &format!("json_decode({arg})"));
        assert!(e.starts_with("alc.json_decode: "), "{e}");
        assert!(e.contains("at line 1 column"), "{e}");
        assert_eq!(e, want, "json_decode({arg})");
    }
    let e = err(&lua, r#"json_decode("1e400")"#);
    assert!(e.contains("number out of range"), "{e}");
    assert_eq!(e, "alc.json_decode: number out of range at line 1 column 5");
    assert_eq!(
        err(&lua, r#"json_decode("-1e400")"#),
        "alc.json_decode: number out of range at line 1 column 6"
    );
}

#[test]
fn strict_parse_rejections() {
    let lua = vm();
    let bad = [
        r#""{\"a\":1,}""#,
        r#""// c\n1""#,
        r#""/* c */ 1""#,
        r#""'a'""#,
        r#""\239\187\1911""#, // UTF-8 BOM then 1
        r#""Infinity""#,
        r#""-Infinity""#,
        r#""01""#,
        r#""1.""#,
        r#"".5""#,
        r#""+1""#,
        r#""1e""#,
        r#""-""#,
        r#""[1 2]""#,
        r#""{\"a\" 1}""#,
        r#""{a:1}""#,
        r#""\"abc""#,
        r#""\"a\tb\"""#,
        r#""\"\\x\"""#,
        r#""\"\\u12\"""#,
        r#""\"\\udc00\"""#,
        r#""\"\\ud800\\u0041\"""#,
        r#""\"\255\"""#,
        r#""nul""#,
        r#""tru""#,
        r#""[""#,
        r#""{""#,
        r#""1 2""#,
        r#""\f1""#,
        r#""   ""#,
    ];
    for arg in bad {
        let e = err(&lua, &format!("json_decode({arg})"));
        assert!(e.starts_with("alc.json_decode: "), "{arg}: {e}");
        assert!(e.contains(" at line "), "{arg}: {e}");
    }
    assert_eq!(
        err(&lua, r#"json_decode("[1,\n 2 x")"#),
        "alc.json_decode: expected `,` or `]` at line 2 column 4"
    );
    assert_eq!(
        err(&lua, r#"json_decode("{")"#),
        "alc.json_decode: EOF while parsing an object at line 1 column 1"
    );
    assert_eq!(
        err(&lua, "json_decode({})"),
        "alc.json_decode: bad argument #1 'text' (string expected, got table)"
    );
    assert_eq!(
        err(&lua, "json_decode()"),
        "alc.json_decode: bad argument #1 'text' (string expected, got nil)"
    );
    // Oversized input.
    let e = err(
        &lua,
        r#"json_decode(string.rep(" ", 16 * 1024 * 1024) .. "1")"#,
    );
    assert!(
        e.starts_with("alc.json_decode: ") && e.contains("at line 1 column 0"),
        "{e}"
    );
    // Exactly 16 MiB is accepted.
    assert!(b(
        &lua,
        r#"return json_decode(string.rep(" ", 16 * 1024 * 1024 - 1) .. "1") == 1"#
    ));
}

#[test]
fn strict_parse_acceptances() {
    let lua = vm();
    assert!(b(&lua, r#"return json_decode(" \t\r\n 1 \t\r\n ") == 1"#));
    assert!(b(&lua, r#"return json_decode('"\\u0000"') == "\0""#));
    assert!(b(&lua, r#"return json_decode('"\\ud83d\\ude00"') == "😀""#));
    assert!(b(
        &lua,
        r#"return json_decode('"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9"') == "\"\\/\b\f\n\r\té""#
    ));
    assert!(b(&lua, r#"return json_decode('"☺"') == "☺""#));
    assert!(b(&lua, "return json_decode(42) == 42"));
    assert!(b(&lua, "return json_decode(1.5) == 1.5"));
    assert!(b(
        &lua,
        r#"return json_decode("true") == true and json_decode("false") == false"#
    ));
    assert!(b(
        &lua,
        r#"local t = json_decode('[{"a":[1,{"b":null}]}]'); return t[1].a[2].b == nil and next(t[1].a[2]) == nil"#
    ));
}

// ---- item 57 -------------------------------------------------------------------------------

#[test]
fn item57_host_ctx() {
    let lua = vm();
    let host: serde_json::Value =
        serde_json::from_str(r#"{"items":[],"opt":null,"n":3.0,"k":[null]}"#).unwrap();
    let ctx = json::from_json(&lua, &host).unwrap();
    lua.globals().set("ctx", ctx).unwrap();
    assert!(b(&lua, "return ctx.opt == nil"));
    assert_eq!(s(&lua, "return json_encode(ctx.items)"), "[]");
    assert_eq!(s(&lua, "return math.type(ctx.n)"), "float");
    assert!(b(&lua, "return ctx.k[1] == alc.json_null"));
    assert!(b(&lua, "return #ctx.k == 1"));
    assert_eq!(
        s(&lua, "return json_encode(ctx)"),
        r#"{"items":[],"k":[null],"n":3.0}"#
    );
}

// ---- §3.3 guarantees -----------------------------------------------------------------------

#[test]
fn round_trip_lua_values() {
    let lua = vm();
    let code = r#"
        local function deep_equal(a, b)
          if type(a) ~= type(b) then return false end
          if type(a) == "number" then
            if math.type(a) ~= math.type(b) then return false end
            if a == 0 and b == 0 then return 1/a == 1/b end
            return a == b
          end
          if type(a) ~= "table" then return rawequal(a, b) end
          for k, v in pairs(a) do if not deep_equal(v, rawget(b, k)) then return false end end
          for k in pairs(b) do if rawget(a, k) == nil then return false end end
          return true
        end
        local values = {
          "", "plain", "a\"b\\c\n\0\31☺/", true, false, 0, 3, -7, math.maxinteger, math.mininteger,
          3.0, -0.0, 0.1, 1e20, 1e-5, 1.5e-7, 2^53, 1.7976931348623157e308, 5e-324, -2.5,
          {1, 2, 3}, {1.0, "x", true}, alc.array({}), {a = 1, b = {c = {1, 2}}}, {["k y"] = "v"},
          {1, alc.json_null, 3}, {alc.json_null}, {nested = {alc.array({}), {}, {x = alc.array({})}}},
        }
        for i, v in ipairs(values) do
          local back = json_decode(json_encode(v))
          if not deep_equal(v, back) then return "mismatch at " .. i .. ": " .. json_encode(v) end
          if json_encode(back) ~= json_encode(v) then return "re-encode differs at " .. i end
        end
        return "ok"
    "#;
    assert_eq!(s(&lua, code), "ok");
}

#[test]
fn round_trip_text_is_canonical() {
    let lua = vm();
    let cases = [
        (
            r#" { "b" : 1 , "a" : [ 1 , 2.50 , null ] , "c" : null } "#,
            r#"{"a":[1,2.5,null],"b":1}"#,
        ),
        (
            r#"{"z":{"y":{"x":[]}},"a":{}}"#,
            r#"{"a":{},"z":{"y":{"x":[]}}}"#,
        ),
        (
            "[1E2, -0, 0.0, 1e-7, 10000000000000000]",
            "[100.0,-0.0,0.0,1e-7,10000000000000000]",
        ),
        (r#""\u00e9\/\u001f""#, "\"é/\\u001f\""),
        ("[[],{},[{}]]", "[[],{},[{}]]"),
        (r#"{"1":"a","2":"b"}"#, r#"{"1":"a","2":"b"}"#),
        ("12345678901234567890", "1.2345678901234567e+19"),
    ];
    for (input, want) in cases {
        let v = json::decode(&lua, input.as_bytes()).unwrap();
        assert_eq!(json::encode(&lua, &v).unwrap(), want, "{input}");
        // Canonical form is a fixed point.
        let v2 = json::decode(&lua, want.as_bytes()).unwrap();
        assert_eq!(json::encode(&lua, &v2).unwrap(), want);
    }
    // A top-level null decodes to nil and re-encodes as null.
    let v = json::decode(&lua, b"null").unwrap();
    assert!(v.is_nil());
    assert_eq!(json::encode(&lua, &v).unwrap(), "null");
}

#[test]
fn encoding_is_deterministic() {
    let lua = vm();
    // Many keys inserted in different orders (and removed/re-added) give the same bytes.
    let code = r#"
        local a, b = {}, {}
        for i = 1, 200 do a["k" .. i] = i end
        for i = 200, 1, -1 do b["k" .. i] = i end
        for i = 1, 200, 3 do b["k" .. i] = nil end
        for i = 1, 200, 3 do b["k" .. i] = i end
        return json_encode(a) == json_encode(b)
    "#;
    assert!(b(&lua, code));
    // The first error in output order is reported regardless of pairs order.
    assert_eq!(
        err(
            &lua,
            "json_encode({z = print, a = {1, print}, m = coroutine.create(print)})"
        ),
        "alc.json_encode: cannot encode value of type 'function' at $.a[2]"
    );
}

// ---- Rust API --------------------------------------------------------------------------------

#[test]
fn rust_api() {
    let lua = Lua::new();
    json::JsonMarks::install(&lua).unwrap();
    json::JsonMarks::install(&lua).unwrap(); // idempotent
    let t = lua.create_table().unwrap();
    json::mark_array(&lua, &t).unwrap();
    assert_eq!(
        json::to_json(&lua, &Value::Table(t.clone())).unwrap(),
        serde_json::json!([])
    );
    json::mark_object(&lua, &t).unwrap();
    assert_eq!(json::encode(&lua, &Value::Table(t.clone())).unwrap(), "{}");

    t.raw_set("bad key", lua.create_function(|_, ()| Ok(())).unwrap())
        .unwrap();
    let e = json::to_json(&lua, &Value::Table(t)).unwrap_err();
    assert_eq!(e.reason, "cannot encode value of type 'function'");
    assert_eq!(e.path, r#"$["bad key"]"#);
    assert_eq!(
        e.to_string(),
        r#"cannot encode value of type 'function' at $["bad key"]"#
    );

    let e = json::decode(&lua, b"[1,]").unwrap_err();
    assert_eq!(e.to_string(), "trailing comma at line 1 column 4");
    match e {
        json::DecodeError::Syntax { line, column, .. } => assert_eq!((line, column), (1, 4)),
        other => panic!("{other:?}"),
    }

    let v = json::from_json(
        &lua,
        &serde_json::json!({"a": [1, null, {"b": null}], "c": null}),
    )
    .unwrap();
    assert_eq!(
        json::to_json(&lua, &v).unwrap(),
        serde_json::json!({"a": [1, null, {}]})
    );
    assert!(json::from_json(&lua, &serde_json::Value::Null)
        .unwrap()
        .is_nil());

    // json_null without register installs lazily and is stable.
    let lua2 = Lua::new();
    let n1 = json::json_null(&lua2).unwrap();
    let n2 = json::json_null(&lua2).unwrap();
    assert_eq!(n1.to_pointer(), n2.to_pointer());
    assert_eq!(json::encode(&lua2, &n1).unwrap(), "null");
}

#[test]
fn parse_and_canonical_string() {
    assert_eq!(
        json::canonical_string(&json::parse(br#"{"b":[1.0,2],"a":"x"}"#).unwrap()),
        r#"{"a":"x","b":[1.0,2]}"#
    );
    let deep128 = format!("{}{}", "[".repeat(128), "]".repeat(128));
    assert!(json::parse(deep128.as_bytes()).is_ok());
    assert!(
        serde_json::from_str::<serde_json::Value>(&deep128).is_err(),
        "serde_json's own limit is 127"
    );
}

#[test]
fn alc_members_are_functions() {
    let lua = vm();
    assert!(b(
        &lua,
        r#"return type(alc.json_encode) == "function" and type(alc.json_decode) == "function"
           and type(alc.array) == "function" and type(alc.object) == "function"
           and type(alc.json_null) == "userdata""#
    ));
    // Error strings carry no traceback or position prefix.
    assert!(b(
        &lua,
        r#"local ok, e = pcall(alc.json_decode, "{")
           return type(e) == "string" and e:find("stack traceback", 1, true) == nil
              and e:match("^alc%.json_decode: ") ~= nil"#
    ));
    // Overriding the global `error` after registration does not change the error shape.
    assert_eq!(
        err(&lua, "error = nil; json_encode(print)"),
        "alc.json_encode: cannot encode value of type 'function' at $"
    );
}
