//! Layer-0 text helpers (lua-api.md §2.3): `alc.chunk`, `alc.match_enum`, `alc.match_bool`.
//!
//! Each function returns `(value, nil)` or `(nil, message)`; the Lua wrappers in
//! `lua/stdlib.lua` raise the message with `error(msg, 0)`.

use mlua::{Lua, Table, Value};

use super::{lua_type_name, Reply};

/// A string argument with number coercion (lua-api.md §0).
fn coerce_string(lua: &Lua, v: &Value) -> mlua::Result<Option<String>> {
    Ok(match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(_) | Value::Number(_) => {
            lua.coerce_string(v.clone())?.map(|s| s.to_string_lossy())
        }
        _ => None,
    })
}

/// A non-negative integer option (integral floats accepted).
fn count_opt(v: &Value) -> Option<Option<usize>> {
    match v {
        Value::Nil => Some(None),
        Value::Integer(i) if *i >= 0 => Some(Some(*i as usize)),
        Value::Number(n) if *n >= 0.0 && n.fract() == 0.0 && *n <= usize::MAX as f64 => {
            Some(Some(*n as usize))
        }
        _ => None,
    }
}

/// Windows of `size` units starting at 0, advancing by `size - overlap` (or 1); the window
/// that reaches the end is the last.
pub fn windows<T: Clone>(items: &[T], size: usize, overlap: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    if items.is_empty() || size == 0 {
        return out;
    }
    let step = if overlap < size { size - overlap } else { 1 };
    let mut start = 0;
    loop {
        let end = (start + size).min(items.len());
        out.push(items[start..end].to_vec());
        if end >= items.len() {
            break;
        }
        start += step;
    }
    out
}

/// `alc.chunk(text, opts?)`.
fn chunk(lua: &Lua, (text, opts): (Value, Value)) -> mlua::Result<Reply> {
    const F: &str = "alc.chunk";
    let Some(text) = coerce_string(lua, &text)? else {
        return super::fail(format!(
            "{F}: bad argument #1 'text' (string expected, got {})",
            lua_type_name(&text)
        ));
    };
    let (mut chars, mut size, mut overlap) = (false, 50usize, 0usize);
    match &opts {
        Value::Nil => {}
        Value::Table(t) => {
            match t.raw_get::<Value>("mode")? {
                Value::Nil => {}
                Value::String(s) if s.as_bytes() == b"lines".as_slice() => {}
                Value::String(s) if s.as_bytes() == b"chars".as_slice() => chars = true,
                _ => return super::fail(format!("{F}: opts.mode must be \"lines\" or \"chars\"")),
            }
            match count_opt(&t.raw_get::<Value>("size")?) {
                Some(v) => size = v.unwrap_or(size),
                None => {
                    return super::fail(format!("{F}: opts.size must be a non-negative integer"))
                }
            }
            match count_opt(&t.raw_get::<Value>("overlap")?) {
                Some(v) => overlap = v.unwrap_or(overlap),
                None => {
                    return super::fail(format!("{F}: opts.overlap must be a non-negative integer"))
                }
            }
        }
        other => {
            return super::fail(format!(
                "{F}: bad argument #2 'opts' (table expected, got {})",
                lua_type_name(other)
            ))
        }
    }
    let pieces: Vec<String> = if chars {
        let cs: Vec<char> = text.chars().collect();
        windows(&cs, size, overlap)
            .into_iter()
            .map(|w| w.into_iter().collect())
            .collect()
    } else {
        let lines: Vec<&str> = text.lines().collect();
        windows(&lines, size, overlap)
            .into_iter()
            .map(|w| w.join("\n"))
            .collect()
    };
    let out = lua.create_table()?;
    for (i, p) in pieces.iter().enumerate() {
        out.raw_set(i + 1, p.as_str())?;
    }
    crate::json::mark_array(lua, &out)?;
    Ok((Value::Table(out), None))
}

/// Jaro similarity of two character sequences.
pub fn jaro(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let window = (a.len().max(b.len()) / 2).saturating_sub(1);
    let mut a_m = vec![false; a.len()];
    let mut b_m = vec![false; b.len()];
    let mut matches = 0usize;
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(window);
        let hi = (i + window + 1).min(b.len());
        for j in lo..hi {
            if !b_m[j] && b[j] == *ca {
                a_m[i] = true;
                b_m[j] = true;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let a_seq = a.iter().zip(&a_m).filter(|(_, m)| **m).map(|(c, _)| c);
    let b_seq = b.iter().zip(&b_m).filter(|(_, m)| **m).map(|(c, _)| c);
    let transpositions = a_seq.zip(b_seq).filter(|(x, y)| x != y).count() / 2;
    let m = matches as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - transpositions as f64) / m) / 3.0
}

/// Jaro-Winkler similarity: prefix bonus 0.1 per common leading char (at most 4), applied
/// only when the Jaro score exceeds 0.7.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let j = jaro(&a, &b);
    if j <= 0.7 {
        return j;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).take(4).count();
    j + prefix as f64 * 0.1 * (1.0 - j)
}

