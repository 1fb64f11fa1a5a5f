"""Nodes that start one by one (issue 14, item 8): a node whose peers are not up keeps waiting
(saying so every few seconds, live but not ready) instead of giving up after 30 s, so the same
command forms a cluster whether its nodes start together or one after another."""

import time

from confluent_kafka.admin import AdminClient, NewTopic

from clients import wait_for
from cluster import Cluster, Stream

ALONE_S = 35  # longer than the 30 s after which a lone node used to exit


def test_a_node_waits_for_its_peers_and_the_cluster_forms_when_they_come(tmp_path):
    c = Cluster(tmp_path, 3)
    first = c.node(1).launch()
    wait_for(lambda: first.http_port is not None, "node 1's health endpoint")
    started = time.monotonic()
    while time.monotonic() - started < ALONE_S:
        assert first.proc.poll() is None, "node 1 gave up:\n" + "\n".join(first.lines[-20:])
        assert first.http_get("/health/live")[0] == 200
        status, body = first.http_get("/health/ready")
        assert status == 503, body
        time.sleep(0.5)
    waiting = [line for line in first.lines if "waiting for peers" in line]
    assert len(waiting) >= ALONE_S // 10, "it says every few seconds what it waits for"

    c.node(2).launch()
    first.await_started(60)
    c.node(2).await_started(60)
    # The third node comes after the other two formed the cluster.
    c.node(3).launch().await_started(60)
    assert len({b.cluster_id for b in c.nodes}) == 1, [b.cluster_id for b in c.nodes]

    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("late", 1, 3)])["late"].result(30)
    wait_for(lambda: c.partitions("late", c.node(3)).get(0, (-1, [], []))[2] == [1, 2, 3],
             "every replica in sync")
    stream = Stream(c.bootstrap, "late")
    wait_for(lambda: len(stream.acked) >= 200, "acknowledged writes")
    stream.close_and_check(c.node(3).bootstrap)
    for b in c.nodes:
        b.kill()
