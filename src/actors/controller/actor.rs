//! The controller: owns the cluster-metadata Raft group (topics, ids, partition counts,
//! configs). On one node it is a group of one with its own log under `<data_dir>/meta`,
//! replayed at start before the broker serves.

use crate::actors::controller::boot::WAIT_LOG_INTERVAL;
use crate::actors::controller::group::{schedule_reopen, GroupParts, Opened, Reopens};
use crate::cluster::join::{decide, spawn_join, ControllerStart};
use crate::cluster::network::{join_via, propose_to, Peers};
use crate::storage::meta_sm::MetaCommand;
use crate::types::{Command, NodeId};
use kafka_protocol::error::ResponseError;
use openraft::error::ClientWriteError;
use openraft::BasicNode;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Reply to a proposal: applied, or refused with a Kafka error and a message.
pub type ProposeReply = oneshot::Sender<Result<i64, (ResponseError, String)>>;

/// Messages the controller takes.
pub enum ControllerMsg {
    /// Propose a metadata change and answer once it is applied. A follower forwards it to the
    /// leader, unless it was `forwarded` to it already.
    Propose {
        cmd: MetaCommand,
        reply: ProposeReply,
        forwarded: bool,
    },
    /// Add a node joining the running cluster to the group as a learner (the leader does; a
    /// follower forwards it once).
    AddLearner {
        node_id: NodeId,
        addr: String,
        reply: ProposeReply,
        forwarded: bool,
    },
    /// The group stopped on an error (a failed write): reopen it once there is room.
    GroupStopped(String),
    /// Reopen the stopped group now.
    Reopen,
}

/// A forwarded request's outcome as a Kafka error.
fn from_forwarded(r: Result<Result<i64, (i16, String)>, String>) -> Result<i64, (ResponseError, String)> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err((code, why))) => Err((
            ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError),
            why,
        )),
        Err(why) => Err((ResponseError::NotController, why)),
    }
}

/// What the controller needs.
pub struct ControllerArgs {
    /// How its Raft group is opened (and reopened after a failed write).
    pub group: GroupParts,
    /// How long start-up may wait for the group to elect a leader and replay its log.
    pub ready_timeout: Duration,
    /// How long a forwarded proposal may take.
    pub forward_timeout: Duration,
    /// The controller leader's lease: it proposes only while a majority was heard this recently.
    pub lease: Duration,
}

/// Controller state.
pub struct ControllerState {
    /// The running group (replaced when it is reopened).
    group: Opened,
    node_id: NodeId,
    peers: Option<Arc<Peers>>,
    forward_timeout: Duration,
    /// The leader's lease (`ControllerArgs::lease`) over the node's liveness record.
    liveness: Option<crate::cluster::liveness::Liveness>,
    /// How the group is opened (again).
    parts: GroupParts,
    reopens: Reopens,
}

/// The controller actor.
pub struct Controller;

/// Waits until the controller group has a leader (this node, when alone) and this node has
/// replayed its metadata log up to `last_index`. A single node gives up after `timeout`; a
/// cluster node waits for as long as its peers take to start, saying so every few seconds.
async fn await_ready(
    raft: &crate::types::Raft,
    node_id: NodeId,
    single: bool,
    last_index: Option<u64>,
    timeout: Duration,
) -> Result<(), ActorProcessingErr> {
    let started = std::time::Instant::now();
    loop {
        let patience = if single { timeout } else { WAIT_LOG_INTERVAL };
        let outcome = raft
            .wait(Some(patience))
            .metrics(
                move |m| {
                    let led = match single {
                        true => m.current_leader == Some(node_id),
                        false => m.current_leader.is_some(),
                    };
                    led && m.last_applied.map(|l| l.index) >= last_index
                },
                "controller elected and metadata replayed",
            )
            .await;
        match outcome {
            Ok(_) => return Ok(()),
            Err(openraft::metrics::WaitError::Timeout(..)) if !single => tracing::info!(
                waited_s = started.elapsed().as_secs(),
                "waiting for the controller group to elect a leader (a majority of the nodes must run)"
            ),
            Err(e) => return Err(format!("controller not ready: {e}").into()),
        }
    }
}

impl ControllerState {
    /// The controller group's leader as this node acts on it: a cut-off leader stops
    /// proposing once its lease ran out (`cluster::acting_leader`).
    fn acting_leader(&self) -> Option<NodeId> {
        let confirmed = self.group.stall_confirmed.load(std::sync::atomic::Ordering::Acquire);
        crate::cluster::acting_leader(&self.group.raft.metrics().borrow(), self.liveness.as_ref(), confirmed)
    }

