//! The cluster port with `cluster.secret`: a connection reads the node's challenge first, and
//! nothing but a Hello proving the secret is read from it. A peer with a wrong or missing proof
//! is closed before its next frame (a well-formed Raft vote with a far higher term) is applied;
//! one with the right proof is greeted.

use openraft::raft::VoteRequest;
use openraft::Vote;
use raftstream::cluster::auth::{ClusterSecret, CHALLENGE_BYTES};
use raftstream::cluster::wire::{self, GroupId, Request, Response};
use raftstream::config::Config;
use raftstream::server::Server;
use std::io::{Read, Write};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn metrics(addr: std::net::SocketAddr) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Connects, reads the challenge, says hello with `proof`; returns the stream and the answer
/// (`None`: closed without one).
async fn hello(port: u16, proof: impl Fn(&[u8]) -> Vec<u8>) -> (TcpStream, Option<Response>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut challenge = [0u8; CHALLENGE_BYTES];
    s.read_exact(&mut challenge).await.unwrap();
    let greeting = Request::Hello {
        node_id: 2,
        cluster_id: String::new(),
        proof: proof(&challenge),
    };
    wire::write_frame(&mut s, &wire::encode(0, &greeting).unwrap())
        .await
        .unwrap();
    let vote = Request::Vote(
        GroupId::Controller,
        VoteRequest {
            vote: Vote::new(99, 2),
            last_log_id: None,
        },
    );
    // Written right behind the hello, as a peer would pipeline it.
    let _ = wire::write_frame(&mut s, &wire::encode(1, &vote).unwrap()).await;
    let answer = wire::read_frame::<_, Response>(&mut s, 1 << 20).await.ok().flatten();
    (s, answer.map(|(_, r)| r))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_read_from_a_peer_before_it_proves_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".into(),
        http_listen: "127.0.0.1:0".into(),
        cluster_listen: format!("127.0.0.1:{port}"),
        peers: format!("1@127.0.0.1:{port}"),
        cluster_secret: "s3cret".into(),
        ..Config::default()
    })
    .await
    .unwrap();
    let http = server.addrs().http.unwrap();
    let term_before = metric(&metrics(http), "raftstream_controller_term");

    for wrong in [Vec::new(), vec![0u8; 32]] {
        let (_, answer) = hello(port, |_| wrong.clone()).await;
        assert!(answer.is_none(), "closed without an answer: {answer:?}");
    }
    let wrong_secret = ClusterSecret::from_config("guess").unwrap();
    let (_, answer) = hello(port, |c| wrong_secret.proof(c, 2)).await;
    assert!(answer.is_none());
    let text = metrics(http);
    assert!(metric(&text, "raftstream_cluster_auth_failures_total") >= 3.0, "{text}");
    assert_eq!(
        metric(&text, "raftstream_controller_term"),
        term_before,
        "the vote behind a bad hello was never applied"
    );

    let secret = ClusterSecret::from_config("s3cret").unwrap();
    let (_, answer) = hello(port, |c| secret.proof(c, 2)).await;
    assert!(matches!(answer, Some(Response::Hello)), "{answer:?}");
    server.stop().await.unwrap();
}
