"""Three raftstream processes form a cluster: every partition is replicated by its own Raft
group across them, every node answers every API, and losing the leader of a partition loses no
acknowledged write."""

import signal
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient

from clients import metric, wait_for
from cluster import Cluster, Stream, read_all


def test_three_nodes_form_a_cluster_and_agree_on_metadata(tmp_path):
    c = Cluster(tmp_path).start()
    admin = AdminClient({"bootstrap.servers": c.node(2).bootstrap})
    admin.create_topics([NewTopic("agreed", num_partitions=6, replication_factor=3)])["agreed"].result(30)
    views = {}

    def agree():
        for b in c.nodes:
            views[b.node_id] = c.partitions("agreed", b)
        first = views[1]
        return (len(first) == 6 and all(leader > 0 for leader, _, _ in first.values())
                and all(v == first for v in views.values()))
    wait_for(agree, "every node reporting the same leaders and replicas")
    md = AdminClient({"bootstrap.servers": c.node(3).bootstrap}).list_topics(timeout=10)
    assert sorted(md.brokers) == [1, 2, 3]
    controllers = {AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).controller_id
                   for b in c.nodes}
    assert len(controllers) == 1 and controllers <= {1, 2, 3}, f"one controller leader: {controllers}"
    assert {md.brokers[i].port for i in (1, 2, 3)} == {b.port for b in c.nodes}
    for leader, replicas, isr in views[1].values():
        assert sorted(replicas) == [1, 2, 3] and leader in replicas
    # Replica order (the preferred leader first) spreads over the nodes, and a new partition's
    # first leader is its preferred replica: leaders spread too.
    assert {replicas[0] for _, replicas, _ in views[1].values()} == {1, 2, 3}
    assert all(leader == replicas[0] for leader, replicas, _ in views[1].values()), views[1]
    with __import__("pytest").raises(Exception) as too_many:
        admin.create_topics([NewTopic("too-many", num_partitions=1, replication_factor=4)])["too-many"].result(30)
    assert "INVALID_REPLICATION_FACTOR" in str(too_many.value)
    c.kill()


def test_leader_killed_mid_stream_loses_no_acknowledged_write(tmp_path):
    c = Cluster(tmp_path).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("stream", num_partitions=1, replication_factor=3)])["stream"].result(30)
    leader = c.wait_leader("stream", 0)
    s = Stream(c.bootstrap, "stream")
    wait_for(lambda: len(s.acked) >= 2000, "2000 acknowledged records")
    c.node(leader).kill(signal.SIGKILL)
    killed_at = time.monotonic()
    new_leader = c.wait_leader("stream", 0, not_in=(leader,))
    failover_s = time.monotonic() - killed_at
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 2000, "the producer continuing with the new leader")
    s.close()
    print(f"leader {leader} killed; node {new_leader} leads after {failover_s:.2f} s")
    assert failover_s < 2.0, f"failover took {failover_s:.2f} s"
    c.node(leader).start()
    # Everything acknowledged is there exactly once and in order; nothing failed.
    assert s.failed == []
    values = read_all(c.bootstrap, "stream", len(s.acked))
    assert values == sorted(set(values)), "no duplicates, in order"
    assert set(s.acked) <= set(values), f"{len(set(s.acked) - set(values))} acknowledged records missing"
    c.kill()


def test_nodes_without_a_replica_stop_naming_a_dead_leader(tmp_path):
    """A node that holds no replica of a partition knows its leader from the controller's
    record; once that leader's node is unheard it answers LEADER_NOT_AVAILABLE instead of
    sending clients to it (it named the dead node until the next leader report)."""
    c = Cluster(tmp_path).start()
    from kafka.admin import NewTopic as KafkaPythonNewTopic
    kp = KafkaAdminClient(bootstrap_servers=c.node(1).bootstrap)
    kp.create_topics([KafkaPythonNewTopic("lonely", -1, -1, replica_assignments={0: [2]})])
    kp.close()
    for via in (1, 3):
        wait_for(lambda: c.leader_of("lonely", 0, c.node(via)) == 2, f"node {via} naming node 2")
    c.node(2).kill(signal.SIGKILL)
    killed_at = time.monotonic()
    for via in (1, 3):
        wait_for(lambda: c.leader_of("lonely", 0, c.node(via)) == -1, f"node {via} naming no leader", timeout=5)
    print(f"no leader named {time.monotonic() - killed_at:.2f} s after the kill")
    md = AdminClient({"bootstrap.servers": c.node(1).bootstrap}).list_topics("lonely", timeout=10)
    assert md.topics["lonely"].partitions[0].error.name() == "LEADER_NOT_AVAILABLE"
    c.node(2).start()
    for via in (1, 3):
        wait_for(lambda: c.leader_of("lonely", 0, c.node(via)) == 2, f"node {via} naming node 2 again")
    c.kill()


