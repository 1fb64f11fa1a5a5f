import signal, time
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from clients import wait_for
from cluster import Cluster
from test_cluster import RoundRobinStream, GroupReader


def test_roll(tmp_path):
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
    acked = set(s.acked)
    deadline = time.monotonic() + 40
    while not acked <= reader.seen and time.monotonic() < deadline:
        time.sleep(0.5)
    missing = sorted(acked - reader.seen)
    if missing:
        print("MISSING", len(missing), missing[:10], missing[-10:])
        print("commit errors", reader.commit_errors)
        try:
            print("ASSIGNMENT", reader.c.assignment())
            print("POSITION", reader.c.position(reader.c.assignment()))
            print("COMMITTED", reader.c.committed(reader.c.assignment(), timeout=10))
        except Exception as e:
            print("consumer state error", e)
        for b in c.nodes:
            print("node", b.node_id, c.partitions("rolling", b), c.partitions("__consumer_offsets", b).get(0))
        import re
        for b in c.nodes:
            txt = b.log_text()
            lines = [l for l in txt.splitlines() if re.search(r"WARN|ERROR|group|coordinator", l)]
            print("== node", b.node_id, "\n".join(lines[-40:]))
    assert not missing
    reader.close()
    c.kill()
