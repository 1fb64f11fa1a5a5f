//! Consumer-group behaviour during a rebalance, as raw requests (issue 14's reproduction):
//! OffsetCommit is taken in Stable and PreparingRebalance and refused in CompletingRebalance,
//! as Kafka's classic group coordinator does; JoinGroup refuses session timeouts outside
//! `group.min/max.session.timeout.ms`.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use std::net::TcpStream;

const GROUP: &str = "rebalancing";
const TOPIC: &str = "rebalanced";

fn start() -> TestBroker {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "group.initial.rebalance.delay.ms = 0\n").unwrap();
    let b = TestBroker::start(&["--config", config.to_str().unwrap()]);
    let mut s = b.connect();
    let created: CreateTopicsResponse = call(
        &mut s,
        ApiKey::CreateTopics,
        5,
        &CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_num_partitions(1)
                .with_replication_factor(1)]),
    );
    assert_eq!(created.topics[0].error_code, 0, "{created:?}");
    let found: FindCoordinatorResponse = call(
        &mut s,
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![StrBytes::from_static_str(GROUP)]),
    );
    assert_eq!(found.coordinators[0].node_id, b.node_id, "{found:?}");
    b
}

fn join_request(member: &str, session_timeout_ms: i32) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(30_000)
        .with_member_id(StrBytes::from_string(member.to_string()))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(b"m"))])
}

/// Joins with the KIP-394 round trip; returns the response with the member id.
fn join(s: &mut TcpStream, member: &str) -> JoinGroupResponse {
    let first = join_once_loaded(s, 5, &join_request(member, 10_000));
    if first.error_code != ResponseError::MemberIdRequired.code() {
        return first;
    }
    call(s, ApiKey::JoinGroup, 5, &join_request(&first.member_id, 10_000))
}

fn commit(s: &mut TcpStream, member: &str, generation: i32, offset: i64) -> i16 {
    let resp: OffsetCommitResponse = call(
        s,
        ApiKey::OffsetCommit,
        8,
        &OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(StrBytes::from_string(member.to_string()))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]),
    );
    resp.topics[0].partitions[0].error_code
}

fn committed(s: &mut TcpStream) -> i64 {
    let resp: OffsetFetchResponse = call(
        s,
        ApiKey::OffsetFetch,
        7,
        &OffsetFetchRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partition_indexes(vec![0])])),
    );
    resp.topics[0].partitions[0].committed_offset
}

fn heartbeat(s: &mut TcpStream, member: &str, generation: i32) -> i16 {
    let resp: HeartbeatResponse = call(
        s,
        ApiKey::Heartbeat,
        4,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id(generation)
            .with_member_id(StrBytes::from_string(member.to_string())),
    );
    resp.error_code
}

#[test]
fn a_member_commits_while_preparing_a_rebalance_but_not_while_completing_it() {
    let b = start();
    let mut a = b.connect();
    let joined = join(&mut a, "");
    assert_eq!((joined.error_code, joined.generation_id), (0, 1), "{joined:?}");
    let a_id = joined.member_id.to_string();
    let synced: SyncGroupResponse = call(
        &mut a,
        ApiKey::SyncGroup,
        5,
        &SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str(GROUP)))
            .with_generation_id(1)
            .with_member_id(joined.member_id.clone())
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str("range")))
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(joined.member_id.clone())
                .with_assignment(bytes::Bytes::from_static(b"p0"))]),
    );
    assert_eq!(synced.error_code, 0);
    assert_eq!(commit(&mut a, &a_id, 1, 5), 0, "Stable");
    assert_eq!(committed(&mut a), 5);

    // B joins: its JoinGroup waits for A to rejoin, so it runs on its own connection.
    let mut b_conn = b.connect();
    let b_join = std::thread::spawn(move || join(&mut b_conn, ""));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while heartbeat(&mut a, &a_id, 1) != ResponseError::RebalanceInProgress.code() {
        assert!(
            std::time::Instant::now() < deadline,
            "B's join never started a rebalance"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        commit(&mut a, &a_id, 1, 7),
        0,
        "a commit of the old generation while PreparingRebalance is stored"
    );
    assert_eq!(committed(&mut a), 7, "and OffsetFetch shows it");

    let rejoined = join(&mut a, &a_id);
    assert_eq!((rejoined.error_code, rejoined.generation_id), (0, 2), "{rejoined:?}");
    assert_eq!(b_join.join().unwrap().generation_id, 2);
    assert_eq!(
        commit(&mut a, &a_id, 2, 9),
        ResponseError::RebalanceInProgress.code(),
        "CompletingRebalance (joined, not yet synced) refuses commits"
    );
    assert_eq!(committed(&mut a), 7);
    assert_eq!(commit(&mut a, &a_id, 1, 9), ResponseError::IllegalGeneration.code());
}

#[test]
fn session_timeouts_outside_the_bounds_are_refused() {
    let b = start();
    let mut s = b.connect();
    for (session_ms, expected) in [
        (5_999, ResponseError::InvalidSessionTimeout.code()),
        (1_800_001, ResponseError::InvalidSessionTimeout.code()),
        (6_000, ResponseError::MemberIdRequired.code()),
        (1_800_000, ResponseError::MemberIdRequired.code()),
    ] {
        let resp = join_once_loaded(&mut s, 5, &join_request("", session_ms));
        assert_eq!(resp.error_code, expected, "session timeout {session_ms} ms");
    }
}
