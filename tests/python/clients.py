"""Small helpers around the real clients."""

import re
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition


def produce_all(bootstrap, topic, records, **conf):
    """Produces (key, value, headers, timestamp_ms) records; returns delivery reports in order."""
    reports = []
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})

    def cb(err, msg):
        reports.append((err, msg.partition() if msg else None, msg.offset() if msg else None, msg.value() if msg else None))

    for key, value, headers, ts in records:
        extra = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, key=key, value=value, headers=headers, on_delivery=cb, **extra)
        p.poll(0)
    remaining = p.flush(30)
    assert remaining == 0, f"{remaining} records not delivered"
    return reports


def consume_all(bootstrap, topic, partition, count, start=0, timeout=30, **conf):
    """Reads `count` records from an assigned partition starting at `start`."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "raftstream-tests", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "enable.partition.eof": False, **conf})
    c.assign([TopicPartition(topic, partition, start)])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            out.append(m)
    finally:
        c.close()
    return out


def high_watermark(bootstrap, topic, partition):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "raftstream-tests-wm"})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    finally:
        c.close()


def produce_one(bootstrap, topic, value):
    """Produces one record with acks=all; returns (error, offset)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    out = []
    p.produce(topic, value=value, on_delivery=lambda e, m: out.append((e, m.offset())))
    p.flush(10)
    return out[0]


def wait_for(cond, what, timeout=60):
    """Polls `cond` until it holds (a condition with no event to wait on), or fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^(\w+)(\{[^}]*\})?\s+(\S+)$", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def send(admin, request):
    """Sends one request through kafka-python's own connection manager (`admin` is its
    KafkaAdminClient); returns the decoded response."""
    return admin._manager.run(admin._manager.send, request)
