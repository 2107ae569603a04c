//! Multi Round-Trip results and the sampling answerer (interfaces.md §3.8, §3.9).
//!
//! A pause of a session answered through MRTR becomes an `input_required` result whose
//! `inputRequests` hold one `sampling/createMessage` request per open LLM query, keyed by
//! query id. The client retries the same tool with the same arguments plus
//! `inputResponses` and the `requestState` it was given. That state is sealed here: an
//! HMAC-SHA256 over the session id, the round, the tool name, a digest of the arguments
//! and an expiry, keyed by `<home>/secret.key` (32 random bytes, mode 0600, created on
//! first use). Nothing is kept server-side between the rounds but the session itself.
//!
//! The same request mapping is used by the `sampling` answerer, which sends the requests
//! to a legacy client as `sampling/createMessage` while the tool call is in flight.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use alc_core::LlmQuery;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Length of the sealing key in `secret.key`.
pub const KEY_LEN: usize = 32;

/// How long a sealed `requestState` stays valid (1 h).
pub const STATE_TTL_MS: i64 = 3_600_000;

/// Format tag of sealed request states; part of the MAC input.
const STATE_VERSION: &str = "alc1";

/// Domain separation for the MAC, so the key can never sign anything else by accident.
const MAC_DOMAIN: &[u8] = b"algocline/mrtr/request-state\n";

/// The `_meta` key under which MRTR results name their session.
pub const SESSION_META_KEY: &str = "io.algocline/session_id";

/// Reads `<home>/secret.key`, creating it (32 random bytes, mode 0600) when absent.
///
/// Creation is atomic: the key is written to a private temporary file and hard-linked
/// into place, so two processes starting at once agree on one key.
pub fn load_or_create_key(home: &Path) -> Result<[u8; KEY_LEN], String> {
    let path = home.join("secret.key");
    match read_key(&path) {
        Ok(k) => return Ok(k),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    create_home(home)?;
    let mut key = [0u8; KEY_LEN];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
    let tmp = home.join(format!(
        ".secret.key.{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = write_private(&tmp, &key)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
        .and_then(|()| match std::fs::hard_link(&tmp, &path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(format!("cannot create {}: {e}", path.display())),
        });
    let _ = std::fs::remove_file(&tmp);
    written?;
    read_key(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_key(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(KEY_LEN + 1);
    Read::by_ref(&mut f)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut buf)?;
    buf.as_slice().try_into().map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{} must hold exactly {KEY_LEN} bytes (found {}{})",
                path.display(),
                buf.len().min(KEY_LEN),
                if buf.len() > KEY_LEN { " or more" } else { "" }
            ),
        )
    })
}

fn create_home(home: &Path) -> Result<(), String> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(home)
        .map_err(|e| format!("cannot create {}: {e}", home.display()))
}

fn write_private(path: &PathBuf, bytes: &[u8]) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// What a sealed `requestState` carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestState {
    /// The session the retry continues.
    pub session_id: String,
    /// The round whose queries were asked.
    pub round: u64,
    /// The tool that returned `input_required` (the retry must call the same one).
    pub tool: String,
    /// [`arguments_digest`] of that call's arguments.
    pub args_digest: String,
    /// Unix ms after which the state is refused.
    pub expires_at: i64,
}

/// Why a `requestState` was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateError {
    /// Not a sealed state of this server, or altered.
    Tampered,
    /// Past its expiry.
    Expired,
    /// Sealed for another tool.
    OtherTool(String),
    /// The arguments differ from those of the call that returned it.
    ArgumentsChanged,
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateError::Tampered => f.write_str(
                "`requestState` failed verification (not issued by this server, or altered)",
            ),
            StateError::Expired => {
                f.write_str("`requestState` has expired; start again without it")
            }
            StateError::OtherTool(t) => write!(
                f,
                "`requestState` was issued by `{t}`; retry that tool with the same arguments"
            ),
            StateError::ArgumentsChanged => f.write_str(
                "`requestState` does not match these arguments; retry with the same arguments as the call that returned it",
            ),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Writes `v` with object keys sorted at every level (the digest input).
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 (hex) of the tool arguments in canonical form (key order does not matter).
pub fn arguments_digest(args: &Map<String, Value>) -> String {
    let mut s = String::new();
    canonical(&Value::Object(args.clone()), &mut s);
    hex(&Sha256::digest(s.as_bytes()))
}

