//! Idempotent produce over the raw protocol: a retried batch gets its original offset and is
//! stored once, a sequence gap is refused, and duplicates are still recognised after a restart.

mod common;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use std::net::TcpStream;

fn produce(s: &mut TcpStream, records: bytes::Bytes) -> (i16, i64) {
    send_request(s, ApiKey::Produce, 9, 1, &produce_request("idem", records));
    let mut body = read_response(s, ApiKey::Produce, 9).expect("produce response");
    let p = ProduceResponse::decode(&mut body, 9).unwrap().responses[0].partition_responses[0].clone();
    (p.error_code, p.base_offset)
}

fn init_producer_id(s: &mut TcpStream) -> (i64, i16) {
    send_request(
        s,
        ApiKey::InitProducerId,
        4,
        2,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000),
    );
    let mut body = read_response(s, ApiKey::InitProducerId, 4).unwrap();
    let r = InitProducerIdResponse::decode(&mut body, 4).unwrap();
    assert_eq!(r.error_code, 0);
    (r.producer_id.0, r.producer_epoch)
}

fn end_offset(s: &mut TcpStream) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("idem")))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    send_request(s, ApiKey::ListOffsets, 5, 3, &req);
    let mut body = read_response(s, ApiKey::ListOffsets, 5).unwrap();
    ListOffsetsResponse::decode(&mut body, 5).unwrap().topics[0].partitions[0].offset
}

#[test]
fn duplicates_gaps_and_restart() {
    let b = TestBroker::start(&[]);
    let mut s = b.connect();
    let (pid, epoch) = init_producer_id(&mut s);
    let (pid2, _) = init_producer_id(&mut s);
    assert_ne!(pid, pid2, "producer ids are unique");

    let first = idempotent_batch(&[b"a", b"b"], pid, epoch, 0);
    assert_eq!(produce(&mut s, first.clone()), (0, 0));
    assert_eq!(
        produce(&mut s, first.clone()),
        (0, 0),
        "a retry gets the original offset"
    );
    assert_eq!(end_offset(&mut s), 2, "and is stored once");

    // A batch ahead of the next sequence (an earlier one was refused and will be retried) is
    // refused as retriable, not OUT_OF_ORDER_SEQUENCE_NUMBER: librdkafka answers that with an
    // epoch bump that renumbers, and so duplicates, messages already in the log.
    let gap = idempotent_batch(&[b"x"], pid, epoch, 5);
    assert_eq!(produce(&mut s, gap).0, ResponseError::NotLeaderOrFollower.code());
    assert_eq!(end_offset(&mut s), 2, "nothing of it stored");
    let behind = idempotent_batch(&[b"y"], pid, epoch, 1);
    assert_eq!(
        produce(&mut s, behind).0,
        ResponseError::OutOfOrderSequenceNumber.code(),
        "a batch overlapping stored sequences is out of order"
    );
    let stale = idempotent_batch(&[b"x"], pid, epoch - 1, 2);
    assert_eq!(produce(&mut s, stale).0, ResponseError::InvalidProducerEpoch.code());

    let second = idempotent_batch(&[b"c"], pid, epoch, 2);
    assert_eq!(produce(&mut s, second.clone()), (0, 2));
    assert_eq!(end_offset(&mut s), 3);

    // After a crash and restart the state is rebuilt from the log.
    let b = b.restart(&[]);
    let mut s = b.connect();
    assert_eq!(
        produce(&mut s, second),
        (0, 2),
        "a duplicate sent before the restart is still recognised"
    );
    assert_eq!(produce(&mut s, first), (0, 0));
    assert_eq!(end_offset(&mut s), 3);
    let third = idempotent_batch(&[b"d"], pid, epoch, 3);
    assert_eq!(produce(&mut s, third), (0, 3));
    let (pid3, _) = init_producer_id(&mut s);
    assert!(pid3 > pid2, "ids stay unique across restarts");
    assert!(!b.log_text().contains("panicked"), "{}", b.log_text());
}
