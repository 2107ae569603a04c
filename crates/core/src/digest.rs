//! Request digests (§7.7).

use crate::query::QueryRequest;
use sha2::{Digest, Sha256};

/// First 16 bytes of SHA-256 over the canonical JSON (sorted keys, no spaces), as 32 lowercase hex.
pub fn digest_request(req: &QueryRequest) -> String {
    let value = serde_json::to_value(req).expect("QueryRequest serializes");
    let canonical = serde_json::to_string(&value).expect("Value serializes");
    digest_bytes(canonical.as_bytes())
}

/// First 16 bytes of SHA-256 of `bytes`, as 32 lowercase hex.
pub fn digest_bytes(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(32);
    for b in &hash[..16] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::LlmQuery;

    #[test]
    fn digest_is_stable_and_hex() {
        let r: QueryRequest = LlmQuery::new("Say A").into();
        let d = digest_request(&r);
        assert_eq!(d.len(), 32);
        assert!(d
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // Canonical JSON: sorted keys, no spaces.
        let canon = r#"{"kind":"llm","max_tokens":1024,"prompt":"Say A","system":null}"#;
        assert_eq!(d, digest_bytes(canon.as_bytes()));
    }
}
