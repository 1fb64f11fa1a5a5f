//! The produce path of a partition actor: leadership and free-space checks, idempotent
//! sequences, the Raft proposal, and the reply once the batch is committed.
//!
//! A new leader holds produces until an entry of its own term is applied: its log may end in
//! entries of earlier terms that are not committed yet, and a retry of one of those batches must
//! not be acknowledged as a duplicate before it is. Held produces go ahead in arrival order (the
//! sequence checks depend on it).

use super::actor::{GroupStopped, PartitionMsg, PartitionState, ProduceReply};
use crate::cluster::liveness::Liveness;
use crate::protocol::batch::BatchHeader;
use crate::storage::log::entry::ProducerInfo;
use crate::storage::log::segment::now_ms;
use crate::storage::producer_state::SeqCheck;
use crate::types::{Command, NodeId};
use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use openraft::error::ClientWriteError;
use ractor::{ActorProcessingErr, ActorRef};
use std::future::Future;
use tokio::sync::watch;

/// A produce held until the new leader's first entry is applied.
pub(super) struct HeldProduce {
    batch: Bytes,
    header: BatchHeader,
    reply: ProduceReply,
}

impl PartitionState {
    /// Handles one produce: refused, held, answered as a duplicate, or proposed.
    pub(super) async fn produce(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        batch: Bytes,
        header: BatchHeader,
        reply: ProduceReply,
    ) -> Result<(), ActorProcessingErr> {
        let (leader, term, applied_term) = self.leadership_now();
        // While leadership is being handed to the preferred replica, clients go there.
        let handing_off = self.shared.handing_off.load(std::sync::atomic::Ordering::Acquire);
        if leader != Some(self.env.node_id) || handing_off {
            let _ = reply.send(Err(ResponseError::NotLeaderOrFollower));
            return Ok(());
        }
        if self.env.disk.is_low() {
            // Nothing is proposed that this node may fail to write; leadership moves to a
            // replica with room, where clients retry after a metadata refresh.
            self.hand_off(true);
            let _ = reply.send(Err(ResponseError::KafkaStorageError));
            return Ok(());
        }
        if applied_term != Some(term) || !self.held.is_empty() {
            self.hold(myself, term, HeldProduce { batch, header, reply });
            return Ok(());
        }
        self.take_over_producers(term);
        let producer = (header.producer_id >= 0).then_some(ProducerInfo {
            id: header.producer_id,
            epoch: header.producer_epoch,
            first_seq: header.base_sequence,
            count: header.record_count,
        });
        let reply = match producer {
            Some(p) => match self.check_sequence(p, reply) {
                Some(reply) => reply,
                None => return Ok(()),
            },
            None => reply,
        };
        self.propose(myself, batch, header.record_count, producer, reply).await
    }

    /// (acting leader, current term, term of the last applied entry).
    fn leadership_now(&self) -> (Option<NodeId>, u64, Option<u64>) {
        let m = self.raft.metrics();
        let m = m.borrow();
        let liveness = self.env.peers.as_ref().map(|p| &p.liveness);
        let leader = crate::cluster::acting_leader(&m, liveness, self.shared.confirmed_stalls());
        (leader, m.current_term, m.last_applied.map(|l| l.leader_id.term))
    }

    /// Newly leader in `term`, everything before it committed: the log knows the sequences of
    /// every batch it holds, including those replicated while this node followed.
    fn take_over_producers(&mut self, term: u64) {
        if self.led_term == Some(term) {
            return;
        }
        let (producers, exact) = self.log.producer_states();
        if !exact {
            tracing::warn!(partition = ?self.tp, "producer state after a truncation is approximate");
        }
        self.producers = producers;
        self.led_term = Some(term);
        self.predicted_end = 0;
    }

