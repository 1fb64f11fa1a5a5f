//! Time queries of a partition log that look inside its batches (ListOffsets -3).

use crate::storage::log::entry;
use crate::storage::log::PartitionLog;

impl PartitionLog {
    /// Offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub fn max_timestamp_offset(&self) -> Option<(i64, i64)> {
        let segs = self.inner.read();
        let seg = segs
            .iter()
            .filter(|s| s.last.is_some())
            .max_by_key(|s| s.max_timestamp)?;
        let ts = seg.max_timestamp;
        let mut pos = seg.scan_start_for_time(ts);
        while pos < seg.size_bytes {
            let (bytes, info) = seg.read_at(pos, 0).ok()?;
            pos += info.disk_bytes;
            if info.is_batch && info.max_timestamp == ts {
                let batch = entry::batch_payload(&bytes, &info)?;
                let offset = crate::protocol::record_times::first_with_timestamp(&batch, ts);
                return Some((offset.unwrap_or(info.next_offset - 1), ts));
            }
        }
        None
    }
}
