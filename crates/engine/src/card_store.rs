//! Storage of `alc.card` run records (lua-api.md §2.9): the [`CardStore`] trait the engine
//! asks of its embedder, the filesystem store rooted at `<home>/cards/` ([`FileCardStore`])
//! and an in-memory store for tests ([`MemoryCardStore`]).
//!
//! The store only keeps cards, sample rows and aliases; validation, id generation, queries
//! and lineage are the engine's (`card.rs`), so every store behaves alike. Cards handed to a
//! store are JSON objects without `null` members.
//!
//! On-disk layout (the reference layout, interfaces.md §5.1):
//!
//! ```text
//! <home>/cards/
//!   <pkg>/<card_id>.toml            one card, TOML
//!   <pkg>/<card_id>.samples.jsonl   its sample rows, one compact JSON value per line
//!   _aliases.toml                   every alias: [[alias]] tables {name, card_id, pkg?, set_at, note?}
//! ```
//!
//! Every file is written to a temporary sibling and then moved into place, so readers never
//! see a partial file; write-once files are linked into place without replacing an existing
//! one; and every write holds a lock file (`.lock`) in the cards directory, so each
//! operation, read-modify-writes included (append, aliases), is atomic across sessions and
//! processes sharing the home.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use serde_json::{Map, Value as J};

/// One stored card: the package directory it lives under and its fields.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredCard {
    /// Package name (`pkg.name` at creation).
    pub pkg: String,
    /// The card (a JSON object).
    pub card: J,
}

/// One alias row.
#[derive(Clone, Debug, PartialEq)]
pub struct CardAlias {
    /// Alias name.
    pub name: String,
    /// The card it points to.
    pub card_id: String,
    /// Optional package label.
    pub pkg: Option<String>,
    /// When it was (re)bound, UTC `YYYY-MM-DDTHH:MM:SSZ`.
    pub set_at: String,
    /// Optional note.
    pub note: Option<String>,
}

/// What [`CardStore::create`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum CardCreate {
    /// The card was stored.
    Created,
    /// A card with this id already exists (returned as stored); nothing was written.
    Exists(StoredCard),
}

/// What [`CardStore::modify`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum CardModify {
    /// No card has this id.
    NotFound,
    /// The edit refused (its message); nothing was written.
    Rejected(String),
    /// The card as written.
    Done(J),
}

/// What [`CardStore::write_samples`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum SamplesWrite {
    /// No card has this id.
    NotFound,
    /// The card already has samples; nothing was written.
    Exists,
    /// The rows were stored.
    Written,
}

/// An edit applied by [`CardStore::modify`]: changes the card's fields in place or refuses
/// with a message.
pub type CardEdit<'a> = &'a mut dyn FnMut(&mut Map<String, J>) -> Result<(), String>;

/// Where `alc.card` keeps its records. `Err` carries an I/O failure's description.
pub trait CardStore: Send + Sync + 'static {
    /// Every card, or only those of package `pkg`, in no particular order.
    fn list(&self, pkg: Option<&str>) -> Result<Vec<StoredCard>, String>;
    /// The card with id `card_id`.
    fn get(&self, card_id: &str) -> Result<Option<StoredCard>, String>;
    /// Stores a new card under `pkg` unless a card with `card_id` exists (in any package).
    fn create(&self, pkg: &str, card_id: &str, card: &J) -> Result<CardCreate, String>;
    /// Applies `edit` to card `card_id` and stores the result, atomically.
    fn modify(&self, card_id: &str, edit: CardEdit<'_>) -> Result<CardModify, String>;
    /// The sample rows of card `card_id` (`None` when it has none).
    fn samples(&self, card_id: &str) -> Result<Option<Vec<J>>, String>;
    /// Stores the sample rows of card `card_id` (write-once).
    fn write_samples(&self, card_id: &str, rows: &[J]) -> Result<SamplesWrite, String>;
    /// Every alias row, sorted by name.
    fn aliases(&self) -> Result<Vec<CardAlias>, String>;
    /// Binds (or rebinds) `alias.name`.
    fn set_alias(&self, alias: &CardAlias) -> Result<(), String>;
}

