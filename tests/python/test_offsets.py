"""Committed offsets of standalone (assign-style) consumers: stored in the Raft-replicated
__consumer_offsets topic, with their metadata, surviving a SIGKILL; a restarted consumer resumes
right after its last commit. Group membership (subscribe) is issue 5's remaining work."""

import signal

from confluent_kafka import OFFSET_STORED, Consumer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as KpTopicPartition
from kafka.structs import OffsetAndMetadata

from broker import Broker
from clients import consume_all, produce_all


def consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})


def test_commits_survive_kill_and_resume(tmp_path):
    b = Broker(tmp_path / "data").start()
    produce_all(b.bootstrap, "orders", [(None, f"v{i}".encode(), None, None) for i in range(100)], acks="all")
    c = consumer(b.bootstrap, "billing")
    c.assign([TopicPartition("orders", 0, 0)])
    got = []
    while len(got) < 40:
        m = c.poll(1)
        if m is not None and not m.error():
            got.append(m)
    c.commit(offsets=[TopicPartition("orders", 0, 40, metadata="after-40")], asynchronous=False)
    assert c.committed([TopicPartition("orders", 0)], timeout=10)[0].offset == 40
    c.close()
    other = consumer(b.bootstrap, "audit")
    other.commit(offsets=[TopicPartition("orders", 0, 7)], asynchronous=False)
    other.close()

    b.kill(signal.SIGKILL)
    b.start()
    c = consumer(b.bootstrap, "billing")
    committed = c.committed([TopicPartition("orders", 0)], timeout=30)[0]
    assert (committed.offset, committed.metadata) == (40, "after-40")
    c.assign([TopicPartition("orders", 0, OFFSET_STORED)])
    first = None
    while first is None:
        m = c.poll(1)
        if m is not None and not m.error():
            first = m
    assert (first.offset(), first.value()) == (40, b"v40"), "resumes right after the last commit"
    assert consumer(b.bootstrap, "audit").committed([TopicPartition("orders", 0)], timeout=10)[0].offset == 7
    unknown = consumer(b.bootstrap, "nobody").committed([TopicPartition("orders", 0)], timeout=10)[0]
    assert unknown.offset < 0, "no commit: no offset"
    c.close()
    b.kill()
    assert "panicked" not in b.log_text()


def test_kafka_python_commit_and_fetch(broker):
    produce_all(broker.bootstrap, "kp-orders", [(None, b"x", None, None)] * 10, acks="all")
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="kp-group", enable_auto_commit=False)
    tp = KpTopicPartition("kp-orders", 0)
    kc.assign([tp])
    kc.commit({tp: OffsetAndMetadata(5, "five", -1)})
    assert kc.committed(tp) == 5
    kc.close()


def test_offsets_of_empty_groups_expire(tmp_path):
    """offsets.retention.minutes=0: an empty group's offsets go at the next check; a group with
    a live member keeps its own."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from clients import wait_for
    from test_groups import Member
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_OFFSETS_RETENTION_MINUTES": "0",
                                       "RAFTSTREAM_OFFSETS_RETENTION_CHECK_INTERVAL_MS": "200",
                                       "RAFTSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"}).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("exp", num_partitions=1, replication_factor=1)])["exp"].result(30)
    seen = []
    live = Member(b.bootstrap, "live", "exp", "live", seen)
    wait_for(lambda: live.assigned == [0], "the live member's assignment")
    produce_all(b.bootstrap, "exp", [(None, b"x", None, None)], acks="all")
    wait_for(lambda: seen == [(0, 0)], "the live member consuming (and committing) its record")
    idle = consumer(b.bootstrap, "idle")
    idle.commit(offsets=[TopicPartition("exp", 0, 3)], asynchronous=False)

    def idle_offset():
        return idle.committed([TopicPartition("exp", 0)], timeout=10)[0].offset

    wait_for(lambda: idle_offset() < 0, "the empty group's offset to expire")
    live_view = consumer(b.bootstrap, "live")
    assert live_view.committed([TopicPartition("exp", 0)], timeout=10)[0].offset == 1, "a live group keeps its offsets"
    live_view.close()
    idle.close()
    live.close()
    b.kill()
    assert "panicked" not in b.log_text()
