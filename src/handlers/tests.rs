//! Handler unit tests against a fake broker (`fake.rs`): what a handler answers for a given
//! state of the broker, without a node.

use super::context::PartitionView;
use super::fake::FakeBroker;
use crate::storage::log::{LogConfig, PartitionLog};
use crate::storage::meta_sm::{apply_command, ClusterMeta, MetaCommand};
use crate::types::TopicPartition;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::sync::Arc;

const LOG: LogConfig = LogConfig {
    segment_bytes: 1 << 20,
    segment_ms: i64::MAX,
    index_interval_bytes: 4096,
    tail_cache_bytes: 0,
    max_append_bytes: 1 << 20,
};

/// Node 1 of three, topic "t" with partitions on [1,2], [2,1] and [3,1].
fn three_node_meta() -> ClusterMeta {
    let mut meta = ClusterMeta {
        voters: vec![1, 2, 3],
        ..Default::default()
    };
    let create = MetaCommand::CreateTopic {
        name: "t".into(),
        topic_id: uuid::Uuid::new_v4(),
        partitions: 3,
        replication_factor: 2,
        configs: BTreeMap::new(),
        assignment: Some(vec![vec![1, 2], vec![2, 1], vec![3, 1]]),
    };
    apply_command(&mut meta, create).unwrap();
    meta
}

fn local_view(dir: &std::path::Path, leader: Option<i32>, epoch: i32) -> PartitionView {
    let (log, _) = PartitionLog::open(dir, LOG).unwrap();
    PartitionView {
        log: Arc::new(log),
        high_watermark: tokio::sync::watch::channel(0).1,
        leader,
        leader_epoch: epoch,
    }
}

fn ask_metadata(topics: Vec<MetadataRequestTopic>) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(topics))
        .with_allow_auto_topic_creation(true)
}

fn named(name: &'static str) -> MetadataRequestTopic {
    MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_static_str(name))))
}

/// (leader, leader epoch, error code) of each partition of the first topic.
fn leaders(resp: &MetadataResponse) -> Vec<(i32, i32, i16)> {
    resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.leader_id.0, p.leader_epoch, p.error_code))
        .collect()
}

#[tokio::test]
async fn metadata_names_only_leaders_a_client_can_reach() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = FakeBroker::new(1);
    let mut meta = three_node_meta();
    // Partition 1's leader was recorded as node 2, partition 2's as node 3.
    meta.leaders
        .insert("t".into(), BTreeMap::from([(1, (2, 5)), (2, (3, 4))]));
    b.meta = Arc::new(meta);
    b.partitions.insert(
        TopicPartition {
            topic: "t".into(),
            partition: 0,
        },
        local_view(dir.path(), Some(1), 7),
    );
    b.heard.insert(2); // node 3 is not heard: no leader to send clients to
    let resp = metadata(&b, ask_metadata(vec![named("t")])).await;
    let lna = ResponseError::LeaderNotAvailable.code();
    assert_eq!(leaders(&resp), vec![(1, 7, 0), (2, 5, 0), (-1, -1, lna)]);
    assert_eq!(
        resp.topics[0].partitions[2].offline_replicas.len(),
        2,
        "no leader: all offline"
    );

    // A node that sends clients elsewhere names no leader of its own for replicated partitions.
    b.elsewhere = true;
    let resp = metadata(&b, ask_metadata(vec![named("t")])).await;
    assert_eq!(leaders(&resp), vec![(-1, -1, lna), (2, 5, 0), (-1, -1, lna)]);
}

#[tokio::test]
async fn metadata_creates_unknown_topics_when_allowed_and_reports_unknown_ids() {
    let b = FakeBroker::new(1);
    let unknown_id = MetadataRequestTopic::default()
        .with_name(None)
        .with_topic_id(uuid::Uuid::new_v4());
    let resp = metadata(&b, ask_metadata(vec![named("fresh"), unknown_id])).await;
    assert!(matches!(
        b.proposed.lock().as_slice(),
        [MetaCommand::CreateTopic { name, .. }] if name == "fresh"
    ));
    // The fake applies nothing: the topic it proposed is still unknown to it.
    assert_eq!(resp.topics[0].error_code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(resp.topics[1].error_code, ResponseError::UnknownTopicId.code());

    let no_create = ask_metadata(vec![named("other")]).with_allow_auto_topic_creation(false);
    let resp = metadata(&b, no_create).await;
    assert_eq!(resp.topics[0].error_code, ResponseError::UnknownTopicOrPartition.code());
    assert_eq!(b.proposed.lock().len(), 1, "not allowed to create: nothing proposed");
}

#[tokio::test]
async fn create_topics_refuses_a_bad_config_without_proposing() {
    let b = FakeBroker::new(1);
    let bad = CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("retention.mss"))
        .with_value(Some(StrBytes::from_static_str("1")));
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_static_str("x")))
        .with_num_partitions(1)
        .with_replication_factor(1)
        .with_configs(vec![bad]);
    let req = CreateTopicsRequest::default().with_topics(vec![topic]);
    let resp = super::create_topics::handle(&b, req, 7).await;
    assert_eq!(resp.topics[0].error_code, ResponseError::InvalidConfig.code());
    assert!(b.proposed.lock().is_empty());
}

#[tokio::test]
async fn group_admin_answers_each_group_when_the_coordinator_is_unavailable() {
    let b = FakeBroker::new(1);
    let names = vec![
        GroupId(StrBytes::from_static_str("a")),
        GroupId(StrBytes::from_static_str("b")),
    ];
    let resp = super::delete_groups::handle(&b, DeleteGroupsRequest::default().with_groups_names(names)).await;
    let cna = ResponseError::CoordinatorNotAvailable.code();
    assert_eq!(
        resp.results.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        vec![cna, cna]
    );
    let listed = super::list_groups::handle(&b, ListGroupsRequest::default(), 4).await;
    assert_eq!(listed.error_code, cna);
    assert!(listed.groups.is_empty());
}

/// A Metadata v12 answer from `b` to a PLAINTEXT client.
async fn metadata(b: &FakeBroker, req: MetadataRequest) -> kafka_protocol::messages::MetadataResponse {
    super::metadata::handle(b, req, 12, crate::security::SecurityProtocol::Plaintext).await
}