FAST_ISR = {"RAFTSTREAM_REPLICA_LAG_TIME_MAX_MS": "1000", "RAFTSTREAM_BROKER_SESSION_TIMEOUT_MS": "1000"}


def create_rf3(c, topic):
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3,
                                  config={"min.insync.replicas": "2"})])[topic].result(30)
    return c.wait_leader(topic, 0)


def isr(c, topic, leader):
    return c.partitions(topic, c.node(leader))[0][2]


def test_killed_follower_does_not_stop_acks_all_and_rejoins_the_isr(tmp_path):
    c = Cluster(tmp_path, env=FAST_ISR).start()
    leader = create_rf3(c, "follow")
    follower = next(b.node_id for b in c.nodes if b.node_id != leader)
    s = Stream(c.bootstrap, "follow")
    wait_for(lambda: len(s.acked) >= 1000, "1000 acknowledged records")
    c.node(follower).kill(signal.SIGKILL)
    wait_for(lambda: follower not in isr(c, "follow", leader), "the dead follower leaving the ISR")
    # Every live node says so: the leader records the ISR in the controller.
    for b in c.alive():
        wait_for(lambda: follower not in isr(c, "follow", b.node_id), f"node {b.node_id} showing the shrunk ISR")
    # kafka-python reads Metadata's offline replicas (v5+): the dead node is listed.
    kp = KafkaAdminClient(bootstrap_servers=c.node(leader).bootstrap)
    seen = {}

    def offline_listed():
        try:  # the client may pick the dead node to ask first
            seen["p"] = kp.describe_topics(["follow"])[0]["partitions"][0]
        except Exception as e:
            seen["error"] = repr(e)
            return False
        return seen["p"]["offline_replicas"] == [follower]
    try:
        wait_for(offline_listed, "the dead follower among the offline replicas")
    except AssertionError as e:
        raise AssertionError(f"{e}; last seen: {seen}") from None
    kp.close()
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 1000, "acks=all continuing with a majority")
    c.node(follower).start()
    wait_for(lambda: isr(c, "follow", leader) == [1, 2, 3], "the restarted follower back in the ISR")
    s.close_and_check(c.node(follower).bootstrap if leader == follower else c.bootstrap)
    c.kill()


def test_without_a_majority_nothing_is_acknowledged_and_nothing_acknowledged_is_lost(tmp_path):
    """Both followers killed: the leader has no majority, so within its lease it stops acting
    as leader (check-quorum): Metadata, from the leader itself too, shows the partition without
    a leader, nothing sent is acknowledged, and what was acknowledged before is all there once
    the followers are back."""
    c = Cluster(tmp_path, env=FAST_ISR).start()
    leader = create_rf3(c, "quorum")
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all"})
    acked, refused = [], []
    cb = lambda err, msg: (refused if err else acked).append((msg.value().decode(), err))
    for i in range(100):
        p.produce("quorum", value=f"before-{i}".encode(), partition=0, on_delivery=cb)
    assert p.flush(30) == 0 and len(acked) == 100
    followers = [b for b in c.nodes if b.node_id != leader]
    for b in followers:
        b.kill(signal.SIGKILL)
    wait_for(lambda: c.leader_of("quorum", 0, via=c.node(leader)) == -1, "the leader without a majority stepping aside", 10)
    # No retries: the client's own verdict reaches the callback (a partition without a leader
    # is retriable; with retries the client would keep trying until its message timeout).
    p = Producer({"bootstrap.servers": c.node(leader).bootstrap, "acks": "all", "retries": 0,
                  "message.timeout.ms": 5000})
    for i in range(20):
        p.produce("quorum", value=f"during-{i}".encode(), partition=0, on_delivery=cb)
    p.flush(30)
    during_acked = [v for v, _ in acked if v.startswith("during")]
    assert during_acked == [] and len(refused) == 20, (during_acked, refused[:3])
    for b in followers:
        b.start()
    wait_for(lambda: isr(c, "quorum", c.wait_leader("quorum", 0)) == [1, 2, 3], "the ISR whole again")
    values = [v.decode() for v in read_values(c.bootstrap, "quorum")]
    assert values == [f"before-{i}" for i in range(100)], "acknowledged kept, refused absent"
    c.kill()


