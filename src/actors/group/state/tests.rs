//! Unit tests of the group state machine.

use super::*;

fn join(groups: &mut Groups, now: Instant, member: &str) -> oneshot::Receiver<Joined> {
    join_as(groups, now, member, None)
}

fn join_as(groups: &mut Groups, now: Instant, member: &str, instance: Option<&str>) -> oneshot::Receiver<Joined> {
    let (tx, rx) = oneshot::channel();
    let args = JoinArgs {
        group: "g".into(),
        member_id: member.into(),
        client_id: "c".into(),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        require_known_member_id: true,
        group_instance_id: instance.map(str::to_string),
    };
    groups.join(now, args, tx);
    rx
}

fn member(id: &str, generation: i32, instance: Option<&str>) -> CommitFrom {
    CommitFrom {
        member_id: id.into(),
        generation,
        instance_id: instance.map(str::to_string),
    }
}

#[test]
fn join_sync_heartbeat_and_session_expiry() {
    let t0 = Instant::now();
    let mut groups = Groups::new(Duration::from_millis(0));
    let first = join(&mut groups, t0, "").try_recv().unwrap();
    assert_eq!(first.error, Some(ResponseError::MemberIdRequired));
    assert_eq!(
        join(&mut groups, t0, "stranger").try_recv().unwrap().error,
        Some(ResponseError::UnknownMemberId)
    );
    let a = first.member_id.clone();
    let mut rx_a = join(&mut groups, t0, &a);
    let joined = rx_a.try_recv().unwrap();
    assert_eq!(
        (joined.error, joined.generation, joined.leader.as_str()),
        (None, 1, a.as_str())
    );
    assert_eq!(joined.members.len(), 1, "the leader gets the member list");
    let (tx, mut rx) = oneshot::channel();
    groups.sync(t0, "g", 1, &a, None, vec![(a.clone(), Bytes::from_static(b"p0"))], tx);
    assert_eq!(rx.try_recv().unwrap().unwrap(), Bytes::from_static(b"p0"));
    assert_eq!(groups.state("g"), Some(State::Stable));
    assert!(groups.heartbeat(t0, "g", 1, &a, None).is_ok());
    assert_eq!(
        groups.heartbeat(t0, "g", 0, &a, None),
        Err(ResponseError::IllegalGeneration)
    );
    assert!(groups.check_commit(t0, "g", &member(&a, 1, None)).is_ok());

    // A second member triggers a rebalance the first learns of by heartbeat.
    let b_id = join(&mut groups, t0, "").try_recv().unwrap().member_id;
    let mut rx_b = join(&mut groups, t0, &b_id);
    assert_eq!(
        groups.heartbeat(t0, "g", 1, &a, None),
        Err(ResponseError::RebalanceInProgress)
    );
    let mut rx_a = join(&mut groups, t0, &a);
    assert_eq!(rx_a.try_recv().unwrap().generation, 2);
    assert_eq!(rx_b.try_recv().unwrap().generation, 2);

    // b stops heartbeating: after its session timeout it is removed and a rebalance starts.
    let later = t0 + Duration::from_secs(11);
    assert!(groups
        .heartbeat(later - Duration::from_secs(1), "g", 2, &a, None)
        .is_ok());
    groups.tick(later);
    assert_eq!(
        groups.heartbeat(later, "g", 2, &b_id, None),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(groups.state("g"), Some(State::PreparingRebalance));
    assert_eq!(groups.leave(later, "g", &[(a.clone(), None)]), vec![Ok(())]);
    groups.tick(later);
    assert_eq!(
        groups.take_changed(),
        vec![("g".to_string(), None)],
        "stored: no members"
    );
    assert_eq!(
        groups.state("g"),
        None,
        "an empty group is forgotten (its offsets are not)"
    );
}

/// A one-member stable group of static member `instance`; returns its member id.
fn stable_static(groups: &mut Groups, now: Instant, instance: &str) -> String {
    let joined = join_as(groups, now, "", Some(instance)).try_recv().unwrap();
    assert_eq!(joined.error, None);
    let (tx, mut rx) = oneshot::channel();
    let assignment = vec![(joined.member_id.clone(), Bytes::from_static(b"p0"))];
    groups.sync(
        now,
        "g",
        joined.generation,
        &joined.member_id,
        Some(instance),
        assignment,
        tx,
    );
    assert!(rx.try_recv().unwrap().is_ok());
    joined.member_id
}

#[test]
fn static_member_leaves_by_instance_id() {
    let t0 = Instant::now();
    let mut groups = Groups::new(Duration::from_millis(0));
    let id = stable_static(&mut groups, t0, "i1");
    assert_eq!(
        groups.leave(t0, "g", &[("other".into(), Some("i1".into()))]),
        vec![Err(ResponseError::FencedInstanceId)],
        "a member id that does not own the instance id is fenced"
    );
    assert_eq!(
        groups.leave(t0, "g", &[(String::new(), Some("nobody".into()))]),
        vec![Err(ResponseError::UnknownMemberId)]
    );
    assert_eq!(
        groups.leave(t0, "g", &[(String::new(), Some("i1".into()))]),
        vec![Ok(())]
    );
    assert_eq!(
        groups.heartbeat(t0, "g", 1, &id, None),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(groups.state("g"), Some(State::Empty));
}

#[test]
fn stable_generation_is_stored_and_restored() {
    let t0 = Instant::now();
    let mut groups = Groups::new(Duration::from_millis(0));
    let id = stable_static(&mut groups, t0, "i1");
    let changed = groups.take_changed();
    assert_eq!(changed.len(), 1);
    let snapshot = changed[0].1.clone().expect("a stable group is stored");
    assert_eq!((snapshot.generation, snapshot.leader.as_str()), (1, id.as_str()));
    assert_eq!(snapshot.members[0].assignment, Bytes::from_static(b"p0"));
    assert!(groups.take_changed().is_empty(), "nothing changed since");

    // Another coordinator takes over: the member heartbeats on, without a rebalance.
    let mut other = Groups::new(Duration::from_millis(0));
    other.restore(t0, "g", snapshot);
    assert_eq!(other.state("g"), Some(State::Stable));
    assert!(other.heartbeat(t0, "g", 1, &id, Some("i1")).is_ok());
    assert!(other.check_commit(t0, "g", &member(&id, 1, Some("i1"))).is_ok());
    let (tx, mut rx) = oneshot::channel();
    other.sync(t0, "g", 1, &id, Some("i1"), Vec::new(), tx);
    assert_eq!(rx.try_recv().unwrap().unwrap(), Bytes::from_static(b"p0"));
    assert_eq!(
        other.heartbeat(t0, "g", 1, "impostor", Some("i1")),
        Err(ResponseError::FencedInstanceId),
        "static ownership is restored too"
    );
    // Restored members that never come back expire like any other.
    other.tick(t0 + Duration::from_secs(11));
    assert_eq!(other.state("g"), Some(State::Empty));
}

#[test]
fn subscribed_topics_come_from_consumer_metadata() {
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let mut metadata = bytes::BytesMut::from(&1i16.to_be_bytes()[..]);
    ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_static_str("orders")])
        .encode(&mut metadata, 1)
        .unwrap();
    let t0 = Instant::now();
    let mut groups = Groups::new(Duration::from_millis(0));
    let (tx, _rx) = oneshot::channel();
    groups.join(
        t0,
        JoinArgs {
            group: "g".into(),
            member_id: String::new(),
            client_id: "c".into(),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), metadata.freeze())],
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            require_known_member_id: false,
            group_instance_id: None,
        },
        tx,
    );
    let subscribed = groups.subscribed_topics("g");
    assert!(subscribed.contains("orders") && subscribed.len() == 1, "{subscribed:?}");
}

