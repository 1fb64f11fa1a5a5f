//! Group membership and admin operations (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! DescribeGroups, ListGroups, DeleteGroups, OffsetDelete), each with its own typed reply,
//! served by the coordinator actor on its state.

use crate::actors::group::coordinator::{CoordinatorMsg, CoordinatorState};
use crate::handlers::context::{EachResult, GroupDescription, GroupListing, HeartbeatArgs, JoinArgs, Joined, SyncArgs};
use crate::storage::offsets::{OffsetKey, OffsetsRecord};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use ractor::ActorRef;
use std::collections::BTreeSet;
use std::time::Instant;
use tokio::sync::oneshot;

/// A group operation and the port its typed answer goes to.
pub enum GroupOp {
    Join(JoinArgs, oneshot::Sender<Joined>),
    Sync(SyncArgs, oneshot::Sender<Result<Bytes, ResponseError>>),
    Heartbeat(HeartbeatArgs, oneshot::Sender<Result<(), ResponseError>>),
    Leave {
        group: String,
        /// (member id, group.instance.id) of each leaving member.
        members: Vec<(String, Option<String>)>,
        reply: oneshot::Sender<Vec<Result<(), ResponseError>>>,
    },
    Describe {
        groups: Vec<String>,
        reply: oneshot::Sender<Vec<GroupDescription>>,
    },
    /// (group, protocol type, state) of every group with members or committed offsets.
    List {
        reply: oneshot::Sender<Vec<GroupListing>>,
    },
    /// Delete empty groups and their committed offsets.
    Delete {
        groups: Vec<String>,
        reply: oneshot::Sender<EachResult>,
    },
    /// Delete a group's committed offsets of partitions its members are not subscribed to.
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
        reply: oneshot::Sender<EachResult>,
    },
}

/// Serves one membership or admin operation.
pub(super) fn group_op(me: &ActorRef<CoordinatorMsg>, st: &mut CoordinatorState, op: GroupOp) {
    let now = Instant::now();
    match op {
        GroupOp::Join(args, reply) => join(me, st, now, args, reply),
        GroupOp::Sync(args, reply) => sync(me, st, now, args, reply),
        GroupOp::Heartbeat(a, reply) => {
            let result = st.store.ready(me, &a.group).and_then(|_| {
                st.groups
                    .heartbeat(now, &a.group, a.generation, &a.member_id, a.instance_id.as_deref())
            });
            let _ = reply.send(result);
        }
        GroupOp::Leave { group, members, reply } => {
            let result = match st.store.ready(me, &group) {
                Ok(()) => st.groups.leave(now, &group, &members),
                Err(code) => members.iter().map(|_| Err(code)).collect(),
            };
            let _ = reply.send(result);
        }
        GroupOp::Describe { groups, reply } => {
            let described = groups.into_iter().map(|g| describe(me, st, g)).collect();
            let _ = reply.send(described);
        }
        GroupOp::List { reply } => {
            let _ = reply.send(list(st));
        }
        GroupOp::DeleteOffsets {
            group,
            partitions,
            reply,
        } => delete_offsets(me, st, group, partitions, reply),
        GroupOp::Delete { groups, reply } => delete_groups(me, st, groups, reply),
    }
}

/// JoinGroup: answered once the group's rebalance lets the member in (a dropped answer is
/// COORDINATOR_NOT_AVAILABLE to the caller).
fn join(
    me: &ActorRef<CoordinatorMsg>,
    st: &mut CoordinatorState,
    now: Instant,
    args: JoinArgs,
    reply: oneshot::Sender<Joined>,
) {
    if let Err(code) = st.store.ready(me, &args.group) {
        let _ = reply.send(Joined {
            error: Some(code),
            member_id: args.member_id,
            ..Default::default()
        });
        return;
    }
    let (tx, rx) = oneshot::channel();
    st.groups.join(now, args, tx);
    tokio::spawn(async move {
        if let Ok(joined) = rx.await {
            let _ = reply.send(joined);
        }
    });
}

/// SyncGroup: answered with the member's assignment once the leader's is in.
fn sync(
    me: &ActorRef<CoordinatorMsg>,
    st: &mut CoordinatorState,
    now: Instant,
    a: SyncArgs,
    reply: oneshot::Sender<Result<Bytes, ResponseError>>,
) {
    if let Err(code) = st.store.ready(me, &a.group) {
        let _ = reply.send(Err(code));
        return;
    }
    let (tx, rx) = oneshot::channel();
    let instance = a.instance_id.as_deref();
    st.groups
        .sync(now, &a.group, a.generation, &a.member_id, instance, a.assignments, tx);
    tokio::spawn(async move {
        if let Ok(synced) = rx.await {
            let _ = reply.send(synced);
        }
    });
}

