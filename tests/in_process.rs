//! The in-process harness: brokers started inside the test process on port 0 in fresh temp
//! dirs, their bound addresses returned by `Server::addrs` (not read from log lines). Two run
//! side by side; each serves rskafka, reports ready, survives a graceful restart with its data,
//! and the node a client reaches is the one started.

mod common;

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use raftstream::config::Config;
use raftstream::server::Server;
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use std::io::{Read, Write};
use std::path::Path;

fn config(dir: &Path, node_id: i32) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        http_listen: "127.0.0.1:0".into(),
        node_id,
        ..Config::default()
    }
}

fn record(i: usize) -> Record {
    Record {
        key: None,
        value: Some(format!("in-process {i}").into_bytes()),
        headers: Default::default(),
        timestamp: chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + i as i64).unwrap(),
    }
}

/// An HTTP GET over a plain socket: (status line, body).
fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

/// Waits until `/health/ready` answers 200: every partition the broker hosts has recovered
/// and has a leader (a client asking earlier is told LEADER_NOT_AVAILABLE, and rskafka caches
/// that answer for a while).
async fn ready(server: &Server) {
    let http = server.addrs().http.expect("http listens");
    for _ in 0..300 {
        if http_get(http, "/health/ready").0.contains("200") {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{} not ready after 30 s", server.addrs().kafka);
}

/// Produces `n` records to a new single-partition topic and reads them back.
async fn produce_and_read(server: &Server, topic: &str, n: usize) {
    let client = ClientBuilder::new(vec![server.addrs().kafka.to_string()])
        .build()
        .await
        .unwrap();
    let controller = client.controller_client().unwrap();
    controller.create_topic(topic, 1, 1, 5_000).await.unwrap();
    let partition = client
        .partition_client(topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let offsets = partition
        .produce((0..n).map(record).collect(), Compression::NoCompression)
        .await
        .unwrap();
    assert_eq!(offsets, (0..n as i64).collect::<Vec<_>>());
    let (read, hwm) = partition.fetch_records(0, 1..1_000_000, 1_000).await.unwrap();
    assert_eq!(hwm, n as i64);
    assert_eq!(read.len(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_in_one_process_serve_and_restart_with_their_data() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(config(dir_a.path(), 11)).await.unwrap();
    let b = Server::start(config(dir_b.path(), 12)).await.unwrap();
    assert_ne!(a.addrs().kafka, b.addrs().kafka, "each on a port of its own");
    assert_ne!(a.cluster_id(), b.cluster_id(), "each its own single-node cluster");

    produce_and_read(&a, "on-a", 5).await;
    produce_and_read(&b, "on-b", 7).await;

    // The node a client reaches is the one started.
    let mut s = std::net::TcpStream::connect(b.addrs().kafka).unwrap();
    let meta: MetadataResponse = common::call(&mut s, ApiKey::Metadata, 4, &MetadataRequest::default());
    assert_eq!(meta.brokers[0].node_id.0, 12);
    assert_eq!(meta.cluster_id.as_deref(), Some(b.cluster_id()));
    ready(&b).await;
    let (_, metrics) = http_get(a.addrs().http.unwrap(), "/metrics");
    assert!(metrics.contains("raftstream_requests_total"), "metrics rendered");

    a.stop().await.unwrap();
    // b still serves after a stopped.
    produce_and_read(&b, "on-b-later", 3).await;
    b.stop().await.unwrap();

    // a again, on its data dir: its records are there.
    let a = Server::start(config(dir_a.path(), 11)).await.unwrap();
    ready(&a).await;
    let client = ClientBuilder::new(vec![a.addrs().kafka.to_string()])
        .build()
        .await
        .unwrap();
    let partition = client
        .partition_client("on-a", 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let (read, hwm) = partition.fetch_records(0, 1..1_000_000, 1_000).await.unwrap();
    assert_eq!((read.len(), hwm), (5, 5));
    a.stop().await.unwrap();
}
