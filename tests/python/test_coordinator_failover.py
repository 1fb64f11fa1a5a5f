"""The group coordinator across leadership changes of its offsets partition: a node that leads
the partition again serves what was committed while another node led it, never the offsets it
remembered from its earlier leadership (Kafka reloads a partition's groups on every election)."""

import signal

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from clients import wait_for
from cluster import Cluster

ENV = {
    "RAFTSTREAM_OFFSETS_TOPIC_NUM_PARTITIONS": "1",
    "RAFTSTREAM_REPLICA_LAG_TIME_MAX_MS": "1000",
    "RAFTSTREAM_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS": "1",
}
OFFSETS = "__consumer_offsets"


def commit(bootstrap, group, offset):
    """Commits `offset` for ledger/0 from a fresh client, which is closed afterwards (no request
    of it reaches any node later)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("ledger", 0, offset)], asynchronous=False)
    c.close()


def committed(bootstrap, group):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    got = c.committed([TopicPartition("ledger", 0)], timeout=30)
    c.close()
    return got[0].offset


def test_a_coordinator_leading_again_serves_the_commits_made_while_another_led(tmp_path):
    c = Cluster(tmp_path, env=ENV).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("ledger", num_partitions=1, replication_factor=3)])["ledger"].result(30)
    commit(c.bootstrap, "g", 10)

    def on_preferred(via):
        view = c.partitions(OFFSETS, via)
        return 0 in view and view[0][0] == view[0][1][0]
    wait_for(lambda: all(on_preferred(b) for b in c.nodes), "the offsets partition led by its preferred replica")
    first = c.leader_of(OFFSETS, 0, c.node(1))
    a = c.node(first)
    assert committed(a.bootstrap, "g") == 10

    # The coordinator stops; another node takes the offsets partition over and takes a commit.
    a.signal(signal.SIGSTOP)
    other = next(b for b in c.nodes if b is not a)
    second = c.wait_leader(OFFSETS, 0, not_in=(first,), via=other)
    commit(c.node(second).bootstrap, "g", 20)
    assert committed(c.node(second).bootstrap, "g") == 20

    # Back, it follows, and then leads again (automatic rebalancing to the preferred replica)
    # without a group request reaching it in between.
    a.signal(signal.SIGCONT)
    wait_for(lambda: all(on_preferred(b) for b in c.nodes), "the offsets partition back on its preferred replica")
    assert c.leader_of(OFFSETS, 0, a) == first
    assert committed(a.bootstrap, "g") == 20
    c.kill()
