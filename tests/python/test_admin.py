"""Admin client (confluent-kafka) against topic configs, partitions and the cluster: every
change shows in DescribeConfigs/Metadata and in behaviour, without restart."""

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic)

from clients import consume_all


def describe(admin, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return admin.describe_configs([res])[res].result(30)


def produce_one(bootstrap, topic, value, partition=0):
    # No retries: the test wants the broker's own error code, not a client-side timeout.
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 1000000, "retries": 0})
    outcome = []
    p.produce(topic, value=value, partition=partition, on_delivery=lambda e, m: outcome.append(e))
    p.flush(30)
    return outcome[0]


def test_topic_configs_partitions_and_cluster(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("cfg", num_partitions=1, replication_factor=1,
                                  config={"max.message.bytes": "50000", "segment.bytes": "65536"})])["cfg"].result(30)
    configs = describe(admin, "cfg")
    assert configs["max.message.bytes"].value == "50000"
    assert configs["max.message.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].value == "65536"
    assert configs["min.insync.replicas"].value == "1"
    assert configs["min.insync.replicas"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"

    assert produce_one(broker.bootstrap, "cfg", b"x" * 20000) is None
    # Incrementally lower the limit: the next produce is refused, no restart.
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg", incremental_configs=[
        ConfigEntry("max.message.bytes", "10000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)
    assert describe(admin, "cfg")["max.message.bytes"].value == "10000"
    err = produce_one(broker.bootstrap, "cfg", b"x" * 20000)
    assert err is not None and err.name() == "MSG_SIZE_TOO_LARGE", err
    # DELETE returns it to the broker default.
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg", incremental_configs=[
        ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([res])[res].result(30)
    assert describe(admin, "cfg")["max.message.bytes"].value == "1048576"

    # min.insync.replicas above what one node can have: acks=all fails fast.
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg", incremental_configs=[
        ConfigEntry("min.insync.replicas", "2", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(30)
    err = produce_one(broker.bootstrap, "cfg", b"y")
    assert err is not None and err.name() == "NOT_ENOUGH_REPLICAS", err

    # Invalid configs are refused with INVALID_CONFIG and nothing changes.
    for key, value in [("no.such.config", "1"), ("segment.bytes", "12"), ("max.message.bytes", "lots"),
                       ("cleanup.policy", "compact"), ("retention.ms", "-5")]:
        res = ConfigResource(ConfigResource.Type.TOPIC, "cfg", incremental_configs=[
            ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
        with pytest.raises(KafkaException) as e:
            admin.incremental_alter_configs([res])[res].result(30)
        assert e.value.args[0].name() == "INVALID_CONFIG", (key, e.value)
    with pytest.raises(KafkaException) as e:
        admin.create_topics([NewTopic("badcfg", 1, 1, config={"retention.bytes": "x"})])["badcfg"].result(30)
    assert e.value.args[0].name() == "INVALID_CONFIG"
    assert describe(admin, "cfg")["segment.bytes"].value == "65536"

    # Legacy AlterConfigs replaces the whole set.
    res = ConfigResource(ConfigResource.Type.TOPIC, "cfg", set_config={"segment.bytes": "131072"})
    admin.alter_configs([res])[res].result(30)
    configs = describe(admin, "cfg")
    assert configs["segment.bytes"].value == "131072"
    assert configs["min.insync.replicas"].value == "1", "overrides not in the new set are dropped"

    # More partitions: in Metadata and writable.
    admin.create_partitions([NewPartitions("cfg", 3)])["cfg"].result(30)
    md = admin.list_topics("cfg", timeout=10)
    assert sorted(md.topics["cfg"].partitions) == [0, 1, 2]
    assert produce_one(broker.bootstrap, "cfg", b"p2", partition=2) is None
    assert [m.value() for m in consume_all(broker.bootstrap, "cfg", 2, 1)] == [b"p2"]
    with pytest.raises(KafkaException) as e:
        admin.create_partitions([NewPartitions("cfg", 2)])["cfg"].result(30)
    assert e.value.args[0].name() == "INVALID_PARTITIONS"

    # Broker configs are described, read-only.
    res = ConfigResource(ConfigResource.Type.BROKER, str(broker.node_id))
    broker_configs = admin.describe_configs([res])[res].result(30)
    assert broker_configs["message.max.bytes"].value == "1048576"
    assert broker_configs["message.max.bytes"].is_read_only

    cluster = admin.describe_cluster().result(30)
    assert cluster.cluster_id == broker.cluster_id
    assert cluster.controller.id == broker.node_id
    assert [n.id for n in cluster.nodes] == [broker.node_id]


def test_segment_bytes_rolls_segments(broker, tmp_path):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("small-segments", 1, 1, config={"segment.bytes": "4096"})])["small-segments"].result(30)
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 0})
    for i in range(40):
        p.produce("small-segments", value=b"v" * 500)
        p.flush(10)
    segments = list((broker.data_dir / "topics" / "small-segments-0").glob("*.log"))
    assert len(segments) >= 4, segments
    assert len(consume_all(broker.bootstrap, "small-segments", 0, 40)) == 40