// ---- in memory ------------------------------------------------------------------------------

#[derive(Default, Debug)]
struct MemoryInner {
    /// card id → card.
    cards: BTreeMap<String, StoredCard>,
    samples: BTreeMap<String, Vec<J>>,
    aliases: BTreeMap<String, CardAlias>,
}

/// Cards held in memory (tests, and engines without a home).
#[derive(Default, Debug)]
pub struct MemoryCardStore {
    inner: Mutex<MemoryInner>,
}

impl MemoryCardStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl CardStore for MemoryCardStore {
    fn list(&self, pkg: Option<&str>) -> Result<Vec<StoredCard>, String> {
        let g = self.inner.lock();
        Ok(g.cards
            .values()
            .filter(|c| pkg.is_none_or(|p| c.pkg == p))
            .cloned()
            .collect())
    }

    fn get(&self, card_id: &str) -> Result<Option<StoredCard>, String> {
        Ok(self.inner.lock().cards.get(card_id).cloned())
    }

    fn create(&self, pkg: &str, card_id: &str, card: &J) -> Result<CardCreate, String> {
        let mut g = self.inner.lock();
        if let Some(existing) = g.cards.get(card_id) {
            return Ok(CardCreate::Exists(existing.clone()));
        }
        g.cards.insert(
            card_id.to_string(),
            StoredCard {
                pkg: pkg.to_string(),
                card: card.clone(),
            },
        );
        Ok(CardCreate::Created)
    }

    fn modify(&self, card_id: &str, edit: CardEdit<'_>) -> Result<CardModify, String> {
        let mut g = self.inner.lock();
        let Some(stored) = g.cards.get_mut(card_id) else {
            return Ok(CardModify::NotFound);
        };
        let mut fields = stored.card.as_object().cloned().unwrap_or_default();
        if let Err(msg) = edit(&mut fields) {
            return Ok(CardModify::Rejected(msg));
        }
        stored.card = J::Object(fields);
        Ok(CardModify::Done(stored.card.clone()))
    }

    fn samples(&self, card_id: &str) -> Result<Option<Vec<J>>, String> {
        Ok(self.inner.lock().samples.get(card_id).cloned())
    }

    fn write_samples(&self, card_id: &str, rows: &[J]) -> Result<SamplesWrite, String> {
        let mut g = self.inner.lock();
        if !g.cards.contains_key(card_id) {
            return Ok(SamplesWrite::NotFound);
        }
        if g.samples.contains_key(card_id) {
            return Ok(SamplesWrite::Exists);
        }
        g.samples.insert(card_id.to_string(), rows.to_vec());
        Ok(SamplesWrite::Written)
    }

    fn aliases(&self) -> Result<Vec<CardAlias>, String> {
        Ok(self.inner.lock().aliases.values().cloned().collect())
    }

    fn set_alias(&self, alias: &CardAlias) -> Result<(), String> {
        self.inner
            .lock()
            .aliases
            .insert(alias.name.clone(), alias.clone());
        Ok(())
    }
}

// ---- on disk --------------------------------------------------------------------------------

const ALIASES_FILE: &str = "_aliases.toml";
const LOCK_FILE: &str = ".lock";
/// A lock file older than this is left over by a crashed process and is broken.
const STALE_LOCK: Duration = Duration::from_secs(30);
/// How long a writer waits for the lock before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(10);

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Cards as files under one directory (`<home>/cards/`), in the reference layout (see the
/// module documentation).
#[derive(Debug)]
pub struct FileCardStore {
    root: PathBuf,
    /// Serialises this process's writers; the lock file serialises processes.
    writers: Mutex<()>,
}

/// A name usable as one path component: no separators, no `..`, not hidden, no NUL.
fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.contains("..")
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("cannot {what} '{name}': {e}")
}

