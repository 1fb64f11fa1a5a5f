//! One `Config` struct with a default for every key, loaded from a TOML file, `RAFTSTREAM_*`
//! environment variables and command-line flags (in increasing precedence).
//!
//! Keys use Kafka's names where Kafka has one. In a file they may be written either dotted
//! (`log.segment.bytes = 1048576`, or nested tables) or with underscores (`log_segment_bytes`);
//! in the environment they are `RAFTSTREAM_LOG_SEGMENT_BYTES`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// acks=1/-1 are answered only after the data is fsynced.
    Fsync,
    /// Acknowledge after the write to the page cache; fsync at least every `log.flush.interval.ms`.
    Relaxed,
}

/// Every broker setting. Field names are Kafka's dotted names with `_` for `.`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node's id (Kafka `node.id`).
    pub node_id: i32,
    /// Directory for all data (Kafka `log.dirs`).
    pub data_dir: PathBuf,
    /// Address the Kafka listener binds.
    pub listen: String,
    /// Address given to clients in Metadata; empty means derived from `listen`
    /// (the bound port, and `localhost` for a wildcard host).
    pub advertise: String,
    /// Kafka listeners, `NAME://host:port,…`, each named by its security protocol (PLAINTEXT or
    /// SSL); empty: one PLAINTEXT listener on `listen` (the shorthand).
    pub listeners: String,
    /// What clients are told per listener, `NAME://host:port,…`; a listener not named here is
    /// told its bound address.
    pub advertised_listeners: String,
    /// PEM certificate chain of the TLS listeners (the node's certificate first).
    pub ssl_certificate_location: String,
    /// PEM private key of the TLS listeners.
    pub ssl_key_location: String,
    /// PEM CA bundle client certificates must chain to (mutual TLS).
    pub ssl_ca_location: String,
    /// `none`, `requested` or `required`: whether TLS clients present a certificate, whose
    /// subject CN names the principal (`User:<CN>`).
    pub ssl_client_auth: String,
    /// How often the TLS files are checked for changes (a changed certificate is used by new
    /// connections without a restart).
    pub ssl_reload_interval_ms: u64,
    /// A connection that has not finished its TLS handshake within this long is closed.
    pub connections_handshake_timeout_ms: u64,
    /// `User:a;User:b`: principals allowed every operation. Until ACLs exist, only they may
    /// manage SCRAM users (AlterUserScramCredentials, DescribeUserScramCredentials).
    pub super_users: String,
    /// SASL mechanisms offered on SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
    pub sasl_enabled_mechanisms: String,
    /// `name:password,…`: SCRAM-SHA-256 and -512 users created on the first start of a new
    /// cluster only (later ones are managed with AlterUserScramCredentials).
    pub sasl_bootstrap_users: String,
    /// A failed authentication is answered after this long, then the connection closes.
    pub connection_failed_authentication_delay_ms: u64,
    /// A SASL client that has not authenticated within this long is closed.
    pub connections_authentication_timeout_ms: u64,
    /// Address of the HTTP server for metrics and health; empty disables it.
    pub http_listen: String,
    /// Partitions of the internal `__consumer_offsets` topic (fixed once it exists).
    pub offsets_topic_num_partitions: i32,
    /// How long a new group waits for more members before its first generation.
    pub group_initial_rebalance_delay_ms: u64,
    /// Shortest session timeout a JoinGroup may ask for (INVALID_SESSION_TIMEOUT below).
    pub group_min_session_timeout_ms: u64,
    /// Longest session timeout a JoinGroup may ask for (INVALID_SESSION_TIMEOUT above).
    pub group_max_session_timeout_ms: u64,
    /// Listener for other nodes' Raft traffic; empty for a single node.
    pub cluster_listen: String,
    /// Every node of the cluster as `id@host:port` (cluster addresses), comma-separated, this
    /// node included; empty for a single node. All of them are controller voters.
    pub peers: String,
    /// A secret every node of the cluster shares: node-to-node connections prove it (an HMAC
    /// challenge) before any Raft RPC is read. Empty: the cluster port is unauthenticated.
    pub cluster_secret: String,
    /// A follower not caught up with its leader (or not heard from) for this long leaves the
    /// in-sync replicas.
    pub replica_lag_time_max_ms: u64,
    /// A replica being added by a reassignment gets this long to catch up before the attempt
    /// starts over (replication goes on meanwhile).
    pub reassignment_catch_up_timeout_ms: u64,
    /// Leaders hand leadership back to a partition's preferred replica when it is alive and
    /// caught up (checked every `leader.imbalance.check.interval.seconds`).
    pub auto_leader_rebalance_enable: bool,
    /// The controller leader fences a broker it has not heard from for this long: Metadata from
    /// every node lists its replicas as offline.
    pub broker_session_timeout_ms: u64,
    pub leader_imbalance_check_interval_seconds: u64,
    /// Largest node-to-node frame.
    pub cluster_max_frame_bytes: usize,
    /// Requests of one peer connection served at once.
    pub cluster_max_inflight_requests: usize,
    /// Committed offsets of a group without members are deleted this long after the later of
    /// their commit and the group becoming empty.
    pub offsets_retention_minutes: u64,
    /// How often expired offsets are looked for.
    pub offsets_retention_check_interval_ms: u64,
    /// An offsets partition is compacted (its live records rewritten, the prefix purged) once
    /// this many records, or as many as it has live ones if more, were written since the last
    /// compaction: replay after a restart reads at most about twice the live state plus this.
    pub offsets_compaction_interval_records: u64,
    /// Offset commits that may wait while their partition is being compacted.
    pub offsets_max_queued_writes: usize,
    /// Partitions of an auto-created topic.
    pub num_partitions: i32,
    /// Replication factor of an auto-created topic.
    pub default_replication_factor: i16,
    /// Create unknown topics on Metadata and Produce.
    pub auto_create_topics_enable: bool,
    /// Segment size at which the active segment rolls.
    pub log_segment_bytes: u64,
    /// Age at which a non-empty active segment rolls on the next append (Kafka's
    /// `log.roll.ms`; `log.roll.hours` = 168 by default).
    pub log_roll_ms: i64,
    /// Segments whose newest record is older than this are deleted; -1 keeps them for ever.
    pub log_retention_ms: i64,
    /// Oldest segments are deleted while a partition is bigger than this; -1 means no limit.
    pub log_retention_bytes: i64,
    /// How often each partition applies retention.
    pub log_retention_check_interval_ms: u64,
    /// Bytes between two entries of the sparse offset and time indexes.
    pub log_index_interval_bytes: u64,
    /// Bytes of recently appended entries each partition keeps in memory, so commits and tail
    /// fetches need no disk read.
    pub log_tail_cache_bytes: u64,
    /// Most record bytes one Raft AppendEntries carries to a follower (at least one batch):
    /// with openraft's entry count bound alone, 512 batches near `message.max.bytes` made one
    /// request of hundreds of megabytes that no RPC deadline fits.
    pub raft_max_append_bytes: u64,
    /// Below this many free bytes in the data dir's filesystem the node refuses produce
    /// (KAFKA_STORAGE_ERROR) and moves its leaderships away until space returns.
    pub log_dir_min_free_bytes: u64,
    /// Largest record batch a producer may send.
    pub message_max_bytes: i32,
    /// Largest request frame accepted; a larger one closes the connection.
    pub socket_request_max_bytes: i32,
    /// Requests read ahead on one connection while earlier ones are still being answered.
    pub max_inflight_requests_per_connection: usize,
    /// Bytes of request frames one connection may have in flight before it stops reading.
    pub connection_max_inflight_bytes: usize,
    /// Connections accepted at once; more wait in the accept queue.
    pub max_connections: usize,
    /// Connections one client address may hold; more are closed at once.
    pub max_connections_per_ip: usize,
    /// `ip:count,…`: per-address exceptions to `max.connections.per.ip`.
    pub max_connections_per_ip_overrides: String,
    /// Connections still in their TLS handshake or SASL exchange, at most; more are closed at
    /// once (an unauthenticated flood cannot take every connection slot).
    pub connections_max_unauthenticated: usize,
    /// How long a connection that was sent elsewhere (a Metadata answer naming no leader from a
    /// cut-off or full node) stays open while the client is quiet before it closes: requests
    /// the client pipelined behind that answer are still answered.
    pub connections_redirect_grace_ms: u64,
    /// `fsync` or `relaxed`: see the README's durability section.
    pub durability: Durability,
    /// In `relaxed` mode, the longest time written data stays unsynced.
    pub log_flush_interval_ms: u64,
    /// Largest number of bytes one committer round covers before the next round starts.
    pub committer_max_round_bytes: u64,
    /// An fsync round that finished no file's fsync for this long marks the disk stalled:
    /// until it returns the node refuses produce (KAFKA_STORAGE_ERROR) and moves its
    /// leaderships away, as on a full disk (clusters with `fsync` durability only).
    pub log_flush_stall_ms: u64,
    /// Idle time after which an idempotent producer's sequence state is forgotten.
    pub producer_id_expiration_ms: u64,
    /// Produce requests waiting in one partition actor before new ones are refused.
    pub partition_max_pending_produces: usize,
    /// Upper bound on any request's own timeout (produce `timeout_ms`, fetch `max_wait_ms`).
    pub request_timeout_max_ms: u64,
    /// Longest time a graceful shutdown waits for in-flight requests.
    pub shutdown_timeout_ms: u64,
    /// Partition actor restarts allowed within `supervisor_restart_window_ms` before escalation.
    pub supervisor_max_restarts: u32,
    /// Window for `supervisor_max_restarts`.
    pub supervisor_restart_window_ms: u64,
    /// Raft heartbeat interval of the controller group, and its AppendEntries deadline
    /// (openraft uses one for both): a follower answers a heartbeat only once its log's
    /// earlier entries are fsynced, and a committer round under a full produce load took over
    /// 50 ms on this project's test machine.
    pub raft_heartbeat_interval_ms: u64,
    /// Raft election timeout lower bound (the upper bound is twice this).
    pub raft_election_timeout_ms: u64,
    /// Heartbeat interval of partition groups (there may be thousands: each heartbeats on its
    /// own, so this is their main idle cost).
    pub raft_partition_heartbeat_interval_ms: u64,
    /// Election timeout of partition groups (randomised up to twice this); with the heartbeat
    /// interval it bounds failover.
    pub raft_partition_election_timeout_ms: u64,
    /// Deadline of one AppendEntries of a partition group (openraft's heartbeat interval, which
    /// in partition groups sets only this: their heartbeats are node-level pings). Below the
    /// election timeout, as openraft requires; well above the ping interval, so a follower
    /// writing a megabyte batch under load is not timed out and sent it again.
    pub raft_partition_rpc_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            listen: "0.0.0.0:9092".into(),
            advertise: String::new(),
            listeners: String::new(),
            advertised_listeners: String::new(),
            ssl_certificate_location: String::new(),
            ssl_key_location: String::new(),
            ssl_ca_location: String::new(),
            ssl_client_auth: "none".into(),
            ssl_reload_interval_ms: 5_000,
            connections_handshake_timeout_ms: 10_000,
            super_users: String::new(),
            sasl_enabled_mechanisms: "SCRAM-SHA-256,SCRAM-SHA-512".into(),
            sasl_bootstrap_users: String::new(),
            connection_failed_authentication_delay_ms: 100,
            connections_authentication_timeout_ms: 10_000,
            http_listen: "0.0.0.0:9644".into(),
            offsets_topic_num_partitions: 50,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6_000,
            group_max_session_timeout_ms: 1_800_000,
            cluster_listen: String::new(),
            peers: String::new(),
            cluster_secret: String::new(),
            replica_lag_time_max_ms: 30_000,
            reassignment_catch_up_timeout_ms: 60_000,
            auto_leader_rebalance_enable: true,
            broker_session_timeout_ms: 9_000,
            leader_imbalance_check_interval_seconds: 300,
            cluster_max_frame_bytes: 256 << 20,
            cluster_max_inflight_requests: 1024,
            offsets_retention_minutes: 7 * 24 * 60,
            offsets_retention_check_interval_ms: 600_000,
            offsets_compaction_interval_records: 10_000,
            offsets_max_queued_writes: 10_000,
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            log_segment_bytes: 1 << 30,
            log_roll_ms: 7 * 24 * 3_600_000,
            log_index_interval_bytes: 4096,
            log_retention_ms: 7 * 24 * 3_600_000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 300_000,
            log_tail_cache_bytes: 512 << 10,
            raft_max_append_bytes: 1 << 20,
            log_dir_min_free_bytes: 64 << 20,
            message_max_bytes: 1 << 20,
            socket_request_max_bytes: 100 * 1024 * 1024,
            max_inflight_requests_per_connection: 64,
            connection_max_inflight_bytes: 64 << 20,
            max_connections: 10_000,
            max_connections_per_ip: 10_000,
            max_connections_per_ip_overrides: String::new(),
            connections_max_unauthenticated: 1_000,
            connections_redirect_grace_ms: 50,
            durability: Durability::Fsync,
            log_flush_interval_ms: 1000,
            committer_max_round_bytes: 64 << 20,
            log_flush_stall_ms: 1_000,
            producer_id_expiration_ms: 86_400_000,
            partition_max_pending_produces: 4096,
            request_timeout_max_ms: 60_000,
            shutdown_timeout_ms: 10_000,
            supervisor_max_restarts: 10,
            supervisor_restart_window_ms: 60_000,
            raft_heartbeat_interval_ms: 100,
            raft_election_timeout_ms: 300,
            raft_partition_heartbeat_interval_ms: 100,
            raft_partition_election_timeout_ms: 250,
            raft_partition_rpc_timeout_ms: 240,
        }
    }
}

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub advertise: Option<String>,
    pub http_listen: Option<String>,
    pub node_id: Option<i32>,
    pub cluster_listen: Option<String>,
    pub peers: Option<String>,
}

