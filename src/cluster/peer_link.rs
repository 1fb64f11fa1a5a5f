//! One peer's connection, owned by a task: connects (with backoff), answers the peer's
//! challenge (`cluster.secret`), says hello, writes queued requests in batches and hands
//! responses to their waiters.

use super::auth::{ClusterSecret, CHALLENGE_BYTES};
use super::network::{Liveness, Reply, MAX_BACKOFF, MAX_WRITE_BATCH};
use super::wire::{self, Request, Response};
use crate::types::NodeId;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// Owns the connection to one peer: connects (with backoff), says hello, writes requests and
/// hands responses to their waiters. Requests that arrive while the peer is unreachable fail
/// at once: Raft retries on its own schedule.
pub(super) async fn run_peer(link: PeerLink, mut rx: mpsc::Receiver<(Request, Reply)>) {
    let target = link.target;
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = match TcpStream::connect(&link.addr).await {
            // A peer that refused this node's hello (another cluster, a wrong secret) is
            // retried with backoff, as an unreachable one.
            Ok(stream) => link.serve(stream, &mut rx).await,
            Err(e) => {
                let why = format!("node {target} at {} unreachable: {e}", link.addr);
                while let Ok((_, reply)) = rx.try_recv() {
                    let _ = reply.send(Err(why.clone()));
                }
                false
            }
        };
        if rx.is_closed() {
            return;
        }
        if connected {
            backoff = Duration::from_millis(50);
        }
        tokio::time::sleep(backoff).await;
        if !connected {
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// What one peer's connection needs.
pub(super) struct PeerLink {
    pub(super) target: NodeId,
    pub(super) addr: String,
    /// This node's id and the cluster id it says hello with.
    pub(super) hello: (NodeId, Arc<RwLock<String>>),
    pub(super) max_frame_bytes: usize,
    pub(super) heard: Liveness,
    /// The cluster's shared secret, answering the peer's challenge.
    pub(super) secret: Option<Arc<ClusterSecret>>,
}

/// How long a connecting node waits for the peer's challenge.
const CHALLENGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests written and not yet answered, by request id.
type Pending = Arc<Mutex<HashMap<u64, Reply>>>;

impl PeerLink {
    /// Serves one connection until it breaks or the queue closes; what it leaves unanswered
    /// fails. Whether the peer greeted this node.
    async fn serve(&self, stream: TcpStream, rx: &mut mpsc::Receiver<(Request, Reply)>) -> bool {
        let _ = stream.set_nodelay(true);
        let (mut read, write) = stream.into_split();
        let proof = match &self.secret {
            Some(secret) => match read_challenge(&mut read).await {
                Some(challenge) => secret.proof(&challenge, self.hello.0),
                None => {
                    tracing::warn!(target = self.target, addr = %self.addr, "no cluster challenge from the peer (is cluster.secret set on it?)");
                    return false;
                }
            },
            None => Vec::new(),
        };
        let mut write = BufWriter::new(write);
        let pending: Pending = Arc::default();
        let (hello_tx, hello_rx) = oneshot::channel();
        pending.lock().insert(0, hello_tx);
        let mut reader = self.spawn_reader(read, pending.clone());
        let greeting = Request::Hello {
            node_id: self.hello.0,
            cluster_id: self.hello.1.read().clone(),
            proof,
        };
        let mut ok = write_one(&mut write, 0, &greeting).await && write.flush().await.is_ok();
        let mut hello_rx = Some(hello_rx);
        let mut greeted = false;
        let mut next_id = 1u64;
        while ok {
            tokio::select! {
                msg = rx.recv() => {
                    let Some(first) = msg else { break };
                    ok = write_queued(&mut write, rx, first, &pending, &mut next_id).await;
                }
                answer = async { hello_rx.as_mut().expect("hello pending").await }, if hello_rx.is_some() => {
                    hello_rx = None;
                    ok = self.hello_accepted(answer);
                    greeted = ok;
                }
                _ = &mut reader => ok = false,
            }
        }
        reader.abort();
        for (_, reply) in pending.lock().drain() {
            let _ = reply.send(Err(format!("connection to node {} lost", self.target)));
        }
        greeted
    }

    /// Reads responses and hands each to its waiter, until the connection ends.
    fn spawn_reader(&self, mut read: tokio::net::tcp::OwnedReadHalf, pending: Pending) -> tokio::task::JoinHandle<()> {
        let (target, heard, max_frame_bytes) = (self.target, self.heard.clone(), self.max_frame_bytes);
        tokio::spawn(async move {
            while let Ok(Some((id, resp))) = wire::read_frame::<_, Response>(&mut read, max_frame_bytes).await {
                heard.record(target);
                if let Some(reply) = pending.lock().remove(&id) {
                    let _ = reply.send(Ok(resp));
                }
            }
        })
    }

    /// Whether the peer accepted this node's hello (a peer of another cluster refuses it).
    fn hello_accepted(&self, answer: Result<Result<Response, String>, oneshot::error::RecvError>) -> bool {
        match answer {
            Ok(Ok(Response::Hello)) => true,
            Ok(Ok(Response::Unavailable(why))) => {
                tracing::error!(target = self.target, addr = %self.addr, "node refused this one: {why}");
                false
            }
            _ => false,
        }
    }
}

/// The accepting node's challenge, the first bytes it sends (`None` if it sends none in time).
async fn read_challenge(read: &mut tokio::net::tcp::OwnedReadHalf) -> Option<[u8; CHALLENGE_BYTES]> {
    let mut challenge = [0u8; CHALLENGE_BYTES];
    match tokio::time::timeout(CHALLENGE_TIMEOUT, read.read_exact(&mut challenge)).await {
        Ok(Ok(_)) => Some(challenge),
        _ => None,
    }
}

/// Writes `first` and everything already queued behind it with one flush (one syscall for
/// many groups' heartbeats); false once the connection failed.
async fn write_queued(
    write: &mut BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    rx: &mut mpsc::Receiver<(Request, Reply)>,
    first: (Request, Reply),
    pending: &Pending,
    next_id: &mut u64,
) -> bool {
    let mut next = Some(first);
    let mut batched = 0;
    let mut ok = true;
    while let Some((req, reply)) = next.take() {
        let id = *next_id;
        *next_id += 1;
        pending.lock().insert(id, reply);
        ok = write_one(write, id, &req).await;
        batched += 1;
        if ok && batched < MAX_WRITE_BATCH {
            next = rx.try_recv().ok();
        }
    }
    ok && write.flush().await.is_ok()
}

/// Buffers one request (the caller flushes).
async fn write_one(w: &mut BufWriter<tokio::net::tcp::OwnedWriteHalf>, id: u64, req: &Request) -> bool {
    let Ok(frame) = wire::encode(id, req) else {
        return false;
    };
    wire::write_frame(w, &frame).await.is_ok()
}
