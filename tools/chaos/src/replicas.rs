//! The final read of every replica: each stopped node's partition logs opened from its data
//! dir and every record read back, so the checker compares replicas byte for byte rather than
//! trusting what a leader serves.

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
    let Some(stored) = raftstream::inspect::read_partition_records(data_dir, topic, partition)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(stored.len());
    let mut writers = Vec::with_capacity(stored.len());
    for r in stored {
        let value = String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned();
        out.push((r.offset, value));
        writers.push((
            r.offset,
            r.producer_id,
            r.producer_epoch,
            r.sequence,
            r.partition_leader_epoch,
        ));
    }
    Ok(Some(Replica { records: out, writers }))
}