/// Held while a read-modify-write runs; removes the lock file when dropped.
struct DirLock {
    path: PathBuf,
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

impl FileCardStore {
    /// A store rooted at `root` (normally `<home>/cards`); the directory is created on the
    /// first write.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FileCardStore {
            root: root.into(),
            writers: Mutex::new(()),
        }
    }

    /// The directory this store reads and writes.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn ensure_dir(dir: &Path) -> Result<(), String> {
        if dir.is_dir() {
            return Ok(());
        }
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir).map_err(|e| io_err("create", dir, e))
    }

    /// Takes the cross-process lock file (breaking a stale one).
    fn lock(&self) -> Result<DirLock, String> {
        Self::ensure_dir(&self.root)?;
        let path = self.root.join(LOCK_FILE);
        let start = std::time::Instant::now();
        loop {
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(DirLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > STALE_LOCK);
                    if stale {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if start.elapsed() > LOCK_WAIT {
                        return Err("cannot lock the cards directory (busy)".into());
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(io_err("lock", &path, e)),
            }
        }
    }

    /// A fresh temporary path next to `target` (its name never ends in `.toml`/`.jsonl`).
    fn tmp_path(target: &Path) -> PathBuf {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        target.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
    }

    fn write_tmp(target: &Path, text: &str) -> Result<PathBuf, String> {
        let tmp = Self::tmp_path(target);
        let mut f = fs::File::create(&tmp).map_err(|e| io_err("write", &tmp, e))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                io_err("write", &tmp, e)
            })?;
        Ok(tmp)
    }

    /// Replaces `target` atomically.
    fn replace_file(target: &Path, text: &str) -> Result<(), String> {
        let tmp = Self::write_tmp(target, text)?;
        fs::rename(&tmp, target).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err("write", target, e)
        })
    }

    /// Creates `target` atomically unless it exists: `Ok(false)` when it did. Callers hold
    /// the lock; linking (which never replaces a file) guards against writers that do not.
    fn create_file(target: &Path, text: &str) -> Result<bool, String> {
        let tmp = Self::write_tmp(target, text)?;
        let result = match fs::hard_link(&tmp, target) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            // A filesystem without hard links: under the lock, check and rename.
            Err(_) if target.exists() => Ok(false),
            Err(_) => {
                return fs::rename(&tmp, target).map(|()| true).map_err(|e| {
                    let _ = fs::remove_file(&tmp);
                    io_err("write", target, e)
                })
            }
        };
        let _ = fs::remove_file(&tmp);
        result
    }

    /// Package directories (`<root>/<pkg>/`), sorted by name.
    fn pkg_dirs(&self) -> Result<Vec<(String, PathBuf)>, String> {
        let entries = match fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &self.root, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !safe_component(&name) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                out.push((name, path));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The package directory and file of card `card_id`.
    fn locate(&self, card_id: &str) -> Result<Option<(String, PathBuf)>, String> {
        if !safe_component(card_id) {
            return Ok(None);
        }
        for (pkg, dir) in self.pkg_dirs()? {
            let file = dir.join(format!("{card_id}.toml"));
            if file.is_file() {
                return Ok(Some((pkg, file)));
            }
        }
        Ok(None)
    }

    fn read_card(pkg: &str, file: &Path) -> Result<StoredCard, String> {
        let text = fs::read_to_string(file).map_err(|e| io_err("read", file, e))?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            format!("cannot parse '{name}': {}", e.message())
        })?;
        let mut card = toml_to_json(toml::Value::Table(table));
        // A card without an id (hand-written) is named after its file.
        if let Some(obj) = card.as_object_mut() {
            if !obj.contains_key("card_id") {
                if let Some(stem) = file.file_stem() {
                    obj.insert(
                        "card_id".into(),
                        J::String(stem.to_string_lossy().into_owned()),
                    );
                }
            }
        }
        Ok(StoredCard {
            pkg: pkg.to_string(),
            card,
        })
    }

    fn samples_path(card_file: &Path, card_id: &str) -> PathBuf {
        card_file.with_file_name(format!("{card_id}.samples.jsonl"))
    }

    fn read_aliases(&self) -> Result<Vec<CardAlias>, String> {
        let path = self.root.join(ALIASES_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("read", &path, e)),
        };
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| format!("cannot parse '{ALIASES_FILE}': {}", e.message()))?;
        let mut out: Vec<CardAlias> = Vec::new();
        let rows = table.get("alias").and_then(|a| a.as_array());
        for row in rows.into_iter().flatten() {
            let Some(t) = row.as_table() else { continue };
            let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(name), Some(card_id)) = (s("name"), s("card_id")) else {
                continue;
            };
            let alias = CardAlias {
                name,
                card_id,
                pkg: s("pkg"),
                set_at: s("set_at").unwrap_or_default(),
                note: s("note"),
            };
            // A later row of the same name wins.
            out.retain(|a| a.name != alias.name);
            out.push(alias);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

