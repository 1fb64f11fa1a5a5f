//! Metadata: brokers, cluster id, controller, and for each topic its id and partitions with
//! leader, leader epoch (the Raft term), replicas and in-sync replicas. Unknown topics are
//! created when `auto.create.topics.enable` and the request allows it.

use super::context::Broker;

use super::topic_validation;
use crate::storage::meta_sm::{ClusterMeta, TopicMeta};
use crate::types::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// How long a Metadata request that created topics waits for their leaders.
const AUTO_CREATE_WAIT_MS: u64 = 2_000;

/// Handles a Metadata request.
/// Whether the client should ask another node after this answer: it names no leader for some
/// partition, and this node knows it cannot (cut off, or its disk full), while a client
/// connected to it alone would ask it again and again (librdkafka asks a broker it is
/// connected to). A node that names every leader keeps the connection (its own partitions'
/// readers, admin requests).
pub fn send_elsewhere(broker: &dyn Broker, resp: &MetadataResponse) -> bool {
    let leaderless = resp
        .topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| p.leader_id.0 < 0));
    leaderless && broker.sends_clients_elsewhere()
}

/// Answers a Metadata request; the connection closes after it if the answer sends the client
/// elsewhere (`send_elsewhere`).
pub async fn reply(broker: &dyn Broker, req: MetadataRequest, cx: &super::RequestCx) -> anyhow::Result<super::Reply> {
    let resp = handle(broker, req, cx.version, cx.session.listener).await;
    let mut reply = cx.answer(&resp)?;
    reply.then_close = send_elsewhere(broker, &resp);
    Ok(reply)
}

/// Handles a Metadata request: auto-creates what it may, then describes the topics asked for.
pub async fn handle(
    broker: &dyn Broker,
    req: MetadataRequest,
    version: i16,
    listener: crate::security::SecurityProtocol,
) -> MetadataResponse {
    let cfg = broker.config();
    let allow_create = cfg.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    let (names, unknown_ids) = wanted_topics(&broker.metadata(), req.topics, version);
    let errors = auto_create(broker, &names, allow_create).await;
    let meta = broker.metadata();
    // Asked once per request: it reads the node's view of the cluster.
    let elsewhere = broker.sends_clients_elsewhere();
    let mut topics: Vec<MetadataResponseTopic> = names
        .into_iter()
        .map(|name| match errors.get(&name) {
            Some(code) => topic_named(name).with_error_code(code.code()),
            None => describe_topic(broker, &meta, name, version, elsewhere),
        })
        .collect();
    for id in unknown_ids {
        topics.push(
            MetadataResponseTopic::default()
                .with_topic_id(id)
                .with_error_code(ResponseError::UnknownTopicId.code()),
        );
    }
    let node = broker.node();
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers(&meta, node, listener))
        .with_topics(topics);
    if version >= 1 {
        resp = resp.with_controller_id(BrokerId(broker.controller_id()));
    }
    if version >= 2 {
        resp = resp.with_cluster_id(Some(StrBytes::from_string(node.cluster_id.clone())));
    }
    resp
}

/// The names of the topics asked for (all of them for a null list, or v0's empty one), and
/// the topic ids asked for that name no topic.
fn wanted_topics(
    meta: &ClusterMeta,
    asked: Option<Vec<kafka_protocol::messages::metadata_request::MetadataRequestTopic>>,
    version: i16,
) -> (Vec<String>, Vec<uuid::Uuid>) {
    let list = match asked {
        None => return (meta.topics.keys().cloned().collect(), Vec::new()),
        Some(ts) if ts.is_empty() && version == 0 => return (meta.topics.keys().cloned().collect(), Vec::new()),
        Some(ts) => ts,
    };
    let (mut names, mut unknown_ids) = (Vec::new(), Vec::new());
    for t in list {
        match t.name {
            Some(n) => names.push(n.0.to_string()),
            None => match meta.topics.values().find(|m| m.topic_id == t.topic_id) {
                Some(m) => names.push(m.name.clone()),
                None => unknown_ids.push(t.topic_id),
            },
        }
    }
    (names, unknown_ids)
}

/// Creates the unknown topics among `names` when allowed and waits until they are ready;
/// returns the error of each one that is not there.
async fn auto_create(broker: &dyn Broker, names: &[String], allow_create: bool) -> BTreeMap<String, ResponseError> {
    let cfg = broker.config();
    let mut errors = BTreeMap::new();
    let mut created = Vec::new();
    // One metadata snapshot for the request (a Metadata for all topics names every one).
    let known = broker.metadata();
    for name in names.iter().filter(|n| !known.topics.contains_key(*n)) {
        if !allow_create {
            errors.insert(name.clone(), ResponseError::UnknownTopicOrPartition);
            continue;
        }
        let cmd = match topic_validation::create_command(
            name,
            cfg.num_partitions,
            cfg.default_replication_factor,
            BTreeMap::new(),
            topic_validation::cluster_nodes(&broker.metadata()),
            None,
        ) {
            Ok(c) => c,
            Err((code, _)) => {
                errors.insert(name.clone(), code);
                continue;
            }
        };
        match broker.propose(cmd, cfg.request_timeout_max_ms).await {
            Ok(_) | Err((ResponseError::TopicAlreadyExists, _)) => created.push(name.clone()),
            Err((code, msg)) => {
                tracing::debug!(topic = %name, error = %msg, "auto-create failed");
                let shown = match code {
                    ResponseError::InvalidReplicationFactor => code,
                    _ => ResponseError::LeaderNotAvailable,
                };
                errors.insert(name.clone(), shown);
            }
        }
    }
    for name in created {
        broker.wait_topic_ready(name, AUTO_CREATE_WAIT_MS).await;
    }
    errors
}

