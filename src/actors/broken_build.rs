//! A deliberately broken broker, so the chaos checker can be shown to fail (docs/reliability.md).
//! With `RS_TEST_BROKEN_ACK_BEFORE_COMMIT=1` in a **debug** build, produce is answered as
//! soon as the leader's Raft core has taken the batch: before its fsync and before a majority
//! holds it. A leader cut off or killed then loses writes it acknowledged, which the checker must
//! report. And with `RS_TEST_FSYNC_FAIL_TRIGGER=<path>`, every fsync fails (EIO) while a
//! file exists at `<path>`: the chaos suite's injected fsync failure; with
//! `RS_TEST_FSYNC_HANG_TRIGGER=<path>`, every fsync blocks while a file exists there: a disk
//! that stops answering. With `RS_TEST_PANIC_CLIENT_ID=<id>`, a request from a client with that
//! client id panics in its handler (the connection-isolation test). Release builds contain none
//! of these switches.

use crate::actors::partition::actor::ProduceReply;
use crate::storage::log::PartitionLog;

/// Whether this process runs broken (read once).
pub fn enabled() -> bool {
    #[cfg(debug_assertions)]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| std::env::var("RS_TEST_BROKEN_ACK_BEFORE_COMMIT").is_ok_and(|v| v == "1"))
    }
    #[cfg(not(debug_assertions))]
    {
        false
    }
}

/// When broken: answers `reply` now with the offset the batch will get if nothing goes wrong
/// (`predicted_end` tracks batches submitted but not yet appended) and returns a reply nobody
/// waits for. Otherwise returns `reply` untouched.
pub fn ack_early(reply: ProduceReply, predicted_end: &mut i64, log: &PartitionLog, record_count: i32) -> ProduceReply {
    if !enabled() {
        return reply;
    }
    // The log end is read only here: the normal produce path takes no log lock for it.
    let base = (*predicted_end).max(log.end_offset());
    *predicted_end = base + record_count as i64;
    let _ = reply.send(Ok(base));
    tokio::sync::oneshot::channel().0
}

/// The injected fsync error, while the trigger file exists (debug builds only).
pub fn injected_fsync_error() -> Option<std::io::Error> {
    #[cfg(debug_assertions)]
    {
        static TRIGGER: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
        let trigger = TRIGGER.get_or_init(|| std::env::var_os("RS_TEST_FSYNC_FAIL_TRIGGER").map(Into::into));
        if trigger.as_ref().is_some_and(|t| t.exists()) {
            return Some(std::io::Error::from_raw_os_error(5));
        }
    }
    None
}

/// The injected hung disk: blocks the calling (blocking-pool) thread while the trigger file
/// exists (debug builds only).
pub fn injected_fsync_hang() {
    #[cfg(debug_assertions)]
    {
        static TRIGGER: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
        let trigger = TRIGGER.get_or_init(|| std::env::var_os("RS_TEST_FSYNC_HANG_TRIGGER").map(Into::into));
        while trigger.as_ref().is_some_and(|t| t.exists()) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The injected handler panic: panics if `client_id` is the one `RS_TEST_PANIC_CLIENT_ID` names
/// (debug builds only).
pub fn injected_handler_panic(client_id: Option<&str>) {
    #[cfg(debug_assertions)]
    {
        static ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
        let id = ID.get_or_init(|| std::env::var("RS_TEST_PANIC_CLIENT_ID").ok());
        if id.is_some() && id.as_deref() == client_id {
            panic!("injected handler panic (RS_TEST_PANIC_CLIENT_ID)");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = client_id;
}
