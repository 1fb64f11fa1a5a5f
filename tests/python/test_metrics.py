"""/metrics in Prometheus text during a produce run, and /health/ready only after recovery."""

import os
import signal
import time

from confluent_kafka.admin import AdminClient, NewTopic

from broker import Broker
from clients import consume_all, metric, produce_all


def test_metrics_show_produce_fetch_and_fsync(broker):
    produce_all(broker.bootstrap, "metered", [(None, b"x" * 100, None, None)] * 500, acks="all")
    consume_all(broker.bootstrap, "metered", 0, 500)
    broker.wait_ready()  # the consumer's group may have created the offsets topic meanwhile
    status, text = broker.http_get("/metrics")
    assert status == 200
    assert metric(text, "raftstream_requests_total", api="Produce") > 0
    assert metric(text, "raftstream_requests_total", api="Fetch") > 0
    assert metric(text, "raftstream_request_duration_seconds_count", api="Produce") > 0
    assert metric(text, "raftstream_topic_bytes_in_total", topic="metered") >= 500 * 100
    assert metric(text, "raftstream_topic_bytes_out_total", topic="metered") >= 500 * 100
    assert metric(text, "raftstream_fsync_rounds_total") > 0
    assert metric(text, "raftstream_fsync_duration_seconds_count") > 0
    assert metric(text, "raftstream_fsync_round_bytes_sum") > 0
    partitions = metric(text, "raftstream_partitions")
    assert partitions >= 1 and metric(text, "raftstream_partition_leaders") == partitions


def test_ready_only_after_recovery(tmp_path):
    b = Broker(tmp_path / "data").start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("slow", num_partitions=3, replication_factor=1)])["slow"].result(30)
    assert b.http_get("/health/ready")[0] == 200
    assert b.kill(signal.SIGTERM) == 0
    os.environ["RS_DEBUG_RECOVERY_DELAY_MS"] = "1500"
    b.wait_ready = lambda timeout=30: None  # this test watches readiness itself
    try:
        b.start()
    finally:
        del os.environ["RS_DEBUG_RECOVERY_DELAY_MS"]
    assert b.http_get("/health/live")[0] == 200
    status, body = b.http_get("/health/ready")
    assert status == 503, (status, body)
    deadline = time.monotonic() + 30
    while b.http_get("/health/ready")[0] != 200:
        assert time.monotonic() < deadline, "never became ready"
        time.sleep(0.05)
    assert b.http_get("/health/ready") == (200, "ready\n")
    b.kill()
