//! Node-to-node transport, client side: one connection per peer, shared by every Raft group,
//! reconnecting with backoff. Each group's `Network` names its group in every request. A
//! single node has no peers, and openraft never sends an RPC in a group of one.

use super::append_retry::{send_append, Link, Unanswered};
use super::auth::ClusterSecret;
pub use super::liveness::Liveness;
use super::peer_link::{run_peer, PeerLink};
use super::wire::{GroupId, Request, Response};
use crate::types::{NodeId, TypeConfig};
use bytes::Bytes;
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::BasicNode;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for a connection to a peer, at most.
const PEER_QUEUE: usize = 4096;
/// Requests written before one flush, at most.
pub(super) const MAX_WRITE_BATCH: usize = 256;
/// Longest pause between reconnection attempts.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(1);

pub(super) type Reply = oneshot::Sender<Result<Response, String>>;

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection, or it broke: Raft backs off before trying this peer again.
    #[error("{0}")]
    Unreachable(String),
    /// No answer in time: the peer may just be slow.
    #[error("{0}")]
    Timeout(String),
    /// An answer that cannot be used as it is; the caller retries.
    #[error("{0}")]
    Failed(String),
}

impl From<CallError> for String {
    fn from(e: CallError) -> String {
        e.to_string()
    }
}

/// Connections to every peer of this node.
pub struct Peers {
    node_id: NodeId,
    /// Cluster addresses: the configured peers, then nodes learned from the controller.
    addrs: RwLock<HashMap<NodeId, String>>,
    /// This node's cluster id, once known (sent in every Hello).
    pub cluster_id: Arc<RwLock<String>>,
    max_frame_bytes: usize,
    /// One connection per peer and lane.
    conns: Mutex<HashMap<(NodeId, Lane), Outbox>>,
    /// When each peer was last heard from (the server side records too).
    pub liveness: Liveness,
    /// The cluster's shared secret: each connection answers the peer's challenge with it.
    secret: Option<Arc<ClusterSecret>>,
}

impl Peers {
    /// Peers at `addrs` (cluster addresses by node id; this node may be among them); leaders
    /// here hold their groups while a majority was heard within `lease`.
    pub fn new(node_id: NodeId, addrs: HashMap<NodeId, String>, max_frame_bytes: usize, lease: Duration) -> Arc<Peers> {
        Peers::with_secret(node_id, addrs, max_frame_bytes, lease, None)
    }

    /// The same peers, proving `secret` on every connection.
    pub fn with_secret(
        node_id: NodeId,
        addrs: HashMap<NodeId, String>,
        max_frame_bytes: usize,
        lease: Duration,
        secret: Option<Arc<ClusterSecret>>,
    ) -> Arc<Peers> {
        Arc::new(Peers {
            node_id,
            addrs: RwLock::new(addrs),
            cluster_id: Arc::new(RwLock::new(String::new())),
            max_frame_bytes,
            conns: Mutex::new(HashMap::new()),
            liveness: Liveness::new(lease),
            secret,
        })
    }

    /// Whether `node` was heard from within `within`.
    pub fn heard_within(&self, node: NodeId, within: Duration) -> bool {
        self.liveness.within(node, within)
    }

    /// Every node known, this one included, with its cluster address.
    pub fn members(&self) -> HashMap<NodeId, String> {
        self.addrs.read().clone()
    }

    /// The cluster address of `node`, if known.
    pub fn addr_of(&self, node: NodeId) -> Option<String> {
        self.addrs.read().get(&node).cloned()
    }

    /// Records where `node` listens (a node added to a running cluster); a changed address
    /// drops the old connection so the next request reconnects there.
    pub fn learn(&self, node: NodeId, addr: &str) {
        if addr.is_empty() || node == self.node_id {
            return;
        }
        let changed = {
            let mut addrs = self.addrs.write();
            addrs.insert(node, addr.to_string()).as_deref() != Some(addr)
        };
        // (`connection` takes the two locks the other way round: never both here.)
        if changed {
            tracing::info!(node, addr, "learned a node's cluster address");
            self.conns.lock().retain(|(n, _), _| *n != node);
        }
    }

    /// Sends `req` to `target` and waits at most `timeout` for the answer.
    pub async fn call(&self, target: NodeId, req: Request, timeout: Duration) -> Result<Response, CallError> {
        let mut sent = self.send(target, req)?;
        self.answer(target, &mut sent, tokio::time::Instant::now() + timeout)
            .await
    }

    /// Queues `req` for `target`; its answer arrives in the returned `Sent`.
    pub fn send(&self, target: NodeId, req: Request) -> Result<Sent, CallError> {
        let tx = self
            .connection(target, Lane::of(&req))
            .map_err(CallError::Unreachable)?;
        let (reply, rx) = oneshot::channel();
        tx.try_send((req, reply))
            .map_err(|_| CallError::Unreachable(format!("queue to node {target} is full or closed")))?;
        Ok(Sent::new(rx))
    }

