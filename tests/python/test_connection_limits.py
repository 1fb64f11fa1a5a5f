"""Connection limits (issue 17, item 7): connections per client address, with overrides, and
connections still authenticating; a connection over a limit is closed at once and counted,
and a freed place is reused."""

import socket
import struct

from broker import Broker
from clients import metric, wait_for


def api_versions_answered(port):
    """Whether a new connection gets an ApiVersions answer (False: closed at once)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return answered_on(s)


def answered_on(s):
    """Whether the open connection `s` answers an ApiVersions request."""
    body = struct.pack(">hhih", 18, 0, 1, 4) + b"test"
    try:
        s.sendall(struct.pack(">i", len(body)) + body)
        return len(s.recv(4)) == 4
    except (ConnectionResetError, BrokenPipeError):
        return False


def test_connections_per_address_are_bounded(tmp_path):
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_MAX_CONNECTIONS_PER_IP": "3"}).start()
    # Open connections and keep them until one is refused: at most 3 from this address (fewer
    # while a client of the start-up check still holds one).
    held, refused = [], False
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", b.port), timeout=10)
        if not answered_on(s):
            refused = True
            s.close()
            break
        held.append(s)
    assert refused and 1 <= len(held) <= 3, len(held)
    held.pop().close()
    wait_for(lambda: api_versions_answered(b.port), "a freed place reused", 10)
    for s in held:
        s.close()
    assert metric(b.http_get("/metrics")[1], "raftstream_connections_refused_total", why="per_ip") >= 1
    b.kill()


def test_connections_still_authenticating_are_bounded(tmp_path):
    b = Broker(tmp_path / "data", env={
        "RAFTSTREAM_LISTENERS": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "RAFTSTREAM_CONNECTIONS_MAX_UNAUTHENTICATED": "1",
    }).start()
    sasl = b.listener_ports["SASL_PLAINTEXT"]
    # One connection sits in its SASL exchange (ApiVersions is answered before it): the next
    # unauthenticated one is refused at once.
    waiting = socket.create_connection(("127.0.0.1", sasl), timeout=10)
    wait_for(lambda: not api_versions_answered(sasl), "a second unauthenticated connection refused", 10)
    assert metric(b.http_get("/metrics")[1], "raftstream_connections_refused_total", why="unauthenticated") >= 1
    waiting.close()
    wait_for(lambda: api_versions_answered(sasl), "the place freed once the first left", 10)
    # PLAINTEXT connections need no place among those authenticating.
    assert api_versions_answered(b.port)
    b.kill()
