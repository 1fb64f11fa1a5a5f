//! Every advertised version of JoinGroup, SyncGroup, Heartbeat and LeaveGroup, spoken with
//! kafka-protocol's encoders: a one-member group forms, syncs, heartbeats and leaves.

mod common;

use common::*;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use raftstream::handlers::APIS;
use std::net::TcpStream;

fn max(key: ApiKey) -> i16 {
    APIS.iter().find(|s| s.key == key).unwrap().max
}

#[test]
fn static_member_leaves_by_instance_id() {
    use kafka_protocol::error::ResponseError;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "group.initial.rebalance.delay.ms = 0\n").unwrap();
    let b = TestBroker::start(&["--config", config.to_str().unwrap()]);
    let mut s = b.connect();
    let group = GroupId(StrBytes::from_static_str("static"));
    let found: FindCoordinatorResponse = call(
        &mut s,
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(vec![group.0.clone()]),
    );
    assert_eq!(found.coordinators[0].node_id, b.node_id, "{found:?}");
    let join = JoinGroupRequest::default()
        .with_group_id(group.clone())
        .with_session_timeout_ms(30_000)
        .with_rebalance_timeout_ms(30_000)
        .with_group_instance_id(Some(StrBytes::from_static_str("instance-1")))
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(bytes::Bytes::from_static(b"m"))]);
    let joined = join_once_loaded(&mut s, 5, &join);
    assert_eq!(
        joined.error_code, 0,
        "a static member needs no MEMBER_ID_REQUIRED round"
    );
    let describe = |s: &mut TcpStream| -> DescribeGroupsResponse {
        call(
            s,
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![group.clone()]),
        )
    };
    assert_eq!(describe(&mut s).groups[0].members.len(), 1);
    for lv in 3..=max(ApiKey::LeaveGroup) {
        let leave = |member: &str| {
            LeaveGroupRequest::default()
                .with_group_id(group.clone())
                .with_members(vec![MemberIdentity::default()
                    .with_member_id(StrBytes::from_string(member.to_string()))
                    .with_group_instance_id(Some(StrBytes::from_static_str("instance-1")))])
        };
        let impostor: LeaveGroupResponse = call(&mut s, ApiKey::LeaveGroup, lv, &leave("someone-else"));
        assert_eq!(
            impostor.members[0].error_code,
            ResponseError::FencedInstanceId.code(),
            "LeaveGroup v{lv}"
        );
        assert_eq!(
            describe(&mut s).groups[0].members.len(),
            1,
            "the impostor removed nobody"
        );
    }
    let left: LeaveGroupResponse = call(
        &mut s,
        ApiKey::LeaveGroup,
        3,
        &LeaveGroupRequest::default()
            .with_group_id(group.clone())
            .with_members(vec![
                MemberIdentity::default().with_group_instance_id(Some(StrBytes::from_static_str("instance-1")))
            ]),
    );
    assert_eq!((left.error_code, left.members[0].error_code), (0, 0));
    let after = describe(&mut s);
    assert!(
        after.groups[0].members.is_empty(),
        "left by instance id alone: {after:?}"
    );
}

#[test]
fn every_group_api_version_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, "group.initial.rebalance.delay.ms = 0\n").unwrap();
    let b = TestBroker::start(&["--config", config.to_str().unwrap()]);
    let mut s = b.connect();
    // As clients do: find the coordinator first (this creates the offsets topic).
    let groups: Vec<StrBytes> = (0..=max(ApiKey::JoinGroup))
        .map(|v| StrBytes::from_string(format!("g{v}")))
        .collect();
    let found: FindCoordinatorResponse = call(
        &mut s,
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default().with_coordinator_keys(groups),
    );
    assert!(found.coordinators.iter().all(|c| c.error_code == 0), "{found:?}");
    for v in 0..=max(ApiKey::JoinGroup) {
        let group = GroupId(StrBytes::from_string(format!("g{v}")));
        let join = |member: &str| {
            JoinGroupRequest::default()
                .with_group_id(group.clone())
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_member_id(StrBytes::from_string(member.to_string()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(bytes::Bytes::from_static(b"m"))])
        };
        let mut resp = join_once_loaded(&mut s, v, &join(""));
        if v >= 4 {
            assert_eq!(
                resp.error_code,
                kafka_protocol::error::ResponseError::MemberIdRequired.code(),
                "JoinGroup v{v}"
            );
            resp = call(&mut s, ApiKey::JoinGroup, v, &join(&resp.member_id.to_string()));
        }
        assert_eq!((resp.error_code, resp.generation_id), (0, 1), "JoinGroup v{v}");
        let member = resp.member_id.clone();
        assert_eq!(resp.leader, member);

        let sv = v.min(max(ApiKey::SyncGroup));
        let mut sync = SyncGroupRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(1)
            .with_member_id(member.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(member.clone())
                .with_assignment(bytes::Bytes::from_static(b"a"))]);
        if sv >= 5 {
            sync = sync
                .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
                .with_protocol_name(Some(StrBytes::from_static_str("range")));
        }
        let synced: SyncGroupResponse = call(&mut s, ApiKey::SyncGroup, sv, &sync);
        assert_eq!(
            (synced.error_code, &synced.assignment[..]),
            (0, &b"a"[..]),
            "SyncGroup v{sv}"
        );

        let hv = v.min(max(ApiKey::Heartbeat));
        let hb = HeartbeatRequest::default()
            .with_group_id(group.clone())
            .with_generation_id(1)
            .with_member_id(member.clone());
        let beat: HeartbeatResponse = call(&mut s, ApiKey::Heartbeat, hv, &hb);
        assert_eq!(beat.error_code, 0, "Heartbeat v{hv}");

        let lv = v.min(max(ApiKey::LeaveGroup));
        let leave = if lv >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group.clone())
                .with_members(vec![MemberIdentity::default().with_member_id(member)])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group.clone())
                .with_member_id(member)
        };
        let left: LeaveGroupResponse = call(&mut s, ApiKey::LeaveGroup, lv, &leave);
        assert_eq!(left.error_code, 0, "LeaveGroup v{lv}");
        if lv >= 3 {
            assert_eq!(left.members[0].error_code, 0);
        }
    }
    for v in 0..=max(ApiKey::DescribeGroups) {
        let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(StrBytes::from_static_str("never"))]);
        let resp: DescribeGroupsResponse = call(&mut s, ApiKey::DescribeGroups, v, &req);
        assert_eq!(
            (resp.groups[0].error_code, resp.groups[0].group_state.as_str()),
            (0, "Dead"),
            "DescribeGroups v{v}"
        );
    }
    for v in 0..=max(ApiKey::ListGroups) {
        let resp: ListGroupsResponse = call(&mut s, ApiKey::ListGroups, v, &ListGroupsRequest::default());
        assert_eq!(resp.error_code, 0, "ListGroups v{v}");
    }
    for v in 0..=max(ApiKey::DeleteGroups) {
        let req = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(StrBytes::from_static_str("nope"))]);
        // The group's offsets partition may still be loading: clients retry that, and so do we.
        let loading = kafka_protocol::error::ResponseError::CoordinatorLoadInProgress.code();
        let mut code = loading;
        for _ in 0..200 {
            let resp: DeleteGroupsResponse = call(&mut s, ApiKey::DeleteGroups, v, &req);
            code = resp.results[0].error_code;
            if code != loading {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            code,
            kafka_protocol::error::ResponseError::GroupIdNotFound.code(),
            "DeleteGroups v{v}"
        );
    }
}