fn fields_valid(st: &RequestState) -> bool {
    let plain = |s: &str| !s.is_empty() && !s.contains('.') && s.is_ascii();
    plain(&st.session_id) && plain(&st.tool) && plain(&st.args_digest)
}

/// Seals and opens request states with one key.
#[derive(Clone)]
pub struct Sealer {
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { .. }")
    }
}

impl Sealer {
    /// A sealer over `key` (the content of `secret.key`).
    pub fn new(key: [u8; KEY_LEN]) -> Sealer {
        Sealer { key }
    }

    fn mac(&self, body: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(MAC_DOMAIN);
        mac.update(body.as_bytes());
        mac
    }

    /// The opaque token: `alc1.<session>.<round>.<tool>.<expires_at>.<args digest>.<tag>`.
    pub fn seal(&self, st: &RequestState) -> String {
        debug_assert!(fields_valid(st));
        let body = format!(
            "{STATE_VERSION}.{}.{}.{}.{}.{}",
            st.session_id, st.round, st.tool, st.expires_at, st.args_digest
        );
        let tag = self.mac(&body).finalize().into_bytes();
        format!("{body}.{}", hex(&tag))
    }

    /// Verifies the tag (in constant time), then the expiry against `now_ms`.
    pub fn open(&self, token: &str, now_ms: i64) -> Result<RequestState, StateError> {
        let (body, tag) = token.rsplit_once('.').ok_or(StateError::Tampered)?;
        let tag = unhex(tag).ok_or(StateError::Tampered)?;
        self.mac(body)
            .verify_slice(&tag)
            .map_err(|_| StateError::Tampered)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [version, session_id, round, tool, expires_at, args_digest] = parts.as_slice() else {
            return Err(StateError::Tampered);
        };
        if *version != STATE_VERSION {
            return Err(StateError::Tampered);
        }
        let st = RequestState {
            session_id: session_id.to_string(),
            round: round.parse().map_err(|_| StateError::Tampered)?,
            tool: tool.to_string(),
            args_digest: args_digest.to_string(),
            expires_at: expires_at.parse().map_err(|_| StateError::Tampered)?,
        };
        if now_ms > st.expires_at {
            return Err(StateError::Expired);
        }
        Ok(st)
    }

    /// [`Sealer::open`], then checks the state belongs to this call of `tool` with
    /// `args`.
    pub fn open_for(
        &self,
        token: &str,
        now_ms: i64,
        tool: &str,
        args: &Map<String, Value>,
    ) -> Result<RequestState, StateError> {
        let st = self.open(token, now_ms)?;
        if st.tool != tool {
            return Err(StateError::OtherTool(st.tool));
        }
        if st.args_digest != arguments_digest(args) {
            return Err(StateError::ArgumentsChanged);
        }
        Ok(st)
    }
}

/// The `sampling/createMessage` parameters of one LLM query (§3.8 field mapping):
/// one user message with the prompt, `systemPrompt` and `temperature` when set,
/// `maxTokens`, the model as a hint when set, and `includeContext: "none"`.
pub fn create_message_params(q: &LlmQuery, model: Option<&str>) -> Value {
    let mut p = json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": q.prompt}}],
        "maxTokens": q.max_tokens,
        "includeContext": "none",
    });
    if let Some(s) = &q.system {
        p["systemPrompt"] = json!(s);
    }
    if let Some(t) = q.temperature {
        p["temperature"] = json!(t);
    }
    if let Some(m) = q.model.as_deref().or(model) {
        p["modelPreferences"] = json!({"hints": [{"name": m}]});
    }
    p
}

