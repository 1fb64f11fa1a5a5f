//! One segment file of a partition log plus its sparse in-memory offset and time indexes.
//! Segments are named by their first Kafka offset (20 digits). Every segment after the first
//! starts with a batch, so names never collide.

use crate::storage::log::entry::{self, DecodeError, EntryInfo, ENTRY_HEADER_BYTES};
use crate::storage::log::{LogError, LogResult};
use crate::storage::producer_state::ProducerStates;
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A sparse index point: the entry at `pos` has Raft index `index` and first offset `offset`.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct IndexPoint {
    pub index: u64,
    pub offset: i64,
    pub pos: u64,
}

/// A sparse time index point: entries from `pos` on have timestamps above those before it.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct TimePoint {
    /// Largest timestamp in the segment up to and including this entry.
    pub max_timestamp: i64,
    /// First offset of the entry.
    pub offset: i64,
    pub pos: u64,
}

/// An open segment.
pub struct Segment {
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Kafka offset of the first batch (or of the log end when the segment was created).
    pub base_offset: i64,
    /// Raft index of the first entry, or the next index for an empty segment.
    pub base_index: u64,
    pub size_bytes: u64,
    /// Last entry in the segment, if any.
    pub last: Option<EntryInfo>,
    /// Offset after the last batch in this segment.
    pub next_offset: i64,
    pub offset_index: Vec<IndexPoint>,
    pub time_index: Vec<TimePoint>,
    pub max_timestamp: i64,
    /// When the segment was created (broker clock; after a restart the file's creation time
    /// where the filesystem keeps one, else the restart): `segment.ms` counts from here.
    pub created_ms: i64,
    pub(super) bytes_since_index_point: u64,
    pub(super) index_interval_bytes: u64,
}

/// What a scan of an existing segment found.
#[derive(Debug, Default)]
pub struct ScanReport {
    pub entries: u64,
    /// Bytes cut from the tail, with the reason, if the tail was torn or corrupt.
    pub truncated: Option<(u64, String)>,
}

