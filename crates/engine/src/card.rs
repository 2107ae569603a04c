//! `alc.card` (lua-api.md §2.9), Layer 0: run records.
//!
//! `host.card(op, a, b, c)` returns `(nil, result)` or `(message)`; the thin wrappers of
//! `lua/alc.lua` raise the message with `error(msg, 0)`. Arguments are validated and
//! converted to JSON first (deterministic, no store access); then each call is one journaled
//! effect (`service = "card"`): reads and generated ids come back from the journal on
//! replay, and writes are applied once (the store is not touched while replaying). A
//! create's timestamp is a journaled clock read taken before the write, so a create that is
//! re-executed after a crash regenerates the same id and finds its own card.
//!
//! The query language (`where`, `order_by`), summaries and lineage live here, over the
//! plain records of a [`CardStore`](crate::services::CardStore).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use alc_core::ClockSource;
use mlua::{Lua, MultiValue, Value};
use serde_json::{json, Map, Value as J};

use crate::card_store::{CardAlias, CardCreate, CardModify, SamplesWrite, StoredCard};
use crate::host::{coerce_string, with_host};
use crate::stdlib::lua_type_name;

/// `schema_version` filled in by `create`.
pub const SCHEMA_VERSION: &str = "card/v0";
const DEFAULT_DEPTH: u64 = 10;

// ---- names, ids, fingerprints -----------------------------------------------------------

/// Caller-chosen card ids and alias names: 1–128 of `[A-Za-z0-9_.-]`, not starting with `.`.
pub fn valid_card_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0] != b'.'
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// 64-bit wrapping DJB2 (`h = h * 33 + byte`, from 5381) as 16 hex digits.
pub fn djb2_hex(text: &str) -> String {
    let h = text.bytes().fold(5381u64, |h, b| {
        h.wrapping_mul(33).wrapping_add(u64::from(b))
    });
    format!("{h:016x}")
}

/// 64-bit FNV-1a over several parts (each followed by a NUL separator).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// `model.id` without a leading `claude-` or `gpt-`, ASCII letters and digits only;
/// `model` when that leaves nothing.
pub fn model_short(model_id: Option<&str>) -> String {
    let id = model_id.unwrap_or("");
    let id = id
        .strip_prefix("claude-")
        .or_else(|| id.strip_prefix("gpt-"))
        .unwrap_or(id);
    let s: String = id.chars().filter(char::is_ascii_alphanumeric).collect();
    if s.is_empty() {
        "model".into()
    } else {
        s
    }
}

/// (year, month, day, hour, minute, second) of a Unix time, UTC (proleptic Gregorian).
fn utc_parts(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400) as u32;
    // Shift the epoch to 0000-03-01 so leap days end each 4/100/400-year cycle.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, tod / 3600, tod / 60 % 60, tod % 60)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_utc(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `YYYYMMDDTHHMMSS`.
fn compact_utc(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}")
}

/// Removes `null` object members, recursively; with `arrays`, `null` array elements too.
fn strip_nulls(v: &mut J, arrays: bool) {
    match v {
        J::Object(m) => {
            m.retain(|_, x| !x.is_null());
            for x in m.values_mut() {
                strip_nulls(x, arrays);
            }
        }
        J::Array(a) => {
            if arrays {
                a.retain(|x| !x.is_null());
            }
            for x in a.iter_mut() {
                strip_nulls(x, arrays);
            }
        }
        _ => {}
    }
}

// ---- the where language ------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Nin,
    Exists,
    Contains,
    StartsWith,
}

impl Op {
    fn parse(k: &str) -> Option<Op> {
        Some(match k {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "in" => Op::In,
            "nin" => Op::Nin,
            "exists" => Op::Exists,
            "contains" => Op::Contains,
            "starts_with" => Op::StartsWith,
            _ => return None,
        })
    }
}

/// A parsed `where` predicate.
#[derive(Clone, Debug)]
enum Pred {
    All(Vec<Pred>),
    Any(Vec<Pred>),
    Not(Box<Pred>),
    Cmp { path: Vec<String>, op: Op, value: J },
}

/// An array, or an empty table (which JSON conversion writes as `{}`).
fn as_list(v: &J) -> Option<Vec<J>> {
    match v {
        J::Array(a) => Some(a.clone()),
        J::Object(m) if m.is_empty() => Some(Vec::new()),
        _ => None,
    }
}