impl CardStore for FileCardStore {
    fn list(&self, pkg: Option<&str>) -> Result<Vec<StoredCard>, String> {
        let mut out = Vec::new();
        for (name, dir) in self.pkg_dirs()? {
            if pkg.is_some_and(|p| p != name) {
                continue;
            }
            let entries = fs::read_dir(&dir).map_err(|e| io_err("read", &dir, e))?;
            let mut files: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "toml")
                        && p.file_name()
                            .is_some_and(|n| !n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            for file in files {
                // A file that vanished or does not parse is not a card.
                if let Ok(card) = Self::read_card(&name, &file) {
                    out.push(card);
                }
            }
        }
        Ok(out)
    }

    fn get(&self, card_id: &str) -> Result<Option<StoredCard>, String> {
        match self.locate(card_id)? {
            Some((pkg, file)) => Self::read_card(&pkg, &file).map(Some),
            None => Ok(None),
        }
    }

    fn create(&self, pkg: &str, card_id: &str, card: &J) -> Result<CardCreate, String> {
        if !safe_component(pkg) || !safe_component(card_id) {
            return Err(format!("unsafe card path '{pkg}/{card_id}'"));
        }
        let text = card_text(card)?;
        let _g = self.writers.lock();
        let _lock = self.lock()?;
        if let Some((pkg_found, file)) = self.locate(card_id)? {
            return Ok(CardCreate::Exists(Self::read_card(&pkg_found, &file)?));
        }
        let dir = self.root.join(pkg);
        Self::ensure_dir(&dir)?;
        let file = dir.join(format!("{card_id}.toml"));
        if Self::create_file(&file, &text)? {
            Ok(CardCreate::Created)
        } else {
            Ok(CardCreate::Exists(Self::read_card(pkg, &file)?))
        }
    }

    fn modify(&self, card_id: &str, edit: CardEdit<'_>) -> Result<CardModify, String> {
        let _g = self.writers.lock();
        let Some((pkg, file)) = self.locate(card_id)? else {
            return Ok(CardModify::NotFound);
        };
        let _lock = self.lock()?;
        let stored = Self::read_card(&pkg, &file)?;
        let mut fields = stored.card.as_object().cloned().unwrap_or_default();
        if let Err(msg) = edit(&mut fields) {
            return Ok(CardModify::Rejected(msg));
        }
        let card = J::Object(fields);
        Self::replace_file(&file, &card_text(&card)?)?;
        Ok(CardModify::Done(card))
    }

