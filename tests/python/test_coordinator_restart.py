"""The group coordinator after a restart: it replays its offsets partitions, whose replay stays
bounded by compaction however many commits were made, and brings back stable generations so
that members carry on without a rebalance."""

import re
import signal
import threading

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from broker import Broker
from clients import wait_for
from test_groups import Member

LOADED_RE = re.compile(r"offsets partition (\d+) loaded: (\d+) records in (\d+) ms")


def committed(bootstrap, group, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    got = c.committed([TopicPartition("ledger", p) for p in range(partitions)], timeout=30)
    c.close()
    return {tp.partition: (tp.offset, tp.metadata) for tp in got if tp.offset >= 0}


def test_replay_after_thousands_of_commits_is_bounded_and_exact(tmp_path):
    interval = 500
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_OFFSETS_COMPACTION_INTERVAL_RECORDS": str(interval)}).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("ledger", num_partitions=8, replication_factor=1)])["ledger"].result(30)
    groups = [f"replay-{i}" for i in range(6)]
    pending = {"n": 0}
    lock = threading.Lock()

    def on_commit(err, parts):
        assert err is None, err
        # Only the asynchronous round commits are counted (their metadata names the round).
        if parts and parts[0].metadata.count("/") == 2:
            with lock:
                pending["n"] -= 1

    consumers = {g: Consumer({"bootstrap.servers": b.bootstrap, "group.id": g, "enable.auto.commit": False,
                              "on_commit": on_commit}) for g in groups}
    expected = {g: {} for g in groups}
    # Partition 7 is committed once, early: its record must outlive every compaction.
    for g, c in consumers.items():
        c.commit(offsets=[TopicPartition("ledger", 7, 7, metadata=f"{g}/early")], asynchronous=False)
        expected[g][7] = (7, f"{g}/early")
    rounds = 400
    for r in range(rounds):
        for g, c in consumers.items():
            with lock:
                pending["n"] += 1
            c.commit(offsets=[TopicPartition("ledger", p, r * 8 + p, metadata=f"{g}/{p}/{r}") for p in range(7)],
                     asynchronous=True)
            c.poll(0)
    while pending["n"] > 0:
        for c in consumers.values():
            c.poll(0.01)
    commits = 6 + rounds * len(groups)
    for g, c in consumers.items():
        final = [TopicPartition("ledger", p, 100_000 + p, metadata=f"{g}/final/{p}") for p in range(7)]
        c.commit(offsets=final, asynchronous=False)
        expected[g].update({p: (100_000 + p, f"{g}/final/{p}") for p in range(7)})
        c.close()
    admin.delete_consumer_groups(["replay-5"])["replay-5"].result(30)
    expected["replay-5"] = {}
    for g in groups:
        assert committed(b.bootstrap, g, 8) == expected[g], g

    records_written = commits * 7
    live = sum(len(e) for e in expected.values()) + len(groups)
    bound = 3 * interval + 2 * live + 100
    probe = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "probe"})
    marks = [probe.get_watermark_offsets(TopicPartition("__consumer_offsets", p), timeout=10) for p in range(3)]
    probe.close()
    assert any(low > 0 for low, _ in marks), f"some partition was compacted: {marks}"
    assert sum(high - low for low, high in marks) < bound, f"{marks} after {records_written} records"

    b.kill(signal.SIGKILL)
    lines_before = len(b.lines)
    b.start()
    for g in groups:
        assert committed(b.bootstrap, g, 8) == expected[g], f"{g} after restart"
    loaded = [LOADED_RE.search(line) for line in b.lines[lines_before:]]
    loaded = [(int(m[1]), int(m[2]), int(m[3])) for m in loaded if m]
    assert sorted(p for p, _, _ in loaded) == [0, 1, 2], loaded
    replayed = sum(n for _, n, _ in loaded)
    assert replayed < bound, f"replayed {replayed} records of {records_written} written"
    print(f"replayed {replayed} of {records_written} records: {loaded}")
    b.kill()
    assert "panicked" not in b.log_text()


def one_per_partition(bootstrap, value):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for partition in range(4):
        p.produce("steady", value=value, partition=partition)
    assert p.flush(30) == 0


def test_stable_group_carries_on_after_coordinator_restart(tmp_path):
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS": "500"}).start()
    port = b.port
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("steady", num_partitions=4, replication_factor=1)])["steady"].result(30)
    seen = []
    members = [Member(b.bootstrap, "steady-group", "steady", f"m{i}", seen, session_timeout_ms=30000)
               for i in range(2)]
    wait_for(lambda: all(len(m.assigned) == 2 for m in members), "a two-two split")
    assignments = [list(m.assigned) for m in members]
    # Each member's commit lands after the generation record in the same partition: once both
    # members committed, the generation is durable.
    one_per_partition(b.bootstrap, b"x")
    wait_for(lambda: len(seen) == 4, "all four records consumed and committed")
    revoked_before = [list(m.revoked) for m in members]

    b.kill(signal.SIGKILL)
    assert b.port == port
    b.start()
    one_per_partition(b.bootstrap, b"y")
    wait_for(lambda: len(seen) == 8, "the members consuming again after the restart")
    described = admin.describe_consumer_groups(["steady-group"])["steady-group"].result(30)
    assert sorted(m.client_id for m in described.members) == ["m0", "m1"]
    assert [list(m.revoked) for m in members] == revoked_before, "no rebalance: nothing was revoked"
    assert [list(m.assigned) for m in members] == assignments
    assert sorted(seen) == sorted({(p, o) for p in range(4) for o in range(2)}), "each record exactly once"
    for m in members:
        m.close()
    b.kill()
    assert "panicked" not in b.log_text()