    /// The group stopped on an error: cut what it wrote unsynced and reopen it after a pause
    /// (bounded: `Reopens`), or fail the actor.
    async fn group_stopped(&mut self, myself: ActorRef<ControllerMsg>, why: String) -> Result<(), ActorProcessingErr> {
        if self.reopens.pending {
            return Ok(());
        }
        let Some(pause) = self.reopens.next_pause() else {
            return Err(format!("controller group stopped again, giving up: {why}").into());
        };
        tracing::error!(error = %why, ?pause, "controller group stopped; reopening it when the data dir has room");
        metrics::counter!(crate::observability::CONTROLLER_GROUP_STOPS).increment(1);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.group.raft.shutdown()).await;
        let applied_next = self.group.progress.lock().0.map_or(0, |l| l.index + 1);
        if self.group.log.sync_failed() && applied_next > self.group.log.synced_upto() {
            // Committed by the others, applied here, then cut: the state machine cannot
            // carry on from a log that lacks what it applied. A broker restart replays.
            return Err(format!("controller group stopped after applying unsynced entries: {why}").into());
        }
        match self.group.log.cut_unsynced() {
            Ok(0) => {}
            Ok(entries) => tracing::warn!(
                entries,
                "cut the metadata entries written after the last successful fsync"
            ),
            Err(e) => return Err(format!("cutting the metadata log's unsynced tail: {e}").into()),
        }
        schedule_reopen(myself, self.parts.disk.clone(), pause);
        Ok(())
    }

    /// Reopens the stopped group from the files, resuming where it had applied.
    async fn reopen(&mut self, myself: &ActorRef<ControllerMsg>) {
        let resume = self.group.progress.lock().clone();
        match self.parts.open(myself, Some(resume)).await {
            Ok(opened) => {
                tracing::info!("controller group reopened");
                metrics::counter!(crate::observability::CONTROLLER_GROUP_REOPENS).increment(1);
                self.group = opened;
                self.reopens.reopened();
            }
            Err(e) => {
                self.reopens.pending = false;
                let _ = myself.send_message(ControllerMsg::GroupStopped(format!("reopening failed: {e}")));
            }
        }
    }

    /// Adds a joining node to the controller group as a learner (on the leader; a follower
    /// forwards once).
    fn add_learner(&self, node_id: NodeId, addr: String, reply: ProposeReply, forwarded: bool) {
        let known = {
            let m = self.group.raft.metrics();
            let m = m.borrow();
            let known = m.membership_config.membership().nodes().any(|(id, _)| *id == node_id);
            known
        };
        let leader = self.acting_leader();
        let refuse = |why: &str| Err((ResponseError::NotController, why.to_string()));
        match (&self.peers, leader) {
            (None, _) => {
                let _ = reply.send(refuse("a single node takes no peers"));
            }
            (Some(peers), Some(l)) if l == self.node_id => {
                peers.learn(node_id, &addr);
                let raft = self.group.raft.clone();
                tokio::spawn(async move {
                    let result = if known {
                        Ok(0)
                    } else {
                        tracing::info!(node_id, %addr, "a node joins the cluster");
                        raft.add_learner(node_id, BasicNode::new(addr), false)
                            .await
                            .map(|_| 0)
                            .map_err(|e| (ResponseError::NotController, e.to_string()))
                    };
                    let _ = reply.send(result);
                });
            }
            (Some(peers), Some(l)) if !forwarded => {
                let (peers, timeout) = (peers.clone(), self.forward_timeout);
                tokio::spawn(async move {
                    let result = from_forwarded(join_via(&peers, l, node_id, addr, true, timeout).await);
                    let _ = reply.send(result);
                });
            }
            _ => {
                let _ = reply.send(refuse("this node is not the controller"));
            }
        }
    }

    /// Proposes `cmd` (on the leader; a follower forwards once) and answers once it is applied.
    async fn propose(
        &mut self,
        cmd: MetaCommand,
        reply: ProposeReply,
        forwarded: bool,
    ) -> Result<(), ActorProcessingErr> {
        let leader = self.acting_leader();
        if leader != Some(self.node_id) {
            match (leader, &self.peers, forwarded) {
                (Some(leader), Some(peers), false) => {
                    let bytes = serde_json::to_vec(&cmd)?;
                    let (peers, timeout) = (peers.clone(), self.forward_timeout);
                    tokio::spawn(async move {
                        let result = from_forwarded(propose_to(&peers, leader, bytes.into(), timeout).await);
                        let _ = reply.send(result);
                    });
                }
                _ => {
                    let _ = reply.send(Err((
                        ResponseError::NotController,
                        "this node is not the controller".into(),
                    )));
                }
            }
            return Ok(());
        }
        if self.parts.disk.is_low() {
            // Nothing is proposed that this node may fail to write.
            let _ = reply.send(Err((
                ResponseError::KafkaStorageError,
                "the data dir is full or not answering".into(),
            )));
            return Ok(());
        }
        let bytes = serde_json::to_vec(&cmd)?;
        let rx = match self.group.raft.client_write_ff(Command::Meta(bytes.into())).await {
            Ok(rx) => rx,
            Err(fatal) => {
                // The group stopped; its watcher asks for the reopen.
                let _ = reply.send(Err((ResponseError::NotController, fatal.to_string())));
                return Ok(());
            }
        };
        tokio::spawn(async move {
            let result = match rx.await {
                Ok(Ok(resp)) => match resp.data.error {
                    None => Ok(resp.data.value),
                    Some(refused) => Err((refused.code(), refused.to_string())),
                },
                Ok(Err(ClientWriteError::ForwardToLeader(_))) => {
                    Err((ResponseError::NotController, "controller leadership moved".into()))
                }
                Ok(Err(e)) => Err((ResponseError::UnknownServerError, e.to_string())),
                Err(_) => Err((ResponseError::NotController, "controller stopped".into())),
            };
            let _ = reply.send(result);
        });
        Ok(())
    }
}

