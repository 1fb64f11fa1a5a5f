//! What can go wrong in a partition's log. Callers map it to their own layer's error (openraft's
//! storage errors; a Kafka code only where a handler reads the log, as KAFKA_STORAGE_ERROR).

use super::entry::DecodeError;
use std::path::PathBuf;

/// A log operation's failure.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file system failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Bytes read back from a segment are not a valid entry.
    #[error("{}: bad entry at byte {pos}: {why:?}", path.display())]
    BadEntry { path: PathBuf, pos: u64, why: DecodeError },
    /// Recovery found corruption before the last segment, where cutting would lose committed
    /// entries.
    #[error("segment {} is corrupt at byte {pos} ({why}) and is not the last segment; refusing to start", path.display())]
    CorruptSegment { path: PathBuf, pos: u64, why: String },
    /// Recovery found a segment whose first Raft index does not follow the one before it.
    #[error("segment {} does not continue the Raft index of the one before it", .0.display())]
    IndexGap(PathBuf),
    /// An append whose first entry does not follow the log's last one.
    #[error("append of index {index} after {last}")]
    NotContiguous { index: u64, last: u64 },
    /// A batch entry shorter than a record batch header.
    #[error("short batch")]
    ShortBatch,
    /// An entry larger than the log's entry limit.
    #[error("entry of {0} bytes is too large")]
    TooLarge(u32),
    /// An entry of a kind this build does not know.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    /// A membership entry that does not parse.
    #[error("membership entry: {0}")]
    Membership(#[from] serde_json::Error),
}

/// A log operation's result.
pub type LogResult<T> = Result<T, LogError>;
