//! `alc.state` semantics (lua-api.md §2.8 and checklist items 103–109) for both stores.

use alc_core::Durability;
use alc_store::*;
use serde_json::{json, Number, Value};
use std::sync::Arc;

fn stores() -> (tempfile::TempDir, Vec<Arc<dyn StateStore>>) {
    let dir = tempfile::tempdir().unwrap();
    // Separate files: the stores must not see each other's keys.
    let j = SqliteJournal::open(dir.path().join("a.db"), Durability::Normal).unwrap();
    let v: Vec<Arc<dyn StateStore>> = vec![
        Arc::new(j.state_store()),
        Arc::new(SqliteStateStore::open(dir.path().join("b.db"), Durability::Normal).unwrap()),
        Arc::new(MemoryStateStore::new()),
    ];
    (dir, v)
}

const NS: &str = "default";

fn n(x: impl Into<Number>) -> Number {
    x.into()
}

#[test]
fn item_103_get_set_fresh_copies() {
    let (_d, ss) = stores();
    for s in &ss {
        let v = json!({"a": [1, 2]});
        s.set(NS, "x", Some(&v)).unwrap();
        let mut got = s.get(NS, "x").unwrap().unwrap();
        assert_eq!(got, v);
        got["a"][0] = json!(99);
        assert_eq!(s.get(NS, "x").unwrap().unwrap(), v);
        assert_eq!(s.get(NS, "missing").unwrap(), None);
        assert!(!s.has(NS, "missing").unwrap());
        assert!(s.has(NS, "x").unwrap());
    }
}

#[test]
fn item_104_set_nx_delete_set_nil() {
    let (_d, ss) = stores();
    for s in &ss {
        assert!(s.set_nx(NS, "k", &json!("first")).unwrap());
        assert!(!s.set_nx(NS, "k", &json!("second")).unwrap());
        assert_eq!(s.get(NS, "k").unwrap(), Some(json!("first")));
        assert!(s.delete(NS, "k").unwrap());
        assert!(!s.delete(NS, "k").unwrap());
        s.set(NS, "j", Some(&json!(1))).unwrap();
        s.set(NS, "j", None).unwrap();
        assert!(!s.has(NS, "j").unwrap());
        s.set(NS, "j", Some(&json!(1))).unwrap();
        s.set(NS, "j", Some(&Value::Null)).unwrap();
        assert!(!s.has(NS, "j").unwrap());
    }
}

#[test]
fn item_105_incr() {
    let (_d, ss) = stores();
    for s in &ss {
        let c = s.incr(NS, "c", &n(1), &n(0)).unwrap();
        assert!(c.is_i64() && c.as_i64() == Some(1));
        assert_eq!(s.incr(NS, "c", &n(5), &n(0)).unwrap().as_i64(), Some(6));
        let f = s
            .incr(NS, "c", &Number::from_f64(0.5).unwrap(), &n(0))
            .unwrap();
        assert!(f.is_f64() && f.as_f64() == Some(6.5));
        // A float stays a float, even when integral.
        let f = s
            .incr(NS, "c", &Number::from_f64(0.5).unwrap(), &n(0))
            .unwrap();
        assert!(f.is_f64() && f.as_f64() == Some(7.0));
        assert_eq!(s.get(NS, "c").unwrap(), Some(json!(7.0)));
        assert_eq!(
            s.incr(NS, "n", &n(10), &n(100)).unwrap().as_i64(),
            Some(110)
        );
        s.set(NS, "s", Some(&json!("text"))).unwrap();
        let e = s.incr(NS, "s", &n(1), &n(0)).unwrap_err();
        assert_eq!(e.to_string(), "value at 's' is not a number");
        s.set(NS, "big", Some(&json!(i64::MAX))).unwrap();
        let e = s.incr(NS, "big", &n(1), &n(0)).unwrap_err();
        assert_eq!(e.to_string(), "integer overflow at 'big'");
        assert_eq!(s.get(NS, "big").unwrap(), Some(json!(i64::MAX)));
    }
}