    /// Checks an idempotent batch's sequence: refused, answered as a duplicate, or waiting for
    /// the same batch in flight (all answered here: `None`), or to append (the reply back).
    fn check_sequence(&mut self, p: ProducerInfo, reply: ProduceReply) -> Option<ProduceReply> {
        match self.producers.check(p.id, p.epoch, p.first_seq, p.count) {
            SeqCheck::Reject(code) => {
                tracing::debug!(target: "raftstream::idempotence", partition = ?self.tp, producer = p.id,
                    epoch = p.epoch, first_seq = p.first_seq, count = p.count, error = ?code, "sequence refused");
                let _ = reply.send(Err(code));
            }
            SeqCheck::Gap => {
                tracing::debug!(target: "raftstream::idempotence", partition = ?self.tp, producer = p.id,
                    epoch = p.epoch, first_seq = p.first_seq, "sequence gap: refused as retriable");
                // Retriable and "not persisted" for every client (NOT_ENOUGH_REPLICAS would
                // skip the metadata refresh but tell operators something untrue).
                let _ = reply.send(Err(ResponseError::NotLeaderOrFollower));
            }
            SeqCheck::Duplicate(offset) => {
                tracing::debug!(target: "raftstream::idempotence", partition = ?self.tp, producer = p.id,
                    epoch = p.epoch, first_seq = p.first_seq, offset, "duplicate answered");
                let _ = reply.send(Ok(offset));
            }
            SeqCheck::DuplicateInFlight => self.waiters.entry((p.id, p.first_seq)).or_default().push(reply),
            SeqCheck::Append => {
                self.producers
                    .record(p.id, p.epoch, p.first_seq, p.count, None, now_ms());
                return Some(reply);
            }
        }
        None
    }

    /// Proposes the batch to the Raft group; a task answers once it is committed (or the
    /// leadership lapses first).
    async fn propose(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        batch: Bytes,
        record_count: i32,
        producer: Option<ProducerInfo>,
        reply: ProduceReply,
    ) -> Result<(), ActorProcessingErr> {
        // Subscribed before proposing: a lapse signalled from here on is seen by the wait.
        let lease = self.env.peers.as_ref().map(|p| Lease {
            raft: self.raft.clone(),
            liveness: p.liveness.clone(),
            changes: p.liveness.changes(),
            node_id: self.env.node_id,
            shared: self.shared.clone(),
            disk: self.env.disk.clone(),
            disk_changes: self.env.disk.subscribe(),
        });
        let rx = match self.raft.client_write_ff(Command::Batch(batch)).await {
            Ok(rx) => rx,
            Err(fatal) => {
                let _ = reply.send(Err(ResponseError::NotLeaderOrFollower));
                return Err(GroupStopped::failure(&self.tp, fatal));
            }
        };
        let reply = crate::actors::broken_build::ack_early(reply, &mut self.predicted_end, &self.log, record_count);
        tokio::spawn(await_commit(rx, reply, lease, producer, myself.clone()));
        Ok(())
    }

    /// Holds a produce until this leader's first entry of `term` is applied, watching for it
    /// once per term (at most an election timeout).
    fn hold(&mut self, myself: &ActorRef<PartitionMsg>, term: u64, produce: HeldProduce) {
        if self.held.len() >= self.env.max_pending_produces {
            let _ = produce.reply.send(Err(ResponseError::NotLeaderOrFollower));
            return;
        }
        self.held.push_back(produce);
        if self.held_term == Some(term) {
            return;
        }
        self.held_term = Some(term);
        let (raft, me, wait) = (self.raft.clone(), myself.clone(), self.env.leader_ready_wait());
        tokio::spawn(async move {
            let applied = raft
                .wait(Some(wait))
                .metrics(
                    |m| m.current_term != term || m.last_applied.is_some_and(|l| l.leader_id.term == term),
                    "leader's first entry applied",
                )
                .await;
            let ready = applied.is_ok_and(|m| m.current_term == term);
            let _ = me.send_message(PartitionMsg::LeaderReady { term, ready });
        });
    }

    /// Lets the held produces go ahead in order (each is checked again), or refuses them all.
    pub(super) async fn leader_ready(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        term: u64,
        ready: bool,
    ) -> Result<(), ActorProcessingErr> {
        if self.held_term != Some(term) {
            return Ok(());
        }
        self.held_term = None;
        let held = std::mem::take(&mut self.held);
        if !ready {
            for h in held {
                let _ = h.reply.send(Err(ResponseError::NotLeaderOrFollower));
            }
            return Ok(());
        }
        for h in held {
            self.produce(myself, h.batch, h.header, h.reply).await?;
        }
        Ok(())
    }
}