/// Wall-clock milliseconds (producer-state expiry counts from recovery).
/// The file's creation time, if the filesystem records one.
fn created_ms(file: &File) -> Option<i64> {
    let created = file.metadata().ok()?.created().ok()?;
    Some(created.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Name of the segment file for `base_offset`.
pub fn file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

impl Segment {
    /// Creates a new empty segment, its directory entry durable.
    pub fn create(
        dir: &Path,
        base_offset: i64,
        base_index: u64,
        index_interval_bytes: u64,
    ) -> std::io::Result<Segment> {
        let seg = Segment::create_unsynced(dir, base_offset, base_index, index_interval_bytes)?;
        File::open(dir)?.sync_all()?;
        Ok(seg)
    }

    /// Creates a new empty segment whose directory entry the caller makes durable (a roll:
    /// with the first entries written to it, in the committer's round).
    pub fn create_unsynced(
        dir: &Path,
        base_offset: i64,
        base_index: u64,
        index_interval_bytes: u64,
    ) -> std::io::Result<Segment> {
        let path = dir.join(file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Segment::empty(
            path,
            file,
            base_offset,
            base_index,
            index_interval_bytes,
        ))
    }

    pub(super) fn empty(
        path: PathBuf,
        file: File,
        base_offset: i64,
        base_index: u64,
        index_interval_bytes: u64,
    ) -> Segment {
        Segment {
            path,
            file: Arc::new(file),
            base_offset,
            base_index,
            size_bytes: 0,
            last: None,
            next_offset: base_offset,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            max_timestamp: -1,
            created_ms: now_ms(),
            bytes_since_index_point: 0,
            index_interval_bytes,
        }
    }

    /// Opens an existing segment, verifying every entry. A torn or corrupt tail is cut when
    /// `may_truncate` (the active segment); otherwise it is an error.
    pub fn open(
        path: &Path,
        base_offset: i64,
        next_index: u64,
        may_truncate: bool,
        index_interval_bytes: u64,
        producers: &mut ProducerStates,
    ) -> LogResult<(Segment, ScanReport)> {
        let now_ms = now_ms();
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = file.metadata()?.len();
        let created_ms = created_ms(&file).unwrap_or(now_ms);
        let mut seg = Segment::empty(path.to_path_buf(), file, base_offset, next_index, index_interval_bytes);
        seg.created_ms = created_ms;
        let mut report = ScanReport::default();
        let mut pos = 0u64;
        let mut header = [0u8; ENTRY_HEADER_BYTES];
        let mut expected_index = None::<u64>;
        while pos < len {
            let problem = match read_entry_at(&seg.file, pos, len, &mut header) {
                Ok(bytes) => match entry::inspect(&bytes, pos, seg.next_offset) {
                    Ok(info) if expected_index.is_some_and(|e| e != info.log_id.index) => {
                        Some("raft index out of sequence".to_string())
                    }
                    Ok(info) if info.is_batch && info.base_offset != seg.next_offset && seg.last.is_some() => {
                        Some("kafka offset out of sequence".to_string())
                    }
                    Ok(info) => {
                        if seg.last.is_none() {
                            seg.base_index = info.log_id.index;
                        }
                        expected_index = Some(info.log_id.index + 1);
                        if let Some(p) = info.producer {
                            producers.record(p.id, p.epoch, p.first_seq, p.count, Some(info.base_offset), now_ms);
                        }
                        seg.note_appended(info);
                        report.entries += 1;
                        pos += info.disk_bytes;
                        None
                    }
                    Err(DecodeError::Incomplete) => Some("torn entry".into()),
                    Err(DecodeError::Corrupt(why)) => Some(why.into()),
                },
                Err(DecodeError::Incomplete) => Some("torn entry".into()),
                Err(DecodeError::Corrupt(why)) => Some(why.into()),
            };
            if let Some(why) = problem {
                if !may_truncate {
                    return Err(LogError::CorruptSegment {
                        path: path.to_path_buf(),
                        pos,
                        why,
                    });
                }
                report.truncated = Some((len - pos, format!("{why} at byte {pos}")));
                seg.file.set_len(pos)?;
                seg.file.sync_all()?;
                break;
            }
        }
        seg.size_bytes = pos;
        Ok((seg, report))
    }

    /// Records an entry just written at `info.pos` in the indexes.
    pub fn note_appended(&mut self, info: EntryInfo) {
        debug_assert!(
            self.last.is_none_or(|l| l.log_id.index + 1 == info.log_id.index),
            "Raft indexes in a segment are contiguous"
        );
        debug_assert!(
            info.base_offset >= self.next_offset || self.last.is_none(),
            "Kafka offsets never go back"
        );
        debug_assert!(info.pos == self.size_bytes, "an entry starts where the segment ends");
        if self.last.is_none() {
            self.base_index = info.log_id.index;
            if info.is_batch {
                self.base_offset = info.base_offset;
            }
        }
        if self.offset_index.is_empty() || self.bytes_since_index_point >= self.index_interval_bytes {
            self.offset_index.push(IndexPoint {
                index: info.log_id.index,
                offset: info.base_offset,
                pos: info.pos,
            });
            if info.max_timestamp > self.max_timestamp || self.time_index.is_empty() {
                self.time_index.push(TimePoint {
                    max_timestamp: info.max_timestamp.max(self.max_timestamp),
                    offset: info.base_offset,
                    pos: info.pos,
                });
            }
            self.bytes_since_index_point = 0;
        }
        self.bytes_since_index_point += info.disk_bytes;
        self.max_timestamp = self.max_timestamp.max(info.max_timestamp);
        self.next_offset = info.next_offset;
        self.size_bytes = info.pos + info.disk_bytes;
        self.last = Some(info);
    }

    /// Last Raft index in this segment.
    pub fn last_index(&self) -> Option<u64> {
        self.last.map(|l| l.log_id.index)
    }

    /// Position to start scanning from to find Raft index `index`.
    pub fn scan_start_for_index(&self, index: u64) -> u64 {
        let i = self.offset_index.partition_point(|p| p.index <= index);
        if i == 0 {
            0
        } else {
            self.offset_index[i - 1].pos
        }
    }

    /// Position to start scanning from to find Kafka offset `offset`.
    pub fn scan_start_for_offset(&self, offset: i64) -> u64 {
        let i = self.offset_index.partition_point(|p| p.offset <= offset);
        if i == 0 {
            0
        } else {
            self.offset_index[i - 1].pos
        }
    }

    /// Position to start scanning from to find the first entry with timestamp >= `ts`.
    pub fn scan_start_for_time(&self, ts: i64) -> u64 {
        let i = self.time_index.partition_point(|p| p.max_timestamp < ts);
        if i == 0 {
            0
        } else {
            self.time_index[i - 1].pos
        }
    }

    /// Reads and verifies the entry at `pos`.
    pub fn read_at(&self, pos: u64, next_offset_hint: i64) -> LogResult<(Bytes, EntryInfo)> {
        let mut header = [0u8; ENTRY_HEADER_BYTES];
        let bad = |why| LogError::BadEntry {
            path: self.path.clone(),
            pos,
            why,
        };
        let bytes = read_entry_at(&self.file, pos, self.size_bytes, &mut header).map_err(bad)?;
        let info = entry::inspect(&bytes, pos, next_offset_hint).map_err(bad)?;
        Ok((bytes, info))
    }

    /// Drops every entry from `pos` on (the indexes too).
    pub fn truncate_at(&mut self, pos: u64, last: Option<EntryInfo>) -> std::io::Result<()> {
        self.file.set_len(pos)?;
        self.size_bytes = pos;
        self.offset_index.retain(|p| p.pos < pos);
        self.time_index.retain(|p| p.pos < pos);
        self.last = last;
        self.next_offset = last.map(|l| l.next_offset).unwrap_or(self.base_offset);
        self.max_timestamp = self.time_index.last().map(|p| p.max_timestamp).unwrap_or(-1);
        self.bytes_since_index_point = self.index_interval_bytes;
        Ok(())
    }
}

/// Reads the whole entry at `pos` (header first, then the rest).
fn read_entry_at(
    file: &File,
    pos: u64,
    file_len: u64,
    header: &mut [u8; ENTRY_HEADER_BYTES],
) -> Result<Bytes, DecodeError> {
    if pos + ENTRY_HEADER_BYTES as u64 > file_len {
        return Err(DecodeError::Incomplete);
    }
    file.read_exact_at(header, pos).map_err(|_| DecodeError::Incomplete)?;
    let total = entry::header_len(header)?;
    if pos + total > file_len {
        return Err(DecodeError::Incomplete);
    }
    let mut buf = vec![0u8; total as usize];
    buf[..ENTRY_HEADER_BYTES].copy_from_slice(header);
    file.read_exact_at(&mut buf[ENTRY_HEADER_BYTES..], pos + ENTRY_HEADER_BYTES as u64)
        .map_err(|_| DecodeError::Incomplete)?;
    Ok(Bytes::from(buf))
}
