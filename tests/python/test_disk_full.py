"""A full data dir (a small tmpfs, filled by the test): produce answers KAFKA_STORAGE_ERROR
instead of crashing the broker, nothing acknowledged is lost, and writes resume once space
returns. Needs root for the tmpfs mount."""

import os
import subprocess

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka.errors import KafkaStorageError

from broker import Broker
from clients import consume_all, metric, produce_all, wait_for

MIN_FREE = 8 << 20


@pytest.fixture
def small_disk(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(path, leave_bytes):
    """Writes a ballast file until only `leave_bytes` are free."""
    st = os.statvfs(path.parent)
    size = st.f_bavail * st.f_frsize - leave_bytes
    with open(path, "wb") as f:
        while size > 0:
            n = min(size, 1 << 20)
            f.write(b"\0" * n)
            size -= n


def produce_once(bootstrap, value):
    """One acks=all produce without client retries: the broker's own answer."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=0, max_block_ms=10000)
    try:
        return p.send("full", value=value).get(timeout=10)
    finally:
        p.close()


def taken(bootstrap, value, acked):
    """Produces `value` once: True (and `value` noted in `acked`) if the broker took it, False
    if it answered KAFKA_STORAGE_ERROR."""
    try:
        produce_once(bootstrap, value)
    except KafkaStorageError:
        return False
    acked.append(value)
    return True


def create_topic(bootstrap, name):
    """Creates topic `name` (one partition): None once created, else the error's name."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=5, request_timeout=10)[name].result(20)
        return None
    except KafkaException as e:
        return e.args[0].name()


def test_full_disk_refuses_produce_and_recovers(small_disk):
    b = Broker(small_disk / "data", env={"RAFTSTREAM_LOG_DIR_MIN_FREE_BYTES": str(MIN_FREE)}).start()
    before = [b"before-%d" % i for i in range(200)]
    reports = produce_all(b.bootstrap, "full", [(None, v, None, None) for v in before], acks="all")
    assert all(err is None for err, *_ in reports), reports[:3]
    ballast = small_disk / "ballast"
    fill(ballast, MIN_FREE // 2)
    acked = list(before)
    # Until the broker's next free-space check a produce may still be taken (and written).
    wait_for(lambda: not taken(b.bootstrap, b"while-filling", acked), "produce refused with KAFKA_STORAGE_ERROR")
    assert b.http_get("/health/live")[0] == 200 and b.proc.poll() is None
    # Metadata changes are refused too: the controller writes nothing it may fail to write.
    assert create_topic(b.bootstrap, "while-full") == "KAFKA_STORAGE_ERROR"
    ballast.unlink()
    wait_for(lambda: taken(b.bootstrap, b"after", acked), "produce accepted once space returned")
    assert create_topic(b.bootstrap, "after-full") is None
    got = consume_all(b.bootstrap, "full", 0, len(acked) + 1, timeout=5)
    assert [m.value() for m in got] == acked
    b.kill()
    assert "escalating" not in b.log_text() and "panicked" not in b.log_text()


def test_failed_controller_write_keeps_the_broker_up(tmp_path):
    """The controller group's write fails (every fsync fails while a trigger file exists, a
    debug build's test switch; a disk filling between free-space checks does the same): the
    broker stays up, refuses metadata changes with a retriable error, reopens the group once
    writes work again, and keeps what the controller held."""
    trigger = tmp_path / "fsync-fails"
    b = Broker(tmp_path / "data", env={"RS_TEST_FSYNC_FAIL_TRIGGER": str(trigger)}).start()
    assert create_topic(b.bootstrap, "kept") is None
    trigger.touch()
    assert create_topic(b.bootstrap, "refused") is not None
    controller = lambda name: metric(b.http_get("/metrics")[1], f"raftstream_controller_group_{name}_total")
    wait_for(lambda: controller("stops") >= 1, "the controller group stopping on the failed write")
    assert b.proc.poll() is None and b.http_get("/health/live")[0] == 200
    trigger.unlink()
    wait_for(lambda: create_topic(b.bootstrap, "after") is None, "a topic created once writes work again")
    reports = produce_all(b.bootstrap, "after", [(None, b"v%d" % i, None, None) for i in range(10)], acks="all")
    assert all(err is None for err, *_ in reports), reports[:3]
    assert [m.value() for m in consume_all(b.bootstrap, "after", 0, 10)] == [b"v%d" % i for i in range(10)]
    assert create_topic(b.bootstrap, "kept") == "TOPIC_ALREADY_EXISTS", "the topic made before is still known"
    assert controller("reopens") >= 1 and b.proc.poll() is None
    b.kill()
    assert "panicked" not in b.log_text()


def longest_gap_s(times, since):
    """The longest time between `since` and the first acknowledgement after it, or between two
    acknowledgements after it."""
    later = [t for t in list(times) if t > since]
    return max(b - a for a, b in zip([since] + later, later))


def test_a_leader_whose_full_disk_stops_its_groups_loses_no_client(tmp_path):
    """In a 3-node cluster the leader's data dir fills up completely: its groups (the
    controller's too) stop on ENOSPC and the others elect new leaders. A producer that knew only
    that node (bootstrapped from it, so connected to it alone) carries on with the new leader
    within seconds, not when space returns: the full node names no leader from its stale
    records, and closes a client's connection after answering Metadata, so the client asks
    another node. Nothing acknowledged is lost or duplicated."""
    import time
    from cluster import Cluster, Stream
    from test_cluster import create_rf3
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    dirs = [tmp_path / f"node{i}" for i in (1, 2, 3)]
    for d in dirs:
        d.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(d)], check=True)
    try:
        c = Cluster(tmp_path, env={"RAFTSTREAM_LOG_DIR_MIN_FREE_BYTES": str(MIN_FREE)}).start()
        leader = create_rf3(c, "full3")
        s = Stream(c.node(leader).bootstrap, "full3", {"socket.timeout.ms": 3000, "retry.backoff.ms": 100,
                                                       "retry.backoff.max.ms": 500}, pace_s=0.002)
        wait_for(lambda: len(s.acked) >= 500, "500 acknowledged records")
        ballast = dirs[leader - 1] / "ballast"
        # Full to the last byte, as a disk fills between free-space checks: the node's Raft
        # groups (the controller's too) stop on ENOSPC.
        try:
            fill(ballast, 0)
        except OSError:
            pass
        filled = time.monotonic()
        other = next(b for b in c.nodes if b.node_id != leader)
        before = len(s.acked)
        wait_for(lambda: c.leader_of("full3", 0, via=other) not in (-1, leader) and len(s.acked) >= before + 500,
                 "acknowledgements from a new leader while the disk is full", 30)
        gap_s = longest_gap_s(s.acked_at, filled)
        print(f"node {leader}'s disk filled: the longest time without an acknowledgement {gap_s:.2f} s")
        assert gap_s < 5.0, f"no acknowledgement for {gap_s:.2f} s"
        ballast.unlink()
        s.close_and_check(c.bootstrap)
        c.kill()
    finally:
        for d in dirs:
            subprocess.run(["umount", "-l", str(d)], check=False)