    fn samples(&self, card_id: &str) -> Result<Option<Vec<J>>, String> {
        let Some((_, file)) = self.locate(card_id)? else {
            return Ok(None);
        };
        let path = Self::samples_path(&file, card_id);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", &path, e)),
        };
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row: J = serde_json::from_str(line).map_err(|e| {
                format!(
                    "cannot parse line {} of '{card_id}.samples.jsonl': {e}",
                    i + 1
                )
            })?;
            rows.push(row);
        }
        Ok(Some(rows))
    }

    fn write_samples(&self, card_id: &str, rows: &[J]) -> Result<SamplesWrite, String> {
        let _g = self.writers.lock();
        let Some((_, file)) = self.locate(card_id)? else {
            return Ok(SamplesWrite::NotFound);
        };
        let _lock = self.lock()?;
        let mut text = String::new();
        for row in rows {
            text.push_str(&crate::json::canonical_string(row));
            text.push('\n');
        }
        let path = Self::samples_path(&file, card_id);
        if Self::create_file(&path, &text)? {
            Ok(SamplesWrite::Written)
        } else {
            Ok(SamplesWrite::Exists)
        }
    }

    fn aliases(&self) -> Result<Vec<CardAlias>, String> {
        self.read_aliases()
    }

    fn set_alias(&self, alias: &CardAlias) -> Result<(), String> {
        let _g = self.writers.lock();
        let _lock = self.lock()?;
        let mut rows = self.read_aliases()?;
        rows.retain(|a| a.name != alias.name);
        rows.push(alias.clone());
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        let mut list = Vec::with_capacity(rows.len());
        for a in &rows {
            let mut t = toml::Table::new();
            t.insert("name".into(), a.name.clone().into());
            t.insert("card_id".into(), a.card_id.clone().into());
            if let Some(p) = &a.pkg {
                t.insert("pkg".into(), p.clone().into());
            }
            t.insert("set_at".into(), a.set_at.clone().into());
            if let Some(n) = &a.note {
                t.insert("note".into(), n.clone().into());
            }
            list.push(toml::Value::Table(t));
        }
        let mut doc = toml::Table::new();
        doc.insert("alias".into(), toml::Value::Array(list));
        let text =
            toml::to_string_pretty(&doc).map_err(|e| format!("cannot write aliases: {e}"))?;
        Self::replace_file(&self.root.join(ALIASES_FILE), &text)
    }
}

/// A card as TOML text.
fn card_text(card: &J) -> Result<String, String> {
    let toml::Value::Table(t) = json_to_toml(card) else {
        return Err("a card must be a table".into());
    };
    toml::to_string_pretty(&t).map_err(|e| format!("cannot write card: {e}"))
}

/// JSON → TOML. `null`s (which TOML cannot hold) are left out, in arrays too.
fn json_to_toml(v: &J) -> toml::Value {
    match v {
        J::Null => toml::Value::String(String::new()),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => toml::Value::Integer(i),
            _ => toml::Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => toml::Value::Array(
            a.iter()
                .filter(|x| !x.is_null())
                .map(json_to_toml)
                .collect(),
        ),
        J::Object(m) => {
            let mut t = toml::Table::new();
            for (k, x) in m {
                if !x.is_null() {
                    t.insert(k.clone(), json_to_toml(x));
                }
            }
            toml::Value::Table(t)
        }
    }
}

