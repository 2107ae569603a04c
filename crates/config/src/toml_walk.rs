//! Lenient readers over a parsed TOML table: a value of the wrong type or an unknown key
//! becomes a warning, never a failure (interfaces.md §5.3).

use toml::{Table, Value};

/// Collects warnings while reading one file.
pub(crate) struct Walker<'a> {
    pub file: &'a str,
    pub warnings: &'a mut Vec<String>,
}

impl Walker<'_> {
    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        self.warnings.push(format!("{}: {msg}", self.file));
    }

    /// Warns about every key of `table` not in `known`.
    pub fn unknown(&mut self, table: &Table, section: &str, known: &[&str]) {
        for k in table.keys() {
            if !known.contains(&k.as_str()) {
                let at = if section.is_empty() {
                    k.to_string()
                } else {
                    format!("{section}.{k}")
                };
                self.warn(format_args!("unknown key `{at}` ignored"));
            }
        }
    }

    /// The sub-table `key`, or `None` (warning when present but not a table).
    pub fn table<'t>(&mut self, parent: &'t Table, section: &str, key: &str) -> Option<&'t Table> {
        match parent.get(key) {
            None => None,
            Some(Value::Table(t)) => Some(t),
            Some(_) => {
                self.warn(format_args!(
                    "`{}` must be a table; ignored",
                    join(section, key)
                ));
                None
            }
        }
    }

    pub fn u64(&mut self, t: &Table, section: &str, key: &str) -> Option<u64> {
        match t.get(key)? {
            Value::Integer(i) if *i >= 0 => Some(*i as u64),
            _ => {
                self.warn(format_args!(
                    "`{}` must be a non-negative integer; ignored",
                    join(section, key)
                ));
                None
            }
        }
    }

    pub fn bool(&mut self, t: &Table, section: &str, key: &str) -> Option<bool> {
        match t.get(key)? {
            Value::Boolean(b) => Some(*b),
            _ => {
                self.warn(format_args!(
                    "`{}` must be true or false; ignored",
                    join(section, key)
                ));
                None
            }
        }
    }

    pub fn string(&mut self, t: &Table, section: &str, key: &str) -> Option<String> {
        match t.get(key)? {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.warn(format_args!(
                    "`{}` must be a string; ignored",
                    join(section, key)
                ));
                None
            }
        }
    }

    /// A string restricted to `allowed`.
    pub fn choice(
        &mut self,
        t: &Table,
        section: &str,
        key: &str,
        allowed: &[&str],
    ) -> Option<String> {
        let s = self.string(t, section, key)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            self.warn(format_args!(
                "`{}` = {s:?} is not one of {}; ignored",
                join(section, key),
                allowed.join(", ")
            ));
            None
        }
    }

    pub fn string_list(&mut self, t: &Table, section: &str, key: &str) -> Option<Vec<String>> {
        match t.get(key)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for v in items {
                    match v {
                        Value::String(s) => out.push(s.clone()),
                        _ => self.warn(format_args!(
                            "`{}` holds a non-string entry; entry ignored",
                            join(section, key)
                        )),
                    }
                }
                Some(out)
            }
            _ => {
                self.warn(format_args!(
                    "`{}` must be an array of strings; ignored",
                    join(section, key)
                ));
                None
            }
        }
    }
}

fn join(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

/// TOML to JSON (datetimes become strings).
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Integer(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Boolean(b) => serde_json::Value::Bool(*b),
        Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Table(t) => {
            serde_json::Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}