/// The candidate `text` names (lua-api.md §2.3): latest last occurrence, else the best
/// Jaro-Winkler match of a token at or above `threshold`. Returns the candidate's index.
pub fn match_enum_index(text: &str, candidates: &[String], threshold: f64) -> Option<usize> {
    let lower = text.to_lowercase();
    let lowered: Vec<String> = candidates.iter().map(|c| c.to_lowercase()).collect();
    let mut best: Option<(usize, usize)> = None;
    for (i, c) in lowered.iter().enumerate() {
        if c.is_empty() {
            continue;
        }
        if let Some(pos) = lower.rfind(c.as_str()) {
            if best.is_none_or(|(p, _)| pos > p) {
                best = Some((pos, i));
            }
        }
    }
    if let Some((_, i)) = best {
        return Some(i);
    }
    let mut fuzzy: Option<(f64, usize)> = None;
    for token in lower.split_whitespace() {
        let token = token.trim_matches(|c: char| !c.is_alphanumeric());
        if token.is_empty() {
            continue;
        }
        for (i, c) in lowered.iter().enumerate() {
            if c.is_empty() {
                continue;
            }
            let score = jaro_winkler(token, c);
            if score >= threshold && fuzzy.is_none_or(|(s, _)| score > s) {
                fuzzy = Some((score, i));
            }
        }
    }
    fuzzy.map(|(_, i)| i)
}

/// `alc.match_enum(text, candidates, opts?)`.
fn match_enum(lua: &Lua, (text, candidates, opts): (Value, Value, Value)) -> mlua::Result<Reply> {
    const F: &str = "alc.match_enum";
    let Some(text) = coerce_string(lua, &text)? else {
        return super::fail(format!(
            "{F}: bad argument #1 'text' (string expected, got {})",
            lua_type_name(&text)
        ));
    };
    let Value::Table(candidates) = candidates else {
        return super::fail(format!(
            "{F}: bad argument #2 'candidates' (table expected, got {})",
            lua_type_name(&candidates)
        ));
    };
    let mut threshold = 0.7;
    match &opts {
        Value::Nil => {}
        Value::Table(t) => match t.raw_get::<Value>("threshold")? {
            Value::Nil => {}
            Value::Integer(i) => threshold = i as f64,
            Value::Number(n) => threshold = n,
            _ => return super::fail(format!("{F}: opts.threshold must be a number")),
        },
        other => {
            return super::fail(format!(
                "{F}: bad argument #3 'opts' (table expected, got {})",
                lua_type_name(other)
            ))
        }
    }
    let mut values: Vec<Value> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for i in 1..=candidates.raw_len() {
        let v: Value = candidates.raw_get(i)?;
        // Candidates that are neither strings nor numbers can never match.
        let name = coerce_string(lua, &v)?.unwrap_or_default();
        values.push(v);
        names.push(name);
    }
    Ok(match match_enum_index(&text, &names, threshold) {
        Some(i) => (values[i].clone(), None),
        None => (Value::Nil, None),
    })
}

const AFFIRMATIVE: &[&str] = &[
    "approved", "yes", "ok", "accept", "pass", "confirm", "agree", "true", "lgtm",
];
const NEGATIVE: &[&str] = &[
    "rejected", "no", "deny", "block", "fail", "refuse", "disagree", "false",
];

/// The polarity of the whole-word yes/no word that starts last in `text`.
pub fn match_bool_text(text: &[u8]) -> Option<bool> {
    let lower = text.to_ascii_lowercase();
    let boundary = |b: Option<&u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric());
    let mut best: Option<(usize, bool)> = None;
    for (words, polarity) in [(AFFIRMATIVE, true), (NEGATIVE, false)] {
        for w in words {
            let w = w.as_bytes();
            if w.len() > lower.len() {
                continue;
            }
            for start in 0..=lower.len() - w.len() {
                if &lower[start..start + w.len()] != w {
                    continue;
                }
                let before = if start == 0 {
                    None
                } else {
                    lower.get(start - 1)
                };
                if boundary(before)
                    && boundary(lower.get(start + w.len()))
                    && best.is_none_or(|(p, _)| start > p)
                {
                    best = Some((start, polarity));
                }
            }
        }
    }
    best.map(|(_, p)| p)
}

/// `alc.match_bool(text)`.
fn match_bool(lua: &Lua, text: Value) -> mlua::Result<Reply> {
    let Some(text) = coerce_string(lua, &text)? else {
        return super::fail(format!(
            "alc.match_bool: bad argument #1 'text' (string expected, got {})",
            lua_type_name(&text)
        ));
    };
    Ok(match match_bool_text(text.as_bytes()) {
        Some(b) => (Value::Boolean(b), None),
        None => (Value::Nil, None),
    })
}

/// Registers the raw text functions into `raw`.
pub fn register(lua: &Lua, raw: &Table) -> mlua::Result<()> {
    raw.raw_set("chunk", lua.create_function(chunk)?)?;
    raw.raw_set("match_enum", lua.create_function(match_enum)?)?;
    raw.raw_set("match_bool", lua.create_function(match_bool)?)?;
    Ok(())
}
