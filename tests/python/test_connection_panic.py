"""A request handler that panics closes its own connection and harms nothing else: the client
sees its connection close at once (never a hang), the panic is counted, the connection gauge
comes back down, and every other connection, old or new, is served as before. The panic is
injected by a debug-only switch (`RS_TEST_PANIC_CLIENT_ID`, absent from release builds)."""

import socket

from kafka.protocol.metadata import MetadataResponse

from broker import Broker
from clients import consume_all, metric, produce_all, wait_for
from test_cluster import answer, metadata_request

CONNECTIONS = "raftstream_connections"
PANICS = "raftstream_connection_panics_total"


def ask_metadata(sock, client_id, correlation_id=1):
    req = metadata_request("steady")
    req.with_header(correlation_id=correlation_id, client_id=client_id)
    sock.sendall(req.encode(header=True, framed=True))


def metrics(b):
    return b.http_get("/metrics")[1]


def test_a_panicking_handler_closes_only_its_own_connection(tmp_path):
    b = Broker(tmp_path / "data", env={"RS_TEST_PANIC_CLIENT_ID": "boom"}).start()
    try:
        produce_all(b.bootstrap, "steady", [(None, b"before-%d" % i, None, None) for i in range(10)])
        steady = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        ask_metadata(steady, "steady")
        assert answer(steady, MetadataResponse, 1).brokers[0].node_id == b.node_id
        wait_for(lambda: metric(metrics(b), CONNECTIONS) == 1, "only the steady connection open", 10)

        bad = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        ask_metadata(bad, "boom")
        bad.settimeout(5)
        assert bad.recv(1) == b"", "the panicking request's connection closes"
        bad.close()

        # Counted, and the closed connection is gone from the gauge.
        wait_for(lambda: metric(metrics(b), PANICS, api="Metadata") == 1, "the panic counted", 10)
        wait_for(lambda: metric(metrics(b), CONNECTIONS) == 1, "the gauge back to one connection", 10)

        # The connection opened before is served, and so are new ones (no lock was poisoned).
        ask_metadata(steady, "steady", correlation_id=2)
        assert answer(steady, MetadataResponse, 1).topics[0].error_code == 0
        steady.close()
        produce_all(b.bootstrap, "steady", [(None, b"after-%d" % i, None, None) for i in range(10)])
        values = [m.value() for m in consume_all(b.bootstrap, "steady", 0, 20)]
        assert values == [b"before-%d" % i for i in range(10)] + [b"after-%d" % i for i in range(10)]
        assert b.proc.poll() is None, "the broker kept running"
    finally:
        b.kill()
