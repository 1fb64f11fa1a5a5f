"""Automatic leader rebalancing: when a partition's preferred replica (the first of its
replicas) is back and caught up, its leader hands leadership back, so leaders stay spread over
the nodes after failures, without losing or duplicating a write."""

import signal
import time

from confluent_kafka.admin import AdminClient, NewTopic

from clients import wait_for
from cluster import Cluster, Stream

REBALANCE = {"RAFTSTREAM_REPLICA_LAG_TIME_MAX_MS": "1000", "RAFTSTREAM_LEADER_IMBALANCE_CHECK_INTERVAL_SECONDS": "1"}


def test_leadership_returns_to_the_preferred_replica_when_it_is_back(tmp_path):
    c = Cluster(tmp_path, env=REBALANCE).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("spread", num_partitions=3, replication_factor=3)])["spread"].result(30)

    def on_preferred(via):
        view = c.partitions("spread", via)
        return len(view) == 3 and all(leader == replicas[0] for leader, replicas, _ in view.values())
    wait_for(lambda: on_preferred(c.node(1)), "first leaders on their preferred replicas")
    preferred = c.partitions("spread", c.node(1))[0][1][0]
    s = Stream(c.bootstrap, "spread")
    wait_for(lambda: len(s.acked) >= 1000, "1000 acknowledged records")
    c.node(preferred).kill(signal.SIGKILL)
    c.wait_leader("spread", 0, not_in=(preferred,))
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "producing on with another leader")
    c.node(preferred).start()
    back = time.monotonic()
    for b in c.nodes:
        wait_for(lambda: on_preferred(b), f"node {b.node_id} seeing every leader on its preferred replica")
    print(f"leaders back on their preferred replicas {time.monotonic() - back:.1f} s after the restart")
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "producing on after the handoff")
    s.close_and_check(c.bootstrap)
    c.kill()