def read_values(bootstrap, topic):
    """Every record of partition 0 up to its high watermark."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    _, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + 30
    while len(out) < high and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append(m.value())
    c.close()
    return out


class GroupReader:
    """A subscribed group member on its own thread: records every value it receives and commits
    its position every 200 ms and whenever it has caught up (a commit that fails during a
    coordinator move is retried by the next one). Committing after every record made it read
    slower than the producer writes (each commit is a replicated write), so on a loaded machine
    it had not caught up within the test's minute."""

    def __init__(self, bootstrap, topic, group):
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                           "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                           "heartbeat.interval.ms": 500})
        self.c.subscribe([topic])
        self.seen = set()
        self.commit_errors = 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        dirty, last_commit = False, time.monotonic()
        while not self.stop.is_set():
            m = self.c.poll(0.2)
            if m is not None and not m.error():
                self.seen.add(int(m.value()))
                dirty = True
            if dirty and (m is None or time.monotonic() - last_commit >= 0.2):
                try:
                    self.c.commit(asynchronous=False)
                    dirty, last_commit = False, time.monotonic()
                except Exception:
                    self.commit_errors += 1

    def close(self):
        """Stops reading, commits what was read (nothing left to commit is fine) and leaves."""
        self.stop.set()
        self.t.join(10)
        try:
            self.c.commit(asynchronous=False)
        except Exception:
            pass
        self.c.close()


class RoundRobinStream(Stream):
    """Like Stream, over `partitions` partitions."""

    def __init__(self, bootstrap, topic, partitions):
        self.partitions = partitions
        super().__init__(bootstrap, topic)

    def _run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.p.produce(self.topic, value=str(i).encode(), partition=i % self.partitions,
                               on_delivery=self._cb)
                i += 1
            except BufferError:
                pass
            self.p.poll(0.002)


def test_rolling_restart_under_produce_and_group_consume(tmp_path):
    c = Cluster(tmp_path).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("rolling", num_partitions=3, replication_factor=3)])["rolling"].result(30)
    for p in range(3):
        c.wait_leader("rolling", p)
    s = RoundRobinStream(c.bootstrap, "rolling", 3)
    reader = GroupReader(c.bootstrap, "rolling", "rollers")
    wait_for(lambda: len(reader.seen) >= 500, "the group consuming")
    for b in c.nodes:
        before = len(s.acked)
        b.kill(signal.SIGTERM)
        b.start()
        for p in range(3):
            wait_for(lambda: c.partitions("rolling", b).get(p, (-1, [], []))[2] == [1, 2, 3],
                     f"partition {p} fully in sync after node {b.node_id} restarted")
        wait_for(lambda: len(s.acked) >= before + 300, f"producing on after node {b.node_id} restarted")
    s.close()
    assert s.failed == []
    acked = set(s.acked)
    wait_for(lambda: acked <= reader.seen, "the group consuming every acknowledged record", timeout=60)
    reader.close()
    # The group's committed offsets survived the restarts: a new member starts at the end.
    probe = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "rollers"})
    committed = probe.committed([TopicPartition("rolling", p) for p in range(3)], timeout=30)
    ends = [probe.get_watermark_offsets(TopicPartition("rolling", p), timeout=10)[1] for p in range(3)]
    probe.close()
    assert [tp.offset for tp in committed] == ends, (committed, ends)
    c.kill()


