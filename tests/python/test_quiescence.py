"""Idle partition groups are quiet: no per-group heartbeats, only one ping per node pair, yet a
dead leader is replaced within two seconds and a restarted node rejoins every group."""

import signal
import time

from confluent_kafka.admin import AdminClient, NewTopic

from clients import consume_all, metric, produce_all, wait_for
from cluster import Cluster

PARTITIONS = 30
RPCS = "raftstream_cluster_requests_received_total"


def received(c, rpc, group):
    """`rpc` requests for `group` received by the live nodes, in total."""
    return sum(metric(b.http_get("/metrics")[1], RPCS, rpc=rpc, group=group) for b in c.alive())


def all_led(c, topic, via, not_in=()):
    view = c.partitions(topic, via)
    return len(view) == PARTITIONS and all(leader > 0 and leader not in not_in for leader, _, _ in view.values())


def test_idle_groups_exchange_only_pings_and_still_fail_over_and_rejoin(tmp_path):
    c = Cluster(tmp_path).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("idle", num_partitions=PARTITIONS, replication_factor=3)])["idle"].result(30)
    wait_for(lambda: all_led(c, "idle", c.node(1)), "a leader for every partition")

    # Quiet: a whole second in which no partition group replicated anything, while the nodes
    # kept pinging each other. (With per-group heartbeats: 30 groups x 2 followers x 10/s.)
    last = {"at": time.monotonic(), "appends": received(c, "append_entries", "partition"),
            "pings": received(c, "ping", "none")}

    def quiet_second():
        if time.monotonic() - last["at"] < 1.0:
            return False
        appends, pings = received(c, "append_entries", "partition"), received(c, "ping", "none")
        quiet = appends == last["appends"] and pings > last["pings"]
        last.update(at=time.monotonic(), appends=appends, pings=pings)
        return quiet
    wait_for(quiet_second, "a second without partition replication traffic", timeout=20)

    # The leader of partition 0 dies while everything is idle: each partition it led gets a
    # new leader within 2 s, elected by the node-level failure detector.
    victim = c.leader_of("idle", 0)
    led = [p for p, (leader, _, _) in c.partitions("idle", c.node(victim)).items() if leader == victim]
    c.node(victim).kill(signal.SIGKILL)
    killed_at = time.monotonic()
    survivor = next(b for b in c.alive())
    wait_for(lambda: all_led(c, "idle", survivor, not_in=(victim,)), "new leaders for the dead node's partitions")
    failover_s = time.monotonic() - killed_at
    print(f"failover of {len(led)} idle partitions: {failover_s:.2f} s")
    assert failover_s < 2.0, failover_s

    values = [f"v{p}".encode() for p in range(PARTITIONS)]
    reports = produce_all(c.bootstrap, "idle", [(None, v, None, None) for v in values], acks="all",
                          partitioner="consistent_random")
    assert all(err is None for err, *_ in reports), reports

    # The dead node returns: its groups' leaders reach it at once (it restarted, so they send
    # it a heartbeat) and it is back in every ISR; nothing written meanwhile is missing.
    c.node(victim).launch().await_started(60)
    for b in c.nodes:
        wait_for(lambda: all(isr == [1, 2, 3] for _, _, isr in c.partitions("idle", b).values())
                 and all_led(c, "idle", b), f"node {b.node_id} reporting every replica in sync")
    per_partition = {}
    for _, p, _, _ in reports:
        per_partition[p] = per_partition.get(p, 0) + 1
    got = []
    for p, n in per_partition.items():
        got += [m.value() for m in consume_all(c.bootstrap, "idle", p, n)]
    assert sorted(got) == sorted(v for _, _, _, v in reports)
    c.kill()
