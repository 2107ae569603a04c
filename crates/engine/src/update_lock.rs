//! In-process exclusion for `alc.state.update` (lua-api.md §2.8, item 109).
//!
//! `update` is a read–compute–compare-and-set loop with at most five attempts. Two sessions
//! updating one key on two workers collide whenever one is descheduled between its read
//! and its write, and five collisions in a row end in `conflict`. Sessions of one process
//! therefore take a per-key lock around the loop: the others wait for it (polling, so a
//! cancel still stops them) and only sessions of other processes are left to the
//! compare-and-set. The lock is advisory: a session that waits too long (the holder may be
//! paused inside its update function) goes ahead with compare-and-set alone.
//!
//! Owners are VM instances, not sessions: a fork child and its parent are different
//! owners. A VM that is dropped while holding a lock (cancelled in the middle of an update)
//! releases it in `VmHost`'s `Drop`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// (namespace, key) → (owner, re-entry depth).
type Held = HashMap<(String, String), (u64, u32)>;
static HELD: LazyLock<Mutex<Held>> = LazyLock::new(Default::default);
static NEXT_OWNER: AtomicU64 = AtomicU64::new(1);

/// How long a session waits for another session's update before going ahead alone.
const PATIENCE: Duration = Duration::from_millis(200);
const POLL: Duration = Duration::from_micros(20);

/// A fresh owner id for one VM.
pub fn new_owner() -> u64 {
    NEXT_OWNER.fetch_add(1, Ordering::Relaxed)
}

fn try_take(owner: u64, ns: &str, key: &str) -> bool {
    let mut map = HELD.lock();
    match map.get_mut(&(ns.to_string(), key.to_string())) {
        Some((o, depth)) if *o == owner => {
            *depth += 1;
            true
        }
        Some(_) => false,
        None => {
            map.insert((ns.to_string(), key.to_string()), (owner, 1));
            true
        }
    }
}

/// Takes the lock of `(ns, key)` for `owner` (re-entrant), waiting while another owner holds
/// it, until `aborted()` or the patience runs out. True if taken (release it with
/// [`release`]).
pub fn acquire(owner: u64, ns: &str, key: &str, aborted: impl Fn() -> bool) -> bool {
    let give_up = Instant::now() + PATIENCE;
    loop {
        if try_take(owner, ns, key) {
            return true;
        }
        if aborted() || Instant::now() >= give_up {
            return false;
        }
        std::thread::sleep(POLL);
    }
}

/// Releases one level of `owner`'s lock of `(ns, key)`.
pub fn release(owner: u64, ns: &str, key: &str) {
    let mut map = HELD.lock();
    let k = (ns.to_string(), key.to_string());
    if let Some((o, depth)) = map.get_mut(&k) {
        if *o == owner {
            *depth -= 1;
            if *depth == 0 {
                map.remove(&k);
            }
        }
    }
}

/// Releases every lock `owner` holds (its VM is going away).
pub fn release_all(owner: u64) {
    HELD.lock().retain(|_, (o, _)| *o != owner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reentrant_exclusive_and_released_with_the_owner() {
        let (a, b) = (new_owner(), new_owner());
        assert!(acquire(a, "ns", "k", || false));
        assert!(acquire(a, "ns", "k", || false), "re-entrant");
        assert!(
            !acquire(b, "ns", "k", || true),
            "another owner waits (and gives up on abort)"
        );
        release(a, "ns", "k");
        assert!(!try_take(b, "ns", "k"), "still held once");
        release(a, "ns", "k");
        assert!(acquire(b, "ns", "k", || false));
        assert!(acquire(a, "ns", "other", || false), "keys are independent");
        release_all(b);
        assert!(acquire(a, "ns", "k", || false), "released with its owner");
        release_all(a);
    }
}
