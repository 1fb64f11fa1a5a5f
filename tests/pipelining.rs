//! Pipelining: many requests written back to back on one connection, of different kinds and
//! speeds, are all answered, in request order.

mod common;

use common::*;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest};

#[test]
fn responses_come_back_in_request_order() {
    // A tiny in-flight byte bound (from a config file) makes the connection stop and resume
    // reading many times during the run.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "\"connection.max.inflight.bytes\" = 2048\nmax.inflight.requests.per.connection = 8\n",
    )
    .unwrap();
    let b = TestBroker::start(&["--config", config.to_str().unwrap()]);
    let mut s = b.connect();
    let n = 300;
    for i in 0..n {
        match i % 3 {
            0 => send_request(&mut s, ApiKey::ApiVersions, 3, i, &ApiVersionsRequest::default()),
            1 => send_request(
                &mut s,
                ApiKey::Metadata,
                12,
                i,
                &MetadataRequest::default().with_topics(None),
            ),
            _ => send_request(
                &mut s,
                ApiKey::Produce,
                9,
                i,
                &produce_request("pipelined", batch(&[format!("{i}").as_bytes()])),
            ),
        }
    }
    for i in 0..n {
        let frame = read_frame(&mut s).expect("a response for every request");
        assert_eq!(correlation_id(&frame), i, "responses are in request order");
    }
    assert_eq!(b.metadata().topics.len(), 1);
}
