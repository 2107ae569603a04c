//! Session and query identifiers (§3.1).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Error returned when a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is not `s-` followed by 32 hex digits.
    #[error("invalid session id: {0:?}")]
    InvalidSessionId(String),
}

/// A session identifier: `s-` + 32 lowercase hex digits (128 bits: the engine makes
/// them from the creation time in milliseconds and 80 random bits).
///
/// Shared, not copied: a hosted session's id sits in its cell, state machine, journal
/// handle, records, events and table keys, and a clone only counts a reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(Arc<str>);

impl SessionId {
    /// Parses `s-` + 32 hex digits, case-insensitively; the result is lowercase.
    pub fn parse(s: &str) -> Result<SessionId, IdError> {
        let bad = || IdError::InvalidSessionId(s.to_string());
        let rest = s
            .strip_prefix("s-")
            .or_else(|| s.strip_prefix("S-"))
            .ok_or_else(bad)?;
        if rest.len() != 32 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(SessionId(format!("s-{}", rest.to_ascii_lowercase()).into()))
    }

    /// Builds an id from 16 bytes (the engine's: 6 of creation time, 10 from the OS CSPRNG).
    pub fn from_bytes(bytes: [u8; 16]) -> SessionId {
        let mut s = String::with_capacity(34);
        s.push_str("s-");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        SessionId(s.into())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A query identifier within a round: `q-<i>` (main VM) or `f-<child>-<seq>` (fork child).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueryId(String);

fn parse_num(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl QueryId {
    /// `q-<i>`: position `i` in the main VM's request.
    pub fn main(i: usize) -> QueryId {
        QueryId(format!("q-{i}"))
    }

    /// `f-<child>-<seq>`: the `seq`-th query of fork child `child`.
    pub fn child(child: usize, seq: usize) -> QueryId {
        QueryId(format!("f-{child}-{seq}"))
    }

    /// Accepts exactly the grammars `q-<n>` and `f-<n>-<n>` (decimal, no leading zeros).
    pub fn parse(s: &str) -> Option<QueryId> {
        if let Some(rest) = s.strip_prefix("q-") {
            parse_num(rest)?;
            return Some(QueryId(s.to_string()));
        }
        let rest = s.strip_prefix("f-")?;
        let (a, b) = rest.split_once('-')?;
        parse_num(a)?;
        parse_num(b)?;
        Some(QueryId(s.to_string()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_id_parse() {
        let id = SessionId::parse("s-4F1C9A0E8B7D4C2A9E3F5B6A7C8D9E0F").unwrap();
        assert_eq!(id.as_str(), "s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f");
        assert!(SessionId::parse("s-4f1c").is_err());
        assert!(SessionId::parse("x-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0f").is_err());
        assert!(SessionId::parse("s-4f1c9a0e8b7d4c2a9e3f5b6a7c8d9e0g").is_err());
        let r = SessionId::from_bytes([0xab; 16]);
        assert_eq!(SessionId::parse(r.as_str()).unwrap(), r);
        assert_eq!(r.to_string().len(), 34);
    }

    #[test]
    fn query_id_parse() {
        assert_eq!(QueryId::parse("q-1"), Some(QueryId::main(1)));
        assert_eq!(QueryId::parse("f-0-2"), Some(QueryId::child(0, 2)));
        for bad in [
            "q-", "q-01", "q-a", "f-1", "f-1-", "f--1", "x-1", "q-1 ", "f-1-2-3",
        ] {
            assert_eq!(QueryId::parse(bad), None, "{bad}");
        }
    }
}
