//! Kafka's consumer-group state machine (Empty → PreparingRebalance → CompletingRebalance →
//! Stable), kept by the group coordinator actor. Pure: no I/O; replies go out through the
//! oneshot senders stored with pending joins and syncs.

use crate::handlers::context::{CommitFrom, GroupDescription, JoinArgs, Joined, MemberDescription};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

pub(super) struct Member {
    pub(super) client_id: String,
    pub(super) instance_id: Option<String>,
    pub(super) protocols: Vec<(String, Bytes)>,
    pub(super) session_timeout: Duration,
    pub(super) rebalance_timeout: Duration,
    pub(super) last_seen: Instant,
    pub(super) assignment: Bytes,
}

impl Member {
    /// The member's metadata for `protocol` (empty if it does not offer it).
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(p, _)| p == protocol)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    }
}

pub(super) struct Group {
    pub(super) state: State,
    pub(super) generation: i32,
    pub(super) protocol_type: String,
    pub(super) protocol: String,
    pub(super) leader: String,
    pub(super) members: BTreeMap<String, Member>,
    pub(super) pending_joins: HashMap<String, oneshot::Sender<Joined>>,
    pub(super) pending_syncs: HashMap<String, oneshot::Sender<Result<Bytes, ResponseError>>>,
    /// Static members: group.instance.id → current member id.
    pub(super) static_members: HashMap<String, String>,
    /// When the current rebalance must end (members that did not rejoin are dropped).
    pub(super) rebalance_deadline: Instant,
    /// A new group waits this long for more members before its first generation.
    pub(super) initial_delay_until: Instant,
    /// The group's stored form (its stable generation, or having no members) changed.
    pub(super) dirty: bool,
}

/// Every group this coordinator serves.
pub struct Groups {
    pub(super) groups: HashMap<String, Group>,
    pub(super) issued_ids: HashSet<String>,
    pub(super) next_id: u64,
    pub(super) initial_delay: Duration,
}

impl Groups {
    /// Groups whose first rebalance waits `initial_delay` for members to arrive.
    pub fn new(initial_delay: Duration) -> Groups {
        Groups {
            groups: HashMap::new(),
            issued_ids: HashSet::new(),
            next_id: 0,
            initial_delay,
        }
    }

