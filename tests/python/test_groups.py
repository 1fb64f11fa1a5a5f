"""Consumer groups with librdkafka's subscribe(): members share the partitions, a member that
leaves hands its partitions over, and with commits every record is consumed exactly once."""

import os
import threading
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from broker import Broker
from clients import produce_all, wait_for


def start_broker(tmp_path):
    os.environ["RAFTSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS"] = "500"
    try:
        return Broker(tmp_path / "data").start()
    finally:
        del os.environ["RAFTSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS"]


class Member:
    """A subscribed consumer polling on its own thread, committing what it processed; it records
    its assignment and every partition it was asked to give up. `conf` adds consumer settings
    (an assignor, a group.instance.id, ...)."""

    def __init__(self, bootstrap, group, topic, name, seen, session_timeout_ms=6000, **conf):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "session.timeout.ms": session_timeout_ms,
                           "heartbeat.interval.ms": 500, "client.id": name, **conf})
        self.incremental = conf.get("partition.assignment.strategy") == "cooperative-sticky"
        self.assigned = []
        self.revoked = []
        self.c.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.seen = seen
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _on_assign(self, c, parts):
        got = {p.partition for p in parts}
        self.assigned = sorted(set(self.assigned) | got if self.incremental else got)

    def _on_revoke(self, c, parts):
        gone = {p.partition for p in parts}
        self.revoked.extend(sorted(gone))
        self.assigned = sorted(set(self.assigned) - gone) if self.incremental else []

    def _run(self):
        while not self.stop.is_set():
            m = self.c.poll(0.2)
            if m is None or m.error():
                continue
            self.seen.append((m.partition(), m.offset()))
            self.c.commit(message=m, asynchronous=False)

    def close(self):
        self.stop.set()
        self.t.join(10)
        self.c.close()


def test_three_members_share_six_partitions_and_take_over(tmp_path):
    b = start_broker(tmp_path)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("jobs", num_partitions=6, replication_factor=1)])["jobs"].result(30)
    seen = []
    members = [Member(b.bootstrap, "workers", "jobs", f"m{i}", seen) for i in range(3)]
    wait_for(lambda: sorted(sum((m.assigned for m in members), [])) == list(range(6))
             and all(len(m.assigned) == 2 for m in members), "three members with two partitions each")
    produce_all(b.bootstrap, "jobs", [(f"k{i}".encode(), f"v{i}".encode(), None, None) for i in range(600)],
                acks="all", partitioner="murmur2_random")
    wait_for(lambda: len(set(seen)) == 600, "all 600 records consumed")
    # One member leaves: the other two take over its partitions.
    members[0].close()
    wait_for(lambda: sorted(members[1].assigned + members[2].assigned) == list(range(6)), "the others take over")
    produce_all(b.bootstrap, "jobs", [(f"k{i}".encode(), f"w{i}".encode(), None, None) for i in range(300)],
                acks="all", partitioner="murmur2_random")
    wait_for(lambda: len(set(seen)) == 900, "all 900 records consumed")
    for m in members[1:]:
        m.close()
    assert len(seen) == len(set(seen)) == 900, "every record exactly once"
    b.kill()
    assert "panicked" not in b.log_text()


def test_ten_members_joining_at_once_settle(tmp_path):
    b = start_broker(tmp_path)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("wide", num_partitions=10, replication_factor=1)])["wide"].result(30)
    for round_ in range(5):
        seen = []
        members = [Member(b.bootstrap, f"crowd-{round_}", "wide", f"c{i}", seen) for i in range(10)]
        wait_for(lambda: sorted(sum((m.assigned for m in members), [])) == list(range(10))
                 and all(len(m.assigned) == 1 for m in members), "ten members with one partition each")
        for m in members:
            m.close()
    b.kill()
    assert "panicked" not in b.log_text()


def test_kafka_python_group_consumer_commits_and_resumes(tmp_path):
    from kafka import KafkaConsumer
    b = start_broker(tmp_path)
    produce_all(b.bootstrap, "kp-jobs", [(None, f"r{i}".encode(), None, None) for i in range(60)], acks="all")

    def consume(n):
        kc = KafkaConsumer("kp-jobs", bootstrap_servers=b.bootstrap, group_id="kp", enable_auto_commit=False,
                           auto_offset_reset="earliest", consumer_timeout_ms=20_000)
        got = []
        for msg in kc:
            got.append(msg.value)
            if len(got) == n:
                break
        kc.commit()
        kc.close()
        return got

    assert consume(25) == [f"r{i}".encode() for i in range(25)]
    assert consume(35) == [f"r{i}".encode() for i in range(25, 60)], "resumes after the committed offset"
    b.kill()


