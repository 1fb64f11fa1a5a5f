//! Bad input over raw TCP: every malformed frame gets an error code or a closed connection,
//! the broker keeps serving a healthy client on another connection, and nothing panics.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, ProduceResponse};
use kafka_protocol::protocol::Decodable;
use std::io::Write;

fn healthy(b: &TestBroker) {
    let md = b.metadata();
    assert_eq!(
        md.cluster_id.as_ref().map(|s| s.to_string()).as_deref(),
        Some(b.cluster_id.as_str())
    );
}

fn raw(b: &TestBroker, bytes: &[u8]) -> std::net::TcpStream {
    let mut s = b.connect();
    s.write_all(bytes).unwrap();
    s
}

fn produce(b: &TestBroker, records: Bytes) -> i16 {
    let mut s = b.connect();
    send_request(&mut s, ApiKey::Produce, 9, 5, &produce_request("raw", records));
    let mut body = read_response(&mut s, ApiKey::Produce, 9).expect("produce response");
    let resp = ProduceResponse::decode(&mut body, 9).unwrap();
    resp.responses[0].partition_responses[0].error_code
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let mut b = TestBroker::start(&[]);
    for len in [0i32, 1, 2, 3, 7, -1, i32::MIN, 200 * 1024 * 1024] {
        let mut s = raw(&b, &len.to_be_bytes());
        assert!(closed(&mut s), "frame length {len} must close the connection");
        healthy(&b);
    }
    // A partial length prefix then EOF.
    drop(raw(&b, &[0, 0]));
    healthy(&b);

    let mut frame = BytesMut::new();
    frame.put_i32(12);
    frame.put_i16(999); // unknown api key
    frame.put_i16(0);
    frame.put_i32(1);
    frame.put_i16(-1);
    frame.put_i16(0);
    let mut s = raw(&b, &frame);
    assert!(closed(&mut s), "unknown api key closes");
    healthy(&b);

    // Produce v99 is outside our range: closed.
    let mut s = b.connect();
    send_raw_request(&mut s, ApiKey::Produce as i16, 99, 1, &[0, 0, 0, 0]);
    assert!(closed(&mut s), "unsupported produce version closes");
    healthy(&b);

    // A garbage body after a valid header: one topic whose name claims 0x7000 bytes. (Bytes
    // after a complete body are tolerated: librdkafka sends some.)
    let mut frame = BytesMut::new();
    let body = [0u8, 0, 0, 1, 0x70, 0x00, b'a', b'b'];
    frame.put_i32(8 + 2 + body.len() as i32);
    frame.put_i16(ApiKey::Metadata as i16);
    frame.put_i16(4);
    frame.put_i32(3);
    frame.put_i16(-1); // null client id
    frame.extend_from_slice(&body);
    let mut s = raw(&b, &frame);
    assert!(closed(&mut s), "garbage body closes");
    healthy(&b);

    // An array that claims two billion elements in a few bytes must not allocate them.
    let mut frame = BytesMut::new();
    frame.put_i32(8 + 2 + 4 + 1);
    frame.put_i16(ApiKey::Metadata as i16);
    frame.put_i16(4);
    frame.put_i32(4);
    frame.put_i16(-1);
    frame.put_i32(i32::MAX);
    frame.put_u8(0);
    let mut s = raw(&b, &frame);
    assert!(closed(&mut s), "impossible array length closes");
    healthy(&b);

    assert!(b.child.try_wait().unwrap().is_none(), "broker still running");
    assert!(!b.log_text().contains("panicked"), "{}", b.log_text());
}

#[test]
fn api_versions_above_our_range_gets_v0_fallback() {
    let b = TestBroker::start(&[]);
    let mut s = b.connect();
    // A future version whose body we cannot know: the header's first fields are enough.
    send_raw_request(&mut s, ApiKey::ApiVersions as i16, 99, 42, &[0, 0, 0, 0, 0]);
    let frame = read_frame(&mut s).expect("a response, not a close");
    assert_eq!(correlation_id(&frame), 42);
    let mut body = frame.slice(4..);
    let resp = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(resp.error_code, ResponseError::UnsupportedVersion.code());
    let keys: Vec<i16> = resp.api_keys.iter().map(|k| k.api_key).collect();
    assert!(
        keys.contains(&(ApiKey::Produce as i16)) && keys.contains(&(ApiKey::Fetch as i16)),
        "{keys:?}"
    );
    let av = resp
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .unwrap();
    assert_eq!((av.min_version, av.max_version), (0, 4));
    // The same connection goes on working at a version we serve.
    send_request(&mut s, ApiKey::ApiVersions, 3, 43, &ApiVersionsRequest::default());
    let mut body = read_response(&mut s, ApiKey::ApiVersions, 3).unwrap();
    assert_eq!(ApiVersionsResponse::decode(&mut body, 3).unwrap().error_code, 0);
}

#[test]
fn bad_batches_get_kafka_error_codes() {
    let b = TestBroker::start(&[]);
    let good = batch(&[b"hello", b"world"]);
    assert_eq!(produce(&b, good.clone()), 0);

    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x5a;
    assert_eq!(produce(&b, bad_crc.freeze()), ResponseError::CorruptMessage.code());

    let truncated = good.slice(..good.len() - 3);
    assert_eq!(produce(&b, truncated), ResponseError::CorruptMessage.code());

    let big_value = vec![7u8; 1_100_000];
    assert_eq!(produce(&b, batch(&[&big_value])), ResponseError::MessageTooLarge.code());

    assert_eq!(produce(&b, good), 0, "the partition still accepts good batches");
    healthy(&b);
    assert!(!b.log_text().contains("panicked"), "{}", b.log_text());
}
