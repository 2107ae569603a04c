//! A hosted session's change signal: a counter bumped at every transition, and a wake-up
//! for everyone waiting on it (`wait`, `run_until_pause`, event streams).
//!
//! Used in place of a `tokio::sync::watch` channel, whose shared state (about 350 bytes,
//! eight waiter lists) every hosted session would carry; this is a counter and one
//! [`Notify`].

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// The signal. Waiters never miss a change: they register before they read the counter.
#[derive(Debug, Default)]
pub struct Changes {
    count: AtomicU64,
    notify: Notify,
}

/// How far one waiter has followed the counter.
#[derive(Clone, Copy, Debug)]
pub struct Seen(u64);

impl Changes {
    /// Records a change and wakes every waiter.
    pub fn bump(&self) {
        self.count.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// The changes so far, as seen by a new waiter.
    pub fn seen(&self) -> Seen {
        Seen(self.count.load(Ordering::Acquire))
    }

    /// Whether there was a change after `seen`; if so, `seen` moves up to it.
    pub fn take(&self, seen: &mut Seen) -> bool {
        let now = self.count.load(Ordering::Acquire);
        let changed = now != seen.0;
        seen.0 = now;
        changed
    }

    /// Returns at the first change after `seen` (at once if there was one already).
    pub async fn changed(&self, seen: &mut Seen) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.take(seen) {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_change_before_the_wait_is_not_missed() {
        let c = Changes::default();
        let mut seen = c.seen();
        assert!(!c.take(&mut seen.clone()));
        c.bump();
        tokio::time::timeout(Duration::from_secs(10), c.changed(&mut seen))
            .await
            .expect("returns at once");
        assert!(!c.take(&mut seen), "seen moved up to the change");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiter_wakes_at_a_change() {
        let c = Arc::new(Changes::default());
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                let mut seen = c.seen();
                tokio::spawn(async move { c.changed(&mut seen).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.bump();
        for w in waiters {
            tokio::time::timeout(Duration::from_secs(10), w)
                .await
                .expect("woken")
                .expect("joins");
        }
    }
}
