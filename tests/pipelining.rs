//! Pipelining: many requests written back to back on one connection, of different kinds and
//! speeds, are all answered, in request order.

mod common;

use common::*;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, MetadataRequest};
use kafka_protocol::protocol::Decodable;

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

/// Pipelined produce requests to one partition, from a producer without idempotence, are
/// appended in the order they were sent (Kafka handles one request per connection at a time;
/// librdkafka's 0041 relies on it). Thousands of small requests in flight make the connection's
/// handlers yield to one another (tokio's cooperative budget runs out mid-poll), where the old
/// code let a later request reach the partition first.
#[test]
fn pipelined_produces_are_appended_in_request_order() {
    let b = TestBroker::start(&[]);
    let mut s = b.connect();
    // The topic exists before the burst: auto-creation is not what is under test.
    let _: kafka_protocol::messages::ProduceResponse = call(
        &mut s,
        ApiKey::Produce,
        9,
        &produce_request("ordered", batch(&[b"first"])),
    );
    let n = 5000;
    let value = vec![7u8; 500];
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            let mut v = value.clone();
            v[..4].copy_from_slice(&(i as u32).to_be_bytes());
            send_request(
                &mut writer,
                ApiKey::Produce,
                9,
                i,
                &produce_request("ordered", batch(&[&v])),
            );
        }
    });
    let mut last_base = 0;
    for i in 0..n {
        let mut body = read_response(&mut s, ApiKey::Produce, 9).expect("a response for every request");
        let resp = kafka_protocol::messages::ProduceResponse::decode(&mut body, 9).unwrap();
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "request {i} refused");
        assert!(
            p.base_offset > last_base,
            "request {i} appended at {} after an earlier request at {last_base}",
            p.base_offset
        );
        last_base = p.base_offset;
    }
    sender.join().unwrap();
}