/// Every group with members or committed offsets, sorted.
fn list(st: &CoordinatorState) -> Vec<GroupListing> {
    let mut listed: Vec<GroupListing> = st
        .groups
        .names()
        .into_iter()
        .filter_map(|g| st.groups.describe(&g))
        .map(|d| (d.group, d.protocol_type, d.state))
        .collect();
    for g in st.store.groups_with_offsets() {
        if st.groups.state(g).is_none() {
            listed.push((g.clone(), String::new(), "Empty".into()));
        }
    }
    listed.sort();
    listed
}

/// DeleteGroups: each empty group's offsets tombstoned; answered once every write is done.
fn delete_groups(
    me: &ActorRef<CoordinatorMsg>,
    st: &mut CoordinatorState,
    groups: Vec<String>,
    reply: oneshot::Sender<EachResult>,
) {
    let pending: Vec<_> = groups.iter().map(|g| delete_group(me, st, g)).collect();
    tokio::spawn(async move {
        let mut results = Vec::new();
        for p in pending {
            results.push(match p {
                Ok(done) => done.await.unwrap_or(Err(ResponseError::NotCoordinator)),
                Err(code) => Err(code),
            });
        }
        let _ = reply.send(Ok(results));
    });
}

fn describe(me: &ActorRef<CoordinatorMsg>, st: &mut CoordinatorState, g: String) -> GroupDescription {
    if let Err(code) = st.store.ready(me, &g) {
        return GroupDescription {
            group: g,
            error: Some(code),
            ..Default::default()
        };
    }
    st.groups.describe(&g).unwrap_or_else(|| {
        // Known only by its offsets (or not at all): Empty, or Dead.
        let state = if st.store.has_offsets(&g) { "Empty" } else { "Dead" };
        GroupDescription {
            group: g,
            state: state.into(),
            ..Default::default()
        }
    })
}

/// Deletes an empty group: tombstones for its offsets (and its stored generation).
fn delete_group(
    me: &ActorRef<CoordinatorMsg>,
    st: &mut CoordinatorState,
    g: &str,
) -> Result<oneshot::Receiver<Result<(), ResponseError>>, ResponseError> {
    st.store.ready(me, g)?;
    if st.groups.describe(g).is_some_and(|d| !d.members.is_empty()) {
        return Err(ResponseError::NonEmptyGroup);
    }
    let mut tombstones: Vec<OffsetsRecord> = st
        .store
        .committed(g, None)
        .into_iter()
        .map(|(k, _)| OffsetsRecord::Offset(k, None))
        .collect();
    if st.store.stored_group(g).is_some() {
        tombstones.push(OffsetsRecord::Group(g.to_string(), None));
    }
    if tombstones.is_empty() {
        return Err(ResponseError::GroupIdNotFound);
    }
    st.store.write(me, g, tombstones)
}

/// OffsetDelete: each partition's outcome (topics the group's members subscribe to are refused).
pub fn offset_delete_outcomes(
    subscribed: &BTreeSet<String>,
    partitions: &[(String, i32)],
) -> Vec<Result<(), ResponseError>> {
    partitions
        .iter()
        .map(|(t, _)| {
            if subscribed.contains(t) {
                Err(ResponseError::GroupSubscribedToTopic)
            } else {
                Ok(())
            }
        })
        .collect()
}

fn delete_offsets(
    me: &ActorRef<CoordinatorMsg>,
    st: &mut CoordinatorState,
    group: String,
    partitions: Vec<(String, i32)>,
    reply: oneshot::Sender<EachResult>,
) {
    if let Err(code) = st.store.ready(me, &group) {
        let _ = reply.send(Err(code));
        return;
    }
    if st.groups.state(&group).is_none() && !st.store.has_offsets(&group) {
        let _ = reply.send(Err(ResponseError::GroupIdNotFound));
        return;
    }
    let outcomes = offset_delete_outcomes(&st.groups.subscribed_topics(&group), &partitions);
    let tombstones: Vec<OffsetsRecord> = partitions
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_ok())
        .map(|((t, p), _)| {
            let key = OffsetKey {
                group: group.clone(),
                topic: t.clone(),
                partition: *p,
            };
            OffsetsRecord::Offset(key, None)
        })
        .collect();
    let write = (!tombstones.is_empty()).then(|| st.store.write(me, &group, tombstones));
    tokio::spawn(async move {
        let written = match write {
            None => Ok(()),
            Some(Ok(done)) => done.await.unwrap_or(Err(ResponseError::NotCoordinator)),
            Some(Err(code)) => Err(code),
        };
        let _ = reply.send(written.map(|_| outcomes));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_delete_refuses_subscribed_topics() {
        let subscribed: BTreeSet<String> = ["orders".to_string()].into();
        let asked = vec![("orders".to_string(), 0), ("audit".to_string(), 1)];
        assert_eq!(
            offset_delete_outcomes(&subscribed, &asked),
            vec![Err(ResponseError::GroupSubscribedToTopic), Ok(())]
        );
    }
}
