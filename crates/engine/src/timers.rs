//! The timer thread: deadlines, idle TTL, ask timeouts and retention (engine.md §5.4).
//!
//! One thread keeps a min-heap of due times. Entries are never removed early: a fired
//! entry whose session moved on is recognised as stale by the state machine (or by the
//! version it carries) and ignored.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::table::SessionCell;

/// What a timer does when it fires: the state machine's timer kind and the core version
/// at arming (a timer whose session moved on is ignored).
pub type TimerKind = (alc_core::TimerKind, u64);

struct Entry {
    due: Instant,
    seq: u64,
    cell: Weak<SessionCell>,
    kind: TimerKind,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(o.due, o.seq))
    }
}

struct Shared {
    heap: Mutex<(BinaryHeap<Reverse<Entry>>, u64, bool)>,
    wake: Condvar,
}

/// Handle to the timer thread.
pub struct Timers {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Timers {
    /// Starts the timer thread; `fire` runs on it for every due entry.
    pub fn start(fire: impl Fn(Arc<SessionCell>, TimerKind) + Send + 'static) -> Timers {
        let shared = Arc::new(Shared {
            heap: Mutex::new((BinaryHeap::new(), 0, false)),
            wake: Condvar::new(),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("alc-timers".into())
            .spawn(move || loop {
                let due = {
                    let mut g = s.heap.lock();
                    loop {
                        if g.2 {
                            return;
                        }
                        let now = Instant::now();
                        match g.0.peek() {
                            Some(Reverse(e)) if e.due <= now => {
                                break g.0.pop().map(|Reverse(e)| e);
                            }
                            Some(Reverse(e)) => {
                                let wait = e.due - now;
                                s.wake.wait_for(&mut g, wait);
                            }
                            None => {
                                s.wake.wait_for(&mut g, Duration::from_secs(3600));
                            }
                        }
                    }
                };
                if let Some(e) = due {
                    if let Some(cell) = e.cell.upgrade() {
                        fire(cell, e.kind);
                    }
                }
            })
            .expect("spawn the timer thread");
        Timers {
            shared,
            thread: Mutex::new(Some(thread)),
        }
    }

    /// Arms a timer `after` from now.
    pub fn arm(&self, cell: &Arc<SessionCell>, after: Duration, kind: TimerKind) {
        let mut g = self.shared.heap.lock();
        g.1 += 1;
        let seq = g.1;
        let due = Instant::now() + after;
        // The timer thread only needs waking when the new entry is due first.
        let earliest = g.0.peek().is_none_or(|Reverse(head)| due < head.due);
        g.0.push(Reverse(Entry {
            due,
            seq,
            cell: Arc::downgrade(cell),
            kind,
        }));
        if earliest {
            self.shared.wake.notify_one();
        }
    }

    /// Stops the thread.
    pub fn stop(&self) {
        self.shared.heap.lock().2 = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}
