//! Unit tests of the group state machine.

use super::*;

fn join(groups: &mut Groups, now: Instant, member: &str) -> oneshot::Receiver<Joined> {
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
        group_instance_id: None,
    };
    groups.join(now, args, tx);
    rx
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
    assert!(groups.check_commit("g", 1, &a).is_ok());

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
    assert_eq!(groups.leave(later, "g", std::slice::from_ref(&a)), vec![Ok(())]);
    groups.tick(later);
    assert_eq!(
        groups.state("g"),
        None,
        "an empty group is forgotten (its offsets are not)"
    );
}
