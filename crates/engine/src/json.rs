//! JSON conversion between Lua values and JSON (`lua-api.md` §3).
//!
//! One converter serves every boundary of the engine: `ctx` in, the session value out,
//! `alc.json_encode` / `alc.json_decode`, state values, cards, fork contexts and so on.
//!
//! * [`to_json`] / [`encode`]: Lua → JSON (§3.1). Raw access only (no metamethods), cycle and
//!   depth checks, table classification by keys and by the `alc.array` / `alc.object` marks,
//!   keys sorted bytewise, floats in serde_json's shortest round-trip notation.
//! * [`parse`] / [`decode`] / [`from_json`]: JSON → Lua (§3.2). A strict RFC 8259 parser
//!   (depth ≤ 128, size ≤ 16 MiB), arrays become array-marked tables, `null` becomes `nil`
//!   at top level, [`json_null`] inside arrays and is dropped as an object member.
//! * [`register`]: installs `alc.json_encode`, `alc.json_decode`, `alc.array`, `alc.object`
//!   and `alc.json_null`; every error they raise reaches Lua as a plain string.
//!
//! Per-VM state (the `json_null` sentinel and the weak-keyed mark table) lives in the Lua
//! registry under private names; see [`JsonMarks::install`].

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fmt::{self, Write as _};

use mlua::{Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value};
use serde_json::{Map, Number, Value as JValue};

/// Maximum nesting of arrays/objects (tables) accepted in both directions.
pub const MAX_DEPTH: usize = 128;
/// Maximum size in bytes of a JSON text accepted by [`decode`] / [`parse`].
pub const MAX_DECODE_BYTES: usize = 16 * 1024 * 1024;
/// Largest array index an encoded table may have (§3.1 rule 4).
pub const MAX_ARRAY_INDEX: i64 = 1_000_000;

const NULL_KEY: &str = "alc_engine.json.null";
const MARKS_KEY: &str = "alc_engine.json.marks";

/// The userdata type behind `alc.json_null`.
struct JsonNull;

impl UserData for JsonNull {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field(MetaMethod::Type.name(), "alc.json_null");
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, _, ()| Ok("null"));
    }
}

/// Per-VM JSON context: the `json_null` sentinel and the weak-keyed array/object mark registry.
///
/// Both live in the Lua registry under private names, so they are reachable from Rust only
/// (the sandbox removes `debug`, hence `debug.getregistry`). The mark table maps a table to
/// `true` (array) or `false` (object); it is weak-keyed, so marks never keep a table alive and
/// a table's metatable is never touched.
#[derive(Debug)]
pub struct JsonMarks {
    _private: (),
}

impl JsonMarks {
    /// Creates the sentinel (a unique userdata, truthy, `tostring` → `"null"`, equal only to
    /// itself) and a weak-keyed mark table, and stores both in the Lua registry.
    ///
    /// Idempotent: a second call on the same VM keeps the existing sentinel and marks.
    pub fn install(lua: &Lua) -> mlua::Result<()> {
        install_null(lua)?;
        install_marks(lua)
    }
}

/// Creates the `json_null` sentinel if this VM has none yet.
fn install_null(lua: &Lua) -> mlua::Result<()> {
    if matches!(lua.named_registry_value::<Value>(NULL_KEY)?, Value::Nil) {
        let null = lua.create_userdata(JsonNull)?;
        lua.set_named_registry_value(NULL_KEY, null)?;
    }
    Ok(())
}

/// Creates the weak-keyed mark table if this VM has none yet. Separate from the sentinel:
/// marking the reply of `alc.llm_batch` should not build the sentinel's userdata type.
fn install_marks(lua: &Lua) -> mlua::Result<()> {
    if matches!(lua.named_registry_value::<Value>(MARKS_KEY)?, Value::Nil) {
        let marks = lua.create_table()?;
        let meta = lua.create_table()?;
        meta.raw_set("__mode", "k")?;
        marks.set_metatable(Some(meta))?;
        lua.set_named_registry_value(MARKS_KEY, marks)?;
    }
    Ok(())
}

fn marks_table(lua: &Lua) -> mlua::Result<Table> {
    match lua.named_registry_value::<Value>(MARKS_KEY)? {
        Value::Table(t) => Ok(t),
        _ => {
            install_marks(lua)?;
            lua.named_registry_value::<Table>(MARKS_KEY)
        }
    }
}