def test_cooperative_sticky_moves_only_what_it_must(tmp_path):
    b = start_broker(tmp_path)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("coop", num_partitions=6, replication_factor=1)])["coop"].result(30)
    seen = []
    first = Member(b.bootstrap, "coop-group", "coop", "a", seen, **{"partition.assignment.strategy": "cooperative-sticky"})
    wait_for(lambda: first.assigned == list(range(6)), "the first member owning everything")
    second = Member(b.bootstrap, "coop-group", "coop", "b", seen, **{"partition.assignment.strategy": "cooperative-sticky"})
    wait_for(lambda: len(second.assigned) == 3 and len(first.assigned) == 3, "an even split")
    assert sorted(first.revoked) == sorted(second.assigned), "only the partitions that moved were revoked"
    assert second.revoked == []
    first.close()
    second.close()
    b.kill()


def test_member_killed_without_leaving_is_removed_after_session_timeout(tmp_path):
    import subprocess
    import sys
    b = start_broker(tmp_path)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("crash", num_partitions=4, replication_factor=1)])["crash"].result(30)
    script = (
        "import sys, time\n"
        "from confluent_kafka import Consumer\n"
        "c = Consumer({'bootstrap.servers': sys.argv[1], 'group.id': 'crashers', 'session.timeout.ms': 6000,"
        " 'heartbeat.interval.ms': 500})\n"
        "assigned = []\n"
        "c.subscribe(['crash'], on_assign=lambda c, p: assigned.extend(p))\n"
        "while not assigned: c.poll(0.2)\n"
        "print('assigned', flush=True)\n"
        "while True: c.poll(0.2)\n")
    doomed = subprocess.Popen([sys.executable, "-c", script, b.bootstrap], stdout=subprocess.PIPE, text=True)
    assert doomed.stdout.readline().strip() == "assigned"
    survivor = Member(b.bootstrap, "crashers", "crash", "survivor", [])
    wait_for(lambda: len(survivor.assigned) == 2, "a split with the doomed member")
    doomed.kill()  # no LeaveGroup: only its silence tells the coordinator
    doomed.wait()
    started = time.monotonic()
    wait_for(lambda: survivor.assigned == [0, 1, 2, 3], "the survivor taking everything", timeout=30)
    assert time.monotonic() - started >= 3, "removed by session timeout, not at once"
    survivor.close()
    b.kill()


def test_admin_lists_describes_and_deletes_groups(tmp_path):
    from confluent_kafka import ConsumerGroupState, TopicPartition
    b = start_broker(tmp_path)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("seen", num_partitions=2, replication_factor=1)])["seen"].result(30)
    live = Member(b.bootstrap, "live-group", "seen", "live-client", [])
    wait_for(lambda: live.assigned == [0, 1], "the live member's assignment")
    idle = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "idle-group"})
    idle.commit(offsets=[TopicPartition("seen", 0, 3)], asynchronous=False)
    idle.close()

    listed = admin.list_consumer_groups().result(30)
    states = {g.group_id: g.state for g in listed.valid}
    assert states["live-group"] == ConsumerGroupState.STABLE
    assert states["idle-group"] == ConsumerGroupState.EMPTY

    described = admin.describe_consumer_groups(["live-group"])["live-group"].result(30)
    assert described.state == ConsumerGroupState.STABLE
    assert [m.client_id for m in described.members] == ["live-client"]
    assert sorted(tp.partition for tp in described.members[0].assignment.topic_partitions) == [0, 1]

    with __import__("pytest").raises(Exception) as busy:
        admin.delete_consumer_groups(["live-group"])["live-group"].result(30)
    assert "NON_EMPTY_GROUP" in str(busy.value)
    admin.delete_consumer_groups(["idle-group"])["idle-group"].result(30)
    gone = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "idle-group"})
    assert gone.committed([TopicPartition("seen", 0)], timeout=10)[0].offset < 0, "its offsets are deleted"
    gone.close()
    assert "idle-group" not in {g.group_id for g in admin.list_consumer_groups().result(30).valid}
    live.close()
    b.kill()


def test_static_member_restart_keeps_its_partitions_without_rebalance(tmp_path):
    b = start_broker(tmp_path)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("static", num_partitions=4, replication_factor=1)])["static"].result(30)
    a = Member(b.bootstrap, "statics", "static", "instance-a", [], session_timeout_ms=15000, **{"group.instance.id": "instance-a"})
    other = Member(b.bootstrap, "statics", "static", "instance-b", [], session_timeout_ms=15000, **{"group.instance.id": "instance-b"})
    wait_for(lambda: len(a.assigned) == 2 and len(other.assigned) == 2, "a two-two split")
    before = list(a.assigned)
    revoked_before = list(other.revoked)
    a.close()  # a static member's close sends no LeaveGroup: the coordinator keeps its place
    a2 = Member(b.bootstrap, "statics", "static", "instance-a", [], session_timeout_ms=15000, **{"group.instance.id": "instance-a"})
    wait_for(lambda: a2.assigned == before, "the restarted member getting its partitions back")
    assert other.revoked == revoked_before, "the other member was not rebalanced"
    assert len(other.assigned) == 2
    a2.close()
    other.close()
    b.kill()
