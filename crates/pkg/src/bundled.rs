//! Bundled packages embedded at build time from `<workspace>/packages/`.

use std::collections::BTreeMap;
use std::sync::Arc;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

/// Package name → (relative path → bytes).
type Files = BTreeMap<String, BTreeMap<String, Arc<[u8]>>>;

/// A read-only set of packages held in memory.
#[derive(Clone, Debug, Default)]
pub struct BundledSet {
    pkgs: Arc<Files>,
}

impl BundledSet {
    /// The packages embedded in this binary.
    pub fn embedded() -> Self {
        let mut pkgs = Files::new();
        for (pkg, rel, bytes) in generated::BUNDLED_FILES {
            pkgs.entry(pkg.to_string())
                .or_default()
                .insert(rel.to_string(), Arc::from(*bytes));
        }
        BundledSet {
            pkgs: Arc::new(pkgs),
        }
    }

    /// A set from explicit files `(package, relative path, content)` (tests).
    pub fn from_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str, &'a [u8])>) -> Self {
        let mut pkgs = Files::new();
        for (pkg, rel, bytes) in files {
            pkgs.entry(pkg.to_string())
                .or_default()
                .insert(rel.to_string(), Arc::from(bytes));
        }
        BundledSet {
            pkgs: Arc::new(pkgs),
        }
    }

    /// Names of the bundled packages (only those with `init.lua`).
    pub fn names(&self) -> Vec<String> {
        self.pkgs
            .iter()
            .filter(|(_, f)| f.contains_key("init.lua"))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Whether a package of that name is bundled.
    pub fn has(&self, pkg: &str) -> bool {
        self.pkgs
            .get(pkg)
            .is_some_and(|f| f.contains_key("init.lua"))
    }

    /// One file of a bundled package.
    pub fn file(&self, pkg: &str, rel: &str) -> Option<&[u8]> {
        self.pkgs.get(pkg)?.get(rel).map(|b| &b[..])
    }

    /// All files of a bundled package.
    pub fn files(&self, pkg: &str) -> Vec<(&str, &[u8])> {
        self.pkgs
            .get(pkg)
            .map(|f| f.iter().map(|(k, v)| (k.as_str(), &v[..])).collect())
            .unwrap_or_default()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.pkgs.is_empty()
    }
}
