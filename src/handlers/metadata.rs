//! Metadata: brokers, cluster id, controller, and for each topic its id and partitions with
//! leader, leader epoch (the Raft term), replicas and in-sync replicas. Unknown topics are
//! created when `auto.create.topics.enable` and the request allows it.

use super::context::Broker;

use super::topic_validation;
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
    let resp = handle(broker, req, cx.version).await;
    let mut reply = cx.answer(&resp)?;
    reply.then_close = send_elsewhere(broker, &resp);
    Ok(reply)
}

pub async fn handle(broker: &dyn Broker, req: MetadataRequest, version: i16) -> MetadataResponse {
    let cfg = broker.config();
    let allow_create = cfg.auto_create_topics_enable && (version < 4 || req.allow_auto_topic_creation);
    let meta = broker.metadata();
    // v0: an empty list means all topics; v1+: null means all.
    let wanted: Option<Vec<(Option<String>, uuid::Uuid)>> = match req.topics {
        None => None,
        Some(ts) if ts.is_empty() && version == 0 => None,
        Some(ts) => Some(
            ts.into_iter()
                .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
                .collect(),
        ),
    };
    let mut errors: BTreeMap<String, ResponseError> = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    let mut unknown_ids: Vec<uuid::Uuid> = Vec::new();
    match wanted {
        None => names.extend(meta.topics.keys().cloned()),
        Some(list) => {
            for (name, id) in list {
                match name {
                    Some(n) => names.push(n),
                    None => match meta.topics.values().find(|t| t.topic_id == id) {
                        Some(t) => names.push(t.name.clone()),
                        None => unknown_ids.push(id),
                    },
                }
            }
        }
    }
    let mut created = Vec::new();
    for name in &names {
        if meta.topics.contains_key(name) {
            continue;
        }
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
                errors.insert(
                    name.clone(),
                    if code == ResponseError::InvalidReplicationFactor {
                        code
                    } else {
                        ResponseError::LeaderNotAvailable
                    },
                );
            }
        }
    }
    for name in created {
        broker.wait_topic_ready(name, AUTO_CREATE_WAIT_MS).await;
    }
    let meta = broker.metadata();
    let node = broker.node();
    let me = node.node_id;
    let elsewhere = broker.sends_clients_elsewhere();
    let mut topics = Vec::new();
    for name in names {
        let mut t = MetadataResponseTopic::default().with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
        if let Some(code) = errors.get(&name) {
            topics.push(t.with_error_code(code.code()));
            continue;
        }
        let Some(tm) = meta.topics.get(&name) else {
            topics.push(t.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
            continue;
        };
        // Fields outside their versions make a response unencodable: topic_id is v10+,
        // leader_epoch v7+, offline_replicas v5+, cluster_id v2+, controller_id v1+.
        if version >= 10 {
            t = t.with_topic_id(tm.topic_id);
        }
        if version >= 1 && name == crate::storage::offsets::OFFSETS_TOPIC {
            t = t.with_is_internal(true);
        }
        let mut partitions = Vec::new();
        for p in 0..tm.partitions {
            let replicas = tm.hosts_of(p, node.node_id);
            let ids = |v: &[i32]| v.iter().map(|id| BrokerId(*id)).collect::<Vec<_>>();
            let mut pm = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_replica_nodes(ids(&replicas));
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p,
            };
            let view = broker.partition(&tp);
            // A partition without a replica here: the leader its group last recorded in the
            // controller, or its only replica, while this node hears from it (a dead or cut-off
            // node is no leader to send clients to: LEADER_NOT_AVAILABLE, and they ask again).
            let recorded = meta.leaders.get(&name).and_then(|l| l.get(&p)).copied();
            // The leader computes the in-sync replicas; other nodes show what it last recorded in
            // the controller in the same leader epoch (else all replicas).
            let recorded_isr = |epoch: i32| meta.isr_in(&name, p, epoch).unwrap_or_else(|| replicas.clone());
            let (leader, epoch, in_sync) = match (view, recorded) {
                // A node that sends clients elsewhere (its disk full or its fsyncs stalled: it
                // refuses produce while its leaderships move) names no leader of its own where
                // another replica can take over (a single replica stays readable).
                (Some(v), _) if v.leader == Some(me) && elsewhere && replicas.len() > 1 => (None, -1, Vec::new()),
                (Some(v), _) => (
                    v.leader,
                    v.leader_epoch,
                    broker.in_sync(&tp).unwrap_or_else(|| recorded_isr(v.leader_epoch)),
                ),
                // This node leads only what its own group says it does (a replica whose group
                // stopped, on a full disk, would otherwise name itself from its last record).
                (None, Some((leader, epoch))) if leader != me && broker.node_heard(leader) => {
                    (Some(leader), epoch, recorded_isr(epoch))
                }
                (None, None) if replicas.len() == 1 && replicas[0] != me && broker.node_heard(replicas[0]) => {
                    (Some(replicas[0]), 0, replicas.clone())
                }
                _ => (None, -1, Vec::new()),
            };
            match leader {
                Some(leader) => {
                    pm = pm.with_leader_id(BrokerId(leader)).with_isr_nodes(ids(&in_sync));
                    if version >= 7 {
                        pm = pm.with_leader_epoch(epoch);
                    }
                    // Replicas on nodes the controller fenced (not heard from within
                    // broker.session.timeout.ms).
                    let offline: Vec<i32> = replicas.iter().copied().filter(|id| !broker.node_alive(*id)).collect();
                    if version >= 5 && !offline.is_empty() {
                        pm = pm.with_offline_replicas(ids(&offline));
                    }
                }
                None => {
                    pm = pm
                        .with_error_code(ResponseError::LeaderNotAvailable.code())
                        .with_leader_id(BrokerId(-1));
                    if version >= 5 {
                        pm = pm.with_offline_replicas(ids(&replicas));
                    }
                }
            }
            partitions.push(pm);
        }
        topics.push(t.with_partitions(partitions));
    }
    for id in unknown_ids {
        topics.push(
            MetadataResponseTopic::default()
                .with_topic_id(id)
                .with_error_code(ResponseError::UnknownTopicId.code()),
        );
    }
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers(&meta, node))
        .with_topics(topics);
    if version >= 1 {
        resp = resp.with_controller_id(BrokerId(broker.controller_id()));
    }
    if version >= 2 {
        resp = resp.with_cluster_id(Some(StrBytes::from_string(node.cluster_id.clone())));
    }
    resp
}

/// Every registered node (a single node: itself).
fn brokers(meta: &crate::storage::meta_sm::ClusterMeta, node: &crate::types::NodeInfo) -> Vec<MetadataResponseBroker> {
    let one = |id: i32, host: &str, port: i32| {
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host.to_string()))
            .with_port(port)
    };
    if meta.brokers.is_empty() {
        return vec![one(node.node_id, &node.advertised_host, node.advertised_port)];
    }
    meta.brokers.iter().map(|(id, b)| one(*id, &b.host, b.port)).collect()
}