/// The `alc.json_null` sentinel value of this VM (installed on first use).
pub fn json_null(lua: &Lua) -> mlua::Result<Value> {
    match lua.named_registry_value::<Value>(NULL_KEY)? {
        v @ Value::UserData(_) => Ok(v),
        _ => {
            install_null(lua)?;
            lua.named_registry_value::<Value>(NULL_KEY)
        }
    }
}

/// True if `v` is the `json_null` sentinel.
pub fn is_json_null(v: &Value) -> bool {
    matches!(v, Value::UserData(ud) if ud.is::<JsonNull>())
}

/// Marks a table as a JSON array (`alc.array`); does not touch its metatable.
pub fn mark_array(lua: &Lua, t: &Table) -> mlua::Result<()> {
    marks_table(lua)?.raw_set(t.clone(), true)
}

/// Marks a table as a JSON object (`alc.object`); does not touch its metatable.
pub fn mark_object(lua: &Lua, t: &Table) -> mlua::Result<()> {
    marks_table(lua)?.raw_set(t.clone(), false)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    None,
    Array,
    Object,
}

fn mark_of(marks: &Table, t: &Table) -> mlua::Result<Mark> {
    Ok(match marks.raw_get::<Value>(t.clone())? {
        Value::Boolean(true) => Mark::Array,
        Value::Boolean(false) => Mark::Object,
        _ => Mark::None,
    })
}

// ---------------------------------------------------------------------------------------------
// Lua -> JSON
// ---------------------------------------------------------------------------------------------

/// An encode error: `reason` plus the JSONPath-style location of the offending value.
///
/// Displays as `"<reason> at <path>"`; callers prefix it (`alc.json_encode: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// What went wrong, e.g. `cycle detected`, `duplicate key '1'`.
    pub reason: String,
    /// Where: `$`, `$.a`, `$.a[3]` (1-based Lua indices), `$["key with space"]`.
    pub path: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.reason, self.path)
    }
}

impl std::error::Error for JsonError {}

enum Seg {
    Index(i64),
    Key(String),
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn format_path(segs: &[Seg]) -> String {
    let mut out = String::from("$");
    for seg in segs {
        match seg {
            Seg::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
            Seg::Key(k) if is_identifier(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Key(k) => {
                out.push('[');
                write_json_string(&mut out, k);
                out.push(']');
            }
        }
    }
    out
}

/// Lua `type()` name of a value (as seen by scripts).
fn lua_type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        other => other.type_name(),
    }
}

/// Renders a key for `'<k>'` in messages: strings raw (lossy), numbers as Lua prints them.
fn render_key(v: &Value) -> String {
    match v {
        Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        Value::Integer(i) => i.to_string(),
        Value::Number(f) if f.is_finite() => {
            let mut out = String::new();
            write_float(&mut out, *f);
            out
        }
        Value::Number(f) if f.is_nan() => "nan".to_string(),
        Value::Number(f) => (if *f < 0.0 { "-inf" } else { "inf" }).to_string(),
        Value::Boolean(b) => b.to_string(),
        other => lua_type_name(other).to_string(),
    }
}

struct Encoder<'a> {
    marks: &'a Table,
    /// Tables on the current path (cycle detection).
    stack: Vec<*const c_void>,
    path: Vec<Seg>,
}

enum KeyClass {
    Int(i64, Value),
    Str(Vec<u8>, Value),
    /// A float, boolean, table, function, thread or userdata key: its type name for messages
    /// (`float` for non-integral numbers, else the Lua `type()` name) and the key itself.
    Bad(&'static str, Value),
}

impl Encoder<'_> {
    fn err(&self, reason: impl Into<String>) -> JsonError {
        JsonError {
            reason: reason.into(),
            path: format_path(&self.path),
        }
    }

    fn lua_err(&self, e: mlua::Error) -> JsonError {
        self.err(e.to_string())
    }

    fn value(&mut self, v: &Value) -> Result<JValue, JsonError> {
        match v {
            Value::Nil => Ok(JValue::Null),
            Value::Boolean(b) => Ok(JValue::Bool(*b)),
            Value::Integer(i) => Ok(JValue::Number(Number::from(*i))),
            Value::Number(f) => Ok(Number::from_f64(*f)
                .map(JValue::Number)
                .unwrap_or(JValue::Null)),
            Value::String(s) => match std::str::from_utf8(&s.as_bytes()) {
                Ok(text) => Ok(JValue::String(text.to_owned())),
                Err(_) => Err(self.err("invalid UTF-8")),
            },
            Value::Table(t) => self.table(t),
            Value::UserData(ud) if ud.is::<JsonNull>() => Ok(JValue::Null),
            other => Err(self.err(format!(
                "cannot encode value of type '{}'",
                lua_type_name(other)
            ))),
        }
    }