def test_partitions_on_some_nodes_are_served_through_any_node(tmp_path):
    c = Cluster(tmp_path).start()
    admin = AdminClient({"bootstrap.servers": c.node(1).bootstrap})
    admin.create_topics([NewTopic("few", num_partitions=6, replication_factor=2)])["few"].result(30)
    views = {}

    def agree():
        for b in c.nodes:
            views[b.node_id] = {p: (leader, replicas) for p, (leader, replicas, _) in c.partitions("few", b).items()}
        first = views[1]
        return (len(first) == 6 and all(leader in replicas for leader, replicas in first.values())
                and all(v == first for v in views.values()))
    wait_for(agree, "nodes without a replica reporting the recorded leaders too")
    for p, (_, replicas) in views[1].items():
        assert len(replicas) == 2
        outsider = next(b for b in c.nodes if b.node_id not in replicas)
        # The outsider answers with the real leader; a client following it can produce.
        prod = Producer({"bootstrap.servers": outsider.bootstrap, "acks": "all"})
        prod.produce("few", value=f"p{p}".encode(), partition=p)
        assert prod.flush(30) == 0
    reader = Consumer({"bootstrap.servers": c.node(2).bootstrap, "group.id": "few-reader"})
    highs = [reader.get_watermark_offsets(TopicPartition("few", p), timeout=10)[1] for p in range(6)]
    reader.close()
    assert highs == [1] * 6
    c.kill()


def test_follower_behind_the_leaders_retention_catches_up_by_snapshot(tmp_path):
    c = Cluster(tmp_path, env={"RAFTSTREAM_LOG_RETENTION_CHECK_INTERVAL_MS": "200"}).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("behind", num_partitions=1, replication_factor=3,
                                  config={"segment.bytes": "2048", "retention.bytes": "4096"})])["behind"].result(30)
    lagging = c.wait_leader("behind", 0)
    # Small batches, so that 2 KB segments roll between them.
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 2,
                  "batch.num.messages": 5})

    def produce(first, n):
        for i in range(first, first + n):
            p.produce("behind", value=str(i).encode().ljust(100), partition=0)
            p.poll(0)
        assert p.flush(30) == 0

    produce(0, 100)
    c.node(lagging).kill(signal.SIGKILL)
    c.wait_leader("behind", 0, not_in=(lagging,))
    produce(100, 2000)  # ~200 KB through 2 KB segments: retention cuts far past the dead node's log
    other = next(b for b in c.alive())
    wait_for(lambda: Consumer({"bootstrap.servers": other.bootstrap, "group.id": "x"})
             .get_watermark_offsets(TopicPartition("behind", 0), timeout=10)[0] > 100,
             "retention removing what the dead node never got")
    c.node(lagging).start()
    fed = c.node(lagging)
    wait_for(lambda: metric(fed.http_get("/metrics")[1], "raftstream_snapshot_log_resets_total") >= 1,
             "the lagging node's log replaced by the leader's snapshot")
    wait_for(lambda: lagging in isr(c, "behind", c.leader_of("behind", 0)), "the snapshot-fed node in sync")
    # Make it lead: kill whichever other node leads until the election picks it (each round
    # is a coin toss between it and the third node).
    for _ in range(10):
        leader = c.wait_leader("behind", 0)
        if leader == lagging:
            break
        c.node(leader).kill(signal.SIGKILL)
        c.wait_leader("behind", 0, not_in=(leader,))
        c.node(leader).start()
    assert c.wait_leader("behind", 0) == lagging
    produce(2100, 100)
    reader = Consumer({"bootstrap.servers": c.node(lagging).bootstrap, "group.id": "behind-reader",
                       "auto.offset.reset": "earliest", "enable.auto.commit": False})
    low, high = reader.get_watermark_offsets(TopicPartition("behind", 0), timeout=10)
    assert high == 2200, (low, high)
    reader.assign([TopicPartition("behind", 0, low)])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < high - low and time.monotonic() < deadline:
        m = reader.poll(0.5)
        if m is not None and not m.error():
            seen.append((m.offset(), int(m.value())))
    reader.close()
    assert len(seen) == high - low
    assert all(offset == value for offset, value in seen), "offsets on the snapshot-fed node match the leader's"
    c.kill()


