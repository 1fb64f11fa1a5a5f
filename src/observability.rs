//! Metrics: a Prometheus recorder installed once per process, the names of every metric, and
//! small helpers so call sites stay one line. Rendered by the HTTP actor at `/metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests handled, by API (`api` label).
pub const REQUESTS: &str = "raftstream_requests_total";
/// Error codes returned, by API and Kafka error name (`api`, `code`).
pub const REQUEST_ERRORS: &str = "raftstream_request_errors_total";
/// Request handling time in seconds, by API.
pub const REQUEST_SECONDS: &str = "raftstream_request_duration_seconds";
/// Record-batch bytes accepted by produce, by topic.
pub const BYTES_IN: &str = "raftstream_topic_bytes_in_total";
/// Record-batch bytes returned by fetch, by topic.
pub const BYTES_OUT: &str = "raftstream_topic_bytes_out_total";
/// Committer fsync rounds.
pub const FSYNC_ROUNDS: &str = "raftstream_fsync_rounds_total";
/// Time of one committer round's fsyncs, in seconds.
pub const FSYNC_SECONDS: &str = "raftstream_fsync_duration_seconds";
/// Bytes made durable by one committer round.
pub const FSYNC_ROUND_BYTES: &str = "raftstream_fsync_round_bytes";
/// Partitions running on this node.
pub const PARTITIONS: &str = "raftstream_partitions";
/// Partitions this node leads.
pub const LEADERS: &str = "raftstream_partition_leaders";
/// Open client connections.
pub const CONNECTIONS: &str = "raftstream_connections";
/// Node-to-node requests this node received, by kind (`rpc`: append_entries, vote, ping, ...)
/// and group (`group`: controller, partition, none).
pub const CLUSTER_RPCS: &str = "raftstream_cluster_requests_received_total";
/// This node's current term of the controller group (it grows with every controller election).
pub const CONTROLLER_TERM: &str = "raftstream_controller_term";
/// AppendEntries retries answered by the earlier request's late answer instead of sending its
/// records again.
pub const APPEND_RESENDS_AVOIDED: &str = "raftstream_cluster_append_resends_avoided_total";
/// Closed segments retention deleted (by time, size or log start).
pub const RETENTION_SEGMENTS_DELETED: &str = "raftstream_retention_segments_deleted_total";
/// Partition actor restarts after a failure.
pub const ACTOR_RESTARTS: &str = "raftstream_actor_restarts_total";
/// Client connections closed because a request's handler panicked (`api`: the request's API).
pub const CONNECTION_PANICS: &str = "raftstream_connection_panics_total";
/// Raft RPCs to a peer that outlived their deadline, by group kind (`group`: controller or
/// partition).
pub const CLUSTER_RPC_TIMEOUTS: &str = "raftstream_cluster_rpc_timeouts_total";
/// Torn or corrupt log tails cut during recovery (partitions and the controller's log).
pub const RECOVERY_TAIL_CUTS: &str = "raftstream_recovery_tail_cuts_total";
/// Partition logs replaced by a leader's snapshot (a follower behind the leader's retention).
pub const SNAPSHOT_LOG_RESETS: &str = "raftstream_snapshot_log_resets_total";
/// Times the controller group stopped on an error (a failed write or fsync) and was reopened.
pub const CONTROLLER_GROUP_STOPS: &str = "raftstream_controller_group_stops_total";
/// Controller group reopenings after a stop.
pub const CONTROLLER_GROUP_REOPENS: &str = "raftstream_controller_group_reopens_total";
/// Leaderships handed away all at once (controlled shutdown, a data dir turning low):
/// `outcome` led (held here when the handover began) or moved (now with another replica).
pub const HANDAWAY_LEADERSHIPS: &str = "raftstream_handaway_leaderships_total";
/// TLS handshakes that did not complete (`how`: failed — e.g. a plaintext client on a TLS
/// port, or no client certificate where one is required — or timed out).
pub const TLS_HANDSHAKE_FAILURES: &str = "raftstream_tls_handshake_failures_total";
/// SASL exchanges on SASL listeners (`result`: ok or failed).
pub const SASL_AUTHENTICATIONS: &str = "raftstream_sasl_authentications_total";
/// Node-to-node connections refused for a wrong or missing `cluster.secret` proof.
pub const CLUSTER_AUTH_FAILURES: &str = "raftstream_cluster_auth_failures_total";
/// Connections closed at accept by a limit (`why`: per_ip, unauthenticated).
pub const CONNECTIONS_REFUSED: &str = "raftstream_connections_refused_total";
/// Long-lived tasks that ended while the node was running (`task`: its name; `how`: panic or
/// exit), each also logged: a supervision event, not a silent loss.
pub const TASK_EXITS: &str = "raftstream_task_exits_total";

/// Installs the process-wide recorder on the first call; every call returns its handle
/// (`None` if another recorder was installed first).
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE.get_or_init(build_recorder).clone()
}

fn build_recorder() -> Option<PrometheusHandle> {
    let seconds = [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let bytes = [
        1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
    ];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
        .ok()?
        .set_buckets_for_metric(Matcher::Full(FSYNC_ROUND_BYTES.into()), &bytes)
        .ok()?
        .install_recorder()
        .ok()
}

/// Counts an error code returned by `api`.
pub fn note_error(api: &'static str, code: kafka_protocol::error::ResponseError) {
    metrics::counter!(REQUEST_ERRORS, "api" => api, "code" => format!("{code:?}")).increment(1);
}
