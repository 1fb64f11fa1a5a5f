"""The HTTP health endpoints on their own port."""

from confluent_kafka.admin import AdminClient, NewTopic


def test_live_and_ready(broker):
    assert broker.http_port and broker.http_port != broker.port
    assert broker.http_get("/health/live")[0] == 200
    assert broker.http_get("/health/ready")[0] == 200
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic("h", num_partitions=3, replication_factor=1)])["h"].result(30)
    # CreateTopics answers once the partitions have leaders, so the node is ready again.
    assert broker.http_get("/health/ready") == (200, "ready\n")
    assert broker.http_get("/nope")[0] == 404