    /// Waits until `deadline` for the answer to `sent`; after a `Timeout` it may still come,
    /// and `sent` can be waited on again.
    pub async fn answer(
        &self,
        target: NodeId,
        sent: &mut Sent,
        deadline: tokio::time::Instant,
    ) -> Result<Response, CallError> {
        match tokio::time::timeout_at(deadline, &mut sent.rx).await {
            Ok(Ok(Ok(r))) => {
                // An answer proves both directions worked: the leader lease counts on it.
                self.liveness.answered(target, sent.at);
                Ok(r)
            }
            Ok(Ok(Err(e))) => Err(CallError::Unreachable(e)),
            Ok(Err(_)) => Err(CallError::Unreachable(format!(
                "connection to node {target} dropped the request"
            ))),
            Err(_) => Err(CallError::Timeout(format!(
                "node {target} did not answer within {:?}",
                sent.at.elapsed()
            ))),
        }
    }

    fn connection(&self, target: NodeId, lane: Lane) -> Result<Outbox, String> {
        let mut conns = self.conns.lock();
        if let Some(tx) = conns.get(&(target, lane)).filter(|tx| !tx.is_closed()) {
            return Ok(tx.clone());
        }
        let addr = self
            .addr_of(target)
            .ok_or_else(|| format!("node {target} is not a peer"))?;
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let hello = (self.node_id, self.cluster_id.clone());
        let link = PeerLink {
            target,
            addr,
            hello,
            max_frame_bytes: self.max_frame_bytes,
            heard: self.liveness.clone(),
            secret: self.secret.clone(),
        };
        crate::tasks::spawn_essential("peer-connection", run_peer(link, rx));
        conns.insert((target, lane), tx.clone());
        Ok(tx)
    }
}

/// A request on its way to a peer: where its answer arrives, and when it was sent.
pub struct Sent {
    rx: oneshot::Receiver<Result<Response, String>>,
    at: std::time::Instant,
}

impl Sent {
    /// A request sent now whose answer arrives on `rx`.
    pub fn new(rx: oneshot::Receiver<Result<Response, String>>) -> Sent {
        Sent {
            rx,
            at: std::time::Instant::now(),
        }
    }
}

/// Where requests to one peer connection are queued.
type Outbox = mpsc::Sender<(Request, Reply)>;

/// Which of a peer's two connections a request takes. Record batches (partition groups'
/// AppendEntries with entries, snapshots) go on the bulk lane; everything else — votes, pings,
/// the controller group, empty AppendEntries that carry the commit index, proposals — on the
/// control lane, so a megabyte of records never delays a vote or the controller's heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Control,
    Bulk,
}

impl Lane {
    /// The lane of `req`.
    pub fn of(req: &Request) -> Lane {
        match req {
            Request::AppendEntries(GroupId::Partition { .. }, rpc) if !rpc.entries.is_empty() => Lane::Bulk,
            Request::InstallSnapshot(GroupId::Partition { .. }, _) => Lane::Bulk,
            _ => Lane::Control,
        }
    }
}

/// Creates clients for the peers of one group.
#[derive(Clone)]
pub struct Network {
    group: GroupId,
    peers: Option<Arc<Peers>>,
}

impl Network {
    /// The transport of `group` (no peers: a single node).
    pub fn new(group: GroupId, peers: Option<Arc<Peers>>) -> Network {
        Network { group, peers }
    }
}

/// A client for one peer of one group (openraft keeps one per replication stream).
pub struct PeerClient {
    target: NodeId,
    group: GroupId,
    peers: Option<Arc<Peers>>,
    /// The AppendEntries with records whose deadline passed unanswered (`append_retry.rs`).
    kept: Option<Unanswered>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            group: self.group.clone(),
            peers: self.peers.clone(),
            kept: None,
        }
    }
}

type RpcResult<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

impl PeerClient {
    async fn call<E: std::error::Error>(&self, req: Request, option: &RPCOption) -> RpcResult<Response, E> {
        let peers = self
            .peers
            .as_ref()
            .ok_or_else(|| unreachable(self.target, "no transport"))?;
        rpc_outcome(
            &self.group,
            self.target,
            peers.call(self.target, req, option.hard_ttl()).await,
        )
    }