/// The answer a client gave in a `CreateMessageResult`: its text content (text blocks
/// joined when the content is a list) and the model it names.
pub fn result_text(result: &Value) -> Result<(String, Option<String>), String> {
    let Value::Object(m) = result else {
        return Err("must be a CreateMessageResult object".into());
    };
    let text_of = |block: &Value| -> Option<String> {
        (block.get("type")? == "text")
            .then(|| block.get("text")?.as_str().map(str::to_string))
            .flatten()
    };
    let text = match m.get("content") {
        Some(Value::Array(blocks)) => {
            let texts: Vec<String> = blocks.iter().filter_map(text_of).collect();
            if texts.is_empty() {
                return Err("has no text content".into());
            }
            texts.join("")
        }
        Some(block @ Value::Object(_)) => {
            text_of(block).ok_or_else(|| "has no text content".to_string())?
        }
        _ => return Err("has no `content`".into()),
    };
    let model = m.get("model").and_then(Value::as_str).map(str::to_string);
    Ok((text, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> RequestState {
        RequestState {
            session_id: "s-0123456789abcdef0123456789abcdef".into(),
            round: 2,
            tool: "alc_run".into(),
            args_digest: arguments_digest(json!({"code": "x"}).as_object().unwrap()),
            expires_at: 10_000,
        }
    }

    #[test]
    fn seal_round_trip_and_tamper_detection() {
        let s = Sealer::new([7u8; KEY_LEN]);
        let st = state();
        let token = s.seal(&st);
        assert_eq!(s.open(&token, 9_999), Ok(st.clone()));
        assert_eq!(s.open(&token, 10_001), Err(StateError::Expired));
        let forged = token.replacen(".2.", ".3.", 1);
        assert_eq!(s.open(&forged, 0), Err(StateError::Tampered));
        let other_key = Sealer::new([8u8; KEY_LEN]);
        assert_eq!(other_key.open(&token, 0), Err(StateError::Tampered));
        assert_eq!(s.open("garbage", 0), Err(StateError::Tampered));
        assert_eq!(s.open("a.zz", 0), Err(StateError::Tampered));
    }

    #[test]
    fn open_for_checks_tool_and_arguments() {
        let s = Sealer::new([1u8; KEY_LEN]);
        let token = s.seal(&state());
        let args = json!({"code": "x"});
        let args = args.as_object().unwrap();
        assert!(s.open_for(&token, 0, "alc_run", args).is_ok());
        assert_eq!(
            s.open_for(&token, 0, "alc_advice", args),
            Err(StateError::OtherTool("alc_run".into()))
        );
        let other = json!({"code": "y"});
        assert_eq!(
            s.open_for(&token, 0, "alc_run", other.as_object().unwrap()),
            Err(StateError::ArgumentsChanged)
        );
    }

    #[test]
    fn digest_ignores_key_order() {
        let a: Map<String, Value> =
            serde_json::from_str(r#"{"a":1,"b":{"x":[1,{"q":2,"p":3}],"y":null}}"#).unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"b":{"y":null,"x":[1,{"p":3,"q":2}]},"a":1}"#).unwrap();
        assert_eq!(arguments_digest(&a), arguments_digest(&b));
        let c: Map<String, Value> = serde_json::from_str(r#"{"a":2}"#).unwrap();
        assert_ne!(arguments_digest(&a), arguments_digest(&c));
    }

    #[test]
    fn key_is_created_once_with_private_mode() {
        let dir = std::env::temp_dir().join(format!(
            "alc-mrtr-key-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let home = dir.join("home");
        let k1 = load_or_create_key(&home).unwrap();
        let k2 = load_or_create_key(&home).unwrap();
        assert_eq!(k1, k2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.join("secret.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(home.join("secret.key"), b"short").unwrap();
        assert!(load_or_create_key(&home).unwrap_err().contains("32 bytes"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn create_message_mapping() {
        let mut q = LlmQuery::new("What is 2+2?");
        assert_eq!(
            create_message_params(&q, None),
            json!({"messages":[{"role":"user","content":{"type":"text","text":"What is 2+2?"}}],
                   "maxTokens":1024,"includeContext":"none"})
        );
        q.system = Some("S".into());
        q.temperature = Some(0.5);
        q.max_tokens = 50;
        let p = create_message_params(&q, Some("m"));
        assert_eq!(p["systemPrompt"], "S");
        assert_eq!(p["temperature"], 0.5);
        assert_eq!(p["maxTokens"], 50);
        assert_eq!(p["modelPreferences"], json!({"hints":[{"name":"m"}]}));
    }

    #[test]
    fn result_text_variants() {
        let r = json!({"role":"assistant","content":{"type":"text","text":"4"},"model":"x"});
        assert_eq!(result_text(&r), Ok(("4".into(), Some("x".into()))));
        let r = json!({"role":"assistant","content":[{"type":"text","text":"a"},{"type":"image"},{"type":"text","text":"b"}]});
        assert_eq!(result_text(&r), Ok(("ab".into(), None)));
        assert!(result_text(&json!({"content":{"type":"image"}})).is_err());
        assert!(result_text(&json!("4")).is_err());
    }
}