fn parse_where(v: &J, prefix: &[String]) -> Result<Pred, String> {
    let obj = match v {
        J::Object(m) => m,
        J::Array(a) if a.is_empty() => return Ok(Pred::All(Vec::new())),
        _ => return Err("where must be a table of fields".into()),
    };
    let mut all = Vec::new();
    for (key, val) in obj {
        match key.as_str() {
            "_and" | "_or" => {
                let subs = as_list(val)
                    .ok_or_else(|| format!("{key} must be an array of predicates"))?
                    .iter()
                    .map(|s| parse_where(s, prefix))
                    .collect::<Result<Vec<_>, _>>()?;
                all.push(if key == "_and" {
                    Pred::All(subs)
                } else {
                    Pred::Any(subs)
                });
            }
            "_not" => all.push(Pred::Not(Box::new(parse_where(val, prefix)?))),
            _ => {
                let mut path = prefix.to_vec();
                path.push(key.clone());
                match val {
                    J::Object(m) if !m.is_empty() && m.keys().all(|k| Op::parse(k).is_some()) => {
                        for (k, x) in m {
                            let op = Op::parse(k).expect("checked above");
                            let value = match op {
                                Op::In | Op::Nin => J::Array(as_list(x).ok_or_else(|| {
                                    format!("'{k}' at '{}' expects an array", path.join("."))
                                })?),
                                Op::Exists if !x.is_boolean() => {
                                    return Err(format!(
                                        "'exists' at '{}' expects a boolean",
                                        path.join(".")
                                    ))
                                }
                                _ => x.clone(),
                            };
                            all.push(Pred::Cmp {
                                path: path.clone(),
                                op,
                                value,
                            });
                        }
                    }
                    J::Object(_) => all.push(parse_where(val, &path)?),
                    _ => all.push(Pred::Cmp {
                        path,
                        op: Op::Eq,
                        value: val.clone(),
                    }),
                }
            }
        }
    }
    Ok(if all.len() == 1 {
        all.pop().expect("one clause")
    } else {
        Pred::All(all)
    })
}

fn fetch<'a>(doc: &'a J, path: &[String]) -> Option<&'a J> {
    let mut cur = doc;
    for seg in path {
        cur = cur.as_object()?.get(seg)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// Equality where integers and floats compare numerically.
fn json_eq(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) if !x.is_f64() && !y.is_f64() => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}

/// Ordering of two values of the same kind (numbers, strings, booleans); `None` otherwise.
fn json_cmp(a: &J, b: &J) -> Option<Ordering> {
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) if !x.is_f64() && !y.is_f64() => Some(i.cmp(&j)),
            _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
        },
        (J::String(x), J::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (J::Bool(x), J::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eval(p: &Pred, doc: &J) -> bool {
    match p {
        Pred::All(ps) => ps.iter().all(|p| eval(p, doc)),
        Pred::Any(ps) => ps.iter().any(|p| eval(p, doc)),
        Pred::Not(p) => !eval(p, doc),
        Pred::Cmp { path, op, value } => {
            let actual = fetch(doc, path);
            let list = || value.as_array().map(Vec::as_slice).unwrap_or(&[]);
            match (op, actual) {
                (Op::Exists, a) => a.is_some() == value.as_bool().unwrap_or(true),
                (Op::Ne, None) | (Op::Nin, None) => true,
                (_, None) => false,
                (Op::Eq, Some(a)) => json_eq(a, value),
                (Op::Ne, Some(a)) => !json_eq(a, value),
                (Op::In, Some(a)) => list().iter().any(|x| json_eq(a, x)),
                (Op::Nin, Some(a)) => !list().iter().any(|x| json_eq(a, x)),
                (Op::Lt | Op::Lte | Op::Gt | Op::Gte, Some(a)) => {
                    json_cmp(a, value).is_some_and(|o| match op {
                        Op::Lt => o == Ordering::Less,
                        Op::Lte => o != Ordering::Greater,
                        Op::Gt => o == Ordering::Greater,
                        _ => o != Ordering::Less,
                    })
                }
                (Op::Contains, Some(J::String(s))) => value.as_str().is_some_and(|n| s.contains(n)),
                (Op::Contains, Some(J::Array(items))) => items.iter().any(|x| json_eq(x, value)),
                (Op::StartsWith, Some(J::String(s))) => {
                    value.as_str().is_some_and(|n| s.starts_with(n))
                }
                (Op::Contains | Op::StartsWith, Some(_)) => false,
            }
        }
    }
}

// ---- ordering ------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct OrderKey {
    path: Vec<String>,
    desc: bool,
}

fn parse_order_key(raw: &str) -> Result<OrderKey, String> {
    let (desc, rest) = match raw.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, raw),
    };
    let path: Vec<String> = rest.split('.').map(str::to_string).collect();
    if rest.is_empty() || path.iter().any(String::is_empty) {
        return Err(format!("invalid order_by path '{raw}'"));
    }
    Ok(OrderKey { path, desc })
}

fn parse_order_by(v: &J) -> Result<Vec<OrderKey>, String> {
    match v {
        J::String(s) => Ok(vec![parse_order_key(s)?]),
        J::Array(_) | J::Object(_) => as_list(v)
            .ok_or("order_by must be a path or an array of paths")?
            .iter()
            .map(|x| match x {
                J::String(s) => parse_order_key(s),
                _ => Err("order_by must be a path or an array of paths".to_string()),
            })
            .collect(),
        _ => Err("order_by must be a path or an array of paths".into()),
    }
}

/// Rank of a value's kind, so that values of different kinds still sort totally.
fn kind_rank(v: &J) -> u8 {
    match v {
        J::Null => 0,
        J::Bool(_) => 1,
        J::Number(_) => 2,
        J::String(_) => 3,
        J::Array(_) => 4,
        J::Object(_) => 5,
    }
}