    fn remote<T, E: std::error::Error>(&self, r: Result<T, E>) -> RpcResult<T, E> {
        r.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

/// A peer's answer (or why none came) as openraft takes it.
fn rpc_outcome<E: std::error::Error>(
    group: &GroupId,
    target: NodeId,
    outcome: Result<Response, CallError>,
) -> RpcResult<Response, E> {
    match outcome {
        Ok(Response::Unavailable(why)) => Err(unreachable(target, &why)),
        Ok(resp) => Ok(resp),
        // Unreachable makes openraft back off (500 ms) instead of resending at once: a
        // dead peer would otherwise cost a busy loop per group with data for it.
        Err(CallError::Unreachable(why)) => Err(unreachable(target, &why)),
        Err(CallError::Timeout(why)) => {
            metrics::counter!(crate::observability::CLUSTER_RPC_TIMEOUTS, "group" => group.kind()).increment(1);
            Err(RPCError::Network(NetworkError::new(&std::io::Error::other(why))))
        }
        Err(CallError::Failed(why)) => Err(RPCError::Network(NetworkError::new(&std::io::Error::other(why)))),
    }
}

fn unreachable<E: std::error::Error>(target: NodeId, why: &str) -> RPCError<NodeId, BasicNode, E> {
    let err = std::io::Error::new(std::io::ErrorKind::NotConnected, format!("node {target}: {why}"));
    RPCError::Unreachable(Unreachable::new(&err))
}

fn unexpected<E: std::error::Error>(resp: Response) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
        "unexpected response {resp:?}"
    ))))
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let peers = self
            .peers
            .as_ref()
            .ok_or_else(|| unreachable(self.target, "no transport"))?;
        // With records: a little before openraft's own timeout drops this call, so that a
        // partial answer (what the follower holds of a retry) still reaches it.
        let ttl = option.hard_ttl();
        let margin = match rpc.entries.is_empty() {
            true => Duration::ZERO,
            false => (ttl / 8).min(Duration::from_millis(10)),
        };
        let deadline = tokio::time::Instant::now() + ttl.saturating_sub(margin);
        let link = Link {
            peers,
            target: self.target,
            group: &self.group,
        };
        let outcome = send_append(link, &mut self.kept, rpc, deadline).await;
        match rpc_outcome(&self.group, self.target, outcome)? {
            Response::AppendEntries(r) => self.remote(r),
            other => Err(unexpected(other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        match self
            .call(Request::InstallSnapshot(self.group.clone(), rpc), &option)
            .await?
        {
            Response::InstallSnapshot(r) => self.remote(r),
            other => Err(unexpected(other)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        match self.call(Request::Vote(self.group.clone(), rpc), &option).await? {
            Response::Vote(r) => self.remote(r),
            other => Err(unexpected(other)),
        }
    }
}

/// Asks `target` to add `node_id` (at `addr`) to the controller group as a learner.
pub async fn join_via(
    peers: &Peers,
    target: NodeId,
    node_id: NodeId,
    addr: String,
    forwarded: bool,
    timeout: Duration,
) -> Result<Result<i64, (i16, String)>, String> {
    let req = Request::JoinController {
        node_id,
        addr,
        forwarded,
    };
    match peers.call(target, req, timeout).await? {
        Response::Proposed(r) => Ok(r),
        Response::Unavailable(why) => Err(why),
        other => Err(format!("unexpected response {other:?}")),
    }
}

/// What `target` says about its cluster: (cluster id, controller voters).
pub async fn cluster_info(peers: &Peers, target: NodeId, timeout: Duration) -> Result<(String, Vec<NodeId>), String> {
    match peers.call(target, Request::ClusterInfo, timeout).await? {
        Response::ClusterInfo {
            cluster_id,
            controller_voters,
        } => Ok((cluster_id, controller_voters)),
        Response::Unavailable(why) => Err(why),
        other => Err(format!("unexpected response {other:?}")),
    }
}

/// Sends a metadata proposal (JSON `MetaCommand`) to the controller leader `target`.
pub async fn propose_to(
    peers: &Peers,
    target: NodeId,
    cmd: Bytes,
    timeout: Duration,
) -> Result<Result<i64, (i16, String)>, String> {
    match peers.call(target, Request::Propose(cmd), timeout).await? {
        Response::Proposed(r) => Ok(r),
        Response::Unavailable(why) => Err(why),
        other => Err(format!("unexpected response {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    fn append(group: GroupId, entries: usize) -> Request {
        let entry = Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), 1),
            payload: EntryPayload::Normal(crate::types::Command::Batch(Bytes::from_static(b"x"))),
        };
        Request::AppendEntries(
            group,
            AppendEntriesRequest {
                vote: Vote::new_committed(1, 1),
                prev_log_id: None,
                entries: vec![entry; entries],
                leader_commit: None,
            },
        )
    }

    #[test]
    fn record_batches_take_the_bulk_lane_and_control_traffic_the_other() {
        let partition = GroupId::Partition {
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(Lane::of(&append(partition.clone(), 3)), Lane::Bulk);
        assert_eq!(Lane::of(&append(partition, 0)), Lane::Control, "commit index only");
        assert_eq!(Lane::of(&append(GroupId::Controller, 3)), Lane::Control);
        assert_eq!(Lane::of(&Request::Ping { incarnation: 1 }), Lane::Control);
    }
}
