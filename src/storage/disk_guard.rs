//! Watches the free space of the data dir's filesystem. Below `log.dir.min.free.bytes` the node
//! is "low": leaders here answer produce with KAFKA_STORAGE_ERROR and hand their leadership to
//! another in-sync replica, and a partition whose group stopped on a failed write is restarted
//! only once space has returned (a full disk must not crash-loop a partition into taking the
//! broker down). A write that fails outright (ENOSPC below the threshold) stops that group only:
//! nothing unwritten is ever acknowledged. A disk that stops answering counts as low too: the
//! committer marks the guard stalled while one fsync round has run longer than
//! `log.flush.stall.ms` (a hung disk held every partition led here for as long as it hung).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often free space is checked.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(500);

/// The node's view of its data dir's free space.
pub struct DiskGuard {
    dir: PathBuf,
    min_free_bytes: u64,
    /// Free space below the minimum at the last check.
    space_low: AtomicBool,
    /// An fsync round has run longer than `log.flush.stall.ms` and not ended yet.
    stalled: AtomicBool,
    /// `space_low || stalled`, as last announced on `changed`.
    low: AtomicBool,
    free_bytes: AtomicU64,
    changed: watch::Sender<bool>,
}

impl DiskGuard {
    /// A guard for the filesystem holding `dir`; checked once now.
    pub fn new(dir: PathBuf, min_free_bytes: u64) -> Arc<DiskGuard> {
        let guard = Arc::new(DiskGuard {
            dir,
            min_free_bytes,
            space_low: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            low: AtomicBool::new(false),
            free_bytes: AtomicU64::new(u64::MAX),
            changed: watch::channel(false).0,
        });
        guard.check();
        guard
    }

    /// Whether free space was below the minimum at the last check, or fsyncs are stalled.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Acquire)
    }

    /// (total, usable) bytes of the filesystem holding `dir` now (DescribeLogDirs).
    pub fn space(dir: &std::path::Path) -> Option<(u64, u64)> {
        let st = rustix::fs::statvfs(dir).ok()?;
        Some((
            st.f_blocks.saturating_mul(st.f_frsize),
            st.f_bavail.saturating_mul(st.f_frsize),
        ))
    }

    /// Free bytes at the last check.
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Ordering::Relaxed)
    }

    /// Reads the free space now; returns whether the disk is low (or stalled). An unreadable
    /// filesystem counts as not low (the writes themselves will tell).
    pub fn check(&self) -> bool {
        let Ok(st) = rustix::fs::statvfs(&self.dir) else {
            return self.is_low();
        };
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        self.free_bytes.store(free, Ordering::Relaxed);
        let space_low = free < self.min_free_bytes;
        if self.space_low.swap(space_low, Ordering::AcqRel) != space_low {
            if space_low {
                tracing::warn!(free_bytes = free, min_free_bytes = self.min_free_bytes, dir = %self.dir.display(),
                    "data dir almost full: refusing produce here, moving leadership away");
            } else {
                tracing::warn!(free_bytes = free, "data dir has room again: taking writes");
            }
        }
        self.announce();
        self.is_low()
    }

    /// Whether fsyncs are stalled (a round made no progress for `log.flush.stall.ms`).
    pub fn is_stalled(&self) -> bool {
        self.stalled.load(Ordering::Acquire)
    }

    /// Marks fsyncs as stalled (a round made no progress for too long) or answering again;
    /// subscribers are told even when the disk was low already (commit waits react to stalls).
    pub fn set_stalled(&self, stalled: bool) {
        if self.stalled.swap(stalled, Ordering::AcqRel) != stalled {
            if stalled {
                tracing::warn!(dir = %self.dir.display(), "an fsync has not returned: refusing produce here, moving leadership away");
            } else {
                tracing::warn!("fsyncs answer again: taking writes");
            }
            if !self.announce() {
                // `low` did not change (the space was low already): tell the waiters anyway.
                self.changed.send_replace(self.is_low());
            }
        }
    }

    /// Recomputes `low` from its causes and tells the waiters when it changed; returns whether
    /// it did.
    fn announce(&self) -> bool {
        let low = self.space_low.load(Ordering::Acquire) || self.stalled.load(Ordering::Acquire);
        let changed = self.low.swap(low, Ordering::AcqRel) != low;
        if changed {
            self.changed.send_replace(low);
        }
        changed
    }

    /// A receiver told of every change of `is_low` and of `is_stalled`.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.changed.subscribe()
    }

    /// Waits until the space is not low (checking at least every `interval`).
    pub async fn wait_not_low(&self, interval: Duration) {
        let mut rx = self.changed.subscribe();
        while self.check() {
            let _ = tokio::time::timeout(interval, rx.changed()).await;
        }
    }

    /// Checks every `interval` until the returned task is aborted.
    pub fn spawn_monitor(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        crate::tasks::spawn_essential("disk-monitor", async move {
            loop {
                tokio::time::sleep(interval).await;
                me.check();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_when_less_free_than_the_minimum() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!DiskGuard::new(dir.path().into(), 0).is_low());
        let guard = DiskGuard::new(dir.path().into(), u64::MAX);
        assert!(guard.is_low() && guard.free_bytes() < u64::MAX);
    }

    #[test]
    fn low_while_fsyncs_are_stalled() {
        let dir = tempfile::tempdir().unwrap();
        let guard = DiskGuard::new(dir.path().into(), 0);
        guard.set_stalled(true);
        assert!(guard.is_low() && guard.check(), "a check of the space keeps the stall");
        guard.set_stalled(false);
        assert!(!guard.is_low() && !guard.check());
    }
}