/// A total order over present values: by kind, then numerically / bytewise / canonically.
fn total_cmp(a: &J, b: &J) -> Ordering {
    kind_rank(a).cmp(&kind_rank(b)).then_with(|| match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) if !x.is_f64() && !y.is_f64() => i.cmp(&j),
            _ => {
                let (p, q) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                p.total_cmp(&q)
            }
        },
        (J::String(x), J::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        (J::Bool(x), J::Bool(y)) => x.cmp(y),
        (J::Null, J::Null) => Ordering::Equal,
        _ => crate::json::canonical_string(a).cmp(&crate::json::canonical_string(b)),
    })
}

/// Compares by one key: missing values last whatever the direction.
fn key_cmp(a: &J, b: &J, k: &OrderKey) -> Ordering {
    match (fetch(a, &k.path), fetch(b, &k.path)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            let o = total_cmp(x, y);
            if k.desc {
                o.reverse()
            } else {
                o
            }
        }
    }
}

/// The default order: newest `created_at` first (missing last), ties by `card_id` descending.
fn default_cmp(a: &J, b: &J) -> Ordering {
    let ca = OrderKey {
        path: vec!["created_at".into()],
        desc: true,
    };
    let id = OrderKey {
        path: vec!["card_id".into()],
        desc: true,
    };
    key_cmp(a, b, &ca).then_with(|| key_cmp(a, b, &id))
}

fn summary(c: &StoredCard) -> J {
    let mut m = Map::new();
    let card = &c.card;
    m.insert(
        "card_id".into(),
        card.get("card_id").cloned().unwrap_or(J::Null),
    );
    m.insert("pkg".into(), J::String(c.pkg.clone()));
    let mut put = |key: &str, path: &[&str], want_number: bool| {
        let mut cur = card;
        for seg in path {
            match cur.get(*seg) {
                Some(x) => cur = x,
                None => return,
            }
        }
        if (want_number && cur.is_number()) || (!want_number && cur.is_string()) {
            m.insert(key.into(), cur.clone());
        }
    };
    put("created_at", &["created_at"], false);
    put("model", &["model", "id"], false);
    put("scenario", &["scenario", "name"], false);
    put("pass_rate", &["stats", "pass_rate"], true);
    J::Object(m)
}

/// Cards of the store as (full card, summary), in the default order.
fn sorted_cards(cards: Vec<StoredCard>) -> Vec<StoredCard> {
    let mut cards: Vec<StoredCard> = cards
        .into_iter()
        .filter(|c| c.card.get("card_id").is_some_and(J::is_string))
        .collect();
    cards.sort_by(|a, b| default_cmp(&a.card, &b.card));
    cards
}

// ---- argument helpers ----------------------------------------------------------------------

fn bad_arg(f: &str, n: usize, param: &str, expected: &str, v: &Value) -> String {
    format!(
        "alc.card.{f}: bad argument #{n} '{param}' ({expected} expected, got {})",
        lua_type_name(v)
    )
}

fn string_arg(f: &str, n: usize, param: &str, v: &Value) -> Result<String, String> {
    coerce_string(v).ok_or_else(|| bad_arg(f, n, param, "string", v))
}

fn table_json(lua: &Lua, f: &str, n: usize, param: &str, v: &Value) -> Result<Option<J>, String> {
    match v {
        Value::Nil => Ok(None),
        Value::Table(_) => crate::json::to_json(lua, v)
            .map(Some)
            .map_err(|e| format!("alc.card.{f}: {e}")),
        other => Err(bad_arg(f, n, param, "table", other)),
    }
}

/// A non-negative integer field of an options table (integral floats accepted).
fn count_field(f: &str, opts: &J, key: &str) -> Result<Option<u64>, String> {
    match opts.get(key) {
        None | Some(J::Null) => Ok(None),
        Some(J::Number(n)) => {
            if let Some(u) = n.as_u64() {
                return Ok(Some(u));
            }
            match n.as_f64() {
                Some(x) if x >= 0.0 && x.fract() == 0.0 && x < 1.8e19 => Ok(Some(x as u64)),
                _ => Err(format!(
                    "alc.card.{f}: {key} must be a non-negative integer"
                )),
            }
        }
        Some(_) => Err(format!(
            "alc.card.{f}: {key} must be a non-negative integer"
        )),
    }
}

fn string_field(f: &str, opts: &J, key: &str) -> Result<Option<String>, String> {
    match opts.get(key) {
        None | Some(J::Null) => Ok(None),
        Some(J::String(s)) => Ok(Some(s.clone())),
        Some(J::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("alc.card.{f}: {key} must be a string")),
    }
}

fn page<T>(items: impl Iterator<Item = T>, offset: Option<u64>, limit: Option<u64>) -> Vec<T> {
    let skip = usize::try_from(offset.unwrap_or(0)).unwrap_or(usize::MAX);
    let take = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
    items.skip(skip).take(take).collect()
}

// ---- operations ----------------------------------------------------------------------------

/// The outcome of one operation: a journaled `{"ok": …}` / `{"err": …}`, or an argument
/// error raised before any effect.
type Outcome = Result<J, String>;

fn ok(v: J) -> J {
    json!({ "ok": v })
}

fn err(msg: String) -> J {
    json!({ "err": msg })
}

