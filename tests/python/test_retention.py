"""Retention by size drops old segments and moves the log start offset; a consumer at an old
offset gets OFFSET_OUT_OF_RANGE and resets; DeleteRecords moves the start durably."""

import os
import signal
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from broker import Broker
from clients import high_watermark, metric, produce_one, wait_for



def test_retention_bytes_and_delete_records(tmp_path):
    os.environ["RAFTSTREAM_LOG_RETENTION_CHECK_INTERVAL_MS"] = "100"
    try:
        b = Broker(tmp_path / "data").start()
    finally:
        del os.environ["RAFTSTREAM_LOG_RETENTION_CHECK_INTERVAL_MS"]
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("ret", 1, 1, config={"segment.bytes": "4096", "retention.bytes": "8192"})])["ret"].result(30)
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 0})
    for i in range(100):
        p.produce("ret", value=f"{i:04d}".encode() * 125)  # 500 bytes, one batch each
        p.flush(10)
    seg_dir = b.data_dir / "topics" / "ret-0"
    wait_for(lambda: high_watermark(b.bootstrap, "ret", 0)[0] > 0, "retention to move the log start")
    def settled():
        sizes = [f.stat().st_size for f in sorted(seg_dir.glob("*.log"))]
        return sum(sizes) - sizes[0] < 8192  # Kafka's rule: drop the oldest while the rest >= retention.bytes
    wait_for(settled, "old segments to be deleted")
    low, high = high_watermark(b.bootstrap, "ret", 0)
    assert high == 100 and 0 < low < 100
    assert metric(b.http_get("/metrics")[1], "raftstream_retention_segments_deleted_total") >= 1

    # A consumer at offset 0 is out of range and resets to the log start.
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ret", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.assign([TopicPartition("ret", 0, 0)])
    first = None
    deadline = time.monotonic() + 20
    while first is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            first = m
    c.close()
    assert first is not None and first.offset() == low
    assert first.value() == f"{low:04d}".encode() * 125

    # DeleteRecords moves the start inside a segment, durably.
    target = low + 3
    res = admin.delete_records([TopicPartition("ret", 0, target)])
    done = list(res.values())[0].result(30)
    assert done.low_watermark == target
    assert high_watermark(b.bootstrap, "ret", 0) == (target, 100)
    assert b.kill(signal.SIGTERM) == 0
    b.start()
    assert high_watermark(b.bootstrap, "ret", 0) == (target, 100), "the log start survives a restart"
    assert produce_one(b.bootstrap, "ret", b"after") == (None, 100)
    b.kill()
    assert "panicked" not in b.log_text()


def test_segment_ms_rolls_a_quiet_partition_so_retention_by_time_can_drop_it(tmp_path):
    # One small record a while: with segment.bytes at 1 GiB nothing would ever roll, and
    # retention never removes the active segment, so without segment.ms the record stays.
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_LOG_RETENTION_CHECK_INTERVAL_MS": "100"}).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("quiet", 1, 1, config={"segment.ms": "500", "retention.ms": "1000"})])["quiet"].result(30)
    assert produce_one(b.bootstrap, "quiet", b"old") == (None, 0)
    seg_dir = b.data_dir / "topics" / "quiet-0"
    # The segment ages past segment.ms (what is under test is the passing of time).
    time.sleep(0.6)
    assert produce_one(b.bootstrap, "quiet", b"new") == (None, 1)
    assert len(list(seg_dir.glob("*.log"))) == 2, "the old segment rolled before the append"
    wait_for(lambda: high_watermark(b.bootstrap, "quiet", 0) == (1, 2), "retention.ms to drop the rolled segment")
    b.kill()
    assert "panicked" not in b.log_text()
