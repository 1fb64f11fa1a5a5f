"""Durability as processes: SIGKILL mid-stream, torn and corrupt tails, supervision restarts,
graceful shutdown. Every acknowledged record must come back at its offset, byte-exact."""

import glob
import os
import signal
import threading
import time

from confluent_kafka import Producer

from broker import Broker
from clients import consume_all, high_watermark, metric, produce_one, wait_for


class AckingProducer:
    """Produces unique values with acks=all from a thread and records every acknowledgement."""

    def __init__(self, bootstrap, topic, prefix):
        self.topic = topic
        self.prefix = prefix
        self.acked = {}  # offset -> value
        self.errors = 0
        self.stop = threading.Event()
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 1,
                                  "message.timeout.ms": 5000, "retries": 0})
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _cb(self, err, msg):
        if err is None:
            assert msg.offset() not in self.acked, f"offset {msg.offset()} acknowledged twice"
            self.acked[msg.offset()] = msg.value()
        else:
            self.errors += 1

    def _run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.producer.produce(self.topic, value=f"{self.prefix}-{i}".encode() * 3, on_delivery=self._cb)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.001)

    def start(self):
        self.thread.start()
        return self

    def wait_acks(self, n, timeout=30):
        deadline = time.monotonic() + timeout
        while len(self.acked) < n:
            assert time.monotonic() < deadline, f"only {len(self.acked)} acks"
            time.sleep(0.01)

    def finish(self):
        self.stop.set()
        self.thread.join(10)
        self.producer.flush(10)


def read_partition(bootstrap, topic):
    lo, hi = high_watermark(bootstrap, topic, 0)
    msgs = consume_all(bootstrap, topic, 0, hi - lo, start=lo)
    return {m.offset(): m.value() for m in msgs}, hi


def test_sigkill_mid_stream_loses_no_acknowledged_record(tmp_path):
    b = Broker(tmp_path / "data").start()
    all_acked = {}
    for cycle in range(3):
        p = AckingProducer(b.bootstrap, "durable", f"c{cycle}").start()
        p.wait_acks(300)
        b.kill(signal.SIGKILL)  # mid-stream: the producer is still sending
        p.finish()
        overlap = set(p.acked) & set(all_acked)
        assert not overlap, f"offsets handed out twice: {sorted(overlap)[:5]}"
        all_acked.update(p.acked)
        b.start()  # same data dir, same port
        stored, end = read_partition(b.bootstrap, "durable")
        missing = [o for o, v in all_acked.items() if stored.get(o) != v]
        assert not missing, f"cycle {cycle}: {len(missing)} acknowledged records lost or changed, e.g. {missing[:5]}"
        assert end >= max(all_acked) + 1
    b.kill()
    assert "panicked" not in b.log_text()


def test_sigkill_while_segments_roll_loses_nothing_and_closed_segments_get_seals(tmp_path):
    # 4 KiB segments: a roll every few batches, so kills land between a segment's close (its
    # fsync and its seal go through the committer now) and the next append.
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_LOG_SEGMENT_BYTES": "4096"}).start()
    all_acked = {}
    for cycle in range(3):
        p = AckingProducer(b.bootstrap, "rolling", f"r{cycle}").start()
        p.wait_acks(400)
        b.kill(signal.SIGKILL)
        p.finish()
        all_acked.update(p.acked)
        b.start()
        stored, end = read_partition(b.bootstrap, "rolling")
        missing = [o for o, v in all_acked.items() if stored.get(o) != v]
        assert not missing, f"cycle {cycle}: {len(missing)} acknowledged records lost, e.g. {missing[:5]}"
        assert end >= max(all_acked) + 1
    segments = segment_files(tmp_path / "data", "rolling")
    seals = glob.glob(str(tmp_path / "data" / "topics" / "rolling-0" / "*.seal"))
    assert len(segments) > 10, "segments rolled"
    # Every closed segment is sealed but at most the one closed just before each kill.
    assert len(seals) >= len(segments) - 1 - 3, (len(seals), len(segments))
    b.kill()
    assert "panicked" not in b.log_text()