/// Runs `live` against the session's card store as one journaled effect.
fn effect(
    lua: &Lua,
    op: &str,
    args: J,
    writes: bool,
    live: impl FnOnce(&dyn crate::card_store::CardStore) -> J,
) -> Outcome {
    with_host(lua, |h| {
        h.effect_separate("card", op, args, writes, |h| match h.cards.clone() {
            Some(store) => live(store.as_ref()),
            None => err(format!("alc.card.{op}: no card store")),
        })
    })
    .map_err(|e| match e {
        mlua::Error::RuntimeError(m) => m,
        other => other.to_string(),
    })
}

fn create(lua: &Lua, t: &Value) -> Outcome {
    const F: &str = "alc.card.create";
    if !matches!(t, Value::Table(_)) {
        return Err(format!("{F}: input must be a table"));
    }
    let mut card = crate::json::to_json(lua, t).map_err(|e| format!("{F}: {e}"))?;
    strip_nulls(&mut card, true);
    let J::Object(mut obj) = card else {
        return Err(format!("{F}: pkg.name is required"));
    };
    let pkg = match obj.get("pkg").and_then(|p| p.get("name")) {
        Some(J::String(s)) => s.clone(),
        _ => return Err(format!("{F}: pkg.name is required")),
    };
    if !crate::services::valid_package_name(&pkg) {
        return Err(format!("{F}: invalid name '{pkg}'"));
    }
    let given = match obj.get("card_id") {
        None => None,
        Some(J::String(s)) if valid_card_id(s) => Some(s.clone()),
        Some(J::String(s)) => return Err(format!("{F}: invalid name '{s}'")),
        Some(other) => {
            return Err(format!(
                "{F}: invalid name '{}'",
                crate::json::canonical_string(other)
            ))
        }
    };
    // Virtual clock, journaled before the write.
    let secs = with_host(lua, |h| h.clock_read(ClockSource::OsTime))
        .map_err(|e| e.to_string())?
        .as_i64()
        .unwrap_or(0);
    obj.entry("schema_version")
        .or_insert_with(|| J::String(SCHEMA_VERSION.into()));
    obj.entry("created_at")
        .or_insert_with(|| J::String(rfc3339_utc(secs)));
    obj.entry("created_by")
        .or_insert_with(|| J::String(format!("alc@{}", env!("CARGO_PKG_VERSION"))));
    if let Some(params @ (J::Object(_) | J::Array(_))) = obj.get("params") {
        let fp = djb2_hex(&crate::json::canonical_string(params));
        obj.insert("param_fingerprint".into(), J::String(fp));
    }
    let generated = given.is_none();
    let card_id = match given {
        Some(id) => id,
        None => {
            let (session, vm, n) = with_host(lua, |h| {
                h.card_counter += 1;
                (h.session_id.as_str().to_string(), h.vm, h.card_counter)
            });
            let model = obj
                .get("model")
                .and_then(|m| m.get("id"))
                .and_then(J::as_str);
            let body = crate::json::canonical_string(&J::Object(obj.clone()));
            let h = fnv1a(&[
                body.as_bytes(),
                session.as_bytes(),
                vm.to_string().as_bytes(),
                n.to_string().as_bytes(),
            ]);
            let hex = format!("{h:016x}");
            format!(
                "{pkg}_{}_{}_{}",
                model_short(model),
                compact_utc(secs),
                &hex[10..]
            )
        }
    };
    obj.insert("card_id".into(), J::String(card_id.clone()));
    let card = J::Object(obj);
    let args = json!({ "pkg": pkg, "card": card });
    effect(lua, "create", args, true, move |s| {
        let done = json!({ "card_id": card_id, "pkg": pkg });
        match s.create(&pkg, &card_id, &card) {
            Ok(CardCreate::Created) => ok(done),
            // A generated id embeds this session and call: finding the identical card means
            // this very create already ran (re-executed after a crash).
            Ok(CardCreate::Exists(existing)) if generated && existing.card == card => ok(done),
            Ok(CardCreate::Exists(_)) => {
                err(format!("{F}: card '{card_id}' already exists (immutable)"))
            }
            Err(e) => err(format!("{F}: {e}")),
        }
    })
}

fn get(lua: &Lua, id: &Value) -> Outcome {
    let id = string_arg("get", 1, "card_id", id)?;
    if !valid_card_id(&id) {
        return Ok(ok(J::Null));
    }
    effect(
        lua,
        "get",
        json!({ "card_id": id }),
        false,
        move |s| match s.get(&id) {
            Ok(c) => ok(c.map(|c| c.card).unwrap_or(J::Null)),
            Err(e) => err(format!("alc.card.get: {e}")),
        },
    )
}

fn pkg_filter(lua: &Lua, f: &str, v: &Value) -> Result<Option<String>, String> {
    match table_json(lua, f, 1, "filter", v)? {
        Some(q) => string_field(f, &q, "pkg"),
        None => Ok(None),
    }
}

fn list_cards(
    s: &dyn crate::card_store::CardStore,
    pkg: Option<&str>,
) -> Result<Vec<StoredCard>, String> {
    if pkg.is_some_and(|p| !crate::services::valid_package_name(p)) {
        return Ok(Vec::new());
    }
    s.list(pkg).map(sorted_cards)
}

