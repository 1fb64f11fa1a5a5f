//! Node-to-node transport, server side: accepts peers' connections and hands each request to
//! the Raft group it names (or to the controller, for proposals). Requests of one connection
//! are served concurrently, at most `max_inflight` at a time, so one slow group does not hold
//! up the others.

use super::auth::ClusterSecret;
use super::network::Liveness;
use super::wire::{self, GroupId, Request, Response};
use crate::types::{NodeId, Raft};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// What the server reaches on this node.
pub trait LocalGroups: Send + Sync + 'static {
    /// The running Raft group `group`, if this node has it.
    fn raft(&self, group: &GroupId) -> Option<Raft>;
    /// Proposes a metadata change (JSON `MetaCommand`) through this node's controller.
    fn propose(&self, cmd: Bytes) -> BoxFuture<'static, Result<i64, (i16, String)>>;
    /// This node's cluster id (empty until known).
    fn cluster_id(&self) -> String;
    /// The controller group's voters (empty before it is initialized).
    fn controller_voters(&self) -> Vec<NodeId>;
    /// Whether this node is shutting down: it has handed its leaderships away and must not take
    /// one back (a `Campaign` is refused).
    fn leaving(&self) -> bool;
    /// Hands the leadership of partition group `group`, led here, to its preferred replica.
    fn elect_preferred(&self, group: &GroupId) -> BoxFuture<'static, Result<i64, (i16, String)>>;
    /// Adds `node_id` at `addr` to the controller group as a learner (through the leader).
    fn join_controller(
        &self,
        node_id: NodeId,
        addr: String,
        forwarded: bool,
    ) -> BoxFuture<'static, Result<i64, (i16, String)>>;
}

