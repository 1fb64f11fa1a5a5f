"""Automatic leader rebalancing: when a partition's preferred replica (the first of its
replicas) is back and caught up, its leader hands leadership back, so leaders stay spread over
the nodes after failures, without losing or duplicating a write."""

import signal
import time

from confluent_kafka.admin import AdminClient, NewTopic

from clients import wait_for
from cluster import Cluster, Stream

REBALANCE = {"RAFTSTREAM_REPLICA_LAG_TIME_MAX_MS": "1000", "RAFTSTREAM_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS": "1"}


def test_leadership_returns_to_the_preferred_replica_when_it_is_back(tmp_path):
    c = Cluster(tmp_path, env=REBALANCE).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("spread", num_partitions=3, replication_factor=3)])["spread"].result(30)

    def on_preferred(via):
        view = c.partitions("spread", via)
        return len(view) == 3 and all(leader == replicas[0] for leader, replicas, _ in view.values())
    wait_for(lambda: on_preferred(c.node(1)), "first leaders on their preferred replicas")
    preferred = c.partitions("spread", c.node(1))[0][1][0]
    s = Stream(c.bootstrap, "spread")
    wait_for(lambda: len(s.acked) >= 1000, "1000 acknowledged records")
    c.node(preferred).kill(signal.SIGKILL)
    c.wait_leader("spread", 0, not_in=(preferred,))
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "producing on with another leader")
    c.node(preferred).start()
    back = time.monotonic()
    for b in c.nodes:
        wait_for(lambda: on_preferred(b), f"node {b.node_id} seeing every leader on its preferred replica")
    print(f"leaders back on their preferred replicas {time.monotonic() - back:.1f} s after the restart")
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "producing on after the handoff")
    s.close_and_check(c.bootstrap)
    c.kill()


NO_REBALANCE = {"RAFTSTREAM_REPLICA_LAG_TIME_MAX_MS": "1000", "RAFTSTREAM_AUTO_LEADER_REBALANCE_ENABLE": "false"}


def elect(admin, election_type, partitions):
    """{(topic, partition): error code or None} of one ElectLeaders request (librdkafka's)."""
    # (confluent-kafka 2.16 fails on any keyword option of elect_leaders: none is passed.)
    result = admin.elect_leaders(election_type, partitions).result(40)
    return {(tp.topic, tp.partition): (None if err is None else err.code()) for tp, err in result.items()}


def test_elect_leaders_moves_leadership_to_the_preferred_replica_on_request(tmp_path):
    from confluent_kafka import ElectionType, KafkaError, TopicPartition
    c = Cluster(tmp_path, env=NO_REBALANCE).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("elect", num_partitions=1, replication_factor=3)])["elect"].result(30)
    c.wait_leader("elect", 0)
    preferred = c.partitions("elect", c.node(1))[0][1][0]
    tp = TopicPartition("elect", 0)
    wait_for(lambda: c.leader_of("elect", 0) == preferred, "the first leader on the preferred replica")
    assert elect(admin, ElectionType.PREFERRED, [tp]) == {("elect", 0): KafkaError.ELECTION_NOT_NEEDED}
    s = Stream(c.bootstrap, "elect")
    wait_for(lambda: len(s.acked) >= 500, "500 acknowledged records")
    c.node(preferred).kill(signal.SIGKILL)
    other = c.wait_leader("elect", 0, not_in=(preferred,))
    c.node(preferred).start()
    # With automatic rebalancing off, leadership stays where it is until asked.
    wait_for(lambda: preferred in c.partitions("elect", c.node(other))[0][2], "the preferred replica back in sync")
    assert c.leader_of("elect", 0, via=c.node(other)) == other
    before = len(s.acked)
    wait_for(lambda: elect(admin, ElectionType.PREFERRED, [tp]) == {("elect", 0): None},
             "a preferred election that moves leadership")
    for b in c.nodes:
        wait_for(lambda: c.leader_of("elect", 0, via=b) == preferred, f"node {b.node_id} seeing the preferred leader")
    # Raft has no unclean election: a partition with a leader needs none (Kafka's answer too).
    assert elect(admin, ElectionType.UNCLEAN, [tp]) == {("elect", 0): KafkaError.ELECTION_NOT_NEEDED}
    assert elect(admin, ElectionType.PREFERRED, [TopicPartition("elect", 5)]) == {
        ("elect", 5): KafkaError.UNKNOWN_TOPIC_OR_PART}
    wait_for(lambda: len(s.acked) >= before + 500, "producing on after the election")
    s.close_and_check(c.bootstrap)
    c.kill()
