//! A deliberately broken broker, so the chaos checker can be shown to fail (docs/reliability.md).
//! With `RAFTSTREAM_TEST_BROKEN_ACK_BEFORE_COMMIT=1` in a **debug** build, produce is answered as
//! soon as the leader's Raft core has taken the batch: before its fsync and before a majority
//! holds it. A leader cut off or killed then loses writes it acknowledged, which the checker must
//! report. Release builds do not contain the switch.

use super::partition::ProduceReply;

/// Whether this process runs broken (read once).
pub fn enabled() -> bool {
    #[cfg(debug_assertions)]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| std::env::var("RAFTSTREAM_TEST_BROKEN_ACK_BEFORE_COMMIT").is_ok_and(|v| v == "1"))
    }
    #[cfg(not(debug_assertions))]
    {
        false
    }
}

/// When broken: answers `reply` now with the offset the batch will get if nothing goes wrong
/// (`predicted_end` tracks batches submitted but not yet appended) and returns a reply nobody
/// waits for. Otherwise returns `reply` untouched.
pub fn ack_early(reply: ProduceReply, predicted_end: &mut i64, log_end: i64, record_count: i32) -> ProduceReply {
    if !enabled() {
        return reply;
    }
    let base = (*predicted_end).max(log_end);
    *predicted_end = base + record_count as i64;
    let _ = reply.send(Ok(base));
    tokio::sync::oneshot::channel().0
}
