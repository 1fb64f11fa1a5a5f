//! Loading an offsets partition into the coordinator: once this node leads the partition and
//! every entry of its log is committed, the log is replayed, and the replay is tagged with the
//! Raft term it was made in. The cache it builds is exact for that leadership only: in a later
//! term another node may have led and written, so a leadership in a new term loads again.

use crate::actors::group::coordinator::CoordinatorMsg;
use crate::actors::partition::registry::Registry;
use crate::protocol::batch::BatchHeader;
use crate::storage::log::PartitionLog;
use crate::storage::offsets::{decode_records, OffsetsRecord, OFFSETS_TOPIC};
use crate::types::TopicPartition;
use ractor::ActorRef;
use std::sync::Arc;
use std::time::Duration;

/// A replayed record and the log offset of its batch.
pub type Replayed = (OffsetsRecord, i64);

/// Which load of a partition a result belongs to (a later load supersedes an earlier one).
pub type LoadId = u64;

/// A finished replay: the Raft term this node led the partition in, and the records.
pub type LoadResult = Result<(u64, Vec<Replayed>), String>;

/// How long a replay waits for its partition to have a leader here and a caught-up log.
const LOAD_WAIT: Duration = Duration::from_secs(30);

/// Offsets partition `p`.
pub fn offsets_partition(p: i32) -> TopicPartition {
    TopicPartition {
        topic: OFFSETS_TOPIC.into(),
        partition: p,
    }
}

/// Replays offsets partition `p` once it has a leader here and every entry in its log is
/// committed (after a restart the high watermark catches up with the log end first), and sends
/// the coordinator `Loaded` with `load`.
pub fn spawn_load(me: ActorRef<CoordinatorMsg>, registry: Arc<Registry>, p: i32, load: LoadId) {
    tokio::spawn(async move {
        let result = load_when_leading(&registry, p).await;
        let _ = me.send_message(CoordinatorMsg::Loaded {
            partition: p,
            load,
            result,
        });
    });
}

async fn load_when_leading(registry: &Registry, p: i32) -> LoadResult {
    let tp = offsets_partition(p);
    let mut changed = registry.changed.subscribe();
    let deadline = tokio::time::Instant::now() + LOAD_WAIT;
    loop {
        if let Some(h) = registry.get(&tp) {
            let before = h.leadership();
            let mut hwm_rx = h.shared.high_watermark.subscribe();
            let caught_up = tokio::time::timeout_at(deadline, async {
                while *hwm_rx.borrow_and_update() < h.log.end_offset() {
                    if hwm_rx.changed().await.is_err() {
                        return false;
                    }
                }
                true
            })
            .await;
            // Led here in the same term before and after the wait: every entry of the log up to
            // the high watermark read below belongs to this leadership's view.
            let (leader, term) = h.leadership();
            if leader == Some(h.node_id) && before == (leader, term) && matches!(caught_up, Ok(true)) {
                let started = std::time::Instant::now();
                let records = replay(&h.log, *h.shared.high_watermark.borrow())?;
                let ms = started.elapsed().as_millis() as u64;
                tracing::info!(
                    "offsets partition {p} loaded: {} records in {ms} ms (term {term})",
                    records.len()
                );
                return Ok((term, records));
            }
        }
        if tokio::time::timeout_at(deadline, changed.changed()).await.is_err() {
            return Err(format!("offsets partition {p} has no leader here"));
        }
    }
}

/// Every record of a partition below `hwm`, with its batch's log offset.
fn replay(log: &PartitionLog, hwm: i64) -> Result<Vec<Replayed>, String> {
    let mut out = Vec::new();
    let mut offset = log.start_offset();
    while offset < hwm {
        let read = log
            .read_batches(offset, 1 << 20, hwm)
            .map_err(|_| format!("offset {offset} out of range"))?;
        let mut rest = read.records.clone();
        if rest.is_empty() {
            break;
        }
        while !rest.is_empty() {
            let header = BatchHeader::parse(&rest).ok_or("short batch")?;
            let len = header.batch_length as usize + 12;
            let one = rest.split_to(len.min(rest.len()));
            for record in decode_records(one).map_err(|e| e.to_string())? {
                out.push((record, header.base_offset));
            }
            offset = header.last_offset() + 1;
        }
    }
    Ok(out)
}
