"""Protocol details real client suites check (issue 14): null error messages on success, a
transactional producer that fails at once with a clear error, ListOffsets by timestamp inside
a batch, and the timestamp topic configs."""

import time

import pytest
from confluent_kafka import KafkaException, Producer
from kafka.protocol.admin.configs import AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest
from kafka.protocol.admin.topics import ListPartitionReassignmentsRequest
from kafka.protocol.metadata.find_coordinator import FindCoordinatorRequest

from clients import send

TOPIC = 2  # config resource type


def test_error_messages_are_null_on_success(admin):
    created = admin.create_topics({"nulls": {"num_partitions": 1, "replication_factor": 1}})
    assert created["topics"][0]["error_code"] == 0
    assert created["topics"][0]["error_message"] is None, created

    found = send(admin, FindCoordinatorRequest[3](key_type=0, key="g"))
    assert (found.error_code, found.error_message) == (0, None), found
    found = send(admin, FindCoordinatorRequest[4](key_type=0, coordinator_keys=["g"]))
    assert [(c.error_code, c.error_message) for c in found.coordinators] == [(0, None)], found

    D = DescribeConfigsRequest
    described = send(admin, D(resources=[D.DescribeConfigsResource(
        resource_type=TOPIC, resource_name="nulls", configuration_keys=["retention.ms"])]))
    assert [(r.error_code, r.error_message) for r in described.results] == [(0, None)], described
    assert described.results[0].configs[0].documentation is None, "documentation was not asked for"

    I = IncrementalAlterConfigsRequest
    altered = send(admin, I(resources=[I.AlterConfigsResource(
        resource_type=TOPIC, resource_name="nulls",
        configs=[I.AlterConfigsResource.AlterableConfig(name="retention.ms", config_operation=0, value="3600000")])]))
    assert [(r.error_code, r.error_message) for r in altered.responses] == [(0, None)], altered

    A = AlterConfigsRequest
    altered = send(admin, A(resources=[A.AlterConfigsResource(
        resource_type=TOPIC, resource_name="nulls",
        configs=[A.AlterConfigsResource.AlterableConfig(name="retention.ms", value="7200000")])]))
    assert [(r.error_code, r.error_message) for r in altered.responses] == [(0, None)], altered

    listed = send(admin, ListPartitionReassignmentsRequest(topics=None, timeout_ms=5000))
    assert (listed.error_code, listed.error_message) == (0, None), listed


def test_transactional_producer_fails_at_once_with_a_clear_error(broker):
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": "tx-1"})
    started = time.monotonic()
    with pytest.raises(KafkaException) as raised:
        p.init_transactions(30)
    err = raised.value.args[0]
    assert time.monotonic() - started < 10, "it waited for its timeout: the error was retriable"
    assert err.fatal() and not err.retriable(), err
    assert "transactions are not supported" in err.str(), err


def test_list_offsets_by_timestamp_finds_the_record_inside_a_batch(broker):
    """librdkafka's 0054: two records with timestamps 1234 and 999999999999 in one batch."""
    from confluent_kafka import Consumer, TopicPartition

    for codec in ("none",):
        topic = f"times-{codec}"
        p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 200, "compression.type": codec})
        for ts in (1234, 999999999999):
            p.produce(topic, b"v", partition=0, timestamp=ts)
        assert p.flush(30) == 0
        c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "times"})
        found = c.offsets_for_times([TopicPartition(topic, 0, 999999999999)], timeout=10)
        assert found[0].offset == 1, f"{codec}: {found}"
        found = c.offsets_for_times([TopicPartition(topic, 0, 1000)], timeout=10)
        assert found[0].offset == 0, f"{codec}: {found}"
        c.assign([TopicPartition(topic, 0, 0)])
        got = [c.poll(10) for _ in range(2)]
        assert [m.timestamp()[1] for m in got] == [1234, 999999999999], got
        c.close()


def test_list_offsets_v0_answers_old_clients(broker):
    """kafka-python pinned to Kafka 0.10.0 asks ListOffsets v0 (old-style offset lists) for a
    partition's ends, as clients older than KIP-79 do."""
    from kafka import KafkaConsumer, TopicPartition

    from clients import produce_all

    reports = produce_all(broker.bootstrap, "old-client", [(None, b"v%d" % i, None, None) for i in range(7)])
    assert [off for _, _, off, _ in reports] == list(range(7))
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, api_version=(0, 10, 0))
    tp = TopicPartition("old-client", 0)
    assert c.end_offsets([tp]) == {tp: 7}
    assert c.beginning_offsets([tp]) == {tp: 0}
    c.close()


def test_log_append_time_topics_stamp_the_brokers_time(broker):
    from confluent_kafka import Consumer, TopicPartition, TIMESTAMP_LOG_APPEND_TIME
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("appended", 1, 1, config={"message.timestamp.type": "LogAppendTime"})])[
        "appended"].result(10)
    reports = []
    p = Producer({"bootstrap.servers": broker.bootstrap})
    before_ms = int(time.time() * 1000)
    p.produce("appended", b"v", timestamp=1234, on_delivery=lambda err, msg: reports.append((err, msg.timestamp())))
    assert p.flush(30) == 0
    after_ms = int(time.time() * 1000)
    (err, (kind, stamped)), = reports
    assert err is None and kind == TIMESTAMP_LOG_APPEND_TIME, reports
    assert before_ms - 1000 <= stamped <= after_ms + 1000, (before_ms, stamped, after_ms)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "appended"})
    c.assign([TopicPartition("appended", 0, 0)])
    m = c.poll(10)
    assert m is not None and m.timestamp() == (TIMESTAMP_LOG_APPEND_TIME, stamped), m and m.timestamp()
    c.close()


def test_create_time_bounds_refuse_records_too_far_from_the_brokers_clock(broker):
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    hour_ms = 3_600_000
    admin.create_topics([NewTopic("bounded", 1, 1, config={"message.timestamp.before.max.ms": str(hour_ms),
                                                           "message.timestamp.after.max.ms": str(hour_ms)})])[
        "bounded"].result(10)
    now_ms = int(time.time() * 1000)
    outcomes = {}
    p = Producer({"bootstrap.servers": broker.bootstrap, "retries": 0})
    for name, ts in (("now", now_ms), ("old", now_ms - 2 * hour_ms), ("ahead", now_ms + 2 * hour_ms)):
        p.produce("bounded", name.encode(), timestamp=ts,
                  on_delivery=lambda err, msg, name=name: outcomes.__setitem__(name, err and err.code()))
        p.flush(30)
    assert outcomes == {"now": None, "old": KafkaError.INVALID_TIMESTAMP, "ahead": KafkaError.INVALID_TIMESTAMP}


def test_accepted_and_refused_topic_configs(broker):
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    accepted = {"segment.index.bytes": "4096", "flush.messages": "1", "flush.ms": "1000",
                "unclean.leader.election.enable": "false", "message.timestamp.type": "CreateTime",
                "message.timestamp.difference.max.ms": "60000"}
    admin.create_topics([NewTopic("configured", 1, 1, config=accepted)])["configured"].result(10)
    described = admin.describe_configs([ConfigResource("topic", "configured")])
    entries = list(described.values())[0].result(10)
    assert {k: entries[k].value for k in accepted} == accepted
    with pytest.raises(KafkaException) as refused:
        admin.create_topics([NewTopic("unclean", 1, 1, config={"unclean.leader.election.enable": "true"})])[
            "unclean"].result(10)
    assert "Raft" in str(refused.value), refused.value
