//! The response cache of evals: provider answers stored in `<home>/alc.db`
//! ([`alc_store::ResponseCache`]) under a content key.
//!
//! The key is a SHA-256 over the request's answer-determining material — provider, model,
//! system prompt, prompt, `max_tokens`, `temperature` — plus the *occurrence index* of an
//! identical request within the case's session. A self-consistency strategy that asks the
//! same prompt five times therefore stores five entries, and a rerun reads the same five
//! back in the same order. Only answerers that name a provider route
//! ([`crate::runner::Answerer::cache_route`]) are cached; failed answers never are.
//!
//! Reading can be switched off (`resample`): every query then goes to the provider and the
//! fresh answers replace the stored ones.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alc_core::{
    Answer, AnswerMeta, Journal, LlmQuery, PendingQuery, QueryRequest, RecordBody, SessionId,
    TokenUsage,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::EvalError;

/// The request material that determines a provider's answer (canonical JSON).
pub fn material(provider: &str, model: &str, q: &LlmQuery) -> String {
    json!({
        "provider": provider,
        "model": model,
        "system": q.system,
        "prompt": q.prompt,
        "max_tokens": q.max_tokens,
        "temperature": q.temperature,
    })
    .to_string()
}

/// The cache key of the `occurrence`-th (0-based) identical request: SHA-256 hex.
pub fn cache_key(material: &str, occurrence: u32) -> String {
    let mut h = Sha256::new();
    h.update(material.as_bytes());
    h.update(b"\n#");
    h.update(occurrence.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Occurrence counters of identical requests within one session.
#[derive(Debug, Default, Clone)]
pub struct Occurrences(HashMap<String, u32>);

impl Occurrences {
    /// The index of the next occurrence of `material`, counting it.
    pub fn next(&mut self, material: &str) -> u32 {
        let n = self.0.entry(material.to_string()).or_insert(0);
        let out = *n;
        *n += 1;
        out
    }
}

/// The cache shared by the sessions of one eval run, with its hit counters.
pub struct EvalCache {
    cache: alc_store::ResponseCache,
    read: bool,
    journal: Option<Arc<dyn Journal>>,
    hits: AtomicU64,
    writes: AtomicU64,
    write_error: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for EvalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvalCache")
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

impl EvalCache {
    /// Opens the cache of `<home>/alc.db`; `read: false` (resample) only writes.
    pub fn open_home(home: &Path, read: bool) -> Result<EvalCache, EvalError> {
        std::fs::create_dir_all(home)
            .map_err(|e| EvalError::io(format!("cannot create {}: {e}", home.display())))?;
        let cache = alc_store::ResponseCache::open(home.join("alc.db"))
            .map_err(|e| EvalError::io(format!("response cache: {e}")))?;
        Ok(EvalCache {
            cache,
            read,
            journal: None,
            hits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            write_error: std::sync::Mutex::new(None),
        })
    }

    /// The session journal, read to rebuild the occurrence counters of a resumed session.
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> EvalCache {
        self.journal = Some(journal);
        self
    }

    /// Whether stored answers are used.
    pub fn reads(&self) -> bool {
        self.read
    }

    /// Answers served from the cache so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Answers stored so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// The stored answer for `key` as an answer to `q` (when reading is on).
    pub fn lookup(&self, key: &str, q: &PendingQuery) -> Option<Answer> {
        if !self.read {
            return None;
        }
        let hit = self.cache.get(key).ok().flatten()?;
        let text = hit.body.get("text")?.as_str()?.to_string();
        let usage: Option<TokenUsage> = hit
            .body
            .get("usage")
            .and_then(|u| serde_json::from_value(u.clone()).ok());
        self.hits.fetch_add(1, Ordering::Relaxed);
        let mut a = Answer::text(Some(q.id.clone()), text);
        a.usage = usage;
        a.meta = AnswerMeta {
            answerer: Some("provider".into()),
            provider: Some(hit.provider),
            model: Some(hit.model),
            stop_reason: hit
                .body
                .get("stop_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            latency_ms: Some(0),
            attempts: Some(0),
        };
        Some(a)
    }

    /// The first failed cache write of this run, if any (the answers stayed valid).
    pub fn write_error(&self) -> Option<String> {
        self.write_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stores a successful answer under `key`; failures are not stored. A write error is
    /// returned and kept for [`EvalCache::write_error`] (the answer itself stays valid).
    pub fn store(
        &self,
        key: &str,
        provider: &str,
        model: &str,
        answer: &Answer,
    ) -> Result<(), EvalError> {
        let (Some(text), None) = (&answer.text, &answer.error) else {
            return Ok(());
        };
        let body = json!({
            "text": text,
            "usage": answer.usage,
            "stop_reason": answer.meta.stop_reason,
        });
        if let Err(e) = self.cache.put(key, provider, model, &body) {
            let msg = format!("response cache write failed: {e}");
            self.write_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert_with(|| msg.clone());
            return Err(EvalError::io(msg));
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The occurrence counters of session `id` before `round`: every LLM query of its
    /// journaled pauses of earlier rounds, routed by `route` (queries without a route are
    /// not counted). Without a journal, or when it cannot be read, the counters start empty.
    pub fn occurrences_before(
        &self,
        id: &SessionId,
        round: u64,
        route: &dyn Fn(&LlmQuery) -> Option<(String, String)>,
    ) -> Occurrences {
        let mut occ = Occurrences::default();
        let Some(journal) = &self.journal else {
            return occ;
        };
        let Ok(records) = journal.read(id, 1) else {
            return occ;
        };
        for r in records.iter().filter(|r| r.vm == 0) {
            if let RecordBody::Pause {
                round: r_round,
                queries,
            } = &r.body
            {
                if *r_round >= round {
                    continue;
                }
                for q in queries.iter() {
                    if let QueryRequest::Llm { query } = &q.request {
                        if let Some((p, m)) = route(query) {
                            occ.next(&material(&p, &m, query));
                        }
                    }
                }
            }
        }
        occ
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_requests_get_distinct_keys_by_occurrence() {
        let q = LlmQuery::new("2+2?");
        let m = material("openai", "gpt", &q);
        let mut occ = Occurrences::default();
        let keys: Vec<String> = (0..3).map(|_| cache_key(&m, occ.next(&m))).collect();
        assert_eq!(keys.len(), 3);
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[1], keys[2]);
        // A rerun produces the same keys in the same order.
        let mut again = Occurrences::default();
        let keys2: Vec<String> = (0..3).map(|_| cache_key(&m, again.next(&m))).collect();
        assert_eq!(keys, keys2);
        // Any answer-determining option changes the key.
        let mut hot = q.clone();
        hot.temperature = Some(0.9);
        assert_ne!(cache_key(&material("openai", "gpt", &hot), 0), keys[0]);
        assert_ne!(cache_key(&material("openai", "gpt-2", &q), 0), keys[0]);
        assert_ne!(cache_key(&material("anthropic", "gpt", &q), 0), keys[0]);
    }

    #[test]
    fn stores_and_serves_answers_unless_resampling() {
        let dir = tempfile::tempdir().unwrap();
        let q = PendingQuery {
            id: alc_core::QueryId::main(0),
            origin: alc_core::QueryOrigin::Main,
            digest: String::new(),
            request: QueryRequest::Llm {
                query: LlmQuery::new("p"),
            },
        };
        let cache = EvalCache::open_home(dir.path(), true).unwrap();
        assert!(cache.lookup("k", &q).is_none());
        cache
            .store("k", "openai", "m", &Answer::text(None, "42"))
            .unwrap();
        let a = cache.lookup("k", &q).expect("hit");
        assert_eq!(a.text.as_deref(), Some("42"));
        assert_eq!(a.query_id, Some(q.id.clone()));
        assert_eq!(cache.hits(), 1);
        let resample = EvalCache::open_home(dir.path(), false).unwrap();
        assert!(resample.lookup("k", &q).is_none());
    }
}
