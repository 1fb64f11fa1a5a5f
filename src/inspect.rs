//! A small, declared API for tools that look at a node from outside (the chaos harness): read a
//! stopped node's partition log, and name the caller of a node-to-node connection. Tools use
//! this, never the broker's internals, so the storage and wire formats can change behind it.

use crate::cluster::wire::Request;
use crate::storage::log::{LogConfig, PartitionLog};
use kafka_protocol::records::{Record, RecordBatchDecoder};
use std::path::Path;

/// Every stored record of `topic`-`partition` under a stopped node's `data_dir`, in log order,
/// CRC-checked as read and decoded with their batch's producer fields; `None` if the node holds
/// no replica of it.
pub fn read_partition_records(data_dir: &Path, topic: &str, partition: i32) -> anyhow::Result<Option<Vec<Record>>> {
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
    let mut records = Vec::new();
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
            for r in RecordBatchDecoder::decode(&mut buf)?.records {
                offset = offset.max(r.offset + 1);
                records.push(r);
            }
        }
    }
    Ok(Some(records))
}

/// The node id named by the first frame of a node-to-node connection (the whole frame as read
/// off the wire: length, correlation id, body); `None` if it is not a hello.
pub fn hello_node_id(frame: &[u8]) -> Option<u64> {
    match rmp_serde::from_slice::<Request>(frame.get(12..)?) {
        Ok(Request::Hello { node_id, .. }) => Some(node_id),
        _ => None,
    }
}
