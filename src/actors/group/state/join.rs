//! JoinGroup's steps: a group created on first join, static members (KIP-345) taking their
//! old identity over, the protocol check, and adding the member to the rebalance.

use super::{member_metadata, start_rebalance, try_complete_join, Group, JoinArgs, Joined, Member, State};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;
use tokio::sync::oneshot;

/// Answers a JoinGroup with `error`.
pub(super) fn refuse(reply: oneshot::Sender<Joined>, error: ResponseError, member_id: String) {
    let _ = reply.send(Joined {
        error: Some(error),
        member_id,
        ..Default::default()
    });
}

/// The group a JoinGroup names, created empty if new.
pub(super) fn group_for_join<'a>(
    groups: &'a mut HashMap<String, Group>,
    a: &JoinArgs,
    now: Instant,
    initial_delay: std::time::Duration,
) -> &'a mut Group {
    groups.entry(a.group.clone()).or_insert_with(|| Group {
        state: State::Empty,
        generation: 0,
        protocol_type: a.protocol_type.clone(),
        protocol: String::new(),
        leader: String::new(),
        members: BTreeMap::new(),
        pending_joins: HashMap::new(),
        pending_syncs: HashMap::new(),
        static_members: HashMap::new(),
        rebalance_deadline: now,
        initial_delay_until: now + initial_delay,
        dirty: false,
    })
}

/// A static member's join (KIP-345). One naming a member id other than the one its instance
/// id holds is fenced; a restarted one (no member id) takes the old identity over, answered at
/// once in a stable group. Gives the reply back when the join goes on as usual.
pub(super) fn rejoin_static(
    g: &mut Group,
    now: Instant,
    a: &JoinArgs,
    instance: String,
    member_id: &str,
    reply: oneshot::Sender<Joined>,
) -> Option<oneshot::Sender<Joined>> {
    match g.static_members.get(&instance).cloned().filter(|old| old != member_id) {
        Some(_) if !a.member_id.is_empty() => {
            refuse(reply, ResponseError::FencedInstanceId, member_id.to_string());
            return None;
        }
        Some(old) => {
            let took_over = take_over_static(g, now, a, &old, &instance, member_id);
            if took_over && g.state == State::Stable {
                // Same assignment, and no rebalance for the others.
                g.dirty = true;
                let _ = reply.send(current_join(g, member_id));
                return None;
            }
        }
        None => {}
    }
    g.static_members.insert(instance, member_id.to_string());
    Some(reply)
}

/// Moves the member `old` to `member_id` (a restarted static member), fencing the old
/// identity's waiting requests; false when `old` is not a member.
pub(super) fn take_over_static(
    g: &mut Group,
    now: Instant,
    a: &JoinArgs,
    old: &str,
    instance: &str,
    member_id: &str,
) -> bool {
    let Some(mut m) = g.members.remove(old) else {
        return false;
    };
    if let Some(tx) = g.pending_joins.remove(old) {
        refuse(tx, ResponseError::FencedInstanceId, String::new());
    }
    if let Some(tx) = g.pending_syncs.remove(old) {
        let _ = tx.send(Err(ResponseError::FencedInstanceId));
    }
    m.last_seen = now;
    m.session_timeout = a.session_timeout;
    m.rebalance_timeout = a.rebalance_timeout;
    g.members.insert(member_id.to_string(), m);
    g.static_members.insert(instance.to_string(), member_id.to_string());
    if g.leader == old {
        g.leader = member_id.to_string();
    }
    true
}

/// The current generation as a JoinGroup answer to `member_id` (the leader gets the members).
pub(super) fn current_join(g: &Group, member_id: &str) -> Joined {
    let members = if g.leader == member_id {
        member_metadata(g)
    } else {
        Vec::new()
    };
    Joined {
        error: None,
        generation: g.generation,
        protocol_type: g.protocol_type.clone(),
        protocol: g.protocol.clone(),
        leader: g.leader.clone(),
        member_id: member_id.to_string(),
        members,
    }
}

/// Whether the joining member's protocol type and protocols fit the group's members.
pub(super) fn protocols_compatible(g: &Group, a: &JoinArgs) -> bool {
    let same_type = g.members.is_empty() || g.protocol_type == a.protocol_type;
    let common = a
        .protocols
        .iter()
        .any(|(p, _)| g.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == p)));
    same_type && common
}

/// Adds (or refreshes) a member that joins, and moves the rebalance on.
pub(super) fn add_member(g: &mut Group, now: Instant, a: JoinArgs, member_id: String, reply: oneshot::Sender<Joined>) {
    g.protocol_type = a.protocol_type;
    g.members.insert(
        member_id.clone(),
        Member {
            client_id: a.client_id,
            instance_id: a.group_instance_id,
            protocols: a.protocols,
            session_timeout: a.session_timeout,
            rebalance_timeout: a.rebalance_timeout,
            last_seen: now,
            assignment: Bytes::new(),
        },
    );
    if let Some(old) = g.pending_joins.insert(member_id, reply) {
        refuse(old, ResponseError::RebalanceInProgress, String::new());
    }
    if g.state != State::PreparingRebalance {
        start_rebalance(g, now);
    }
    try_complete_join(g, now);
}