/// Whether a refused peer is to be logged: at most once per 10 s, so a host that keeps trying
/// cannot flood the log (every refusal is counted).
fn refusal_log_due() -> bool {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST_S: AtomicU64 = AtomicU64::new(0);
    let now_s = crate::storage::log::segment::now_ms().max(0) as u64 / 1000;
    let last = LAST_S.load(Ordering::Relaxed);
    (last == 0 || now_s >= last + 10)
        && LAST_S
            .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

/// The largest first frame (the hello) read from a peer that has not proved the secret.
const HELLO_MAX_BYTES: usize = 4096;
/// How long a peer that has not proved the secret has to send its hello.
const HELLO_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the node-to-node server needs.
pub struct ServerArgs {
    /// The groups running here, which requests are for.
    pub groups: Arc<dyn LocalGroups>,
    /// Records when each peer was last heard from.
    pub liveness: Liveness,
    /// Largest frame read (after the hello).
    pub max_frame_bytes: usize,
    /// Requests of one connection served at once.
    pub max_inflight: usize,
    /// The cluster's shared secret: peers must prove it before anything is read from them.
    pub secret: Option<Arc<ClusterSecret>>,
}

/// Serves peers on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, args: ServerArgs) {
    let args = Arc::new(args);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let args = args.clone();
                crate::tasks::spawn_watched(
                    "cluster-connection",
                    async move {
                        if let Err(e) = serve_connection(stream, &args).await {
                            tracing::debug!(%peer, error = %e, "cluster connection closed");
                        }
                    },
                    // The unwind closed that connection; the peer reconnects.
                    |_| {},
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "cluster accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves one peer connection: a hello first, then pings answered inline and Raft RPCs
/// handled concurrently (at most `max_inflight`), answers written as they finish.
async fn serve_connection(stream: TcpStream, args: &ServerArgs) -> anyhow::Result<()> {
    let (groups, liveness) = (args.groups.clone(), args.liveness.clone());
    let (max_frame_bytes, max_inflight) = (args.max_frame_bytes, args.max_inflight);
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let challenge = ClusterSecret::challenge();
    if args.secret.is_some() {
        write.write_all(&challenge).await?;
    }
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(max_inflight.max(1));
    let writer = spawn_frame_writer(write, out_rx);
    let permits = Arc::new(Semaphore::new(max_inflight.max(1)));
    let mut greeted: Option<NodeId> = None;
    let result = loop {
        // Until a peer proved the secret, its frame is small and must come in time.
        let unproven = greeted.is_none() && args.secret.is_some();
        let limit = if unproven { HELLO_MAX_BYTES } else { max_frame_bytes };
        let read_one = wire::read_frame::<_, Request>(&mut read, limit);
        let frame = match unproven {
            true => tokio::time::timeout(HELLO_TIMEOUT, read_one)
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no hello in time"))),
            false => read_one.await,
        };
        let (id, req) = match frame {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        if let Request::Hello {
            node_id,
            cluster_id,
            proof,
        } = &req
        {
            if let Some(secret) = &args.secret {
                if !secret.verifies(&challenge, *node_id, proof) {
                    metrics::counter!(crate::observability::CLUSTER_AUTH_FAILURES).increment(1);
                    if refusal_log_due() {
                        tracing::warn!(
                            node_id,
                            "refusing a node-to-node connection: wrong or missing cluster.secret proof (more within 10 s are only counted)"
                        );
                    }
                    break Err(anyhow::anyhow!("bad cluster secret proof"));
                }
            }
            let (resp, accepted) = answer_hello(groups.as_ref(), *node_id, cluster_id);
            out_tx.send(wire::encode(id, &resp)?).await?;
            if !accepted {
                break Ok(());
            }
            greeted = Some(*node_id);
            continue;
        }
        let Some(from) = greeted else {
            break Err(anyhow::anyhow!("request before hello"));
        };
        count(&req);
        if let Request::Ping { incarnation } = req {
            liveness.observe(from, incarnation);
            let pong = Response::Pong {
                incarnation: liveness.incarnation,
                hears: liveness.hearing(),
            };
            out_tx.send(wire::encode(id, &pong)?).await?;
            continue;
        }
        liveness.record(from);
        let permit = permits.clone().acquire_owned().await?;
        let groups = groups.clone();
        let out = out_tx.clone();
        tokio::spawn(async move {
            let resp = handle(groups.as_ref(), req).await;
            if let Ok(frame) = wire::encode(id, &resp) {
                let _ = out.send(frame).await;
            }
            drop(permit);
        });
    };
    drop(out_tx);
    let _ = writer.await;
    result
}

/// The answer to a peer's hello, and whether it is accepted: a node of another cluster is not.
fn answer_hello(groups: &dyn LocalGroups, node_id: NodeId, cluster_id: &str) -> (Response, bool) {
    let ours = groups.cluster_id();
    if !ours.is_empty() && !cluster_id.is_empty() && ours != cluster_id {
        tracing::error!(node_id, theirs = %cluster_id, %ours, "refusing a node of another cluster");
        let why = format!("this node belongs to cluster {ours}, not {cluster_id}");
        return (Response::Unavailable(why), false);
    }
    (Response::Hello, true)
}

/// Writes answer frames as they come, whatever is ready with one flush.
fn spawn_frame_writer(
    write: tokio::net::tcp::OwnedWriteHalf,
    mut out_rx: mpsc::Receiver<Bytes>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut write = BufWriter::new(write);
        while let Some(frame) = out_rx.recv().await {
            if write.write_all(&frame).await.is_err() {
                return;
            }
            while let Ok(more) = out_rx.try_recv() {
                if write.write_all(&more).await.is_err() {
                    return;
                }
            }
            if write.flush().await.is_err() {
                return;
            }
        }
    })
}

/// Counts a received request by kind and group (an idle cluster should see pings only).
fn count(req: &Request) {
    let group = GroupId::kind;
    let (rpc, group) = match req {
        Request::Hello { .. } => ("hello", "none"),
        Request::AppendEntries(g, _) => ("append_entries", group(g)),
        Request::Vote(g, _) => ("vote", group(g)),
        Request::InstallSnapshot(g, _) => ("install_snapshot", group(g)),
        Request::Propose(_) => ("propose", "controller"),
        Request::ClusterInfo => ("cluster_info", "none"),
        Request::Campaign(g) => ("campaign", group(g)),
        Request::ElectPreferred(g) => ("elect_preferred", group(g)),
        Request::JoinController { .. } => ("join_controller", "controller"),
        Request::Ping { .. } => ("ping", "none"),
    };
    metrics::counter!(crate::observability::CLUSTER_RPCS, "rpc" => rpc, "group" => group).increment(1);
}

async fn handle(groups: &dyn LocalGroups, req: Request) -> Response {
    let missing = |g: &GroupId| Response::Unavailable(format!("group {g:?} is not running here"));
    match req {
        Request::Hello { .. } => Response::Hello,
        Request::Ping { .. } => Response::Unavailable("a ping is answered by the connection".into()),
        Request::AppendEntries(g, rpc) => match groups.raft(&g) {
            Some(raft) => Response::AppendEntries(raft.append_entries(rpc).await),
            None => missing(&g),
        },
        Request::Vote(g, rpc) => match groups.raft(&g) {
            Some(raft) => Response::Vote(raft.vote(rpc).await),
            None => missing(&g),
        },
        Request::InstallSnapshot(g, rpc) => match groups.raft(&g) {
            Some(raft) => Response::InstallSnapshot(raft.install_snapshot(rpc).await),
            None => missing(&g),
        },
        Request::Propose(cmd) => Response::Proposed(groups.propose(cmd).await),
        Request::Campaign(_) if groups.leaving() => Response::Unavailable("this node is shutting down".into()),
        Request::Campaign(g) => match groups.raft(&g) {
            Some(raft) => match raft.trigger().elect().await {
                Ok(()) => Response::Proposed(Ok(0)),
                Err(e) => Response::Unavailable(e.to_string()),
            },
            None => missing(&g),
        },
        Request::ElectPreferred(g) => Response::Proposed(groups.elect_preferred(&g).await),
        Request::ClusterInfo => Response::ClusterInfo {
            cluster_id: groups.cluster_id(),
            controller_voters: groups.controller_voters(),
        },
        Request::JoinController {
            node_id,
            addr,
            forwarded,
        } => Response::Proposed(groups.join_controller(node_id, addr, forwarded).await),
    }
}
