"""Admin APIs as Kafka answers them (issue 14, item 6), through kafka-python's admin client:
manual replica assignments, DescribeLogDirs, a reassignment to the current replicas."""

from confluent_kafka import Producer
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient

from clients import send, wait_for
from cluster import Cluster

NONE, INVALID_PARTITIONS, INVALID_REPLICA_ASSIGNMENT, INVALID_REQUEST = 0, 37, 39, 42


def created(admin, topics):
    """{topic: (error_code, error_message)} of a CreateTopics request."""
    result = admin.create_topics(topics, raise_errors=False)
    return {t["name"]: (t["error_code"], t["error_message"]) for t in result["topics"]}


def grown(admin, topics):
    """{topic: error_code} of a CreatePartitions request."""
    result = admin.create_partitions(topics, raise_errors=False)
    return {r.name: r.error_code for r in result.results}


def test_manual_assignments_on_a_single_node(admin, broker):
    me = broker.node_id
    assert created(admin, {"manual": {"assignments": {0: [me], 1: [me]}}}) == {"manual": (NONE, None)}
    assert len(admin.describe_topics(["manual"])[0]["partitions"]) == 2
    codes = created(admin, {
        "with-rf": {"replication_factor": 1, "assignments": {0: [me]}},
        "unknown-node": {"assignments": {0: [me + 1]}},
        "gap": {"assignments": {1: [me]}},
        "twice": {"assignments": {0: [me, me]}},
    })
    assert {t: c for t, (c, _) in codes.items()} == {
        "with-rf": INVALID_REQUEST, "unknown-node": INVALID_REPLICA_ASSIGNMENT,
        "gap": INVALID_REPLICA_ASSIGNMENT, "twice": INVALID_REPLICA_ASSIGNMENT}, codes
    assert all(m for _, m in codes.values()), "each refusal says why"

    assert grown(admin, {"manual": {"count": 3, "assignments": [[me]]}}) == {"manual": NONE}
    assert len(admin.describe_topics(["manual"])[0]["partitions"]) == 3
    assert grown(admin, {"manual": {"count": 5, "assignments": [[me]]}}) == {"manual": INVALID_REPLICA_ASSIGNMENT}
    assert grown(admin, {"manual": 3}) == {"manual": INVALID_PARTITIONS}


def test_describe_log_dirs_reports_each_partitions_size(admin, broker):
    assert created(admin, {"dirs": {"num_partitions": 2, "replication_factor": 1}}) == {"dirs": (NONE, None)}
    p = Producer({"bootstrap.servers": broker.bootstrap})
    for _ in range(100):
        p.produce("dirs", b"x" * 1000, partition=0)
    assert p.flush(30) == 0
    (node,) = admin.describe_log_dirs(topic_partitions=["dirs"])
    (log_dir,) = node["results"] if "results" in node else node["log_dirs"]
    assert log_dir["error_code"] == 0
    assert log_dir["log_dir"] == str(broker.data_dir.resolve()), log_dir
    sizes = {p["partition_index"]: p["partition_size"] for t in log_dir["topics"] if t["name"] == "dirs"
             for p in t["partitions"]}
    assert sizes[0] >= 100 * 1000 and sizes[1] < 1000, sizes
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"], log_dir


def test_reassigning_to_the_current_replicas_changes_nothing(admin, broker):
    assert created(admin, {"stay": {"num_partitions": 1, "replication_factor": 1}}) == {"stay": (NONE, None)}
    result = admin.alter_partition_reassignments({TopicPartition("stay", 0): [broker.node_id]})
    assert result == {TopicPartition("stay", 0): None}, result
    assert admin.list_partition_reassignments() == {}


def test_manual_assignments_place_replicas_in_a_cluster(tmp_path):
    c = Cluster(tmp_path, 3).start()
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    layout = {0: [2, 3], 1: [3, 1], 2: [1, 2]}
    assert created(admin, {"placed": {"assignments": layout}}) == {"placed": (NONE, None)}
    for p, replicas in layout.items():
        wait_for(lambda: c.partitions("placed", c.node(1)).get(p, (-1, []))[:2] == (replicas[0], replicas),
                 f"partition {p} on {replicas}, led by its first replica")
    assert grown(admin, {"placed": {"count": 4, "assignments": [[3, 2]]}}) == {"placed": NONE}
    wait_for(lambda: c.partitions("placed", c.node(2)).get(3, (-1, []))[:2] == (3, [3, 2]), "partition 3 on [3, 2]")
    assert grown(admin, {"placed": {"count": 5, "assignments": [[1]]}}) == {"placed": INVALID_REPLICA_ASSIGNMENT}
    admin.close()
    c.kill()