    fn table(&mut self, t: &Table) -> Result<JValue, JsonError> {
        let ptr = t.to_pointer();
        if self.stack.contains(&ptr) {
            return Err(self.err("cycle detected"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.err(format!("nesting deeper than {MAX_DEPTH}")));
        }
        let mark = mark_of(self.marks, t).map_err(|e| self.lua_err(e))?;

        // `Table::pairs` is a raw `lua_next` traversal: `__pairs` and `__index` are ignored.
        let mut keys: Vec<KeyClass> = Vec::new();
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| self.lua_err(e))?;
            keys.push(match k {
                Value::Integer(i) => KeyClass::Int(i, v),
                Value::String(s) => KeyClass::Str(s.as_bytes().to_vec(), v),
                Value::Number(_) => KeyClass::Bad("float", k),
                other => KeyClass::Bad(lua_type_name(&other), other),
            });
        }

        self.stack.push(ptr);
        let result = self.classify(mark, keys);
        self.stack.pop();
        result
    }

    /// Applies §3.1 rules 2–4. Every check is made over the whole key set before any value is
    /// converted, and values are converted in output order, so the reported error does not
    /// depend on `pairs` order.
    fn classify(&mut self, mark: Mark, keys: Vec<KeyClass>) -> Result<JValue, JsonError> {
        let mut ints: Vec<(i64, Value)> = Vec::new();
        let mut strs: Vec<(Vec<u8>, Value)> = Vec::new();
        let mut bad: Vec<(&'static str, Value)> = Vec::new();
        for k in keys {
            match k {
                KeyClass::Int(i, v) => ints.push((i, v)),
                KeyClass::Str(s, v) => strs.push((s, v)),
                KeyClass::Bad(ty, key) => bad.push((ty, key)),
            }
        }
        ints.sort_by_key(|(i, _)| *i);
        strs.sort_by(|a, b| a.0.cmp(&b.0));

        if mark == Mark::Array {
            // Keys with a printable form (numbers, booleans, strings) are "non-index keys";
            // tables, functions, threads and userdata are unsupported key types.
            let unsupported = bad
                .iter()
                .filter(|(ty, _)| !matches!(*ty, "float" | "boolean"))
                .map(|(ty, _)| *ty)
                .min();
            if let Some(ty) = unsupported {
                return Err(self.err(format!("unsupported key type '{ty}'")));
            }
            let non_index = ints
                .iter()
                .filter(|(i, _)| *i <= 0)
                .map(|(i, _)| i.to_string())
                .chain(
                    strs.iter()
                        .map(|(s, _)| String::from_utf8_lossy(s).into_owned()),
                )
                .chain(bad.iter().map(|(_, key)| render_key(key)))
                .min();
            if let Some(k) = non_index {
                return Err(self.err(format!("array-marked table has non-index key '{k}'")));
            }
            return self.array(ints);
        }

        if let Some(ty) = bad.iter().map(|(ty, _)| *ty).min() {
            return Err(self.err(format!("unsupported key type '{ty}'")));
        }
        match mark {
            Mark::None if ints.is_empty() && strs.is_empty() => Ok(JValue::Object(Map::new())),
            Mark::None if strs.is_empty() && ints[0].0 > 0 => self.array(ints),
            _ => self.object(ints, strs),
        }
    }

    /// `ints` sorted ascending, all ≥ 1.
    fn array(&mut self, ints: Vec<(i64, Value)>) -> Result<JValue, JsonError> {
        let len = ints.last().map(|(i, _)| *i).unwrap_or(0);
        if len > MAX_ARRAY_INDEX {
            return Err(self.err("array index too large"));
        }
        let mut out = vec![JValue::Null; len as usize];
        for (i, v) in ints {
            self.path.push(Seg::Index(i));
            let jv = self.value(&v)?;
            self.path.pop();
            out[(i - 1) as usize] = jv;
        }
        Ok(JValue::Array(out))
    }

    fn object(
        &mut self,
        ints: Vec<(i64, Value)>,
        strs: Vec<(Vec<u8>, Value)>,
    ) -> Result<JValue, JsonError> {
        enum K {
            Int(i64),
            Str,
        }
        let mut members: BTreeMap<String, (K, Value)> = BTreeMap::new();
        for (bytes, v) in strs {
            match String::from_utf8(bytes) {
                Ok(s) => {
                    members.insert(s, (K::Str, v));
                }
                Err(e) => {
                    let shown = String::from_utf8_lossy(e.as_bytes()).into_owned();
                    self.path.push(Seg::Key(shown));
                    let err = self.err("invalid UTF-8 in key");
                    self.path.pop();
                    return Err(err);
                }
            }
        }
        let mut dup: Option<String> = None;
        for (i, v) in ints {
            let s = i.to_string();
            if members.contains_key(&s) {
                if dup.as_ref().is_none_or(|d| s.as_bytes() < d.as_bytes()) {
                    dup = Some(s);
                }
                continue;
            }
            members.insert(s, (K::Int(i), v));
        }
        if let Some(d) = dup {
            return Err(self.err(format!("duplicate key '{d}'")));
        }
        let mut out = Map::new();
        for (k, (kind, v)) in members {
            self.path.push(match kind {
                K::Int(i) => Seg::Index(i),
                K::Str => Seg::Key(k.clone()),
            });
            let jv = self.value(&v)?;
            self.path.pop();
            out.insert(k, jv);
        }
        Ok(JValue::Object(out))
    }
}

