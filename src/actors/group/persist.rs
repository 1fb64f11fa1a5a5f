//! What of a group is stored in the offsets topic (its stable generation), how a
//! coordinator that takes the group over brings it back, and how one that gives it up forgets it.

use super::state::{Group, Groups, Member, State};
use crate::handlers::context::Joined;
use crate::storage::offsets::{GroupSnapshot, StoredMember};
use kafka_protocol::error::ResponseError;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

impl Groups {
    /// Groups whose stored form changed since the last call, each with what to store: its
    /// stable generation, or `None` once it has no members.
    pub fn take_changed(&mut self) -> Vec<(String, Option<GroupSnapshot>)> {
        let mut out = Vec::new();
        for (name, g) in self.groups.iter_mut().filter(|(_, g)| g.dirty) {
            g.dirty = false;
            let snapshot = (g.state == State::Stable && !g.members.is_empty()).then(|| GroupSnapshot {
                protocol_type: g.protocol_type.clone(),
                protocol: g.protocol.clone(),
                generation: g.generation,
                leader: g.leader.clone(),
                members: g
                    .members
                    .iter()
                    .map(|(id, m)| StoredMember {
                        member_id: id.clone(),
                        instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        session_timeout_ms: m.session_timeout.as_millis() as u64,
                        rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                        protocols: m.protocols.clone(),
                        assignment: m.assignment.clone(),
                    })
                    .collect(),
            });
            out.push((name.clone(), snapshot));
        }
        self.groups
            .retain(|_, g| g.dirty || !(g.state == State::Empty && g.members.is_empty()));
        out
    }

    /// Brings back a stored stable generation (a coordinator taking over the group): members
    /// keep their ids and assignments and get a fresh session timeout to heartbeat in. A group
    /// this coordinator already serves is left alone.
    pub fn restore(&mut self, now: Instant, group: &str, s: GroupSnapshot) {
        if self.groups.contains_key(group) || s.members.is_empty() {
            return;
        }
        let members: BTreeMap<String, Member> = s
            .members
            .into_iter()
            .map(|m| {
                let member = Member {
                    client_id: m.client_id,
                    instance_id: m.instance_id,
                    protocols: m.protocols,
                    session_timeout: Duration::from_millis(m.session_timeout_ms),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                    last_seen: now,
                    assignment: m.assignment,
                };
                (m.member_id, member)
            })
            .collect();
        let static_members = members
            .iter()
            .filter_map(|(id, m)| Some((m.instance_id.clone()?, id.clone())))
            .collect();
        self.groups.insert(
            group.to_string(),
            Group {
                state: State::Stable,
                generation: s.generation,
                protocol_type: s.protocol_type,
                protocol: s.protocol,
                leader: s.leader,
                members,
                pending_joins: HashMap::new(),
                pending_syncs: HashMap::new(),
                static_members,
                rebalance_deadline: now,
                initial_delay_until: now,
                dirty: false,
            },
        );
    }

    /// Forgets the groups `gone` selects (their offsets partition is no longer served here):
    /// members waiting in a join or sync are answered NOT_COORDINATOR.
    pub fn forget(&mut self, gone: impl Fn(&str) -> bool) {
        self.groups.retain(|name, g| {
            if !gone(name) {
                return true;
            }
            for (member_id, tx) in g.pending_joins.drain() {
                let _ = tx.send(Joined {
                    error: Some(ResponseError::NotCoordinator),
                    member_id,
                    ..Default::default()
                });
            }
            for (_, tx) in g.pending_syncs.drain() {
                let _ = tx.send(Err(ResponseError::NotCoordinator));
            }
            false
        });
    }
}
