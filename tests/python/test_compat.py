"""Protocol details real client suites check (issue 14): null error messages on success, a
transactional producer that fails at once with a clear error, ListOffsets by timestamp inside
a batch and v0 for old clients."""

import time

import pytest
from confluent_kafka import KafkaException, Producer
from kafka.admin import KafkaAdminClient
from kafka.protocol.admin.configs import AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest
from kafka.protocol.admin.topics import ListPartitionReassignmentsRequest
from kafka.protocol.metadata.find_coordinator import FindCoordinatorRequest

TOPIC = 2  # config resource type


@pytest.fixture
def admin(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    yield a
    a.close()


def send(admin, request):
    """Sends a request through kafka-python's own connection manager; returns the response."""
    return admin._manager.run(admin._manager.send, request)


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

    for codec in ("none", "lz4"):
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
