//! The final read of every replica: each stopped node's partition logs opened from its data
//! dir and every record read back, so the checker compares replicas byte for byte rather than
//! trusting what a leader serves.

use crate::storage::log::{LogConfig, PartitionLog};
use kafka_protocol::records::RecordBatchDecoder;
use std::path::Path;

/// Who wrote a record: (offset, producer id, producer epoch, sequence, partition leader epoch
/// of its batch). A duplicated value is
/// explained by these: the same sequence twice is the broker's idempotence failing, a new epoch
/// is the client re-sending after an epoch bump.
pub type Writer = (i64, i64, i16, i32, i32);

/// One replica's records in log order, and who wrote each.
pub struct Replica {
    pub records: Vec<(i64, String)>,
    pub writers: Vec<Writer>,
}

/// Every record of `topic`-`partition` under `data_dir`; `None` if the node holds no replica of it.
pub fn read_replica(data_dir: &Path, topic: &str, partition: i32) -> anyhow::Result<Option<Replica>> {
    let dir = data_dir.join("topics").join(format!("{topic}-{partition}"));
    if !dir.exists() {
        return Ok(None);
    }
    let cfg = LogConfig {
        segment_bytes: u64::MAX,
        segment_ms: i64::MAX,
        index_interval_bytes: 4096,
        tail_cache_bytes: 0,
        max_append_bytes: u64::MAX,
    };
    let (log, _) = PartitionLog::open(&dir, cfg)?;
    let end = log.end_offset();
    let mut offset = log.start_offset();
    let mut out = Vec::new();
    let mut writers = Vec::new();
    while offset < end {
        let read = log
            .read_batches(offset, 1 << 20, end)
            .map_err(|_| anyhow::anyhow!("{topic}-{partition}: offset {offset} out of range"))?;
        let mut buf = read.records;
        anyhow::ensure!(
            !buf.is_empty(),
            "{topic}-{partition}: no batch at offset {offset} below end {end}"
        );
        while !buf.is_empty() {
            let set = RecordBatchDecoder::decode(&mut buf)?;
            for r in set.records {
                let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
                out.push((r.offset, value));
                writers.push((
                    r.offset,
                    r.producer_id,
                    r.producer_epoch,
                    r.sequence,
                    r.partition_leader_epoch,
                ));
                offset = offset.max(r.offset + 1);
            }
        }
    }
    Ok(Some(Replica { records: out, writers }))
}
