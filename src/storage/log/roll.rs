//! Appending, and rolling the active segment. An append stops where the active segment must
//! roll; the caller makes what was written durable (the committer's round), then `roll` closes
//! the segment and opens the next, and the append goes on. Rolling therefore does no fsync of
//! its own under the log's lock or on a runtime worker, and a closed segment is always durable
//! before its successor holds anything (recovery refuses an unsealed closed segment with a bad
//! entry). The closed segment's seal is written durably by the caller too (through the
//! committer) before the next append; a crash before that costs a scan of the segment at
//! recovery, nothing else.

use super::entry::{self, EntryInfo};
use super::segment::Segment;
use super::{seal, Appended, LogError, LogResult, PartitionLog};
use crate::types::{Command, Entry};
use openraft::EntryPayload;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

/// What a roll leaves to the caller: the closed segment's seal to write durably (none while
/// the producer state is inexact after a truncation: recovery then scans that segment), and
/// the directory, whose new entry must be durable with the new segment's first entries.
pub struct Rolled {
    pub seal: Option<(PathBuf, Vec<u8>)>,
    pub dir: Arc<File>,
}

impl PartitionLog {
    /// Writes `entries` (consecutive Raft indexes after the current last) at the end of the log,
    /// giving each batch the next Kafka offsets, up to where the active segment must roll
    /// (`Appended::rolls_after`). Not yet durable: flush the returned files.
    pub fn append_part(&self, entries: &[Entry]) -> LogResult<Appended> {
        let mut segs = self.inner.write();
        let mut files: Vec<Arc<File>> = Vec::new();
        let mut buf = Vec::new();
        let mut infos: Vec<EntryInfo> = Vec::with_capacity(entries.len());
        let mut total = 0u64;
        let now_ms = super::segment::now_ms();
        let mut rolls_after = None;
        // Whether `buf` holds a batch (the roll then gives the next segment a new base offset).
        let mut buffered_records = false;
        for (i, e) in entries.iter().enumerate() {
            let active = segs.last().expect("a log has a segment");
            if let Some(last) = infos.last().copied().or(active.last) {
                if last.log_id.index + 1 != e.log_id.index {
                    return Err(LogError::NotContiguous {
                        index: e.log_id.index,
                        last: last.log_id.index,
                    });
                }
            }
            let is_batch = matches!(e.payload, EntryPayload::Normal(Command::Batch(_)));
            if is_batch && self.must_roll(active, buf.len() as u64, buffered_records, now_ms) {
                rolls_after = Some(i);
                break;
            }
            let next_offset = infos.last().map(|i| i.next_offset).unwrap_or(active.next_offset);
            let start = buf.len();
            entry::encode(&mut buf, e, next_offset)?;
            let pos = active.size_bytes + start as u64;
            let info = entry::describe(&buf[start..], pos, next_offset).map_err(|why| LogError::BadEntry {
                path: active.path.clone(),
                pos,
                why,
            })?;
            debug_assert!(info.next_offset >= next_offset, "Kafka offsets never go back");
            total += info.disk_bytes;
            buffered_records |= is_batch;
            infos.push(info);
        }
        self.flush_buf(segs.last_mut().expect("segment"), &mut buf, &mut infos, &mut files)?;
        if rolls_after.is_some() {
            // Earlier appends' writes to it may still wait for their round: the whole segment
            // must be durable before it closes.
            let active = &segs.last().expect("segment").file;
            if !files.iter().any(|f| Arc::ptr_eq(f, active)) {
                files.push(active.clone());
            }
        }
        Ok(Appended {
            files,
            bytes: total,
            rolls_after,
        })
    }

    /// Closes the active segment, which the caller has made durable, and opens the next.
    pub fn roll(&self) -> LogResult<Rolled> {
        let mut segs = self.inner.write();
        let active = segs.last().expect("a log has a segment");
        let next_index = active.last.map_or(active.base_index, |l| l.log_id.index + 1);
        let next_offset = active.next_offset;
        let seal = {
            let producers = self.producers.lock();
            match producers.1 {
                true => Some((seal::seal_path(&active.path), seal::encode(active, &producers.0)?)),
                false => None,
            }
        };
        let index_interval = self.cfg.index_interval_bytes;
        segs.push(Segment::create_unsynced(
            &self.dir,
            next_offset,
            next_index,
            index_interval,
        )?);
        debug_assert!(segs.windows(2).all(|w| w[0].base_index <= w[1].base_index));
        Ok(Rolled {
            seal,
            dir: Arc::new(File::open(&self.dir)?),
        })
    }

    /// `append_part` and `roll` until every entry is written, syncing and sealing inline (tests).
    #[cfg(test)]
    pub fn append_synced(&self, entries: &[Entry]) -> LogResult<Appended> {
        let mut rest = entries;
        let (mut files, mut bytes) = (Vec::new(), 0);
        loop {
            let part = self.append_part(rest)?;
            bytes += part.bytes;
            let Some(written) = part.rolls_after else {
                files.extend(part.files);
                return Ok(Appended {
                    files,
                    bytes,
                    rolls_after: None,
                });
            };
            for f in &part.files {
                f.sync_data()?;
            }
            let rolled = self.roll()?;
            if let Some((path, data)) = rolled.seal {
                crate::storage::write_file_durably(&path, &data)?;
            }
            files.push(rolled.dir);
            rest = &rest[written..];
        }
    }
}
