//! The fallback for machines without network namespaces: a fault-injecting proxy in front of
//! every node's cluster port. Each node advertises its proxy as its cluster address, so all
//! node-to-node traffic passes through one. The proxy reads the caller's node id from the
//! transport's first frame (`Hello`) and then forwards whole frames both ways; while the pair is
//! partitioned it drops them silently (requests go unanswered and time out, the stream stays
//! well-formed for after the heal). Clients talk to the nodes directly, as they do under
//! namespaces.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Largest frame forwarded (the broker's default `cluster.max.frame.bytes`).
const MAX_FRAME_BYTES: usize = 256 << 20;

/// Blocked node pairs, both directions.
type Blocked = Arc<Mutex<HashSet<(i32, i32)>>>;

/// The proxies of one run.
pub struct Proxies {
    blocked: Blocked,
    /// Runs the relays; dropping it stops them.
    _runtime: tokio::runtime::Runtime,
}

impl Proxies {
    /// One proxy per `(node, listen, target)`, forwarding `listen` to the node's real `target`.
    pub fn start(routes: &[(i32, SocketAddr, SocketAddr)]) -> anyhow::Result<Proxies> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let blocked: Blocked = Arc::default();
        for &(node, listen, target) in routes {
            let listener = runtime.block_on(TcpListener::bind(listen))?;
            let blocked = blocked.clone();
            runtime.spawn(async move {
                while let Ok((caller, _)) = listener.accept().await {
                    tokio::spawn(relay(caller, target, node, blocked.clone()));
                }
            });
        }
        Ok(Proxies {
            blocked,
            _runtime: runtime,
        })
    }

    /// Blocks traffic between each pair in `pairs` (both directions), replacing any earlier
    /// partition.
    pub fn partition(&self, pairs: &[(i32, i32)]) {
        let mut blocked = self.blocked.lock().expect("blocked lock");
        blocked.clear();
        for &(a, b) in pairs {
            blocked.insert((a, b));
            blocked.insert((b, a));
        }
    }

    /// Removes every partition.
    pub fn heal(&self) {
        self.blocked.lock().expect("blocked lock").clear();
    }
}

async fn read_frame(r: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    if let Err(e) = r.read_exact(&mut len).await {
        return if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Ok(None)
        } else {
            Err(e)
        };
    }
    let n = u32::from_be_bytes(len) as usize;
    if !(8..=MAX_FRAME_BYTES).contains(&n) {
        return Err(std::io::Error::other(format!("frame of {n} bytes")));
    }
    let mut frame = vec![0u8; 4 + n];
    frame[..4].copy_from_slice(&len);
    r.read_exact(&mut frame[4..]).await?;
    Ok(Some(frame))
}

/// Forwards one connection to node `callee`, frame by frame, dropping frames while the caller
/// and the callee are partitioned.
async fn relay(caller: TcpStream, target: SocketAddr, callee: i32, blocked: Blocked) {
    let Ok(node) = TcpStream::connect(target).await else {
        return;
    };
    let _ = (caller.set_nodelay(true), node.set_nodelay(true));
    let (mut from_caller, mut to_caller) = caller.into_split();
    let (mut from_node, mut to_node) = node.into_split();
    // The first frame says who calls.
    let Ok(Some(hello)) = read_frame(&mut from_caller).await else {
        return;
    };
    let Some(node_id) = raftstream::inspect::hello_node_id(&hello) else {
        return;
    };
    let pair = (node_id as i32, callee);
    let cut = move |b: &Blocked| b.lock().expect("blocked lock").contains(&pair);
    if !cut(&blocked) && to_node.write_all(&hello).await.is_err() {
        return;
    }
    let b = blocked.clone();
    let upstream = async move {
        while let Ok(Some(frame)) = read_frame(&mut from_caller).await {
            if !cut(&b) && to_node.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let downstream = async move {
        while let Ok(Some(frame)) = read_frame(&mut from_node).await {
            if !cut(&blocked) && to_caller.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    // Either side closing ends the relay (the other half is dropped with it).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