def test_partitions_created_while_their_preferred_replica_is_down_still_get_leaders(tmp_path):
    c = Cluster(tmp_path).start()
    c.node(1).kill(signal.SIGKILL)
    admin = AdminClient({"bootstrap.servers": c.node(2).bootstrap})
    # librdkafka sends CreateTopics to the controller it was told of and, if that node just
    # died, keeps waiting on it: let the controller group notice first.
    wait_for(lambda: admin.list_topics(timeout=10).controller_id in (2, 3), "a live controller")
    admin.create_topics([NewTopic("orphan", num_partitions=3, replication_factor=3)])["orphan"].result(30)
    wait_for(lambda: all(leader in (2, 3) for leader, _, _ in c.partitions("orphan", c.node(2)).values())
             and len(c.partitions("orphan", c.node(2))) == 3, "leaders for every partition, node 1 preferred or not")
    # Node 1 comes back without the groups: it joins each by replication and is in sync.
    c.node(1).start()
    for p in range(3):
        wait_for(lambda: c.partitions("orphan", c.node(c.leader_of("orphan", p))).get(p, (0, [], []))[2] == [1, 2, 3],
                 f"node 1 in sync on partition {p}")
    wait_for(lambda: all(leader > 0 for leader, _, _ in c.partitions("orphan", c.node(1)).values()),
             "node 1 knowing every leader")
    c.kill()


def test_deleted_records_stay_deleted_after_a_failover(tmp_path):
    c = Cluster(tmp_path).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("trim", num_partitions=1, replication_factor=3)])["trim"].result(30)
    leader = c.wait_leader("trim", 0)
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all"})
    for i in range(100):
        p.produce("trim", value=str(i).encode(), partition=0)
    assert p.flush(30) == 0
    (fut,) = admin.delete_records([TopicPartition("trim", 0, 60)]).values()
    assert fut.result(30).low_watermark == 60
    # DeleteRecords goes through the partition's Raft group: the next leader has it too.
    c.node(leader).kill(signal.SIGKILL)
    new_leader = c.wait_leader("trim", 0, not_in=(leader,))
    reader = Consumer({"bootstrap.servers": c.node(new_leader).bootstrap, "group.id": "trim-reader",
                       "auto.offset.reset": "earliest", "enable.auto.commit": False})
    assert reader.get_watermark_offsets(TopicPartition("trim", 0), timeout=10) == (60, 100)
    reader.assign([TopicPartition("trim", 0, -2)])  # OFFSET_BEGINNING
    got = []

    def polled():
        m = reader.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
        return bool(got)
    wait_for(polled, "the first record after the deleted ones")
    assert (got[0].offset(), got[0].value()) == (60, b"60")
    reader.close()
    c.kill()


def test_a_restarted_leader_does_not_answer_as_leader_before_a_quorum_confirms_it(tmp_path):
    """openraft restores a restarted leader as the leader of its old term at once. Here its
    fellow replicas are down, so nothing tells it a newer term elected someone else while it was
    away and its log is 100 records behind: answered as leader, a consumer at offset 150 was
    told its position is out of range and reset to the earliest offset (the chaos suite's
    group member re-reading from 0 after a node came back). It must refuse until a quorum
    acknowledges it, and the consumer carries on at 150 once the replicas are back."""
    from clients import produce_all
    c = Cluster(tmp_path, n=5, env={"RAFTSTREAM_REPLICA_LAG_TIME_MAX_MS": "1000"}).start()
    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    kp.create_topics({"stale": {"assignments": {0: [1, 2, 3]}}})
    kp.close()
    old = c.wait_leader("stale", 0)
    first = produce_all(c.bootstrap, "stale", [(None, b"before-%d" % i, None, None) for i in range(100)], acks="all")
    assert [off for _, _, off, _ in first] == list(range(100))
    c.node(old).kill(signal.SIGKILL)
    new = c.wait_leader("stale", 0, not_in=(old,))
    second = produce_all(c.bootstrap, "stale", [(None, b"after-%d" % i, None, None) for i in range(100)], acks="all")
    assert [off for _, _, off, _ in second] == list(range(100, 200))
    others = [r for r in (1, 2, 3) if r != old]
    for r in others:
        c.node(r).kill(signal.SIGKILL)
    # With nodes 4 and 5 the controller group has its majority; the node serves Kafka, though
    # not ready (/health/ready): its partition has no leader.
    c.node(old).launch().await_started(60, ready=False)
    consumer = Consumer({"bootstrap.servers": c.node(old).bootstrap, "group.id": "stale-reader",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("stale", 0, 150)])
    # Give the consumer the chance the old code gave it to fetch from the stale leader.
    deadline = time.monotonic() + 3
    early = []
    while time.monotonic() < deadline:
        m = consumer.poll(0.2)
        if m is not None and not m.error():
            early.append(m.offset())
    assert early == [], f"records served by a leader no quorum confirmed: offsets {early[:5]}..."
    assert c.leader_of("stale", 0, via=c.node(old)) != old, "Metadata names the unconfirmed leader"
    for r in others:
        c.node(r).start()
    got = None
    deadline = time.monotonic() + 60
    while got is None and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got = m
    consumer.close()
    assert got is not None and (got.offset(), got.value()) == (150, b"after-50"), got and got.offset()
    c.kill()