fn list(lua: &Lua, filter: &Value) -> Outcome {
    let pkg = pkg_filter(lua, "list", filter)?;
    effect(
        lua,
        "list",
        json!({ "pkg": pkg }),
        false,
        move |s| match list_cards(s, pkg.as_deref()) {
            Ok(cards) => ok(J::Array(cards.iter().map(summary).collect())),
            Err(e) => err(format!("alc.card.list: {e}")),
        },
    )
}

fn find(lua: &Lua, query: &Value) -> Outcome {
    const F: &str = "alc.card.find";
    let q = table_json(lua, "find", 1, "query", query)?.unwrap_or_else(|| json!({}));
    let pkg = string_field("find", &q, "pkg")?;
    let pred = match q.get("where") {
        None | Some(J::Null) => None,
        Some(w) => Some(parse_where(w, &[]).map_err(|e| format!("{F}: {e}"))?),
    };
    let order = match q.get("order_by") {
        None | Some(J::Null) => Vec::new(),
        Some(o) => parse_order_by(o).map_err(|e| format!("{F}: {e}"))?,
    };
    let limit = count_field("find", &q, "limit")?;
    let offset = count_field("find", &q, "offset")?;
    effect(lua, "find", q, false, move |s| {
        let cards = match list_cards(s, pkg.as_deref()) {
            Ok(c) => c,
            Err(e) => return err(format!("{F}: {e}")),
        };
        let mut rows: Vec<StoredCard> = cards
            .into_iter()
            .filter(|c| pred.as_ref().is_none_or(|p| eval(p, &c.card)))
            .collect();
        if !order.is_empty() {
            // Stable: equal keys keep the default order.
            rows.sort_by(|a, b| {
                order
                    .iter()
                    .map(|k| key_cmp(&a.card, &b.card, k))
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            });
        }
        ok(J::Array(page(rows.iter().map(summary), offset, limit)))
    })
}

fn append(lua: &Lua, id: &Value, fields: &Value) -> Outcome {
    const F: &str = "alc.card.append";
    let id = string_arg("append", 1, "card_id", id)?;
    let Value::Table(_) = fields else {
        return Err(bad_arg("append", 2, "fields", "table", fields));
    };
    let mut fields = crate::json::to_json(lua, fields).map_err(|e| format!("{F}: {e}"))?;
    strip_nulls(&mut fields, true);
    let fields = match fields {
        J::Object(m) => m,
        J::Array(a) if a.is_empty() => Map::new(),
        _ => return Err(format!("{F}: fields must be a table of named fields")),
    };
    if !valid_card_id(&id) {
        return Ok(err(format!("{F}: card '{id}' not found")));
    }
    let args = json!({ "card_id": id, "fields": fields });
    effect(lua, "append", args, true, move |s| {
        let mut edit = |card: &mut Map<String, J>| {
            if let Some(k) = fields.keys().find(|k| card.contains_key(*k)) {
                return Err(format!(
                    "{F}: key '{k}' already set on card '{id}' (immutable)"
                ));
            }
            card.extend(fields.clone());
            Ok(())
        };
        match s.modify(&id, &mut edit) {
            Ok(CardModify::Done(card)) => ok(card),
            Ok(CardModify::Rejected(msg)) => err(msg),
            Ok(CardModify::NotFound) => err(format!("{F}: card '{id}' not found")),
            Err(e) => err(format!("{F}: {e}")),
        }
    })
}

fn write_samples(lua: &Lua, id: &Value, rows: &Value) -> Outcome {
    const F: &str = "alc.card.write_samples";
    let id = string_arg("write_samples", 1, "card_id", id)?;
    let not_array = || format!("{F}: samples must be an array");
    let Value::Table(_) = rows else {
        return Err(not_array());
    };
    let mut rows = crate::json::to_json(lua, rows).map_err(|e| format!("{F}: {e}"))?;
    strip_nulls(&mut rows, false);
    let rows = as_list(&rows).ok_or_else(not_array)?;
    if !valid_card_id(&id) {
        return Ok(err(format!("{F}: card '{id}' not found")));
    }
    let args = json!({ "card_id": id, "rows": rows });
    effect(lua, "write_samples", args, true, move |s| {
        match s.write_samples(&id, &rows) {
            Ok(SamplesWrite::Written) => ok(json!({ "count": rows.len() })),
            Ok(SamplesWrite::Exists) => err(format!(
                "{F}: samples already exist for '{id}' (write-once)"
            )),
            Ok(SamplesWrite::NotFound) => err(format!("{F}: card '{id}' not found")),
            Err(e) => err(format!("{F}: {e}")),
        }
    })
}