impl Config {
    /// Loads defaults, then `file` (if any), then `RAFTSTREAM_*` env vars, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let from_file = builder.build()?;
        let mut flat = BTreeMap::new();
        flatten(
            "",
            from_file.try_deserialize::<config::Map<String, config::Value>>()?,
            &mut flat,
        );
        let env = config::Config::builder()
            .add_source(config::Environment::with_prefix("RAFTSTREAM").try_parsing(true))
            .build()?;
        let mut from_env = BTreeMap::new();
        flatten(
            "",
            env.try_deserialize::<config::Map<String, config::Value>>()?,
            &mut from_env,
        );
        let known = known_keys();
        for (key, value) in from_env {
            // Orchestrators inject variables such as RAFTSTREAM_PORT or
            // RAFTSTREAM_SERVICE_HOST for a Service named "raftstream": ignore what is not ours.
            if known.contains(&key) {
                flat.insert(key, value);
            } else {
                tracing::warn!(
                    "ignoring environment variable RAFTSTREAM_{}: not a config key",
                    key.to_uppercase()
                );
            }
        }
        let mut merged = config::Config::builder();
        for (key, value) in flat {
            merged = merged.set_override(key, value)?;
        }
        let mut cfg: Config = merged.build()?.try_deserialize()?;
        if let Some(v) = &overrides.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &overrides.listen {
            cfg.listen = v.clone();
        }
        if let Some(v) = &overrides.advertise {
            cfg.advertise = v.clone();
        }
        if let Some(v) = &overrides.http_listen {
            cfg.http_listen = v.clone();
        }
        if let Some(v) = overrides.node_id {
            cfg.node_id = v;
        }
        if let Some(v) = &overrides.cluster_listen {
            cfg.cluster_listen = v.clone();
        }
        if let Some(v) = &overrides.peers {
            cfg.peers = v.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.node_id >= 0, "node.id must be >= 0");
        anyhow::ensure!(self.num_partitions >= 1, "num.partitions must be >= 1");
        anyhow::ensure!(self.log_segment_bytes >= 1024, "log.segment.bytes must be >= 1024");
        anyhow::ensure!(self.log_roll_ms >= 1, "log.roll.ms must be >= 1");
        anyhow::ensure!(
            self.raft_partition_rpc_timeout_ms >= 1
                && self.raft_partition_rpc_timeout_ms < self.raft_partition_election_timeout_ms,
            "raft.partition.rpc.timeout.ms must be >= 1 and below raft.partition.election.timeout.ms"
        );
        anyhow::ensure!(self.message_max_bytes >= 128, "message.max.bytes must be >= 128");
        anyhow::ensure!(
            self.socket_request_max_bytes > self.message_max_bytes,
            "socket.request.max.bytes must exceed message.max.bytes"
        );
        anyhow::ensure!(
            self.max_inflight_requests_per_connection >= 1,
            "max.inflight.requests.per.connection must be >= 1"
        );
        let peers = self.peer_addrs()?;
        if !peers.is_empty() {
            anyhow::ensure!(
                peers.contains_key(&(self.node_id as u64)),
                "peers must include this node ({})",
                self.node_id
            );
            anyhow::ensure!(!self.cluster_listen.is_empty(), "peers given without cluster.listen");
        }
        anyhow::ensure!(
            self.group_min_session_timeout_ms <= self.group_max_session_timeout_ms,
            "group.min.session.timeout.ms must not exceed group.max.session.timeout.ms"
        );
        anyhow::ensure!(
            self.offsets_compaction_interval_records >= 1,
            "offsets.compaction.interval.records must be >= 1"
        );
        self.validate_listeners()
    }

    /// Listeners, SASL mechanisms and bootstrap users parse, and TLS listeners have their
    /// certificate and key.
    fn validate_listeners(&self) -> anyhow::Result<()> {
        let specs = self.listener_specs()?;
        crate::security::sasl::parse_mechanisms(&self.sasl_enabled_mechanisms)?;
        crate::security::sasl::parse_bootstrap_users(&self.sasl_bootstrap_users)?;
        crate::security::tls::ClientAuth::parse(&self.ssl_client_auth)?;
        if specs.iter().any(|s| s.protocol.tls()) {
            anyhow::ensure!(
                !self.ssl_certificate_location.is_empty() && !self.ssl_key_location.is_empty(),
                "a TLS listener needs ssl.certificate.location and ssl.key.location"
            );
        }
        Ok(())
    }

    /// Whether `principal` is one of `super.users`.
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users
            .split(';')
            .map(str::trim)
            .any(|p| !p.is_empty() && p == principal)
    }

    /// The Kafka listeners (see `security::listeners::listener_specs`).
    pub fn listener_specs(&self) -> anyhow::Result<Vec<crate::security::ListenerSpec>> {
        crate::security::listeners::listener_specs(
            &self.listeners,
            &self.advertised_listeners,
            &self.listen,
            &self.advertise,
        )
    }

    /// The TLS files, when a listener uses TLS.
    pub fn tls_files(&self) -> anyhow::Result<Option<crate::security::tls::TlsFiles>> {
        if !self.listener_specs()?.iter().any(|s| s.protocol.tls()) {
            return Ok(None);
        }
        Ok(Some(crate::security::tls::TlsFiles {
            certificate: self.ssl_certificate_location.clone().into(),
            key: self.ssl_key_location.clone().into(),
            ca: (!self.ssl_ca_location.is_empty()).then(|| self.ssl_ca_location.clone().into()),
            client_auth: crate::security::tls::ClientAuth::parse(&self.ssl_client_auth)?,
        }))
    }

    /// A partition leader's lease: the followers' leader lease (openraft's election_timeout_max,
    /// twice the partition election timeout). A leader that has not heard from a majority for
    /// this long stops acting as leader; its followers campaign only a ping later.
    pub fn partition_lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(2 * self.raft_partition_election_timeout_ms)
    }

    /// The cluster's nodes by id, from `peers` (empty for a single node).
    pub fn peer_addrs(&self) -> anyhow::Result<BTreeMap<u64, String>> {
        let mut out = BTreeMap::new();
        for item in self.peers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (id, addr) = item
                .split_once('@')
                .ok_or_else(|| anyhow::anyhow!("peer {item:?} is not ID@HOST:PORT"))?;
            let id: u64 = id.parse().map_err(|_| anyhow::anyhow!("peer {item:?}: bad node id"))?;
            anyhow::ensure!(addr.contains(':'), "peer {item:?}: address needs a port");
            anyhow::ensure!(
                out.insert(id, addr.to_string()).is_none(),
                "node {id} listed twice in peers"
            );
        }
        Ok(out)
    }

    /// Where peers reach this node: its own entry in `peers` (validated to exist).
    pub fn cluster_advertise(&self) -> String {
        self.peer_addrs()
            .ok()
            .and_then(|p| p.get(&(self.node_id as u64)).cloned())
            .unwrap_or_else(|| self.cluster_listen.clone())
    }

    /// Every key in its Kafka (dotted) spelling with its default, for `--help`.
    pub fn describe_defaults() -> String {
        let json = serde_json::to_value(Config::default()).expect("config serializes");
        let mut out = String::from("Configuration keys (file, RAFTSTREAM_<KEY> env, defaults):\n");
        if let serde_json::Value::Object(map) = json {
            for (key, value) in map {
                out.push_str(&format!("  {:<42} {}\n", key.replace('_', "."), value));
            }
        }
        out
    }
}

