//! rskafka (a second, independent client implementation) produces and consumes through the
//! real broker with every codec; records come back equal.

mod common;

use common::TestBroker;
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rskafka_produce_and_fetch_every_codec() {
    let b = TestBroker::start(&[]);
    let client = ClientBuilder::new(vec![format!("127.0.0.1:{}", b.port)])
        .build()
        .await
        .unwrap();
    client
        .controller_client()
        .unwrap()
        .create_topic("rs", 1, 1, 5_000)
        .await
        .unwrap();
    let partition = client
        .partition_client("rs", 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let codecs = [
        Compression::NoCompression,
        Compression::Gzip,
        Compression::Lz4,
        Compression::Snappy,
        Compression::Zstd,
    ];
    let mut sent = Vec::new();
    for (i, codec) in codecs.into_iter().enumerate() {
        let records: Vec<Record> = (0..10)
            .map(|j| Record {
                key: Some(format!("k{i}-{j}").into_bytes()),
                value: Some(format!("value {i}-{j}").repeat(j + 1).into_bytes()),
                headers: BTreeMap::from([("h".to_string(), vec![i as u8, j as u8])]),
                timestamp: chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + (i * 10 + j) as i64).unwrap(),
            })
            .collect();
        let offsets = partition.produce(records.clone(), codec).await.unwrap();
        assert_eq!(offsets, ((i * 10) as i64..(i * 10 + 10) as i64).collect::<Vec<_>>());
        sent.extend(records);
    }
    assert_eq!(partition.get_offset(OffsetAt::Latest).await.unwrap(), 50);
    assert_eq!(partition.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
    let mut got = Vec::new();
    let mut next = 0;
    while got.len() < sent.len() {
        let (batch, hwm) = partition.fetch_records(next, 1..1_000_000, 1_000).await.unwrap();
        assert_eq!(hwm, 50);
        for r in batch {
            assert_eq!(r.offset, got.len() as i64);
            next = r.offset + 1;
            got.push(r.record);
        }
    }
    assert_eq!(got, sent);
}
