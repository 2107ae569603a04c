//! `alc.state` (`lua-api.md` §2.8): the store trait, validation and the in-memory store.

use serde_json::{Number, Value};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Maximum key length in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Maximum encoded (JSON) value size in bytes: 1 MiB.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Attempts of [`update`] before a conflict error.
pub const UPDATE_ATTEMPTS: usize = 5;

/// Errors of the state store. `Display` gives the text after the Lua-facing prefix: the engine
/// raises `alc.state: <msg>` for `InvalidKey`/`InvalidNamespace` and `alc.state.<fn>: <msg>` for
/// the others (for example `alc.state.incr: value at 's' is not a number`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateStoreError {
    /// The key breaks the key grammar.
    #[error("invalid key '{key}' ({reason})")]
    InvalidKey {
        /// The key as given (lossy UTF-8 for byte keys).
        key: String,
        /// Why.
        reason: String,
    },
    /// The namespace breaks the namespace grammar.
    #[error("invalid namespace '{ns}'")]
    InvalidNamespace {
        /// The namespace as given.
        ns: String,
    },
    /// The encoded value exceeds [`MAX_VALUE_BYTES`].
    #[error("value at '{key}' is too large ({size} bytes, max {MAX_VALUE_BYTES})")]
    TooLarge {
        /// The key.
        key: String,
        /// Encoded size.
        size: usize,
    },
    /// `incr` on a stored value (or default / delta) that is not a number.
    #[error("value at '{key}' is not a number")]
    NotANumber {
        /// The key.
        key: String,
    },
    /// `incr` overflowed (integer overflow, or a non-finite float result).
    #[error("integer overflow at '{key}'")]
    Overflow {
        /// The key.
        key: String,
    },
    /// `update` gave up after [`UPDATE_ATTEMPTS`] conflicting attempts.
    #[error("conflict on '{key}'")]
    Conflict {
        /// The key.
        key: String,
    },
    /// `list` prefix outside `[A-Za-z0-9_.-]+`.
    #[error("invalid prefix '{prefix}'")]
    InvalidPrefix {
        /// The prefix.
        prefix: String,
    },
    /// The database failed.
    #[error("database error: {message}")]
    Db {
        /// Details.
        message: String,
    },
}

/// A value with its version, for compare-and-set ([`StateStore::compare_and_set`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    /// The stored value.
    pub value: Value,
    /// Version; changes at every write of the key and is never reused within a database.
    pub version: u64,
}