/// Every config key, in underscore form.
fn known_keys() -> std::collections::BTreeSet<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Default::default(),
    }
}

/// Turns nested tables into underscore-joined keys and dots into underscores, so that
/// `log.segment.bytes`, `[log] segment.bytes` and `log_segment_bytes` all name one key.
fn flatten(prefix: &str, map: config::Map<String, config::Value>, out: &mut BTreeMap<String, config::Value>) {
    for (key, value) in map {
        let key = key.replace(['.', '-'], "_").to_lowercase();
        let full = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}_{key}")
        };
        match value.kind {
            config::ValueKind::Table(table) => flatten(&full, table, out),
            _ => {
                out.insert(full, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_in_dotted_nested_and_underscore_forms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "\"num.partitions\" = 3\nlog.segment.bytes = 4096\nmessage_max_bytes = 2000\ndurability = \"relaxed\"\n",
        )
        .unwrap();
        let cfg = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(cfg.num_partitions, 3);
        assert_eq!(cfg.log_segment_bytes, 4096);
        assert_eq!(cfg.message_max_bytes, 2000);
        assert_eq!(cfg.durability, Durability::Relaxed);
    }

    #[test]
    fn unknown_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "no.such.key = 1\n").unwrap();
        assert!(Config::load(Some(&path), &Overrides::default()).is_err());
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "node.id = 4\n").unwrap();
        let o = Overrides {
            node_id: Some(7),
            ..Default::default()
        };
        assert_eq!(Config::load(Some(&path), &o).unwrap().node_id, 7);
    }
}