fn topic_named(name: String) -> MetadataResponseTopic {
    MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(name))))
}

/// One topic and its partitions (`elsewhere`: this node sends clients to other replicas).
fn describe_topic(
    broker: &dyn Broker,
    meta: &ClusterMeta,
    name: String,
    version: i16,
    elsewhere: bool,
) -> MetadataResponseTopic {
    let Some(tm) = meta.topics.get(&name) else {
        return topic_named(name).with_error_code(ResponseError::UnknownTopicOrPartition.code());
    };
    let mut t = topic_named(name.clone());
    // Fields outside their versions make a response unencodable: topic_id is v10+,
    // leader_epoch v7+, offline_replicas v5+, cluster_id v2+, controller_id v1+.
    if version >= 10 {
        t = t.with_topic_id(tm.topic_id);
    }
    if version >= 1 && name == crate::storage::offsets::OFFSETS_TOPIC {
        t = t.with_is_internal(true);
    }
    let partitions = (0..tm.partitions)
        .map(|p| describe_partition(broker, meta, tm, p, (version, elsewhere)))
        .collect();
    t.with_partitions(partitions)
}

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|id| BrokerId(*id)).collect()
}

/// One partition: its replicas, and its leader as clients should see it.
fn describe_partition(
    broker: &dyn Broker,
    meta: &ClusterMeta,
    tm: &TopicMeta,
    p: i32,
    (version, elsewhere): (i16, bool),
) -> MetadataResponsePartition {
    let replicas = tm.hosts_of(p, broker.node().node_id);
    let pm = MetadataResponsePartition::default()
        .with_partition_index(p)
        .with_replica_nodes(ids(&replicas));
    match shown_leader(broker, meta, (&tm.name, p), &replicas, elsewhere) {
        Some((leader, epoch, in_sync)) => {
            let mut pm = pm.with_leader_id(BrokerId(leader)).with_isr_nodes(ids(&in_sync));
            if version >= 7 {
                pm = pm.with_leader_epoch(epoch);
            }
            // Replicas on nodes the controller fenced (not heard from within
            // broker.session.timeout.ms).
            let offline: Vec<i32> = replicas.iter().copied().filter(|id| !broker.node_alive(*id)).collect();
            if version >= 5 && !offline.is_empty() {
                pm = pm.with_offline_replicas(ids(&offline));
            }
            pm
        }
        None => {
            let pm = pm
                .with_error_code(ResponseError::LeaderNotAvailable.code())
                .with_leader_id(BrokerId(-1));
            if version >= 5 {
                pm.with_offline_replicas(ids(&replicas))
            } else {
                pm
            }
        }
    }
}

/// The leader to name for `topic`/`p`, its epoch and in-sync replicas; `None`: no leader a
/// client should be sent to (LEADER_NOT_AVAILABLE, and it asks again).
fn shown_leader(
    broker: &dyn Broker,
    meta: &ClusterMeta,
    (topic, p): (&str, i32),
    replicas: &[i32],
    elsewhere: bool,
) -> Option<(i32, i32, Vec<i32>)> {
    let me = broker.node().node_id;
    let tp = TopicPartition {
        topic: topic.to_string(),
        partition: p,
    };
    // A partition without a replica here: the leader its group last recorded in the
    // controller, or its only replica, while this node hears from it (a dead or cut-off
    // node is no leader to send clients to).
    let recorded = meta.leaders.get(topic).and_then(|l| l.get(&p)).copied();
    // The leader computes the in-sync replicas; other nodes show what it last recorded in
    // the controller in the same leader epoch (else all replicas).
    let recorded_isr = |epoch: i32| meta.isr_in(topic, p, epoch).unwrap_or_else(|| replicas.to_vec());
    match (broker.partition(&tp), recorded) {
        // A node that sends clients elsewhere (its disk full or its fsyncs stalled: it
        // refuses produce while its leaderships move) names no leader of its own where
        // another replica can take over (a single replica stays readable).
        (Some(v), _) if v.leader == Some(me) && elsewhere && replicas.len() > 1 => None,
        (Some(v), _) => {
            let in_sync = broker.in_sync(&tp).unwrap_or_else(|| recorded_isr(v.leader_epoch));
            v.leader.map(|l| (l, v.leader_epoch, in_sync))
        }
        // This node leads only what its own group says it does (a replica whose group
        // stopped, on a full disk, would otherwise name itself from its last record).
        (None, Some((leader, epoch))) if leader != me && broker.node_heard(leader) => {
            Some((leader, epoch, recorded_isr(epoch)))
        }
        (None, None) if replicas.len() == 1 && replicas[0] != me && broker.node_heard(replicas[0]) => {
            Some((replicas[0], 0, replicas.to_vec()))
        }
        _ => None,
    }
}

/// Every registered node's address on the client's listener (a single node: itself).
fn brokers(
    meta: &ClusterMeta,
    node: &crate::types::NodeInfo,
    listener: crate::security::SecurityProtocol,
) -> Vec<MetadataResponseBroker> {
    super::endpoints::brokers_on(meta, node, listener)
        .into_iter()
        .map(|(id, host, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(id))
                .with_host(StrBytes::from_string(host))
                .with_port(port)
        })
        .collect()
}