def test_describe_configs_shows_kafkas_broker_names_sources_and_synonyms(broker):
    from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("syn", 1, 1, config={"retention.ms": "86400000"})])["syn"].result(10)
    from kafka.protocol.admin.configs import DescribeConfigsRequest as D

    raw = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    resp = send(raw, D(include_synonyms=True, resources=[D.DescribeConfigsResource(
        resource_type=2, resource_name="syn", configuration_keys=["retention.ms", "segment.bytes"])]))
    raw.close()
    entries = {c.name: c for c in resp.results[0].configs}
    retention = entries["retention.ms"]
    assert (retention.value, retention.config_source) == ("86400000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert [(s.name, s.source) for s in retention.synonyms] == [
        ("retention.ms", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), ("log.retention.ms", ConfigSource.DEFAULT_CONFIG.value)]
    segment = entries["segment.bytes"]
    assert segment.config_source == ConfigSource.DEFAULT_CONFIG.value
    assert [s.name for s in segment.synonyms] == ["log.segment.bytes"]

    (broker_future,) = admin.describe_configs([ConfigResource("broker", str(broker.node_id))]).values()
    b = broker_future.result(10)
    assert b["advertised.listeners"].value == f"PLAINTEXT://127.0.0.1:{broker.port}"
    assert b["listeners"].value.startswith("PLAINTEXT://127.0.0.1:")
    assert b["broker.id"].value == str(broker.node_id) == b["node.id"].value
    assert b["log.dirs"].value == str(broker.data_dir.resolve())
    assert b["log.dirs"].source == ConfigSource.STATIC_BROKER_CONFIG.value, "set on the command line"
    assert b["num.partitions"].source == ConfigSource.DEFAULT_CONFIG.value
    assert all(e.is_read_only for e in b.values())


def test_compression_type_makes_the_broker_store_batches_in_the_topic_codec(broker):
    """A topic's compression.type other than `producer` makes the leader rewrite each batch in
    that codec (Kafka's behaviour); both librdkafka and kafka-python read every codec back, and
    the segment files show whether the records were stored compressed."""
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    from kafka import KafkaConsumer

    from clients import consume_all, produce_all

    marker = b"raftstream-compression-marker-"
    cases = [  # (topic codec, producer codec, stored compressed)
        ("gzip", "none", True), ("snappy", "none", True), ("lz4", "gzip", True),
        ("zstd", "snappy", True), ("uncompressed", "lz4", False), ("producer", "zstd", True),
        ("producer", "none", False)]
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    topics = {f"codec-{i}": case for i, case in enumerate(cases)}
    futures = a.create_topics([NewTopic(t, 1, 1, config={"compression.type": c[0]}) for t, c in topics.items()])
    for f in futures.values():
        f.result(30)
    for topic, (topic_codec, producer_codec, compressed) in topics.items():
        values = [marker + str(i).encode() * 20 for i in range(200)]
        reports = produce_all(broker.bootstrap, topic, [(None, v, None, None) for v in values],
                              **{"compression.type": producer_codec, "linger.ms": 50})
        assert all(err is None for err, *_ in reports), (topic_codec, producer_codec, reports[:3])
        got = [m.value() for m in consume_all(broker.bootstrap, topic, 0, len(values))]
        assert got == values, f"librdkafka reads back {topic_codec} stored from {producer_codec}"
        kp = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                           consumer_timeout_ms=10000)
        read = []
        for m in kp:
            read.append(m.value)
            if len(read) == len(values):
                break
        assert read == values, f"kafka-python reads back {topic_codec}"
        kp.close()
        stored = b"".join(f.read_bytes() for f in (broker.data_dir / "topics" / f"{topic}-0").glob("*.log"))
        # Stored plain, every record's marker is in the file; compressed, at most a few
        # literal copies are (LZ codecs keep a block's first occurrence).
        copies = stored.count(marker)
        assert (copies < 20 if compressed else copies == len(values)), (topic_codec, producer_codec, copies)
    described = a.describe_configs([ConfigResource("topic", "codec-0")])
    entry = list(described.values())[0].result()["compression.type"]
    assert (entry.value, entry.is_default) == ("gzip", False)
    bad = a.create_topics([NewTopic("codec-bad", 1, 1, config={"compression.type": "brotli"})])["codec-bad"]
    try:
        bad.result(30)
        raise AssertionError("compression.type=brotli was accepted")
    except Exception as e:
        assert "INVALID_CONFIG" in str(e) or "brotli" in str(e), e