/// A proposal's outcome as openraft reports it.
type WriteResult = Result<
    openraft::raft::ClientWriteResponse<crate::types::TypeConfig>,
    ClientWriteError<NodeId, openraft::BasicNode>,
>;

/// What a commit wait needs to see this node's lease lapse.
struct Lease {
    raft: crate::types::Raft,
    liveness: Liveness,
    /// Subscribed before the entry was proposed.
    changes: watch::Receiver<u64>,
    node_id: NodeId,
    shared: std::sync::Arc<crate::storage::partition_sm::PartitionShared>,
    /// The data dir's guard, and its changes subscribed before the entry was proposed.
    disk: std::sync::Arc<crate::storage::disk_guard::DiskGuard>,
    disk_changes: watch::Receiver<bool>,
}

/// Waits for a proposed batch's outcome and answers it: directly, or through the actor when
/// the batch carries producer sequences. When this node's lease lapses first (cut off, or
/// stalled) the client is told NOT_LEADER_OR_FOLLOWER at once, so it moves to the new leader;
/// the entry may still commit, so its sequence stays in flight until the outcome is known (a
/// retry here waits for it instead of appending it twice). A producer without idempotence may
/// then write the batch twice, as after any indeterminate error.
async fn await_commit<E>(
    mut rx: impl Future<Output = Result<WriteResult, E>> + Unpin,
    reply: ProduceReply,
    lease: Option<Lease>,
    producer: Option<ProducerInfo>,
    me: ActorRef<PartitionMsg>,
) {
    let mut reply = Some(reply);
    let outcome = match lease {
        None => rx.await,
        Some(lease) => tokio::select! {
            outcome = &mut rx => outcome,
            () = lapsed(lease) => {
                if let Some(r) = reply.take() {
                    let _ = r.send(Err(ResponseError::NotLeaderOrFollower));
                }
                rx.await
            }
        },
    };
    let result = match outcome {
        Ok(Ok(resp)) => Ok(resp.data.base_offset),
        Ok(Err(ClientWriteError::ForwardToLeader(_))) => Err(ResponseError::NotLeaderOrFollower),
        Ok(Err(_)) => Err(ResponseError::UnknownServerError),
        // The group stopped (crash or shutdown) before committing: the client must retry;
        // nothing was promised.
        Err(_) => Err(ResponseError::NotLeaderOrFollower),
    };
    // A reply already sent leaves a closed stand-in (its send is ignored).
    let reply = reply.unwrap_or_else(|| tokio::sync::oneshot::channel().0);
    match producer {
        // If the actor is gone the reply is dropped: the client sees a retriable error, never
        // a false success.
        Some(producer) => drop(me.send_message(PartitionMsg::Appended {
            producer,
            result,
            reply,
        })),
        None => drop(reply.send(result)),
    }
}

/// Resolves once this node stops acting as the group's leader because its lease lapsed (the
/// pinger signals every change; the group's own step-down is seen by the commit wait), or its
/// fsyncs stalled: a hung fsync held the producers' requests until their timeout (an idempotent
/// librdkafka producer sends nothing more meanwhile), while the leadership moves. (A full disk
/// whose fsyncs still answer commits what it took: its waits run their course.)
async fn lapsed(mut lease: Lease) {
    loop {
        lease.disk_changes.borrow_and_update();
        if lease.disk.is_stalled() {
            return;
        }
        let m = lease.raft.metrics();
        let confirmed = lease.shared.confirmed_stalls();
        if crate::cluster::acting_leader(&m.borrow(), Some(&lease.liveness), confirmed) != Some(lease.node_id) {
            return;
        }
        tokio::select! {
            changed = lease.changes.changed() => if changed.is_err() {
                return std::future::pending().await;
            },
            // A closed channel (its sender dropped at shutdown) leaves nothing to wait for.
            changed = lease.disk_changes.changed() => if changed.is_err() {
                return std::future::pending().await;
            },
        }
    }
}