#[test]
fn item_106_keys_list() {
    let (_d, ss) = stores();
    for s in &ss {
        for k in [
            "b",
            "a",
            "flow_orch:zz",
            "flow_orch:abc",
            "B",
            "é",
            "flow_orchx",
            "z",
        ] {
            s.set(NS, k, Some(&json!(1))).unwrap();
        }
        s.set("other", "a0", Some(&json!(1))).unwrap();
        let keys = s.keys(NS, None).unwrap();
        let mut sorted = keys.clone();
        sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 8);
        assert_eq!(
            s.keys(NS, Some("flow_orch:")).unwrap(),
            vec!["flow_orch:abc", "flow_orch:zz"]
        );
        assert_eq!(s.list(NS, "flow_orch").unwrap(), vec!["abc", "zz"]);
        assert_eq!(s.get(NS, "flow_orch:abc").unwrap(), Some(json!(1)));
        assert!(s.list(NS, "bad prefix").is_err());
        assert!(s.keys(NS, Some("zzz")).unwrap().is_empty());
    }
}

#[test]
fn item_107_key_validation() {
    let (_d, ss) = stores();
    let long = "k".repeat(257);
    for s in &ss {
        for bad in [
            "../x",
            "a/b",
            "a\\b",
            "a\0b",
            "",
            long.as_str(),
            "a\u{7f}",
            "x..y",
        ] {
            let e = s.set(NS, bad, Some(&json!(1))).unwrap_err();
            assert!(
                e.to_string().starts_with(&format!("invalid key '{bad}' (")),
                "{e}"
            );
            assert!(s.get(NS, bad).is_err());
        }
        s.set(NS, "my run:1", Some(&json!(1))).unwrap();
        s.set(NS, &"k".repeat(256), Some(&json!(1))).unwrap();
        // 1 MiB cap on the encoded value.
        let big = json!("x".repeat(MAX_VALUE_BYTES));
        assert!(matches!(
            s.set(NS, "big", Some(&big)),
            Err(StateStoreError::TooLarge { .. })
        ));
        let fits = json!("x".repeat(MAX_VALUE_BYTES - 2));
        s.set(NS, "fits", Some(&fits)).unwrap();
    }
    assert_eq!(
        validate_key("a/b").unwrap_err().to_string(),
        "invalid key 'a/b' (contains '/')"
    );
    assert_eq!(
        validate_key("").unwrap_err().to_string(),
        "invalid key '' (empty)"
    );
    assert!(validate_key_bytes(b"\xff")
        .unwrap_err()
        .to_string()
        .contains("invalid UTF-8"));
    assert_eq!(validate_key_bytes(b"ok").unwrap(), "ok");
}

#[test]
fn item_108_namespaces() {
    let (_d, ss) = stores();
    assert_eq!(
        validate_namespace("../evil").unwrap_err().to_string(),
        "invalid namespace '../evil'"
    );
    for ok in ["a", "default", "-x", "_a.b-c", &"a".repeat(64)] {
        validate_namespace(ok).unwrap();
    }
    for bad in ["", ".a", "a/b", &"a".repeat(65), "a b"] {
        assert!(validate_namespace(bad).is_err(), "{bad}");
    }
    let fork = "s-00112233445566778899aabbccddeeff/fork-0";
    assert!(validate_namespace(fork).is_err());
    validate_store_namespace(fork).unwrap();
    assert!(validate_store_namespace("a/fork-").is_err());
    assert!(validate_store_namespace("a/evil").is_err());
    for s in &ss {
        assert!(s.get("../evil", "k").is_err());
        s.set("a", "p:q", Some(&json!("A"))).unwrap();
        s.set("b", "p:r", Some(&json!("B"))).unwrap();
        s.set(fork, "p:s", Some(&json!("F"))).unwrap();
        assert_eq!(s.keys("a", None).unwrap(), vec!["p:q"]);
        assert_eq!(s.list("b", "p").unwrap(), vec!["r"]);
        assert_eq!(s.get("a", "p:r").unwrap(), None);
        assert_eq!(s.list(fork, "p").unwrap(), vec!["s"]);
    }
}