def segment_files(data_dir, topic):
    return sorted(glob.glob(str(data_dir / "topics" / f"{topic}-0" / "*.log")))


def test_torn_and_corrupt_tail_is_cut_on_restart(tmp_path):
    for damage in ("cut", "flip"):
        b = Broker(tmp_path / damage).start()
        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 0})
        for i in range(40):
            p.produce("torn", value=f"record-{i}".encode())
            p.flush(10)  # one batch (one log entry) per record
        assert b.kill(signal.SIGTERM) == 0
        seg = segment_files(b.data_dir, "torn")[-1]
        size = os.path.getsize(seg)
        with open(seg, "r+b") as f:
            if damage == "cut":
                f.truncate(size - 20)  # the middle of the last entry
            else:
                f.seek(size - 10)
                byte = f.read(1)
                f.seek(size - 10)
                f.write(bytes([byte[0] ^ 0xFF]))
        b.start()
        wait_for(lambda: metric(b.http_get("/metrics")[1], "raftstream_recovery_tail_cuts_total") >= 1,
                 "recovery cutting the damaged tail")
        stored, end = read_partition(b.bootstrap, "torn")
        assert end == 39
        assert stored == {i: f"record-{i}".encode() for i in range(39)}
        # The log goes on from the cut point.
        assert produce_one(b.bootstrap, "torn", b"after") == (None, 39)
        b.kill()
        assert "panicked" not in b.log_text()


def test_partition_actor_crash_is_supervised(tmp_path):
    b = Broker(tmp_path / "data").start()
    p = AckingProducer(b.bootstrap, "supervised", "s").start()
    p.wait_acks(200)
    b.signal(signal.SIGUSR1)  # debug builds: every partition actor panics
    wait_for(lambda: metric(b.http_get("/metrics")[1], "raftstream_actor_restarts_total") >= 1,
             "the supervisor restarting the crashed partition actor", 30)
    before = len(p.acked)
    p.wait_acks(before + 200)  # serving again after the restart
    p.finish()
    stored, _ = read_partition(b.bootstrap, "supervised")
    missing = [o for o, v in p.acked.items() if stored.get(o) != v]
    assert not missing, f"{len(missing)} acknowledged records lost across the actor restart"
    b.kill()


def test_sigterm_during_produce_exits_zero_and_keeps_acknowledged(tmp_path):
    b = Broker(tmp_path / "data").start()
    p = AckingProducer(b.bootstrap, "graceful", "g").start()
    p.wait_acks(300)
    assert b.kill(signal.SIGTERM) == 0, "a graceful shutdown exits 0"
    p.finish()
    b.start()
    stored, _ = read_partition(b.bootstrap, "graceful")
    missing = [o for o, v in p.acked.items() if stored.get(o) != v]
    assert not missing, f"{len(missing)} acknowledged records lost across a graceful restart"
    b.kill()
    assert "panicked" not in b.log_text()


def test_idempotent_producer_exactly_once_across_broker_kill(tmp_path):
    b = Broker(tmp_path / "data").start()
    n = 4000
    errors, acked = [], []
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 2, "message.timeout.ms": 120000, "retry.backoff.ms": 50})

    def cb(err, msg):
        (errors if err else acked).append(err or msg.offset())

    for i in range(n):
        while True:
            try:
                p.produce("exactly-once", value=f"{i}".encode(), on_delivery=cb)
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
        if i == n // 3:
            p.flush(30)
        if i == n // 2:
            b.kill(signal.SIGKILL)  # batches are in flight
            b.start()               # same dir, same port: the producer retries them
    assert p.flush(120) == 0
    assert not errors, errors[:3]
    assert len(acked) == n
    assert high_watermark(b.bootstrap, "exactly-once", 0) == (0, n), "no duplicate was stored"
    got = consume_all(b.bootstrap, "exactly-once", 0, n, timeout=30)
    assert [m.value().decode() for m in got] == [str(i) for i in range(n)], "every record exactly once, in order"
    b.kill()
