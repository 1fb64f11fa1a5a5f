"""Several raftstream processes on loopback forming one cluster: cluster ports allocated by the
test, Kafka ports 0; each node's identity checked as for a single broker."""

import socket
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from broker import Broker
from clients import wait_for


def free_ports(n):
    """`n` distinct free TCP ports on 127.0.0.1 (held open together while choosing)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    def __init__(self, tmp_path, n=3, env=None):
        ports = free_ports(n)
        self.tmp_path, self.env, self.cluster_ports = tmp_path, env, ports
        peers = ",".join(f"{i + 1}@127.0.0.1:{ports[i]}" for i in range(n))
        self.nodes = [Broker(tmp_path / f"node{i + 1}", node_id=i + 1, env=env,
                             extra_args=["--cluster-listen", f"127.0.0.1:{ports[i]}", "--peers", peers])
                      for i in range(n)]

    def add_node(self, known=(1,), timeout=60):
        """Starts one more node (the next id) told only of itself and the nodes in `known`: it
        joins the running cluster and learns the others from the controller."""
        node_id = len(self.nodes) + 1
        port = free_ports(1)[0]
        peers = ",".join([f"{i}@127.0.0.1:{self.cluster_ports[i - 1]}" for i in known]
                         + [f"{node_id}@127.0.0.1:{port}"])
        self.cluster_ports.append(port)
        b = Broker(self.tmp_path / f"node{node_id}", node_id=node_id, env=self.env,
                   extra_args=["--cluster-listen", f"127.0.0.1:{port}", "--peers", peers])
        self.nodes.append(b)
        b.launch().await_started(timeout)
        return b

    def start(self, timeout=60):
        for b in self.nodes:
            b.launch()
        for b in self.nodes:
            b.await_started(timeout)
        assert len({b.cluster_id for b in self.nodes}) == 1, [b.cluster_id for b in self.nodes]
        return self

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def alive(self):
        return [b for b in self.nodes if b.proc and b.proc.poll() is None]

    @property
    def bootstrap(self):
        return ",".join(b.bootstrap for b in self.nodes)

    def partitions(self, topic, via):
        """{partition: (leader, replicas, isr)} as node `via` reports them."""
        md = AdminClient({"bootstrap.servers": via.bootstrap}).list_topics(topic, timeout=10)
        t = md.topics[topic]
        if t.error is not None:
            return {}
        return {p.id: (p.leader, list(p.replicas), sorted(p.isrs)) for p in t.partitions.values()}

    def leader_of(self, topic, partition, via=None):
        via = via or self.alive()[0]
        return self.partitions(topic, via).get(partition, (-1,))[0]

    def wait_leader(self, topic, partition, not_in=(), timeout=30, via=None):
        """Waits until a live node (`via`) reports a leader for the partition (not in `not_in`)."""
        found = {}

        def known():
            leader = self.leader_of(topic, partition, via)
            found["leader"] = leader
            return leader > 0 and leader not in not_in
        wait_for(known, f"a leader of {topic}/{partition}", timeout)
        return found["leader"]

    def kill(self):
        for b in self.nodes:
            b.kill()
        for b in self.nodes:
            assert "panicked" not in b.log_text(), b.log_text()[-3000:]


class Stream:
    """An idempotent acks=all producer writing 0, 1, 2, ... on its own thread; remembers what
    was acknowledged and what failed."""

    def __init__(self, bootstrap, topic, conf=None, pace_s=0.001):
        self.p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                           "linger.ms": 5, "message.timeout.ms": 60000, **(conf or {})})
        self.topic = topic
        self.pace_s = pace_s
        self.acked = []
        self.acked_at = []
        self.failed = []
        self.stop = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _cb(self, err, msg):
        (self.failed if err else self.acked).append(int(msg.value()))
        if not err:
            self.acked_at.append(time.monotonic())

    def first_ack_after(self, t):
        """When the first acknowledgement after monotonic time `t` arrived."""
        return min(a for a in list(self.acked_at) if a > t)

    def _run(self):
        i = 0
        while not self.stop.is_set():
            try:
                self.p.produce(self.topic, value=str(i).encode(), partition=0, on_delivery=self._cb)
                i += 1
            except BufferError:
                pass
            self.p.poll(self.pace_s)

    def close(self):
        self.stop.set()
        self.t.join(10)
        assert self.p.flush(60) == 0

    def close_and_check(self, bootstrap):
        """Stops producing, then checks nothing failed and every acknowledged value is in the
        partition exactly once, in order (read through `bootstrap`)."""
        self.close()
        assert self.failed == []
        values = read_all(bootstrap, self.topic, len(self.acked))
        assert set(self.acked) <= set(values) and values == sorted(set(values)), "every ack once, in order"


def read_all(bootstrap, topic, until):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    values = []
    deadline = time.monotonic() + 60
    while len(values) < until and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            values.append(int(m.value()))
    c.close()
    return values