fn read_samples(lua: &Lua, id: &Value, opts: &Value) -> Outcome {
    const F: &str = "alc.card.read_samples";
    let id = string_arg("read_samples", 1, "card_id", id)?;
    let opts = match opts {
        Value::Nil => json!({}),
        Value::Table(_) => crate::json::to_json(lua, opts).map_err(|e| format!("{F}: {e}"))?,
        other => return Err(bad_arg("read_samples", 2, "opts", "table", other)),
    };
    let offset = count_field("read_samples", &opts, "offset")?;
    let limit = count_field("read_samples", &opts, "limit")?;
    let pred = match opts.get("where") {
        None | Some(J::Null) => None,
        Some(w) => Some(parse_where(w, &[]).map_err(|e| format!("{F}: {e}"))?),
    };
    if !valid_card_id(&id) {
        return Ok(ok(json!([])));
    }
    let args = json!({ "card_id": id, "opts": opts });
    effect(lua, "read_samples", args, false, move |s| {
        match s.samples(&id) {
            Ok(rows) => {
                let rows = rows.unwrap_or_default();
                let matching = rows
                    .into_iter()
                    .filter(|r| pred.as_ref().is_none_or(|p| eval(p, r)));
                ok(J::Array(page(matching, offset, limit)))
            }
            Err(e) => err(format!("{F}: {e}")),
        }
    })
}

fn alias_row(a: &CardAlias) -> J {
    let mut m = Map::new();
    m.insert("name".into(), J::String(a.name.clone()));
    m.insert("card_id".into(), J::String(a.card_id.clone()));
    if let Some(p) = &a.pkg {
        m.insert("pkg".into(), J::String(p.clone()));
    }
    m.insert("set_at".into(), J::String(a.set_at.clone()));
    if let Some(n) = &a.note {
        m.insert("note".into(), J::String(n.clone()));
    }
    J::Object(m)
}

fn alias_set(lua: &Lua, name: &Value, id: &Value, opts: &Value) -> Outcome {
    const F: &str = "alc.card.alias_set";
    let name = string_arg("alias_set", 1, "name", name)?;
    let id = string_arg("alias_set", 2, "card_id", id)?;
    let opts = match opts {
        Value::Nil => json!({}),
        Value::Table(_) => crate::json::to_json(lua, opts).map_err(|e| format!("{F}: {e}"))?,
        other => return Err(bad_arg("alias_set", 3, "opts", "table", other)),
    };
    let pkg = string_field("alias_set", &opts, "pkg")?;
    let note = string_field("alias_set", &opts, "note")?;
    if !valid_card_id(&name) {
        return Err(format!("{F}: invalid name '{name}'"));
    }
    if !valid_card_id(&id) {
        return Ok(err(format!("{F}: card '{id}' not found")));
    }
    let secs = with_host(lua, |h| h.clock_read(ClockSource::OsTime))
        .map_err(|e| e.to_string())?
        .as_i64()
        .unwrap_or(0);
    let alias = CardAlias {
        name,
        card_id: id,
        pkg,
        set_at: rfc3339_utc(secs),
        note,
    };
    let args = alias_row(&alias);
    effect(lua, "alias_set", args, true, move |s| {
        match s.get(&alias.card_id) {
            Ok(Some(_)) => match s.set_alias(&alias) {
                Ok(()) => ok(alias_row(&alias)),
                Err(e) => err(format!("{F}: {e}")),
            },
            Ok(None) => err(format!("{F}: card '{}' not found", alias.card_id)),
            Err(e) => err(format!("{F}: {e}")),
        }
    })
}

fn alias_list(lua: &Lua, filter: &Value) -> Outcome {
    let pkg = pkg_filter(lua, "alias_list", filter)?;
    effect(
        lua,
        "alias_list",
        json!({ "pkg": pkg }),
        false,
        move |s| match s.aliases() {
            Ok(rows) => ok(J::Array(
                rows.iter()
                    .filter(|a| pkg.as_ref().is_none_or(|p| a.pkg.as_ref() == Some(p)))
                    .map(alias_row)
                    .collect(),
            )),
            Err(e) => err(format!("alc.card.alias_list: {e}")),
        },
    )
}

fn get_by_alias(lua: &Lua, name: &Value) -> Outcome {
    const F: &str = "alc.card.get_by_alias";
    let name = string_arg("get_by_alias", 1, "name", name)?;
    if !valid_card_id(&name) {
        return Ok(ok(J::Null));
    }
    effect(
        lua,
        "get_by_alias",
        json!({ "name": name }),
        false,
        move |s| {
            let rows = match s.aliases() {
                Ok(r) => r,
                Err(e) => return err(format!("{F}: {e}")),
            };
            let Some(a) = rows.into_iter().find(|a| a.name == name) else {
                return ok(J::Null);
            };
            match s.get(&a.card_id) {
                Ok(c) => ok(c.map(|c| c.card).unwrap_or(J::Null)),
                Err(e) => err(format!("{F}: {e}")),
            }
        },
    )
}

// ---- lineage -------------------------------------------------------------------------------

struct Lineage {
    cards: BTreeMap<String, StoredCard>,
    children: BTreeMap<String, Vec<String>>,
    filter: Option<Vec<String>>,
    include_stats: bool,
}

fn prior_of(card: &J) -> (Option<String>, Option<String>) {
    let meta = card.get("metadata");
    let s = |k: &str| {
        meta.and_then(|m| m.get(k))
            .and_then(J::as_str)
            .map(str::to_string)
    };
    (s("prior_card_id"), s("prior_relation"))
}

impl Lineage {
    fn follows(&self, relation: Option<&String>) -> bool {
        match &self.filter {
            None => true,
            Some(allowed) => relation.is_some_and(|r| allowed.contains(r)),
        }
    }

