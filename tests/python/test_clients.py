"""Real clients produce and consume through raftstream: librdkafka (confluent-kafka) with every
acks setting and codec, and kafka-python; what comes back equals what was sent."""

import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KpTopicPartition

from clients import consume_all, produce_all

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def records(n, tag):
    base_ts = int(time.time() * 1000) - 10_000
    return [(f"key-{tag}-{i}".encode(), f"value-{tag}-{i}-".encode() * (1 + i % 7), [("h", f"{i}".encode()), ("x", b"")], base_ts + i)
            for i in range(n)]


@pytest.mark.parametrize("acks", ["0", "1", "all"])
@pytest.mark.parametrize("codec", CODECS)
def test_librdkafka_round_trip(broker, acks, codec):
    topic = f"rt-{codec}-{acks}"
    sent = records(200, topic)
    reports = produce_all(broker.bootstrap, topic, sent, acks=acks, **{"compression.type": codec})
    assert all(err is None for err, *_ in reports), reports[:3]
    if acks != "0":
        offsets = sorted(off for _, _, off, _ in reports)
        assert offsets == list(range(200)), "each acknowledged record has its own offset, from 0"
    got = consume_all(broker.bootstrap, topic, 0, 200)
    assert [m.offset() for m in got] == list(range(200))
    assert [(m.key(), m.value(), m.headers(), m.timestamp()[1]) for m in got] == [(k, v, h, ts) for k, v, h, ts in sent]


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_round_trip(broker, codec):
    topic = f"kp-{codec}"
    # kafka-python 3 turns idempotence on by default (InitProducerId + sequences).
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", compression_type=codec, linger_ms=5)
    sent = records(100, topic)
    futures = [producer.send(topic, key=k, value=v, headers=h, timestamp_ms=ts) for k, v, h, ts in sent]
    producer.flush(30)
    metas = [f.get(timeout=30) for f in futures]
    assert sorted(m.offset for m in metas) == list(range(100))
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000)
    tp = KpTopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
    got = []
    for msg in consumer:
        got.append(msg)
        if len(got) == 100:
            break
    consumer.close()
    assert [(m.key, m.value, [(k, v) for k, v in m.headers], m.timestamp) for m in got] == [(k, v, h, ts) for k, v, h, ts in sent]


def test_create_describe_delete_topics(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    fs = admin.create_topics([NewTopic("multi", num_partitions=4, replication_factor=1)])
    fs["multi"].result(30)
    md = admin.list_topics(timeout=10)
    assert sorted(md.topics["multi"].partitions) == [0, 1, 2, 3]
    assert all(p.leader == broker.node_id for p in md.topics["multi"].partitions.values())
    with pytest.raises(Exception) as dup:
        admin.create_topics([NewTopic("multi", num_partitions=1, replication_factor=1)])["multi"].result(30)
    assert "TOPIC_ALREADY_EXISTS" in str(dup.value)
    with pytest.raises(Exception) as rf:
        admin.create_topics([NewTopic("rf3", num_partitions=1, replication_factor=3)])["rf3"].result(30)
    assert "INVALID_REPLICATION_FACTOR" in str(rf.value)
    with pytest.raises(Exception) as bad:
        admin.create_topics([NewTopic("bad/name", num_partitions=1, replication_factor=1)])["bad/name"].result(30)
    assert "TOPIC_EXCEPTION" in str(bad.value)  # INVALID_TOPIC_EXCEPTION, code 17
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for p in range(4):
        producer.produce("multi", value=f"p{p}".encode(), partition=p)
    assert producer.flush(30) == 0
    for p in range(4):
        assert [m.value() for m in consume_all(broker.bootstrap, "multi", p, 1)] == [f"p{p}".encode()]
    admin.delete_topics(["multi"])["multi"].result(30)
    assert "multi" not in admin.list_topics(timeout=10).topics


def test_list_offsets_earliest_latest_and_by_time(broker):
    from confluent_kafka import Consumer, TopicPartition
    base = int(time.time() * 1000) - 100_000
    sent = [(None, f"v{i}".encode(), None, base + i * 1000) for i in range(50)]
    produce_all(broker.bootstrap, "times", sent, acks="all", **{"linger.ms": 0, "batch.num.messages": 1})
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "lo"})
    lo, hi = c.get_watermark_offsets(TopicPartition("times", 0), timeout=10)
    assert (lo, hi) == (0, 50)
    found = c.offsets_for_times([TopicPartition("times", 0, base + 20_000)], timeout=10)
    assert found[0].offset == 20
    after = c.offsets_for_times([TopicPartition("times", 0, base + 1_000_000)], timeout=10)
    assert after[0].offset in (-1, 50)
    c.close()
