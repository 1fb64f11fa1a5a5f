//! Watches the free space of the data dir's filesystem. Below `log.dir.min.free.bytes` the node
//! is "low": leaders here answer produce with KAFKA_STORAGE_ERROR and hand their leadership to
//! another in-sync replica, and a partition whose group stopped on a failed write is restarted
//! only once space has returned (a full disk must not crash-loop a partition into taking the
//! broker down). A write that fails outright (ENOSPC below the threshold) stops that group only:
//! nothing unwritten is ever acknowledged.

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
            low: AtomicBool::new(false),
            free_bytes: AtomicU64::new(u64::MAX),
            changed: watch::channel(false).0,
        });
        guard.check();
        guard
    }

    /// Whether free space was below the minimum at the last check.
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

    /// Reads the free space now; returns whether it is low. An unreadable filesystem counts as
    /// not low (the writes themselves will tell).
    pub fn check(&self) -> bool {
        let Ok(st) = rustix::fs::statvfs(&self.dir) else {
            return self.is_low();
        };
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        self.free_bytes.store(free, Ordering::Relaxed);
        let low = free < self.min_free_bytes;
        if self.low.swap(low, Ordering::AcqRel) != low {
            if low {
                tracing::warn!(free_bytes = free, min_free_bytes = self.min_free_bytes, dir = %self.dir.display(),
                    "data dir almost full: refusing produce here, moving leadership away");
            } else {
                tracing::warn!(free_bytes = free, "data dir has room again: taking writes");
            }
            self.changed.send_replace(low);
        }
        low
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
        tokio::spawn(async move {
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
}