/// Validates a key: 1–256 bytes, no control characters (U+0000–U+001F, U+007F), no `/`, no `\`,
/// no `..`.
pub fn validate_key(key: &str) -> Result<(), StateStoreError> {
    let bad = |reason: &str| {
        Err(StateStoreError::InvalidKey {
            key: key.to_string(),
            reason: reason.to_string(),
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return bad("longer than 256 bytes");
    }
    if key.chars().any(|c| (c as u32) < 0x20 || c as u32 == 0x7f) {
        return bad("control character");
    }
    if key.contains('/') {
        return bad("contains '/'");
    }
    if key.contains('\\') {
        return bad("contains '\\'");
    }
    if key.contains("..") {
        return bad("contains '..'");
    }
    Ok(())
}

/// Validates a key given as raw bytes (a Lua string): it must be valid UTF-8, then as
/// [`validate_key`].
pub fn validate_key_bytes(key: &[u8]) -> Result<&str, StateStoreError> {
    let s = std::str::from_utf8(key).map_err(|_| StateStoreError::InvalidKey {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "invalid UTF-8".to_string(),
    })?;
    validate_key(s)?;
    Ok(s)
}

/// Validates a session-chosen namespace (`ctx._ns`): `^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$`.
pub fn validate_namespace(ns: &str) -> Result<(), StateStoreError> {
    let b = ns.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_' || b[0] == b'-')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.');
    if ok {
        Ok(())
    } else {
        Err(StateStoreError::InvalidNamespace { ns: ns.to_string() })
    }
}

/// Validates a namespace as accepted by the stores: a session-chosen one
/// ([`validate_namespace`]) or an engine-assigned fork namespace `<ns>/fork-<i>[/fork-<j>…]`.
pub fn validate_store_namespace(ns: &str) -> Result<(), StateStoreError> {
    let mut parts = ns.split('/');
    let first = parts.next().unwrap_or("");
    let ok = validate_namespace(first).is_ok()
        && parts.all(|p| {
            p.strip_prefix("fork-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        });
    if ok {
        Ok(())
    } else {
        Err(StateStoreError::InvalidNamespace { ns: ns.to_string() })
    }
}

pub(crate) fn check(ns: &str, key: &str) -> Result<(), StateStoreError> {
    validate_store_namespace(ns)?;
    validate_key(key)
}

pub(crate) fn encode(key: &str, value: &Value) -> Result<String, StateStoreError> {
    let s = serde_json::to_string(value).map_err(|e| StateStoreError::Db {
        message: e.to_string(),
    })?;
    if s.len() > MAX_VALUE_BYTES {
        return Err(StateStoreError::TooLarge {
            key: key.to_string(),
            size: s.len(),
        });
    }
    Ok(s)
}

pub(crate) fn check_list_prefix(prefix: &str) -> Result<(), StateStoreError> {
    if prefix.is_empty()
        || !prefix
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
    {
        return Err(StateStoreError::InvalidPrefix {
            prefix: prefix.to_string(),
        });
    }
    Ok(())
}

/// `incr` arithmetic: integer when both are integers (checked), float otherwise.
pub(crate) fn add(key: &str, current: &Value, delta: &Number) -> Result<Number, StateStoreError> {
    let Value::Number(cur) = current else {
        return Err(StateStoreError::NotANumber {
            key: key.to_string(),
        });
    };
    if let (Some(a), Some(b)) = (cur.as_i64(), delta.as_i64()) {
        if !cur.is_f64() && !delta.is_f64() {
            return a
                .checked_add(b)
                .map(Number::from)
                .ok_or_else(|| StateStoreError::Overflow {
                    key: key.to_string(),
                });
        }
    }
    let (Some(a), Some(b)) = (cur.as_f64(), delta.as_f64()) else {
        return Err(StateStoreError::NotANumber {
            key: key.to_string(),
        });
    };
    Number::from_f64(a + b).ok_or_else(|| StateStoreError::Overflow {
        key: key.to_string(),
    })
}

/// A persistent key-value store partitioned by namespace. Every call is one atomic transaction;
/// every read returns a fresh copy. Keys and namespaces are validated by every call
/// ([`validate_key`], [`validate_store_namespace`]); values are capped at [`MAX_VALUE_BYTES`].
pub trait StateStore: Send + Sync {
    /// The stored value, if any.
    fn get(&self, ns: &str, key: &str) -> Result<Option<Value>, StateStoreError>;
    /// Stores `value`; `None` (or JSON `null`) deletes the key.
    fn set(&self, ns: &str, key: &str, value: Option<&Value>) -> Result<(), StateStoreError>;
    /// Deletes the key; `true` if it existed.
    fn delete(&self, ns: &str, key: &str) -> Result<bool, StateStoreError>;
    /// Whether the key exists.
    fn has(&self, ns: &str, key: &str) -> Result<bool, StateStoreError>;
    /// Keys of the namespace, sorted bytewise; only those starting with `prefix` when given.
    fn keys(&self, ns: &str, prefix: Option<&str>) -> Result<Vec<String>, StateStoreError>;
    /// Stores `value` only if the key is absent; `true` if written.
    fn set_nx(&self, ns: &str, key: &str, value: &Value) -> Result<bool, StateStoreError>;
    /// Adds `delta` to the stored number (or to `default` when absent) and stores the result:
    /// integer arithmetic when both are integers, float otherwise.
    fn incr(
        &self,
        ns: &str,
        key: &str,
        delta: &Number,
        default: &Number,
    ) -> Result<Number, StateStoreError>;
    /// The stored value with its version.
    fn get_versioned(&self, ns: &str, key: &str) -> Result<Option<Versioned>, StateStoreError>;
    /// Writes `value` (`None`/`null` deletes) only if the key's version is still `expected`
    /// (`None` = the key must be absent); `true` if written.
    fn compare_and_set(
        &self,
        ns: &str,
        key: &str,
        expected: Option<u64>,
        value: Option<&Value>,
    ) -> Result<bool, StateStoreError>;
    /// Sorted `<id>` parts of the keys `<prefix>:<id>`; `prefix` must match `[A-Za-z0-9_.-]+`.
    fn list(&self, ns: &str, prefix: &str) -> Result<Vec<String>, StateStoreError> {
        check_list_prefix(prefix)?;
        let p = format!("{prefix}:");
        Ok(self
            .keys(ns, Some(&p))?
            .into_iter()
            .map(|k| k[p.len()..].to_string())
            .collect())
    }
}

/// `alc.state.update`: reads value and version, calls `f(current or default)`, writes only if the
/// version is unchanged; retries up to [`UPDATE_ATTEMPTS`] times, then
/// [`StateStoreError::Conflict`]. `f` returning `None` (or `null`) deletes. `f` may run more
/// than once; its error is returned as is. Returns the new value (`None` when deleted).
pub fn update<S, F, E>(
    store: &S,
    ns: &str,
    key: &str,
    default: Option<&Value>,
    mut f: F,
) -> Result<Option<Value>, E>
where
    S: StateStore + ?Sized,
    F: FnMut(Option<Value>) -> Result<Option<Value>, E>,
    E: From<StateStoreError>,
{
    for _ in 0..UPDATE_ATTEMPTS {
        let cur = store.get_versioned(ns, key)?;
        let (input, version) = match cur {
            Some(v) => (Some(v.value), Some(v.version)),
            None => (default.cloned(), None),
        };
        let new = f(input)?;
        if store.compare_and_set(ns, key, version, new.as_ref())? {
            return Ok(new.filter(|v| !v.is_null()));
        }
    }
    Err(StateStoreError::Conflict {
        key: key.to_string(),
    }
    .into())
}

/// In-memory [`StateStore`] (tests, `MemoryJournal` setups).
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<(MemMap, u64)>,
}

/// `(ns, key) -> value`, plus the last version handed out.
type MemMap = BTreeMap<(String, String), Versioned>;

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> MemoryStateStore {
        MemoryStateStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, (MemMap, u64)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn k(ns: &str, key: &str) -> (String, String) {
    (ns.to_string(), key.to_string())
}

impl StateStore for MemoryStateStore {
    fn get(&self, ns: &str, key: &str) -> Result<Option<Value>, StateStoreError> {
        check(ns, key)?;
        Ok(self.lock().0.get(&k(ns, key)).map(|v| v.value.clone()))
    }

    fn set(&self, ns: &str, key: &str, value: Option<&Value>) -> Result<(), StateStoreError> {
        check(ns, key)?;
        let mut g = self.lock();
        match value.filter(|v| !v.is_null()) {
            None => {
                g.0.remove(&k(ns, key));
            }
            Some(v) => {
                encode(key, v)?;
                g.1 += 1;
                let version = g.1;
                g.0.insert(
                    k(ns, key),
                    Versioned {
                        value: v.clone(),
                        version,
                    },
                );
            }
        }
        Ok(())
    }

    fn delete(&self, ns: &str, key: &str) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        Ok(self.lock().0.remove(&k(ns, key)).is_some())
    }

    fn has(&self, ns: &str, key: &str) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        Ok(self.lock().0.contains_key(&k(ns, key)))
    }

    fn keys(&self, ns: &str, prefix: Option<&str>) -> Result<Vec<String>, StateStoreError> {
        validate_store_namespace(ns)?;
        let p = prefix.unwrap_or("");
        Ok(self
            .lock()
            .0
            .range(k(ns, p)..)
            .take_while(|((n, key), _)| n == ns && key.starts_with(p))
            .map(|((_, key), _)| key.clone())
            .collect())
    }

    fn set_nx(&self, ns: &str, key: &str, value: &Value) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        encode(key, value)?;
        let mut g = self.lock();
        if g.0.contains_key(&k(ns, key)) {
            return Ok(false);
        }
        g.1 += 1;
        let version = g.1;
        g.0.insert(
            k(ns, key),
            Versioned {
                value: value.clone(),
                version,
            },
        );
        Ok(true)
    }

    fn incr(
        &self,
        ns: &str,
        key: &str,
        delta: &Number,
        default: &Number,
    ) -> Result<Number, StateStoreError> {
        check(ns, key)?;
        let mut g = self.lock();
        let cur =
            g.0.get(&k(ns, key))
                .map(|v| v.value.clone())
                .unwrap_or_else(|| Value::Number(default.clone()));
        let n = add(key, &cur, delta)?;
        g.1 += 1;
        let version = g.1;
        g.0.insert(
            k(ns, key),
            Versioned {
                value: Value::Number(n.clone()),
                version,
            },
        );
        Ok(n)
    }

    fn get_versioned(&self, ns: &str, key: &str) -> Result<Option<Versioned>, StateStoreError> {
        check(ns, key)?;
        Ok(self.lock().0.get(&k(ns, key)).cloned())
    }

    fn compare_and_set(
        &self,
        ns: &str,
        key: &str,
        expected: Option<u64>,
        value: Option<&Value>,
    ) -> Result<bool, StateStoreError> {
        check(ns, key)?;
        let value = value.filter(|v| !v.is_null());
        if let Some(v) = value {
            encode(key, v)?;
        }
        let mut g = self.lock();
        if g.0.get(&k(ns, key)).map(|v| v.version) != expected {
            return Ok(false);
        }
        match value {
            None => {
                g.0.remove(&k(ns, key));
            }
            Some(v) => {
                g.1 += 1;
                let version = g.1;
                g.0.insert(
                    k(ns, key),
                    Versioned {
                        value: v.clone(),
                        version,
                    },
                );
            }
        }
        Ok(true)
    }
}
