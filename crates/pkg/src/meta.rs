//! Static extraction of `M.meta = { … }` from an `init.lua` (interfaces.md §6.1).
//!
//! A small Lua lexer finds the first `<name>.meta = {` (else a `meta = {` field) and
//! reads the table constructor: string and number fields, `..` concatenations of them;
//! nested tables and any other expression are skipped. Package code is never executed.

use serde_json::{Map, Number, Value};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    Num(String),
    Sym(&'static str),
}

const SYMS: &[&str] = &[
    "...", "..", "==", "~=", "<=", ">=", "//", "::", "<<", ">>", "{", "}", "(", ")", "[", "]", "=",
    ",", ";", ".", ":", "+", "-", "*", "/", "%", "^", "#", "&", "~", "|", "<", ">",
];

/// Level of a long bracket `[==[` starting at `i`, if one starts there.
fn long_bracket(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    (b.get(j) == Some(&b'[')).then_some(j - i - 1)
}

/// Reads a long string starting at `i` of level `lvl`; returns (content, next index).
fn read_long(b: &[u8], i: usize, lvl: usize) -> (String, usize) {
    let start = i + lvl + 2;
    let close: Vec<u8> = std::iter::once(b']')
        .chain(std::iter::repeat_n(b'=', lvl))
        .chain(std::iter::once(b']'))
        .collect();
    let mut j = start;
    while j + close.len() <= b.len() {
        if b[j..].starts_with(&close) {
            let mut s = &b[start..j];
            if s.first() == Some(&b'\n') {
                s = &s[1..];
            }
            return (String::from_utf8_lossy(s).into_owned(), j + close.len());
        }
        j += 1;
    }
    (
        String::from_utf8_lossy(&b[start.min(b.len())..]).into_owned(),
        b.len(),
    )
}

fn read_short(b: &[u8], i: usize) -> (String, usize) {
    let q = b[i];
    let mut out: Vec<u8> = Vec::new();
    let mut j = i + 1;
    while j < b.len() && b[j] != q {
        if b[j] == b'\n' {
            break;
        }
        if b[j] == b'\\' && j + 1 < b.len() {
            j += 1;
            match b[j] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'v' => out.push(11),
                b'z' => {
                    while j + 1 < b.len() && b[j + 1].is_ascii_whitespace() {
                        j += 1;
                    }
                }
                b'x' => {
                    let h = std::str::from_utf8(&b[j + 1..(j + 3).min(b.len())]).unwrap_or("");
                    if let Ok(v) = u8::from_str_radix(h, 16) {
                        out.push(v);
                        j += 2;
                    }
                }
                b'u' if b.get(j + 1) == Some(&b'{') => {
                    let end = b[j..].iter().position(|c| *c == b'}').map(|p| p + j);
                    if let Some(end) = end {
                        let h = std::str::from_utf8(&b[j + 2..end]).unwrap_or("");
                        if let Some(c) = u32::from_str_radix(h, 16).ok().and_then(char::from_u32) {
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        j = end;
                    }
                }
                d if d.is_ascii_digit() => {
                    let mut v: u32 = 0;
                    let mut k = 0;
                    while k < 3 && j < b.len() && b[j].is_ascii_digit() {
                        v = v * 10 + (b[j] - b'0') as u32;
                        j += 1;
                        k += 1;
                    }
                    j -= 1;
                    out.push(v.min(255) as u8);
                }
                c => out.push(c),
            }
            j += 1;
            continue;
        }
        out.push(b[j]);
        j += 1;
    }
    (String::from_utf8_lossy(&out).into_owned(), j + 1)
}

fn lex(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if b[i..].starts_with(b"--") {
            if let Some(lvl) = long_bracket(b, i + 2) {
                i = read_long(b, i + 2, lvl).1;
            } else {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            toks.push(Tok::Name(src[s..i].to_string()));
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let s = i;
            let hex = b[i..].starts_with(b"0x") || b[i..].starts_with(b"0X");
            if hex {
                i += 2;
            }
            while i < b.len() {
                let d = b[i];
                let exp = if hex { b"pP" } else { b"eE" };
                if d.is_ascii_alphanumeric() || d == b'.' {
                    i += 1;
                    if exp.contains(&d) && matches!(b.get(i), Some(b'+') | Some(b'-')) {
                        i += 1;
                    }
                } else {
                    break;
                }
            }
            toks.push(Tok::Num(src[s..i].to_string()));
        } else if c == b'"' || c == b'\'' {
            let (s, n) = read_short(b, i);
            toks.push(Tok::Str(s));
            i = n;
        } else if let Some(lvl) = long_bracket(b, i) {
            let (s, n) = read_long(b, i, lvl);
            toks.push(Tok::Str(s));
            i = n;
        } else if let Some(sym) = SYMS.iter().find(|s| b[i..].starts_with(s.as_bytes())) {
            toks.push(Tok::Sym(sym));
            i += sym.len();
        } else {
            i += 1;
        }
    }
    toks
}

fn number(raw: &str, neg: bool) -> Option<Value> {
    let (hex, body) = match raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
        Some(h) => (true, h),
        None => (false, raw),
    };
    let v = if hex {
        Value::Number(Number::from(i64::from_str_radix(body, 16).ok()?))
    } else if let Ok(i) = raw.parse::<i64>() {
        Value::Number(Number::from(i))
    } else {
        Value::Number(Number::from_f64(raw.parse::<f64>().ok()?)?)
    };
    if !neg {
        return Some(v);
    }
    match v {
        Value::Number(n) if n.is_i64() => Some(Value::Number(Number::from(-n.as_i64()?))),
        Value::Number(n) => Some(Value::Number(Number::from_f64(-n.as_f64()?)?)),
        _ => None,
    }
}

fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct P<'a> {
    t: &'a [Tok],
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i)
    }
    fn at(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }
    /// Skips to the next `,`/`;`/`}` at depth 0 (not consuming it).
    fn skip_expr(&mut self) {
        let mut depth = 0usize;
        while let Some(t) = self.peek() {
            match t {
                Tok::Sym("{") | Tok::Sym("(") | Tok::Sym("[") => depth += 1,
                Tok::Sym("}") | Tok::Sym(")") | Tok::Sym("]") => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                }
                Tok::Sym(",") | Tok::Sym(";") if depth == 0 => return,
                _ => {}
            }
            self.i += 1;
        }
    }
    fn term(&mut self) -> Option<Value> {
        let neg = self.at("-");
        if neg {
            self.i += 1;
        }
        let v = match self.peek()? {
            Tok::Str(s) if !neg => Value::String(s.clone()),
            Tok::Num(n) => number(n, neg)?,
            _ => return None,
        };
        self.i += 1;
        Some(v)
    }
    /// A constant expression: term (`..` term)*; `None` (and skipped) otherwise.
    fn value(&mut self) -> Option<Value> {
        let start = self.i;
        let mut v = self.term();
        while v.is_some() && self.at("..") {
            self.i += 1;
            v = match (v, self.term()) {
                (Some(a), Some(b)) => Some(Value::String(to_text(&a) + &to_text(&b))),
                _ => None,
            };
        }
        let ends = matches!(
            self.peek(),
            None | Some(Tok::Sym(",")) | Some(Tok::Sym(";")) | Some(Tok::Sym("}"))
        );
        if v.is_none() || !ends {
            self.i = start;
            self.skip_expr();
            return None;
        }
        v
    }
    fn table(&mut self) -> Map<String, Value> {
        let mut out = Map::new();
        // at '{'
        self.i += 1;
        loop {
            match self.peek() {
                None => break,
                Some(Tok::Sym("}")) => {
                    self.i += 1;
                    break;
                }
                Some(Tok::Sym(",")) | Some(Tok::Sym(";")) => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let key = match (self.t.get(self.i), self.t.get(self.i + 1)) {
                (Some(Tok::Name(n)), Some(Tok::Sym("="))) => {
                    self.i += 2;
                    Some(n.clone())
                }
                (Some(Tok::Sym("[")), Some(Tok::Str(s)))
                    if matches!(self.t.get(self.i + 2), Some(Tok::Sym("]")))
                        && matches!(self.t.get(self.i + 3), Some(Tok::Sym("="))) =>
                {
                    self.i += 4;
                    Some(s.clone())
                }
                _ => None,
            };
            let before = self.i;
            let v = self.value();
            if let (Some(k), Some(v)) = (key, v) {
                out.insert(k, v);
            }
            if self.i == before {
                // Could not move (stray token): step over it to guarantee progress.
                self.i += 1;
            }
        }
        out
    }
}

/// Extracts the `M.meta` fields of a Lua source; `None` when no meta table literal is
/// found.
pub fn extract_meta(src: &str) -> Option<Map<String, Value>> {
    let toks = lex(src);
    let is = |i: usize, t: &Tok| toks.get(i) == Some(t);
    let meta = Tok::Name("meta".into());
    let eq = Tok::Sym("=");
    let brace = Tok::Sym("{");
    let dot = Tok::Sym(".");
    let mut found = toks
        .iter()
        .enumerate()
        .find(|(i, t)| {
            matches!(t, Tok::Name(_))
                && is(i + 1, &dot)
                && is(i + 2, &meta)
                && is(i + 3, &eq)
                && is(i + 4, &brace)
        })
        .map(|(i, _)| i + 4);
    if found.is_none() {
        found = (0..toks.len())
            .find(|&i| {
                is(i, &meta) && is(i + 1, &eq) && is(i + 2, &brace) && (i == 0 || !is(i - 1, &dot))
            })
            .map(|i| i + 2);
    }
    let mut p = P {
        t: &toks,
        i: found?,
    };
    Some(p.table())
}

/// Reads `<dir>/init.lua` and extracts its meta (`None` when unreadable or absent).
pub fn read_meta(dir: &std::path::Path) -> Option<Map<String, Value>> {
    let src = std::fs::read(dir.join("init.lua")).ok()?;
    extract_meta(&String::from_utf8_lossy(&src))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_strings_numbers_concat() {
        let src = r#"
-- M.meta = { name = "commented" }
local M = {}
local V = "9"
M.meta = {
  name = "cot",
  version = "0." .. 3 .. ".1",
  description = [[Chain
of thought]],
  weight = -2.5,
  count = 0x10,
  tags = { "a", "b" },
  computed = V .. "x",
  ['odd key'] = 'it\'s',
}
function M.run(ctx) return ctx end
return M
"#;
        let m = extract_meta(src).unwrap();
        assert_eq!(m["name"], "cot");
        assert_eq!(m["version"], "0.3.1");
        assert_eq!(m["description"], "Chain\nof thought");
        assert_eq!(m["weight"], -2.5);
        assert_eq!(m["count"], 16);
        assert_eq!(m["odd key"], "it's");
        assert!(!m.contains_key("tags"));
        assert!(!m.contains_key("computed"));
    }

    #[test]
    fn return_table_form_and_missing() {
        let m = extract_meta("return { meta = { name = 'x' }, run = function(c) end }").unwrap();
        assert_eq!(m["name"], "x");
        assert!(extract_meta("return {}").is_none());
    }
}