    fn node(&self, id: &str, depth: i64) -> J {
        let c = &self.cards[id];
        let (prior, relation) = prior_of(&c.card);
        let mut m = Map::new();
        m.insert("card_id".into(), J::String(id.to_string()));
        m.insert("pkg".into(), J::String(c.pkg.clone()));
        m.insert("depth".into(), J::from(depth));
        if let Some(p) = prior {
            m.insert("prior_card_id".into(), J::String(p));
        }
        if let Some(r) = relation {
            m.insert("prior_relation".into(), J::String(r));
        }
        if self.include_stats {
            if let Some(s) = c.card.get("stats") {
                m.insert("stats".into(), s.clone());
            }
        }
        J::Object(m)
    }

    /// The parent `id` links to, when the link is followed and the parent exists.
    fn parent(&self, id: &str) -> Option<(String, Option<String>)> {
        let (prior, relation) = prior_of(&self.cards.get(id)?.card);
        let prior = prior?;
        (self.cards.contains_key(&prior) && self.follows(relation.as_ref()))
            .then_some((prior, relation))
    }

    /// Children of `id` whose link is followed, sorted by id.
    fn kids(&self, id: &str) -> Vec<(String, Option<String>)> {
        self.children
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let (_, relation) = prior_of(&self.cards[c].card);
                self.follows(relation.as_ref())
                    .then(|| (c.clone(), relation))
            })
            .collect()
    }
}

fn edge(from: &str, to: &str, relation: Option<String>) -> J {
    let mut m = Map::new();
    m.insert("from".into(), J::String(from.to_string()));
    m.insert("to".into(), J::String(to.to_string()));
    if let Some(r) = relation {
        m.insert("relation".into(), J::String(r));
    }
    J::Object(m)
}

fn walk(l: &Lineage, root: &str, up: bool, down: bool, depth: u64) -> J {
    let mut nodes = vec![l.node(root, 0)];
    let mut edges = Vec::new();
    let mut seen: BTreeSet<String> = BTreeSet::from([root.to_string()]);
    let mut truncated = false;
    if up {
        let mut cur = root.to_string();
        let mut step = 0;
        while let Some((parent, relation)) = l.parent(&cur) {
            if seen.contains(&parent) {
                break;
            }
            if step == depth {
                truncated = true;
                break;
            }
            step += 1;
            nodes.push(l.node(&parent, -(step as i64)));
            edges.push(edge(&cur, &parent, relation));
            seen.insert(parent.clone());
            cur = parent;
        }
    }
    if down {
        let mut frontier = vec![root.to_string()];
        let mut level = 0;
        while !frontier.is_empty() {
            let mut next = Vec::new();
            for parent in &frontier {
                for (child, relation) in l.kids(parent) {
                    if seen.contains(&child) {
                        continue;
                    }
                    if level == depth {
                        truncated = true;
                        continue;
                    }
                    nodes.push(l.node(&child, level as i64 + 1));
                    edges.push(edge(&child, parent, relation));
                    seen.insert(child.clone());
                    next.push(child);
                }
            }
            if level == depth {
                break;
            }
            level += 1;
            frontier = next;
        }
    }
    json!({ "root": root, "nodes": nodes, "edges": edges, "truncated": truncated })
}

fn lineage(lua: &Lua, query: &Value) -> Outcome {
    const F: &str = "alc.card.lineage";
    let Value::Table(_) = query else {
        return Err(bad_arg("lineage", 1, "query", "table", query));
    };
    let q = crate::json::to_json(lua, query).map_err(|e| format!("{F}: {e}"))?;
    let id = match q.get("card_id") {
        Some(J::String(s)) => s.clone(),
        Some(J::Number(n)) => n.to_string(),
        _ => return Err(format!("{F}: card_id is required")),
    };
    let direction = match q.get("direction") {
        None | Some(J::Null) => "up".to_string(),
        Some(J::String(s)) => s.clone(),
        Some(other) => crate::json::canonical_string(other),
    };
    let (up, down) = match direction.as_str() {
        "up" => (true, false),
        "down" => (false, true),
        "both" => (true, true),
        other => {
            return Err(format!(
                "{F}: direction must be 'up', 'down', or 'both' (got '{other}')"
            ))
        }
    };
    let depth = count_field("lineage", &q, "depth")?.unwrap_or(DEFAULT_DEPTH);
    let include_stats = match q.get("include_stats") {
        None | Some(J::Null) => true,
        Some(J::Bool(b)) => *b,
        Some(_) => return Err(format!("{F}: include_stats must be a boolean")),
    };
    let filter = match q.get("relation_filter") {
        None | Some(J::Null) => None,
        Some(J::String(s)) => Some(vec![s.clone()]),
        Some(v) => Some(
            as_list(v)
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    format!("{F}: relation_filter must be a string or an array of strings")
                })?,
        ),
    };
    if !valid_card_id(&id) {
        return Ok(ok(J::Null));
    }
    let args = json!({
        "card_id": id, "direction": direction, "depth": depth,
        "include_stats": include_stats, "relation_filter": filter,
    });
    effect(lua, "lineage", args, false, move |s| {
        let all = match s.list(None) {
            Ok(c) => c,
            Err(e) => return err(format!("{F}: {e}")),
        };
        let mut cards = BTreeMap::new();
        for c in all {
            if let Some(cid) = c.card.get("card_id").and_then(J::as_str) {
                cards.entry(cid.to_string()).or_insert(c);
            }
        }
        if !cards.contains_key(&id) {
            return ok(J::Null);
        }
        let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (cid, c) in &cards {
            if let (Some(parent), _) = prior_of(&c.card) {
                children.entry(parent).or_default().push(cid.clone());
            }
        }
        let l = Lineage {
            cards,
            children,
            filter,
            include_stats,
        };
        ok(walk(&l, &id, up, down, depth))
    })
}