/// Lua → JSON (§3.1).
///
/// Errors are [`JsonError`]s whose `Display` is `"<reason> at <path>"`.
pub fn to_json(lua: &Lua, v: &Value) -> Result<JValue, JsonError> {
    let root_err = |e: mlua::Error| JsonError {
        reason: e.to_string(),
        path: "$".into(),
    };
    let marks = marks_table(lua).map_err(root_err)?;
    let mut enc = Encoder {
        marks: &marks,
        stack: Vec::new(),
        path: Vec::new(),
    };
    enc.value(v)
}

/// Lua → compact JSON text: keys sorted bytewise, no whitespace, floats as §3.1 prints them
/// (`1.0`, `-0.0`, `3000000000000000.0`, `1e+16`, `0.00001`, `1.5e-7`).
pub fn encode(lua: &Lua, v: &Value) -> Result<String, JsonError> {
    let jv = to_json(lua, v)?;
    Ok(canonical_string(&jv))
}

/// Writes a JSON value as canonical text (compact, object keys sorted by byte order, floats and
/// strings formatted as §3.1). Usable for any `serde_json::Value`, e.g. request digests.
pub fn canonical_string(v: &JValue) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &JValue) {
    match v {
        JValue::Null => out.push_str("null"),
        JValue::Bool(true) => out.push_str("true"),
        JValue::Bool(false) => out.push_str("false"),
        JValue::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() => write_float(out, f),
                    _ => out.push_str("null"),
                }
            }
        }
        JValue::String(s) => write_json_string(out, s),
        JValue::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        JValue::Object(map) => {
            let mut entries: Vec<(&String, &JValue)> = map.iter().collect();
            if !entries
                .windows(2)
                .all(|w| w[0].0.as_bytes() <= w[1].0.as_bytes())
            {
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Escapes `"` `\` and control characters (`\n \r \t \b \f`, others `\u00XX`); everything else,
/// including `/` and non-ASCII, is written raw.
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Shortest round-trip float text in serde_json 1.x (ryu) layout, with an explicit `+` on
/// positive exponents: `1.0`, `0.1`, `-0.0`, `3000000000000000.0`, `1e+16`, `0.00001`,
/// `1.5e-7`. `f` must be finite.
fn write_float(out: &mut String, f: f64) {
    // `{:e}` gives the shortest digits that round-trip: "d[.ddd]e<exp>".
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let n = digits.len() as i32;
    // Decimal point position relative to the first digit: value = 0.DIGITS × 10^kk.
    let kk = exp + 1;
    if f.is_sign_negative() {
        out.push('-');
    }
    if n <= kk && kk <= 16 {
        out.push_str(&digits);
        for _ in 0..(kk - n) {
            out.push('0');
        }
        out.push_str(".0");
    } else if 0 < kk && kk <= 16 {
        out.push_str(&digits[..kk as usize]);
        out.push('.');
        out.push_str(&digits[kk as usize..]);
    } else if -5 < kk && kk <= 0 {
        out.push_str("0.");
        for _ in 0..(-kk) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = kk - 1;
        let _ = write!(out, "e{}{}", if e < 0 { "-" } else { "+" }, e.abs());
    }
}

// ---------------------------------------------------------------------------------------------
// JSON -> Lua
// ---------------------------------------------------------------------------------------------

/// A decode error.
#[derive(Debug)]
pub enum DecodeError {
    /// The text is not acceptable JSON. Displays as `"<reason> at line <l> column <c>"`
    /// (line 1-based; column = 1-based byte column of the offending byte, or the number of
    /// bytes on the line at end of input, 0 for empty input).
    Syntax {
        /// What went wrong, e.g. `trailing comma`, `number out of range`.
        reason: String,
        /// 1-based line.
        line: usize,
        /// Byte column (see above).
        column: usize,
    },
    /// Building the Lua value failed (e.g. the VM's memory limit).
    Lua(mlua::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Syntax {
                reason,
                line,
                column,
            } => write!(f, "{reason} at line {line} column {column}"),
            DecodeError::Lua(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Lua(e)
    }
}

/// JSON → Lua (§3.2): arrays become array-marked tables, `null` inside arrays becomes
/// [`json_null`], object members whose value is `null` are dropped, a top-level `null` is
/// `nil`; integers within i64 stay integers, every other number is a float.
///
/// Nesting deeper than [`MAX_DEPTH`] is rejected.
pub fn from_json(lua: &Lua, v: &JValue) -> mlua::Result<Value> {
    Builder {
        lua,
        marks: None,
        null: None,
    }
    .value(v, 0)
}

/// Converts one document. The mark table and the sentinel are fetched (installed on
/// first use) only when an array needs them: a session whose `ctx` holds no array does
/// not carry them.
struct Builder<'a> {
    lua: &'a Lua,
    marks: Option<Table>,
    null: Option<Value>,
}

impl Builder<'_> {
    fn value(&mut self, v: &JValue, depth: usize) -> mlua::Result<Value> {
        Ok(match v {
            JValue::Null => Value::Nil,
            JValue::Bool(b) => Value::Boolean(*b),
            JValue::Number(n) => number_to_lua(n),
            JValue::String(s) => Value::String(self.lua.create_string(s)?),
            JValue::Array(items) => {
                if depth >= MAX_DEPTH {
                    return Err(mlua::Error::runtime(format!(
                        "nesting deeper than {MAX_DEPTH}"
                    )));
                }
                let t = self.lua.create_table_with_capacity(items.len(), 0)?;
                for (i, item) in items.iter().enumerate() {
                    let lv = match item {
                        JValue::Null => match &self.null {
                            Some(null) => null.clone(),
                            None => self.null.insert(json_null(self.lua)?).clone(),
                        },
                        other => self.value(other, depth + 1)?,
                    };
                    t.raw_set(i as i64 + 1, lv)?;
                }
                let marks = match &self.marks {
                    Some(marks) => marks,
                    None => self.marks.insert(marks_table(self.lua)?),
                };
                marks.raw_set(t.clone(), true)?;
                Value::Table(t)
            }
            JValue::Object(map) => {
                if depth >= MAX_DEPTH {
                    return Err(mlua::Error::runtime(format!(
                        "nesting deeper than {MAX_DEPTH}"
                    )));
                }
                let t = self.lua.create_table_with_capacity(0, map.len())?;
                for (k, item) in map {
                    if item.is_null() {
                        continue;
                    }
                    t.raw_set(k.as_str(), self.value(item, depth + 1)?)?;
                }
                Value::Table(t)
            }
        })
    }
}

fn number_to_lua(n: &Number) -> Value {
    if let Some(i) = n.as_i64() {
        // serde_json represents `-0` as the float -0.0 already.
        Value::Integer(i)
    } else {
        Value::Number(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Parses text strictly (RFC 8259; depth ≤ 128; size ≤ 16 MiB) then converts it (§3.2).
///
/// Error text is `"<reason> at line <l> column <c>"` with no prefix; callers add e.g.
/// `alc.json_decode: `.
pub fn decode(lua: &Lua, text: &[u8]) -> Result<Value, DecodeError> {
    let v = parse(text)?;
    Ok(from_json(lua, &v)?)
}

/// Strict RFC 8259 parser into a `serde_json::Value` (depth ≤ 128, size ≤ 16 MiB).
///
/// Unlike `serde_json::from_slice` (which rejects 128 nested containers) this accepts exactly
/// 128 levels. Rejects comments, trailing commas, `NaN`, single quotes, a leading BOM, trailing
/// content, empty input, invalid UTF-8, raw control characters in strings, invalid or lone
/// surrogate escapes and numbers beyond the float range (`number out of range`). A duplicate
/// object key keeps the last value. Numbers: integers within i64 stay integers, `-0` and every
/// other number become floats.
pub fn parse(text: &[u8]) -> Result<JValue, DecodeError> {
    if text.len() > MAX_DECODE_BYTES {
        return Err(DecodeError::Syntax {
            reason: format!("input larger than {MAX_DECODE_BYTES} bytes"),
            line: 1,
            column: 0,
        });
    }
    let mut p = Parser { s: text, pos: 0 };
    if let Err(e) = std::str::from_utf8(text) {
        p.pos = e.valid_up_to();
        return Err(p.error_at("invalid UTF-8", p.pos));
    }
    p.skip_ws();
    let v = p.value(0)?;
    p.skip_ws();
    if p.pos < p.s.len() {
        return Err(p.error_at("trailing characters", p.pos));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

type PResult<T> = Result<T, DecodeError>;

impl Parser<'_> {
    /// Error located at the byte `at` (1-based column of that byte), or at end of input.
    fn error_at(&self, reason: &str, at: usize) -> DecodeError {
        let at = at.min(self.s.len());
        let before = &self.s[..at];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|b| *b == b'\n')
            .map(|i| i + 1)
            .unwrap_or(0);
        let column = if at >= self.s.len() {
            at - line_start
        } else {
            at - line_start + 1
        };
        DecodeError::Syntax {
            reason: reason.to_string(),
            line,
            column,
        }
    }

    fn eof(&self, what: &str) -> DecodeError {
        self.error_at(&format!("EOF while parsing {what}"), self.s.len())
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> PResult<JValue> {
        match self.peek() {
            None => Err(self.eof("a value")),
            Some(b'n') => self.literal(b"null", JValue::Null),
            Some(b't') => self.literal(b"true", JValue::Bool(true)),
            Some(b'f') => self.literal(b"false", JValue::Bool(false)),
            Some(b'"') => Ok(JValue::String(self.string()?)),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(
                        self.error_at(&format!("nesting deeper than {MAX_DEPTH}"), self.pos)
                    );
                }
                self.pos += 1;
                self.array(depth + 1)
            }
            Some(b'{') => {
                if depth >= MAX_DEPTH {
                    return Err(
                        self.error_at(&format!("nesting deeper than {MAX_DEPTH}"), self.pos)
                    );
                }
                self.pos += 1;
                self.object(depth + 1)
            }
            Some(_) => Err(self.error_at("expected value", self.pos)),
        }
    }

    fn literal(&mut self, word: &[u8], v: JValue) -> PResult<JValue> {
        for &expected in word {
            match self.peek() {
                None => return Err(self.eof("a value")),
                Some(b) if b == expected => self.pos += 1,
                Some(_) => return Err(self.error_at("expected value", self.pos)),
            }
        }
        Ok(v)
    }

    fn array(&mut self, depth: usize) -> PResult<JValue> {
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(JValue::Array(items));
        }
        loop {
            self.skip_ws();
            if self.peek().is_none() {
                return Err(self.eof("a list"));
            }
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                None => return Err(self.eof("a list")),
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        return Err(self.error_at("trailing comma", self.pos));
                    }
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(JValue::Array(items));
                }
                Some(_) => return Err(self.error_at("expected `,` or `]`", self.pos)),
            }
        }
    }

    fn object(&mut self, depth: usize) -> PResult<JValue> {
        let mut map = Map::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(JValue::Object(map));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                None => return Err(self.eof("an object")),
                Some(b'"') => {}
                Some(_) => return Err(self.error_at("key must be a string", self.pos)),
            }
            let key = self.string()?;
            self.skip_ws();
            match self.peek() {
                None => return Err(self.eof("an object")),
                Some(b':') => self.pos += 1,
                Some(_) => return Err(self.error_at("expected `:`", self.pos)),
            }
            self.skip_ws();
            let v = self.value(depth)?;
            // A duplicate key keeps the last value; remove first so the order stays sorted
            // even if serde_json's `preserve_order` were enabled.
            map.remove(&key);
            map.insert(key, v);
            self.skip_ws();
            match self.peek() {
                None => return Err(self.eof("an object")),
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        return Err(self.error_at("trailing comma", self.pos));
                    }
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(JValue::Object(map));
                }
                Some(_) => return Err(self.error_at("expected `,` or `}`", self.pos)),
            }
        }
    }

    /// At a `"`; returns the decoded string. The input is known to be valid UTF-8.
    fn string(&mut self) -> PResult<String> {
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.extend_from_slice(&self.s[start..self.pos]);
            match self.peek() {
                None => return Err(self.eof("a string")),
                Some(b'"') => {
                    self.pos += 1;
                    // Only whole UTF-8 sequences and escapes were appended.
                    return String::from_utf8(out)
                        .map_err(|_| self.error_at("invalid UTF-8", self.pos));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = match self.peek() {
                        None => return Err(self.eof("a string")),
                        Some(e) => e,
                    };
                    self.pos += 1;
                    match esc {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let c = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(self.error_at("invalid escape", self.pos - 1)),
                    }
                }
                Some(_) => {
                    return Err(self.error_at(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                        self.pos,
                    ))
                }
            }
        }
    }

    fn hex4(&mut self) -> PResult<u16> {
        let mut n: u16 = 0;
        for _ in 0..4 {
            let b = match self.peek() {
                None => return Err(self.eof("a string")),
                Some(b) => b,
            };
            let d = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(self.error_at("invalid escape", self.pos)),
            };
            n = n * 16 + d as u16;
            self.pos += 1;
        }
        Ok(n)
    }

    /// After `\u`.
    fn unicode_escape(&mut self) -> PResult<char> {
        let escape_start = self.pos - 2;
        let first = self.hex4()?;
        match first {
            0xD800..=0xDBFF => {
                if self.s.get(self.pos) == Some(&b'\\') && self.s.get(self.pos + 1) == Some(&b'u') {
                    self.pos += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..=0xDFFF).contains(&second) {
                        return Err(
                            self.error_at("lone leading surrogate in hex escape", escape_start)
                        );
                    }
                    let c =
                        0x10000 + (((first as u32) - 0xD800) << 10) + ((second as u32) - 0xDC00);
                    char::from_u32(c)
                        .ok_or_else(|| self.error_at("invalid unicode code point", escape_start))
                } else {
                    Err(self.error_at("lone leading surrogate in hex escape", escape_start))
                }
            }
            0xDC00..=0xDFFF => {
                Err(self.error_at("lone trailing surrogate in hex escape", escape_start))
            }
            c => char::from_u32(c as u32)
                .ok_or_else(|| self.error_at("invalid unicode code point", escape_start)),
        }
    }

    fn number(&mut self) -> PResult<JValue> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.error_at("invalid number", self.pos));
                }
            }
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                }
            }
            None => return Err(self.eof("a value")),
            Some(_) => return Err(self.error_at("invalid number", self.pos)),
        }
        let mut is_float = false;
        if self.peek() == Some(b'.') {
            is_float = true;
            self.pos += 1;
            self.digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            is_float = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.digits()?;
        }
        let lexeme = std::str::from_utf8(&self.s[start..self.pos]).expect("ASCII number");
        if !is_float {
            if let Ok(i) = lexeme.parse::<i64>() {
                if i == 0 && lexeme.starts_with('-') {
                    return Ok(JValue::Number(Number::from_f64(-0.0).expect("finite")));
                }
                return Ok(JValue::Number(Number::from(i)));
            }
        }
        let f: f64 = lexeme
            .parse()
            .map_err(|_| self.error_at("invalid number", start))?;
        match Number::from_f64(f) {
            Some(n) if f.is_finite() => Ok(JValue::Number(n)),
            _ => Err(self.error_at("number out of range", self.pos.saturating_sub(1))),
        }
    }

    fn digits(&mut self) -> PResult<()> {
        match self.peek() {
            Some(b'0'..=b'9') => {}
            None => return Err(self.eof("a value")),
            Some(_) => return Err(self.error_at("invalid number", self.pos)),
        }
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------------

/// Lua glue: turns the `(nil, message)` / `(false, message)` convention of the Rust functions
/// into plain string errors (`error(msg, 0)`: no position, no traceback).
const GLUE: &str = r#"
local enc_raw, dec_raw, arr_raw, obj_raw, error = ...
local function json_encode(value)
  local s, e = enc_raw(value)
  if e ~= nil then error(e, 0) end
  return s
end
local function json_decode(text)
  local ok, r = dec_raw(text)
  if not ok then error(r, 0) end
  return r
end
local function array(t)
  local r, e = arr_raw(t)
  if e ~= nil then error(e, 0) end
  return r
end
local function object(t)
  local r, e = obj_raw(t)
  if e ~= nil then error(e, 0) end
  return r
end
return json_encode, json_decode, array, object
"#;

fn mark_fn(lua: &Lua, name: &'static str, array: bool) -> mlua::Result<mlua::Function> {
    lua.create_function(
        move |lua, v: Value| -> mlua::Result<(Value, Option<String>)> {
            let t = match v {
                Value::Nil => lua.create_table()?,
                Value::Table(t) => t,
                other => {
                    return Ok((
                        Value::Nil,
                        Some(format!(
                            "alc.{name}: bad argument #1 't' (table expected, got {})",
                            lua_type_name(&other)
                        )),
                    ))
                }
            };
            if array {
                mark_array(lua, &t)?;
            } else {
                mark_object(lua, &t)?;
            }
            Ok((Value::Table(t), None))
        },
    )
}

/// Registers `alc.json_encode`, `alc.json_decode`, `alc.array`, `alc.object` and
/// `alc.json_null` into `alc` (the sentinel is created here, the marks table when the
/// first table is marked).
///
/// The four functions are Lua functions; every error they raise is a plain Lua string:
/// `alc.json_encode: <reason> at <path>`, `alc.json_decode: <reason> at line <l> column <c>`,
/// `alc.array: bad argument #1 't' (table expected, got number)`.
pub fn register(lua: &Lua, alc: &Table) -> mlua::Result<()> {
    let enc_raw = lua.create_function(
        |lua, v: Value| -> mlua::Result<(Option<String>, Option<String>)> {
            match encode(lua, &v) {
                Ok(s) => Ok((Some(s), None)),
                Err(e) => Ok((None, Some(format!("alc.json_encode: {e}")))),
            }
        },
    )?;
    let dec_raw = lua.create_function(|lua, v: Value| -> mlua::Result<(bool, Value)> {
        let fail = |msg: String| -> mlua::Result<(bool, Value)> {
            Ok((false, Value::String(lua.create_string(msg)?)))
        };
        let text = match &v {
            Value::String(_) | Value::Integer(_) | Value::Number(_) => {
                lua.coerce_string(v.clone())?
            }
            _ => None,
        };
        let Some(text) = text else {
            return fail(format!(
                "alc.json_decode: bad argument #1 'text' (string expected, got {})",
                if matches!(v, Value::Nil) {
                    "nil".to_string()
                } else {
                    lua_type_name(&v).to_string()
                }
            ));
        };
        let bytes = text.as_bytes();
        match decode(lua, &bytes) {
            Ok(value) => Ok((true, value)),
            Err(e) => fail(format!("alc.json_decode: {e}")),
        }
    })?;
    let arr_raw = mark_fn(lua, "array", true)?;
    let obj_raw = mark_fn(lua, "object", false)?;
    let error_fn: mlua::Function = match lua.globals().raw_get::<Value>("error")? {
        Value::Function(f) => f,
        _ => lua
            .load("return function(msg, level) error(msg, level) end")
            .eval()?,
    };

    let (json_encode, json_decode, array, object): (
        mlua::Function,
        mlua::Function,
        mlua::Function,
        mlua::Function,
    ) = lua
        .load(GLUE)
        .set_name("=alc.json")
        .call((enc_raw, dec_raw, arr_raw, obj_raw, error_fn))?;

    alc.raw_set("json_encode", json_encode)?;
    alc.raw_set("json_decode", json_decode)?;
    alc.raw_set("array", array)?;
    alc.raw_set("object", object)?;
    alc.raw_set("json_null", json_null(lua)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(lua: &Lua, key: &str) -> bool {
        !matches!(lua.named_registry_value::<Value>(key).unwrap(), Value::Nil)
    }

    #[test]
    fn from_json_installs_the_marks_and_the_sentinel_only_when_an_array_needs_them() {
        let lua = Lua::new();
        from_json(
            &lua,
            &serde_json::json!({"task": "t", "n": 1, "o": {"x": null}}),
        )
        .unwrap();
        assert!(!installed(&lua, MARKS_KEY));
        assert!(!installed(&lua, NULL_KEY));

        let v = from_json(&lua, &serde_json::json!({"a": [1, 2]})).unwrap();
        assert!(installed(&lua, MARKS_KEY));
        assert!(!installed(&lua, NULL_KEY), "no null in any array");
        assert_eq!(to_json(&lua, &v).unwrap(), serde_json::json!({"a": [1, 2]}));

        from_json(&lua, &serde_json::json!([null])).unwrap();
        assert!(installed(&lua, NULL_KEY));
    }
}
