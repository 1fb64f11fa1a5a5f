//! The form a produced batch is stored in: the topic's codec (`compression.type`), then its
//! timestamp rules (LogAppendTime stamping, CreateTime bounds). Recompression decompresses
//! client bytes and compresses again: it runs on the blocking pool, at most one per core at a
//! time, so a burst of large or highly compressed batches neither stalls the runtime's workers
//! (Raft, heartbeats, every other connection) nor holds more than a core's share of
//! decompressed bytes each.

use crate::protocol::batch::ValidBatch;
use crate::protocol::batch_rules::{self, Refusal, TimestampRules};
use crate::protocol::compression::Codec;
use kafka_protocol::error::ResponseError;
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// How one topic's batches are stored.
#[derive(Debug, Clone, Copy)]
pub struct StoreForm {
    /// The topic's codec; `None`: as the producer sent it.
    pub codec: Option<Codec>,
    pub rules: TimestampRules,
    /// `max.message.bytes`: what a recompressed batch must fit.
    pub max_bytes: i32,
    /// Most bytes a batch's records may decompress to.
    pub decompressed_limit_bytes: usize,
}

/// Recompressions running at once, node-wide: one per core.
fn recompressions() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            Arc::new(Semaphore::new(cores))
        })
        .clone()
}

impl StoreForm {
    /// `batch` as it is to be stored, and its LogAppendTime (-1 under CreateTime).
    pub async fn apply(&self, batch: ValidBatch) -> Result<(ValidBatch, i64), Refusal> {
        let batch = match self.codec {
            Some(codec) if codec as i16 != batch.header.codec() => self.recompress(batch, codec).await?,
            _ => batch,
        };
        let now_ms = crate::storage::log::segment::now_ms();
        let batch = batch_rules::apply(batch, &self.rules, now_ms)?;
        Ok((batch, if self.rules.log_append_time { now_ms } else { -1 }))
    }

    async fn recompress(&self, batch: ValidBatch, codec: Codec) -> Result<ValidBatch, Refusal> {
        let permit = recompressions().acquire_owned().await;
        let (limit, max_bytes) = (self.decompressed_limit_bytes, self.max_bytes);
        let done = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            batch_rules::recompress(batch, codec, limit, max_bytes)
        })
        .await;
        // A panic in a codec is the broker's fault, not the client's: answered as such.
        done.unwrap_or_else(|_| Err(ResponseError::UnknownServerError.into()))
    }
}
