//! Seals: when a segment rolls, its indexes, its last entry and the producer state as of its
//! end are written (after the segment is fsynced) to `<base>.seal`. Recovery loads closed
//! segments from their seals and scans only what follows the newest valid one (normally just
//! the active segment), so start-up time does not grow with the size of the log. A seal whose
//! recorded size differs from the file's is ignored and the segment is scanned instead.

use crate::storage::log::entry::EntryInfo;
use crate::storage::log::segment::{IndexPoint, Segment, TimePoint};
use crate::storage::producer_state::ProducerStates;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

/// What a closed segment's scan would rebuild.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SegmentSeal {
    pub size_bytes: u64,
    pub base_offset: i64,
    pub base_index: u64,
    pub last: Option<EntryInfo>,
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub offset_index: Vec<IndexPoint>,
    pub time_index: Vec<TimePoint>,
    pub entries: u64,
    /// Idempotent-producer state of the whole log up to the end of this segment.
    pub producers: ProducerStates,
}

/// The seal file of the segment at `segment_path`.
pub fn seal_path(segment_path: &Path) -> PathBuf {
    segment_path.with_extension("seal")
}

/// The seal of `seg` as its file holds it.
pub fn encode(seg: &Segment, producers: &ProducerStates) -> std::io::Result<Vec<u8>> {
    let entries = seg.last.map(|l| l.log_id.index + 1 - seg.base_index).unwrap_or(0);
    let seal = SegmentSeal {
        size_bytes: seg.size_bytes,
        base_offset: seg.base_offset,
        base_index: seg.base_index,
        last: seg.last,
        next_offset: seg.next_offset,
        max_timestamp: seg.max_timestamp,
        offset_index: seg.offset_index.clone(),
        time_index: seg.time_index.clone(),
        entries,
        producers: producers.clone(),
    };
    serde_json::to_vec(&seal).map_err(std::io::Error::other)
}

/// Reads a seal that matches its segment file's size, or `None`.
pub fn read_valid(segment_path: &Path) -> Option<SegmentSeal> {
    let seal: SegmentSeal = serde_json::from_slice(&std::fs::read(seal_path(segment_path)).ok()?).ok()?;
    let len = std::fs::metadata(segment_path).ok()?.len();
    (len == seal.size_bytes).then_some(seal)
}

/// Removes a seal (its segment is about to change or go). Missing is fine.
pub fn remove(segment_path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(seal_path(segment_path)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Opens a closed segment from its seal, without scanning it.
pub fn open_sealed(path: &Path, seal: &SegmentSeal, index_interval_bytes: u64) -> std::io::Result<Segment> {
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let mut seg = Segment::empty(
        path.to_path_buf(),
        file,
        seal.base_offset,
        seal.base_index,
        index_interval_bytes,
    );
    seg.size_bytes = seal.size_bytes;
    seg.last = seal.last;
    seg.next_offset = seal.next_offset;
    seg.max_timestamp = seal.max_timestamp;
    seg.offset_index = seal.offset_index.clone();
    seg.time_index = seal.time_index.clone();
    seg.bytes_since_index_point = index_interval_bytes;
    Ok(seg)
}
