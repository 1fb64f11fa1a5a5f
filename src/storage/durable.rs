//! Awaitable durable IO through the committer (`FlushSink`): every fsync of a log's files,
//! records and directory goes through it, off the runtime's workers.

use super::{FlushDone, FlushSink};
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// A committer callback and the outcome it reports, to await (a committer that is gone
/// reports nothing: an error).
pub fn awaited() -> (FlushDone, impl std::future::Future<Output = std::io::Result<()>>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let done: FlushDone = Box::new(move |r| {
        let _ = tx.send(r);
    });
    let outcome = async move {
        rx.await
            .unwrap_or_else(|_| Err(std::io::Error::other("committer stopped")))
    };
    (done, outcome)
}

/// Writes `data` to `path` atomically and durably, and waits for it.
pub async fn write(sink: &dyn FlushSink, path: PathBuf, data: Vec<u8>) -> std::io::Result<()> {
    let (done, outcome) = awaited();
    sink.write_durably(path, data, done);
    outcome.await
}

/// Makes `files` (a directory's handle syncs its entries) durable now, and waits for it.
pub async fn sync(sink: &dyn FlushSink, files: Vec<Arc<File>>) -> std::io::Result<()> {
    let (done, outcome) = awaited();
    sink.sync(files, 0, done);
    outcome.await
}

/// A sink doing every write and sync inline, at once (unit tests without a committer).
#[cfg(test)]
pub struct InlineSink;

#[cfg(test)]
impl FlushSink for InlineSink {
    fn flush(&self, files: Vec<Arc<File>>, bytes: u64, done: FlushDone) {
        self.sync(files, bytes, done)
    }

    fn sync(&self, files: Vec<Arc<File>>, _bytes: u64, done: FlushDone) {
        done(files.iter().try_for_each(|f| f.sync_all()))
    }

    fn write_durably(&self, path: PathBuf, data: Vec<u8>, done: FlushDone) {
        done(super::write_file_durably(&path, &data))
    }
}