// ---- the Lua entry point -------------------------------------------------------------------

/// `host.card(op, a, b, c)`: `(nil, result)` or `(message)`.
pub fn card_call(
    lua: &Lua,
    (op, a, b, c): (String, Value, Value, Value),
) -> mlua::Result<MultiValue> {
    let outcome = match op.as_str() {
        "create" => create(lua, &a),
        "get" => get(lua, &a),
        "list" => list(lua, &a),
        "find" => find(lua, &a),
        "append" => append(lua, &a, &b),
        "write_samples" => write_samples(lua, &a, &b),
        "read_samples" => read_samples(lua, &a, &b),
        "alias_set" => alias_set(lua, &a, &b, &c),
        "alias_list" => alias_list(lua, &a),
        "get_by_alias" => get_by_alias(lua, &a),
        "lineage" => lineage(lua, &a),
        other => Err(format!("alc.card: unknown operation '{other}'")),
    };
    let message = |m: &str| -> mlua::Result<MultiValue> {
        Ok(MultiValue::from_iter([Value::String(
            lua.create_string(m)?,
        )]))
    };
    let result = match outcome {
        Ok(r) => r,
        Err(m) => return message(&m),
    };
    if let Some(e) = result.get("err").and_then(J::as_str) {
        return message(e);
    }
    let value = result.get("ok").cloned().unwrap_or(J::Null);
    Ok(MultiValue::from_iter([
        Value::Nil,
        crate::json::from_json(lua, &value)?,
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_ids() {
        assert_eq!(rfc3339_utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(compact_utc(1_700_000_000), "20231114T221320");
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
        assert_eq!(model_short(Some("claude-opus-4-6")), "opus46");
        assert_eq!(model_short(Some("gpt-4o")), "4o");
        assert_eq!(model_short(None), "model");
        assert_eq!(model_short(Some("---")), "model");
        assert_eq!(djb2_hex(""), "0000000000001505");
        assert_eq!(djb2_hex("a"), format!("{:016x}", 5381u64 * 33 + 97));
        assert!(valid_card_id("pk_a.b-1"));
        for bad in ["", ".x", "a/b", "../x", "a b", &"x".repeat(129)] {
            assert!(!valid_card_id(bad), "{bad}");
        }
    }

    #[test]
    fn where_language() {
        let card = json!({"pkg": {"name": "pk"}, "stats": {"pass_rate": 1, "n": 3},
            "tags": ["a", "b"], "title": "hello world"});
        let check = |w: J| eval(&parse_where(&w, &[]).unwrap(), &card);
        assert!(check(json!({"stats": {"pass_rate": {"gte": 0.8}}})));
        assert!(check(json!({"stats": {"pass_rate": 1.0}})));
        assert!(!check(json!({"pkg": "pk"})));
        assert!(check(json!({"pkg": {"name": "pk"}})));
        assert!(check(json!({"missing": {"ne": 1}})));
        assert!(check(json!({"missing": {"nin": [1]}})));
        assert!(check(json!({"missing": {"exists": false}})));
        assert!(!check(json!({"missing": {"lt": 1}})));
        assert!(check(json!({"stats": {"n": {"in": [2, 3]}}})));
        assert!(check(
            json!({"title": {"contains": "lo w", "starts_with": "he"}})
        ));
        assert!(check(json!({"tags": {"contains": "b"}})));
        assert!(check(
            json!({"_or": [{"stats": {"n": 9}}, {"stats": {"n": 3}}]})
        ));
        assert!(!check(json!({"_not": {"stats": {"n": 3}}})));
        assert!(check(json!({"_and": {}})));
        assert!(parse_where(&json!({"x": {"in": 3}}), &[]).is_err());
        assert!(parse_where(&json!("x"), &[]).is_err());
    }

    #[test]
    fn ordering_is_total_and_puts_missing_last() {
        let mut v = [
            json!({"x": "s"}),
            json!({}),
            json!({"x": 2}),
            json!({"x": 1.5}),
            json!({"x": true}),
        ];
        let asc = parse_order_key("x").unwrap();
        v.sort_by(|a, b| key_cmp(a, b, &asc));
        assert_eq!(v[0], json!({"x": true}));
        assert_eq!(v[1], json!({"x": 1.5}));
        assert_eq!(v[4], json!({}));
        let desc = parse_order_key("-x").unwrap();
        v.sort_by(|a, b| key_cmp(a, b, &desc));
        assert_eq!(v[0], json!({"x": "s"}));
        assert_eq!(v[4], json!({}));
        assert!(parse_order_key("a..b").is_err());
        assert!(parse_order_key("-").is_err());
    }
}