def test_large_batches_are_replicated_without_timeouts(tmp_path):
    """librdkafka's default batch.size (1,000,000 bytes) to an RF=3 topic of 16 partitions on 3
    nodes: batches near a megabyte are replicated and acknowledged with no partition AppendEntries
    timing out (before, one could carry hundreds of them and outlive its 100 ms deadline, to be
    sent again whole)."""
    c = Cluster(tmp_path).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("heavy", num_partitions=16, replication_factor=3)])["heavy"].result(30)
    for p in range(16):
        c.wait_leader("heavy", p)
    acked, failed = [], []
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "batch.size": 1000000,
                  "linger.ms": 100, "message.timeout.ms": 120000})
    value = b"x" * 1024
    started = time.monotonic()
    total = 200000
    for i in range(total):
        while True:
            try:
                p.produce("heavy", value=value, partition=i % 16,
                          on_delivery=lambda err, m: (failed if err else acked).append(1))
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    assert p.flush(120) == 0
    elapsed = time.monotonic() - started
    print(f"{total} x 1 KiB acknowledged in {elapsed:.1f} s ({total / elapsed:.0f} records/s)")
    assert failed == [] and len(acked) == total
    # No partition group's RPC outlived its deadline (raft.partition.rpc.timeout.ms). The
    # controller group's 50 ms heartbeats can still time out on this 2-core machine saturated
    # by three debug nodes and the producer: issue 15 goes on.
    for b in c.nodes:
        text = b.http_get("/metrics")[1]
        assert metric(text, "raftstream_cluster_rpc_timeouts_total", group="partition") == 0, b.node_id
    c.kill()


def presend(port, *requests):
    """A socket with `requests` (kafka-python request objects) already written to it, in
    order. Written while a node is paused, they are the first things it reads on resuming."""
    import socket
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    for i, req in enumerate(requests):
        req.with_header(correlation_id=i + 1, client_id="raw")
        sock.sendall(req.encode(header=True, framed=True))
    return sock


def produce_request(topic, value):
    """Produce v3, acks=all, one record to partition 0."""
    from kafka.protocol.producer import ProduceRequest
    from kafka.record.memory_records import MemoryRecordsBuilder
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    b.append(timestamp=None, key=None, value=value, headers=[])
    b.close()
    topic_data = ProduceRequest.TopicProduceData
    part = topic_data.PartitionProduceData
    return ProduceRequest(version=3, transactional_id=None, acks=-1, timeout_ms=5000,
                          topic_data=[topic_data(name=topic, partition_data=[part(index=0, records=b.buffer())])])


def metadata_request(topic):
    from kafka.protocol.metadata import MetadataRequest
    return MetadataRequest(version=1, topics=[MetadataRequest.MetadataRequestTopic(name=topic)])


def answer(sock, response_class, version):
    """The next answer on `sock`, decoded."""
    import struct

    def exactly(n):
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            assert chunk, "connection closed before the answer"
            out += chunk
        return out
    size = struct.unpack(">i", exactly(4))[0]
    return response_class.decode(exactly(size), version=version, header=True)