    /// A group with its members, if it exists.
    pub fn describe(&self, group: &str) -> Option<GroupDescription> {
        let g = self.groups.get(group)?;
        let state = match g.state {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        };
        Some(GroupDescription {
            group: group.to_string(),
            error: None,
            state: state.into(),
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            members: g
                .members
                .iter()
                .map(|(id, m)| MemberDescription {
                    member_id: id.clone(),
                    client_id: m.client_id.clone(),
                    metadata: m.metadata_for(&g.protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    /// Topics a consumer group's members subscribe to (from their consumer-protocol metadata).
    pub fn subscribed_topics(&self, group: &str) -> std::collections::BTreeSet<String> {
        use kafka_protocol::protocol::Decodable;
        let mut topics = std::collections::BTreeSet::new();
        let Some(g) = self.groups.get(group) else { return topics };
        if g.protocol_type != "consumer" {
            return topics;
        }
        for m in g.members.values() {
            for (_, metadata) in &m.protocols {
                let mut buf = metadata.clone();
                if buf.len() < 2 {
                    continue;
                }
                let version = i16::from_be_bytes([buf[0], buf[1]]).clamp(0, 3);
                bytes::Buf::advance(&mut buf, 2);
                if let Ok(sub) = kafka_protocol::messages::ConsumerProtocolSubscription::decode(&mut buf, version) {
                    topics.extend(sub.topics.iter().map(|t| t.to_string()));
                }
            }
        }
        topics
    }

    /// Names of the groups that have members.
    pub fn names(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// The state of a group, if it exists.
    pub fn state(&self, group: &str) -> Option<State> {
        self.groups.get(group).map(|g| g.state)
    }

    /// Handles a JoinGroup; the reply is sent now or when the rebalance completes.
    pub fn join(&mut self, now: Instant, a: JoinArgs, reply: oneshot::Sender<Joined>) {
        let member_id = match self.member_id_for(&a) {
            Ok(id) => id,
            Err(id) => return refuse(reply, ResponseError::MemberIdRequired, id),
        };
        let g = group_for_join(&mut self.groups, &a, now, self.initial_delay);
        let reply = match a.group_instance_id.clone() {
            Some(instance) => match rejoin_static(g, now, &a, instance, &member_id, reply) {
                Some(reply) => reply,
                None => return,
            },
            None => reply,
        };
        let known = g.members.contains_key(&member_id)
            || self.issued_ids.remove(&member_id)
            || !a.require_known_member_id
            || a.group_instance_id.is_some();
        if !known {
            return refuse(reply, ResponseError::UnknownMemberId, member_id);
        }
        if !protocols_compatible(g, &a) {
            return refuse(reply, ResponseError::InconsistentGroupProtocol, member_id);
        }
        add_member(g, now, a, member_id, reply);
    }

    /// The joining member's id: its own, or a new one. A new dynamic member that must learn
    /// its id first (KIP-394) gets `Err` with the id it is to join with; static members skip
    /// that round trip (KIP-345).
    fn member_id_for(&mut self, a: &JoinArgs) -> Result<String, String> {
        if !a.member_id.is_empty() {
            return Ok(a.member_id.clone());
        }
        self.next_id += 1;
        let member_id = format!("{}-{}-{}", a.client_id, self.next_id, uuid::Uuid::new_v4().simple());
        if a.require_known_member_id && a.group_instance_id.is_none() {
            self.issued_ids.insert(member_id.clone());
            return Err(member_id);
        }
        Ok(member_id)
    }

    /// Handles a SyncGroup; the reply is sent now or when the leader's assignment arrives.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        now: Instant,
        group: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        reply: oneshot::Sender<Result<Bytes, ResponseError>>,
    ) {
        if let Err(code) = self.check_fenced(group, member_id, instance_id) {
            let _ = reply.send(Err(code));
            return;
        }
        let Some(g) = self.groups.get_mut(group) else {
            let _ = reply.send(Err(ResponseError::UnknownMemberId));
            return;
        };
        let Some(m) = g.members.get_mut(member_id) else {
            let _ = reply.send(Err(ResponseError::UnknownMemberId));
            return;
        };
        m.last_seen = now;
        if generation != g.generation {
            let _ = reply.send(Err(ResponseError::IllegalGeneration));
            return;
        }
        match g.state {
            State::PreparingRebalance | State::Empty => {
                let _ = reply.send(Err(ResponseError::RebalanceInProgress));
            }
            State::Stable => {
                let _ = reply.send(Ok(m.assignment.clone()));
            }
            State::CompletingRebalance => {
                g.pending_syncs.insert(member_id.to_string(), reply);
                if member_id == g.leader {
                    let given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, member) in g.members.iter_mut() {
                        member.assignment = given.get(id).cloned().unwrap_or_default();
                    }
                    g.state = State::Stable;
                    g.dirty = true;
                    for (id, tx) in g.pending_syncs.drain() {
                        let assignment = g.members.get(&id).map(|m| m.assignment.clone()).unwrap_or_default();
                        let _ = tx.send(Ok(assignment));
                    }
                }
            }
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(
        &mut self,
        now: Instant,
        group: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        self.check_fenced(group, member_id, instance_id)?;
        let g = self.groups.get_mut(group).ok_or(ResponseError::UnknownMemberId)?;
        let m = g.members.get_mut(member_id).ok_or(ResponseError::UnknownMemberId)?;
        m.last_seen = now;
        if generation != g.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        match g.state {
            State::PreparingRebalance => Err(ResponseError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// FENCED_INSTANCE_ID when `instance_id` now belongs to another member id.
    fn check_fenced(&self, group: &str, member_id: &str, instance_id: Option<&str>) -> Result<(), ResponseError> {
        let current = instance_id.and_then(|i| self.groups.get(group)?.static_members.get(i));
        match current {
            Some(cur) if cur != member_id => Err(ResponseError::FencedInstanceId),
            _ => Ok(()),
        }
    }

    /// Handles LeaveGroup for `members` (member id, group.instance.id); returns each member's
    /// outcome. A static member may leave by instance id alone; a member id that does not own
    /// the instance id is fenced.
    pub fn leave(
        &mut self,
        now: Instant,
        group: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<Result<(), ResponseError>> {
        let Some(g) = self.groups.get_mut(group) else {
            return members.iter().map(|_| Err(ResponseError::UnknownMemberId)).collect();
        };
        let out: Vec<_> = members
            .iter()
            .map(|(id, instance)| {
                let id = match instance {
                    Some(instance) => match g.static_members.get(instance) {
                        None => return Err(ResponseError::UnknownMemberId),
                        Some(owner) if !id.is_empty() && owner != id => return Err(ResponseError::FencedInstanceId),
                        Some(owner) => owner.clone(),
                    },
                    None => id.clone(),
                };
                remove_member(g, &id).ok_or(ResponseError::UnknownMemberId)
            })
            .collect();
        if out.iter().any(|r| r.is_ok()) {
            after_membership_change(g, now);
        }
        out
    }

    /// Checks an OffsetCommit as Kafka's classic group coordinator does, and counts a
    /// member's accepted commit as a heartbeat. Commits are taken in Stable and
    /// PreparingRebalance (a member told to rejoin commits what it processed first: refusing
    /// it makes the next owner re-read those records) and refused in CompletingRebalance (the
    /// member already holds the new generation but not yet its assignment). A commit without
    /// member id and generation (a consumer assigning its own partitions, or an admin tool)
    /// is taken only while the group has no members.
    pub fn check_commit(&mut self, now: Instant, group: &str, from: &CommitFrom) -> Result<(), ResponseError> {
        let Some(g) = self.groups.get_mut(group) else {
            return match from.generation < 0 {
                true => Ok(()),
                false => Err(ResponseError::IllegalGeneration),
            };
        };
        if from.generation < 0 && g.members.is_empty() {
            return Ok(());
        }
        if from.generation >= 0 || !from.member_id.is_empty() || from.instance_id.is_some() {
            let current = from.instance_id.as_ref().and_then(|i| g.static_members.get(i));
            if current.is_some_and(|owner| *owner != from.member_id) {
                return Err(ResponseError::FencedInstanceId);
            }
            let m = g
                .members
                .get_mut(&from.member_id)
                .ok_or(ResponseError::UnknownMemberId)?;
            if from.generation != g.generation {
                return Err(ResponseError::IllegalGeneration);
            }
            if g.state == State::CompletingRebalance {
                return Err(ResponseError::RebalanceInProgress);
            }
            m.last_seen = now;
            return Ok(());
        }
        // A standalone commit to a group with members would race their commits.
        Err(ResponseError::UnknownMemberId)
    }

    /// Expires silent members and finishes rebalances whose time is up.
    pub fn tick(&mut self, now: Instant) {
        for g in self.groups.values_mut() {
            let expired: Vec<String> = g
                .members
                .iter()
                .filter(|(id, m)| {
                    !g.pending_joins.contains_key(*id) && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            for id in &expired {
                remove_member(g, id);
            }
            if !expired.is_empty() {
                after_membership_change(g, now);
            }
            if g.state == State::PreparingRebalance {
                if now >= g.rebalance_deadline {
                    // Members that did not rejoin in time are out.
                    let late: Vec<String> = g
                        .members
                        .keys()
                        .filter(|id| !g.pending_joins.contains_key(*id))
                        .cloned()
                        .collect();
                    for id in late {
                        g.members.remove(&id);
                    }
                }
                try_complete_join(g, now);
            }
        }
        // Emptied groups stay until their change has been taken for storing.
        self.groups
            .retain(|_, g| g.dirty || !(g.state == State::Empty && g.members.is_empty()));
    }
}

/// (member id, metadata for the chosen protocol) of every member: what the leader is sent.
fn member_metadata(g: &Group) -> Vec<(String, Bytes)> {
    g.members
        .iter()
        .map(|(id, m)| (id.clone(), m.metadata_for(&g.protocol)))
        .collect()
}

fn remove_member(g: &mut Group, id: &str) -> Option<()> {
    let m = g.members.remove(id)?;
    if let Some(instance) = m.instance_id {
        if g.static_members.get(&instance).is_some_and(|cur| cur == id) {
            g.static_members.remove(&instance);
        }
    }
    if let Some(tx) = g.pending_joins.remove(id) {
        let _ = tx.send(Joined {
            error: Some(ResponseError::UnknownMemberId),
            ..Default::default()
        });
    }
    if let Some(tx) = g.pending_syncs.remove(id) {
        let _ = tx.send(Err(ResponseError::UnknownMemberId));
    }
    Some(())
}

fn after_membership_change(g: &mut Group, now: Instant) {
    if g.members.is_empty() {
        g.state = State::Empty;
        g.leader.clear();
        g.dirty = true;
        return;
    }
    if g.state != State::PreparingRebalance {
        start_rebalance(g, now);
    }
    try_complete_join(g, now);
}

fn start_rebalance(g: &mut Group, now: Instant) {
    for (_, tx) in g.pending_syncs.drain() {
        let _ = tx.send(Err(ResponseError::RebalanceInProgress));
    }
    let longest = g
        .members
        .values()
        .map(|m| m.rebalance_timeout)
        .max()
        .unwrap_or_default();
    g.state = State::PreparingRebalance;
    g.rebalance_deadline = now + longest;
}

/// Ends the join phase once every member has rejoined (and a new group's delay is over).
fn try_complete_join(g: &mut Group, now: Instant) {
    if g.state != State::PreparingRebalance || g.members.is_empty() {
        return;
    }
    let all_in = g.members.keys().all(|id| g.pending_joins.contains_key(id));
    if !all_in || (g.generation == 0 && now < g.initial_delay_until && now < g.rebalance_deadline) {
        return;
    }
    // Each member votes for its most preferred protocol that every member supports.
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    for m in g.members.values() {
        if let Some((p, _)) = m
            .protocols
            .iter()
            .find(|(p, _)| g.members.values().all(|o| o.protocols.iter().any(|(q, _)| q == p)))
        {
            *votes.entry(p.clone()).or_default() += 1;
        }
    }
    let Some((protocol, _)) = votes.into_iter().max_by_key(|(_, v)| *v) else {
        return;
    };
    g.protocol = protocol;
    g.generation += 1;
    if !g.members.contains_key(&g.leader) {
        g.leader = g.members.keys().next().cloned().unwrap_or_default();
    }
    g.state = State::CompletingRebalance;
    let metadata = member_metadata(g);
    for (id, tx) in g.pending_joins.drain() {
        let _ = tx.send(Joined {
            error: None,
            generation: g.generation,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            leader: g.leader.clone(),
            members: if id == g.leader { metadata.clone() } else { Vec::new() },
            member_id: id,
        });
    }
    if let Some(m) = g.members.get_mut(&g.leader) {
        m.last_seen = now;
    }
}

mod join;
#[cfg(test)]
mod tests;

use join::{add_member, group_for_join, protocols_compatible, refuse, rejoin_static};