/// Kafka's answers to OffsetCommit across a rebalance (issue 14's reproduction): a member told
/// to rejoin may still commit what it processed; once it holds the new generation but not its
/// assignment it may not; a commit counts as a heartbeat.
#[test]
fn commits_are_taken_while_preparing_and_refused_while_completing_a_rebalance() {
    let t0 = Instant::now();
    let mut groups = Groups::new(Duration::from_millis(0));
    let a = join(&mut groups, t0, "").try_recv().unwrap().member_id;
    let mut rx_a = join(&mut groups, t0, &a);
    assert_eq!(rx_a.try_recv().unwrap().generation, 1);
    let (tx, _rx) = oneshot::channel();
    groups.sync(t0, "g", 1, &a, None, vec![(a.clone(), Bytes::from_static(b"p0"))], tx);
    assert_eq!(groups.check_commit(t0, "g", &member(&a, 1, None)), Ok(()), "Stable");

    let b = join(&mut groups, t0, "").try_recv().unwrap().member_id;
    let _rx_b = join(&mut groups, t0, &b);
    assert_eq!(groups.state("g"), Some(State::PreparingRebalance));
    assert_eq!(
        groups.heartbeat(t0, "g", 1, &a, None),
        Err(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        groups.check_commit(t0, "g", &member(&a, 1, None)),
        Ok(()),
        "PreparingRebalance takes the old generation's commit"
    );
    assert_eq!(
        groups.check_commit(t0, "g", &member(&a, 0, None)),
        Err(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        groups.check_commit(t0, "g", &member("stranger", 1, None)),
        Err(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        groups.check_commit(t0, "g", &member("", -1, None)),
        Err(ResponseError::UnknownMemberId),
        "a standalone commit to a group with members"
    );

    let mut rx_a = join(&mut groups, t0, &a);
    assert_eq!(rx_a.try_recv().unwrap().generation, 2);
    assert_eq!(groups.state("g"), Some(State::CompletingRebalance));
    assert_eq!(
        groups.check_commit(t0, "g", &member(&a, 2, None)),
        Err(ResponseError::RebalanceInProgress),
        "CompletingRebalance"
    );

    // A commit refreshes the member's session: committing every 6 s keeps a 10 s session.
    let (tx, _rx) = oneshot::channel();
    groups.sync(t0, "g", 2, &a, None, Vec::new(), tx);
    assert_eq!(groups.state("g"), Some(State::Stable));
    let mut t = t0;
    for _ in 0..3 {
        t += Duration::from_secs(6);
        assert_eq!(groups.check_commit(t, "g", &member(&a, 2, None)), Ok(()));
        assert!(groups.heartbeat(t, "g", 2, &b, None).is_ok());
        groups.tick(t);
    }
    assert_eq!(
        groups.check_commit(t, "g", &member(&a, 2, None)),
        Ok(()),
        "a is still a member"
    );
}

#[test]
fn standalone_commits_need_a_group_without_members() {
    let t0 = Instant::now();
    let mut groups = Groups::new(Duration::from_millis(0));
    assert_eq!(groups.check_commit(t0, "nobody", &member("", -1, None)), Ok(()));
    assert_eq!(
        groups.check_commit(t0, "nobody", &member("m", 1, None)),
        Err(ResponseError::IllegalGeneration),
        "a member commit to a group that does not exist"
    );
}
