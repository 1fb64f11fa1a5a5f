//! What the partition actor does for its smaller messages: record an appended batch's
//! producer sequence, report the in-sync replicas, start a reassignment, move the log start.

use crate::actors::partition::actor::{GroupStopped, PartitionMsg, PartitionState, ProduceReply};
use crate::actors::partition::reassign::Reassigner;
use crate::actors::partition::registry::in_sync;
use crate::storage::log::entry::ProducerInfo;
use crate::storage::log::segment::now_ms;
use crate::types::Command;
use kafka_protocol::error::ResponseError;
use openraft::error::ClientWriteError;
use ractor::{ActorProcessingErr, ActorRef};

impl PartitionState {
    /// A batch of producer `p` was appended (or refused): its sequence is recorded (or
    /// forgotten), and the produce and its retries waiting on it are answered.
    pub(super) fn appended(&mut self, p: ProducerInfo, result: Result<i64, ResponseError>, reply: ProduceReply) {
        match result {
            Ok(base) => self
                .producers
                .record(p.id, p.epoch, p.first_seq, p.count, Some(base), now_ms()),
            Err(code) => {
                tracing::debug!(target: "raftstream::idempotence", partition = ?self.tp, producer = p.id,
                        epoch = p.epoch, first_seq = p.first_seq, error = ?code, "append failed; sequence forgotten");
                self.producers.forget_from(p.id, p.first_seq)
            }
        }
        let _ = reply.send(result);
        for w in self.waiters.remove(&(p.id, p.first_seq)).unwrap_or_default() {
            let _ = w.send(result);
        }
        let now = now_ms();
        if now - self.last_expiry_ms > 60_000 {
            self.producers.expire(now - self.env.producer_expiration_ms);
            self.last_expiry_ms = now;
        }
    }

    /// Reports the in-sync replicas to the controller when they changed (leaders only).
    pub(super) fn report_isr(&mut self) {
        let lag = self.env.replica_lag_time_max;
        let isr = in_sync(
            &self.raft,
            &self.shared,
            self.env.node_id,
            self.env.peers.as_deref(),
            lag,
        );
        if let (Some(isr), Some(reports)) = (isr, &self.env.leader_reports) {
            let epoch = self.raft.metrics().borrow().current_term.min(i32::MAX as u64) as i32;
            let now = Some((epoch, isr));
            if now != self.reported_isr {
                let (epoch, isr) = now.clone().expect("just set");
                reports.isr(&self.tp.topic, self.tp.partition, epoch, isr);
                self.reported_isr = now;
            }
        }
    }

    /// Starts driving this partition's pending reassignment, if this node leads it.
    pub(super) fn reassign(&mut self) {
        if let (Some(peers), Some(reports)) = (&self.env.peers, &self.env.leader_reports) {
            Reassigner {
                tp: self.tp.clone(),
                node_id: self.env.node_id,
                raft: self.raft.clone(),
                peers: peers.clone(),
                meta: self.env.meta.clone(),
                reports: reports.clone(),
                catch_up_timeout: self.env.reassignment_catch_up_timeout,
                running: self.reassigning.clone(),
            }
            .start();
        }
    }

    /// DeleteRecords: moves the log start to `offset` (-1: the high watermark) through the
    /// group, so every replica moves it.
    pub(super) async fn delete_records(
        &mut self,
        myself: &ActorRef<PartitionMsg>,
        offset: i64,
        reply: tokio::sync::oneshot::Sender<Result<i64, ResponseError>>,
    ) -> Result<(), ActorProcessingErr> {
        let hwm = *self.shared.high_watermark.borrow();
        let target = if offset == -1 { hwm } else { offset };
        if self.acting_leader() != Some(self.env.node_id) {
            let _ = reply.send(Err(ResponseError::NotLeaderOrFollower));
        } else if target < 0 || target > hwm {
            let _ = reply.send(Err(ResponseError::OffsetOutOfRange));
        } else {
            // Through the group, so every replica moves its log start (durably, when it
            // applies the entry); whole segments below it go with the next retention
            // passes (a snapshot first, then openraft's purge).
            let rx = match self.raft.client_write_ff(Command::LogStart(target)).await {
                Ok(rx) => rx,
                Err(fatal) => {
                    let _ = reply.send(Err(ResponseError::NotLeaderOrFollower));
                    return Err(GroupStopped::failure(&self.tp, fatal));
                }
            };
            let myself = myself.clone();
            tokio::spawn(async move {
                let result = match rx.await {
                    Ok(Ok(resp)) => {
                        let _ = myself.send_message(PartitionMsg::RetentionTick);
                        Ok(resp.data.base_offset)
                    }
                    Ok(Err(ClientWriteError::ForwardToLeader(_))) | Err(_) => Err(ResponseError::NotLeaderOrFollower),
                    Ok(Err(_)) => Err(ResponseError::KafkaStorageError),
                };
                let _ = reply.send(result);
            });
        }
        Ok(())
    }
}