/// TOML → JSON; date-times become their TOML text.
fn toml_to_json(v: toml::Value) -> J {
    match v {
        toml::Value::String(s) => J::String(s),
        toml::Value::Integer(i) => J::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(J::Number)
            .unwrap_or(J::Null),
        toml::Value::Boolean(b) => J::Bool(b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(a) => J::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => J::Object(
            t.into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .filter(|(_, v)| !v.is_null())
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_store_round_trip_and_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileCardStore::new(dir.path().join("cards"));
        let card = json!({"card_id": "pk_a", "pkg": {"name": "pk"}, "stats": {"pass_rate": 1, "mean": 0.5},
            "list": [1, null, "x"], "nested": {"a": [{"b": 1}]}});
        assert_eq!(
            store.create("pk", "pk_a", &card).unwrap(),
            CardCreate::Created
        );
        assert!(dir.path().join("cards/pk/pk_a.toml").is_file());
        let got = store.get("pk_a").unwrap().unwrap();
        assert_eq!(got.pkg, "pk");
        assert_eq!(got.card["stats"]["pass_rate"], json!(1));
        assert!(got.card["stats"]["mean"].is_f64());
        assert_eq!(got.card["list"], json!([1, "x"]));
        assert_eq!(got.card["nested"], json!({"a": [{"b": 1}]}));
        assert!(matches!(
            store.create("other", "pk_a", &card).unwrap(),
            CardCreate::Exists(_)
        ));

        assert_eq!(
            store
                .write_samples("pk_a", &[json!({"c": 1}), json!(2)])
                .unwrap(),
            SamplesWrite::Written
        );
        assert!(dir.path().join("cards/pk/pk_a.samples.jsonl").is_file());
        assert_eq!(
            store.write_samples("pk_a", &[]).unwrap(),
            SamplesWrite::Exists
        );
        assert_eq!(
            store.write_samples("nope", &[]).unwrap(),
            SamplesWrite::NotFound
        );
        assert_eq!(
            store.samples("pk_a").unwrap(),
            Some(vec![json!({"c": 1}), json!(2)])
        );

        let r = store
            .modify("pk_a", &mut |m| {
                m.insert("extra".into(), json!(true));
                Ok(())
            })
            .unwrap();
        assert!(matches!(r, CardModify::Done(ref c) if c["extra"] == json!(true)));
        assert_eq!(
            store.get("pk_a").unwrap().unwrap().card["extra"],
            json!(true)
        );
        let r = store.modify("pk_a", &mut |_| Err("no".into())).unwrap();
        assert_eq!(r, CardModify::Rejected("no".into()));

        store
            .set_alias(&CardAlias {
                name: "best".into(),
                card_id: "pk_a".into(),
                pkg: None,
                set_at: "2023-11-14T22:13:20Z".into(),
                note: Some("n".into()),
            })
            .unwrap();
        let text = fs::read_to_string(dir.path().join("cards/_aliases.toml")).unwrap();
        assert!(text.contains("[[alias]]"), "{text}");
        assert_eq!(store.aliases().unwrap()[0].note.as_deref(), Some("n"));
        assert_eq!(store.list(Some("pk")).unwrap().len(), 1);
        assert!(store.list(Some("zz")).unwrap().is_empty());
        // No temporary or lock files are left behind.
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("cards/pk"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
            .collect();
        assert!(leftovers.is_empty());
        assert!(!dir.path().join("cards/.lock").exists());
    }

    #[test]
    fn concurrent_appends_from_two_stores_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cards");
        let first = FileCardStore::new(&root);
        first.create("pk", "c", &json!({"card_id": "c"})).unwrap();
        // Two store handles stand for two processes sharing the home.
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let store = FileCardStore::new(&root);
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let key = format!("k{t}_{i}");
                        let r = store
                            .modify("c", &mut |m| {
                                m.insert(key.clone(), json!(i));
                                Ok(())
                            })
                            .unwrap();
                        assert!(matches!(r, CardModify::Done(_)));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let card = first.get("c").unwrap().unwrap().card;
        assert_eq!(card.as_object().unwrap().len(), 41);
    }

    #[test]
    fn unsafe_names_never_reach_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileCardStore::new(dir.path().join("cards"));
        assert!(store.create("..", "x", &json!({})).is_err());
        assert!(store.create("pk", "../x", &json!({})).is_err());
        assert_eq!(store.get("../../etc/passwd").unwrap(), None);
        assert_eq!(
            store.write_samples("../x", &[]).unwrap(),
            SamplesWrite::NotFound
        );
    }
}
