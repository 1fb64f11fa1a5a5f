"""`cluster.secret` (issue 17, item 6): nodes sharing it form a cluster and replicate; a node
with another secret is refused by its peers (counted) and cannot join their quorum."""

from confluent_kafka.admin import AdminClient, NewTopic

from clients import consume_all, metric, produce_all, wait_for
from cluster import Cluster


def test_nodes_sharing_the_secret_replicate_and_a_stranger_is_refused(tmp_path):
    c = Cluster(tmp_path, env={"RAFTSTREAM_CLUSTER_SECRET": "s3cret"}).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("guarded", num_partitions=1, replication_factor=3)])["guarded"].result(30)
    records = [(None, b"g%d" % i, None, None) for i in range(10)]
    reports = produce_all(c.bootstrap, "guarded", records, acks="all")
    assert all(err is None for err, *_ in reports), reports[:3]
    assert [m.value() for m in consume_all(c.nodes[1].bootstrap, "guarded", 0, 10)] == [v for _, v, _, _ in records]
    # Node 3 comes back with another secret: it and the others refuse each other's connections.
    stranger = c.nodes[2]
    stranger.kill()
    stranger.env["RAFTSTREAM_CLUSTER_SECRET"] = "wrong"
    stranger.launch()
    def refused(b):
        try:
            return metric(b.http_get("/metrics")[1], "raftstream_cluster_auth_failures_total")
        except OSError:  # the restarted node's health port is not up (or not yet known) yet
            return 0
    # Refused both ways: its connections by the others, theirs by it (whichever side dials
    # first depends on what each has to send).
    wait_for(lambda: refused(stranger) >= 1 and refused(c.nodes[0]) + refused(c.nodes[1]) + refused(stranger) >= 2,
             "the stranger refused", 30)
    # The two that share the secret still acknowledge writes (a majority of the three).
    more = produce_all(c.nodes[0].bootstrap, "guarded", [(None, b"after", None, None)], acks="all")
    assert more[0][0] is None, more
    c.kill()