impl Actor for Controller {
    type Msg = ControllerMsg;
    type State = ControllerState;
    type Arguments = ControllerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ControllerMsg>,
        args: ControllerArgs,
    ) -> Result<ControllerState, ActorProcessingErr> {
        let parts = args.group;
        let group = parts.open(&myself, None).await?;
        let (raft, last_index) = (group.raft.clone(), group.last_index);
        let start = match &parts.peers {
            Some(peers) if !raft.is_initialized().await? => decide(peers, parts.node_id, WAIT_LOG_INTERVAL).await,
            _ => ControllerStart::Initialize,
        };
        if let (ControllerStart::Join { via }, Some(peers)) = (start, &parts.peers) {
            let metrics = raft.metrics();
            let joined = move || metrics.borrow().current_leader.is_some();
            spawn_join(peers.clone(), parts.node_id, via, joined);
        }
        if start == ControllerStart::Initialize && !raft.is_initialized().await? {
            let voters: BTreeMap<NodeId, BasicNode> = match &parts.peers {
                Some(peers) => peers
                    .members()
                    .iter()
                    .map(|(id, addr)| (*id, BasicNode::new(addr)))
                    .collect(),
                None => BTreeMap::from([(parts.node_id, BasicNode::default())]),
            };
            // Every voter initializes with the same membership; one that already received the
            // group's log from a peer is told so, which is fine.
            if let Err(e) = raft.initialize(voters).await {
                tracing::debug!(error = %e, "controller group already initialized");
            }
        }
        await_ready(
            &raft,
            parts.node_id,
            parts.peers.is_none(),
            last_index,
            args.ready_timeout,
        )
        .await?;
        Ok(ControllerState {
            group,
            node_id: parts.node_id,
            peers: parts.peers.clone(),
            forward_timeout: args.forward_timeout,
            liveness: parts.peers.as_ref().map(|p| p.liveness.with_lease(args.lease)),
            parts,
            reopens: Reopens::default(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ControllerMsg>,
        msg: ControllerMsg,
        st: &mut ControllerState,
    ) -> Result<(), ActorProcessingErr> {
        if st.reopens.pending {
            if let ControllerMsg::Propose { reply, .. } | ControllerMsg::AddLearner { reply, .. } = msg {
                let _ = reply.send(Err((
                    ResponseError::NotController,
                    "the controller group is being reopened".into(),
                )));
                return Ok(());
            }
        }
        match msg {
            ControllerMsg::GroupStopped(why) => st.group_stopped(myself, why).await?,
            ControllerMsg::Reopen => st.reopen(&myself).await,
            ControllerMsg::AddLearner {
                node_id,
                addr,
                reply,
                forwarded,
            } => st.add_learner(node_id, addr, reply, forwarded),
            ControllerMsg::Propose { cmd, reply, forwarded } => st.propose(cmd, reply, forwarded).await?,
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ControllerMsg>,
        st: &mut ControllerState,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tokio::time::timeout(Duration::from_secs(5), st.group.raft.shutdown()).await;
        Ok(())
    }
}
