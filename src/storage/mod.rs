//! Durable state: partition logs (segments, sparse indexes, recovery), the openraft log and
//! state-machine adapters over them, the controller's metadata, and node identity.
//! Imports no actor: the committer is reached through the `FlushSink` trait.

pub mod disk_guard;
pub mod durable;
pub mod legacy_offsets;
pub mod log;
pub mod meta_sm;
pub mod node_meta;
pub mod offsets;
pub mod partition_sm;
pub mod producer_state;
pub mod raft_log;

use std::fs::File;
use std::sync::Arc;

/// Called once the files of one append are durable (or failed to become so).
pub type FlushDone = Box<dyn FnOnce(std::io::Result<()>) + Send + 'static>;

/// Where a log sends its fsync requests: the shared committer.
pub trait FlushSink: Send + Sync + 'static {
    /// Makes everything written so far to `files` durable, then calls `done` (with relaxed
    /// durability: calls `done` at once and syncs on the next tick).
    fn flush(&self, files: Vec<Arc<File>>, bytes: u64, done: FlushDone);
    /// Makes `files` durable now, whatever the durability setting (a segment that closes).
    fn sync(&self, files: Vec<Arc<File>>, bytes: u64, done: FlushDone);
    /// Writes `data` to `path` atomically and durably (`write_file_durably`), off the
    /// runtime's workers, then calls `done`.
    fn write_durably(&self, path: std::path::PathBuf, data: Vec<u8>, done: FlushDone);
}

/// Writes `data` to `path` atomically and durably (temp file, fsync, rename, fsync dir).
pub fn write_file_durably(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