#[test]
fn item_109_concurrent_updates() {
    let (_d, ss) = stores();
    for s in ss {
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut done = 0;
                    while done < 100 {
                        let r =
                            update::<_, _, StateStoreError>(&*s, NS, "n", Some(&json!(0)), |v| {
                                Ok(Some(json!(v.unwrap().as_i64().unwrap() + 1)))
                            });
                        match r {
                            Ok(_) => done += 1,
                            // update's 5-attempt limit may be hit under contention; Lua would
                            // raise, here the test retries.
                            Err(StateStoreError::Conflict { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(s.get(NS, "n").unwrap(), Some(json!(200)));
    }
}

#[test]
fn concurrent_updates_across_connections() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("alc.db");
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            std::thread::spawn(move || {
                // Each thread has its own connection, as two processes would.
                let s = SqliteStateStore::open(&p, Durability::Normal).unwrap();
                for _ in 0..100 {
                    s.incr(NS, "i", &n(1), &n(0)).unwrap();
                    loop {
                        match update::<_, _, StateStoreError>(&s, NS, "n", Some(&json!(0)), |v| {
                            Ok(Some(json!(v.unwrap().as_i64().unwrap() + 1)))
                        }) {
                            Ok(_) => break,
                            Err(StateStoreError::Conflict { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = SqliteStateStore::open(&p, Durability::Normal).unwrap();
    assert_eq!(s.get(NS, "n").unwrap(), Some(json!(200)));
    assert_eq!(s.get(NS, "i").unwrap(), Some(json!(200)));
}

#[test]
fn compare_and_set_and_update_details() {
    let (_d, ss) = stores();
    for s in &ss {
        assert!(s.get_versioned(NS, "v").unwrap().is_none());
        assert!(!s
            .compare_and_set(NS, "v", Some(1), Some(&json!(1)))
            .unwrap());
        assert!(s.compare_and_set(NS, "v", None, Some(&json!(1))).unwrap());
        let v1 = s.get_versioned(NS, "v").unwrap().unwrap();
        assert_eq!(v1.value, json!(1));
        assert!(!s.compare_and_set(NS, "v", None, Some(&json!(2))).unwrap());
        assert!(s
            .compare_and_set(NS, "v", Some(v1.version), Some(&json!(2)))
            .unwrap());
        assert!(!s
            .compare_and_set(NS, "v", Some(v1.version), Some(&json!(3)))
            .unwrap());
        // Delete + re-create never reuses a version (no ABA).
        s.delete(NS, "v").unwrap();
        s.set(NS, "v", Some(&json!(2))).unwrap();
        let v3 = s.get_versioned(NS, "v").unwrap().unwrap();
        assert!(v3.version > v1.version);
        // update returning None deletes; the default is passed when absent.
        let r = update::<_, _, StateStoreError>(&**s, NS, "v", None, |_| Ok(None)).unwrap();
        assert_eq!(r, None);
        assert!(!s.has(NS, "v").unwrap());
        let r = update::<_, _, StateStoreError>(&**s, NS, "u", Some(&json!("d")), |v| {
            assert_eq!(v, Some(json!("d")));
            Ok(Some(json!("new")))
        })
        .unwrap();
        assert_eq!(r, Some(json!("new")));
        // A function that always loses the race gives up after 5 attempts.
        let mut calls = 0;
        let e = update::<_, _, StateStoreError>(&**s, NS, "u", None, |_| {
            calls += 1;
            s.set(NS, "u", Some(&json!(calls))).unwrap();
            Ok(Some(json!("mine")))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "conflict on 'u'");
        assert_eq!(calls, UPDATE_ATTEMPTS);
    }
}
