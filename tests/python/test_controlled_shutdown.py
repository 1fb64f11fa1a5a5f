"""A node that is asked to stop (SIGTERM) first hands the leaderships it holds to in-sync replicas,
as Kafka's controlled shutdown does, and only then stops serving clients. Before, it stopped
reading client connections first and led on while they drained: a partition it led
acknowledged nothing until the drain ended (bounded by `shutdown.timeout.ms`; 16.9 s in a chaos
run's rolling restart)."""

import signal
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.protocol.consumer.fetch import FetchRequest

from clients import metric, wait_for
from cluster import Cluster, Stream
from test_cluster import create_rf3, presend


def long_fetch(port, topic, wait_ms):
    """A connection to `port` whose one request is a Fetch of the empty `topic`/0 that waits up
    to `wait_ms` for data: it keeps that node's connection drain busy for as long."""
    part = FetchRequest.FetchTopic.FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)
    req = FetchRequest(version=4, replica_id=-1, max_wait_ms=wait_ms, min_bytes=1, max_bytes=1 << 20,
                       isolation_level=0, topics=[FetchRequest.FetchTopic(topic=topic, partitions=[part])])
    return presend(port, req)


def test_a_stopping_leader_hands_its_leaderships_over_before_it_drains(tmp_path):
    c = Cluster(tmp_path).start()
    leader = create_rf3(c, "handover")
    node = c.node(leader)
    # A partition only the stopping node holds, so nothing can take it over or wake the fetch.
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap.split(","))
    admin.create_topics([NewTopic("idle", -1, -1, replica_assignments={0: [leader]})])
    admin.close()
    c.wait_leader("idle", 0)
    s = Stream(c.bootstrap, "handover")
    wait_for(lambda: len(s.acked) >= 200, "the producer acknowledged")
    held = long_fetch(node.port, "idle", 8000)
    others = [b for b in c.nodes if b is not node]

    stopped_at = time.monotonic()
    node.signal(signal.SIGTERM)
    # Another node leads while the stopping one still drains its connections (the fetch holds
    # the drain for 8 s): the leadership moved before the drain, not after the exit.
    wait_for(lambda: c.leader_of("handover", 0, via=others[0]) not in (-1, leader),
             "another node leading the partition", 5)
    assert node.proc.poll() is None, "the node was still draining when its leadership had moved"
    # Read while it drains (the held fetch keeps it up): what the handover did.
    handaway = lambda outcome: metric(node.http_get("/metrics")[1], "raftstream_handaway_leaderships_total",
                                      outcome=outcome)
    wait_for(lambda: handaway("led") >= 1, "the handover counted", 5)
    led, moved = handaway("led"), handaway("moved")
    assert 1 <= moved < led, "the replicated partitions moved; the one held here alone could not"
    wait_for(lambda: s.acked_at and s.acked_at[-1] > stopped_at, "acknowledgements resuming", 10)
    resumed_s = s.first_ack_after(stopped_at) - stopped_at
    # The followers' lease (0.5 s), a campaign and a client retry: about a second.
    assert resumed_s < 3, f"acknowledgements resumed {resumed_s:.1f} s after SIGTERM"
    assert node.proc.wait(30) == 0
    held.close()
    node.start()
    s.close_and_check(c.bootstrap)
    c.kill()
