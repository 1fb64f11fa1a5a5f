"""A node cut off from the cluster (it hears no majority of the nodes) can commit nothing and
knows no leader to send clients to, and a client connected to it alone would ask it for metadata
again and again (librdkafka asks a broker it is connected to). So after a Metadata answer
naming no leader it closes the connection once the client is quiet (requests pipelined behind
that answer are still answered): the client asks another node next. While it hears a majority, client
connections stay open."""

import signal

from kafka.protocol.metadata import MetadataResponse

from clients import wait_for
from cluster import Cluster
from test_cluster import answer, create_rf3, metadata_request, presend


def pipelined_then_quiet(port, topic):
    """A Metadata request for `topic`, a second one on the same connection right after the first
    answer (librdkafka sends its own request and the application's back to back), then
    silence. Returns the leader of `topic`/0 in the first answer, whether the second was
    answered, and whether the node closed the connection within two seconds of quiet."""
    import socket
    sock = presend(port, metadata_request(topic))
    try:
        first = answer(sock, MetadataResponse, 1).topics[0].partitions[0].leader_id
        req = metadata_request(topic)
        req.with_header(correlation_id=2, client_id="raw")
        sock.sendall(req.encode(header=True, framed=True))
        answer(sock, MetadataResponse, 1)
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except socket.timeout:
            closed = False
        return first, True, closed
    finally:
        sock.close()


def test_a_cut_off_node_closes_a_clients_connection_after_metadata(tmp_path):
    # A grace longer than the default 50 ms: this test's second request follows the first
    # answer from Python, which a loaded machine may delay by more than that.
    c = Cluster(tmp_path, env={"RAFTSTREAM_CONNECTIONS_REDIRECT_GRACE_MS": "500"}).start()
    leader = create_rf3(c, "cut")
    node = c.node(leader)
    assert pipelined_then_quiet(node.port, "cut") == (leader, True, False)

    for b in c.nodes:
        if b is not node:
            b.kill(signal.SIGKILL)
    seen = {}

    def closed_after_metadata():
        seen["last"] = pipelined_then_quiet(node.port, "cut")
        return seen["last"][2]
    wait_for(closed_after_metadata, "the cut-off node closing after a Metadata answer", 15)
    # It named no leader (-1: LEADER_NOT_AVAILABLE), still answered the request pipelined behind
    # that answer, and closed once the client was quiet.
    assert seen["last"] == (-1, True, True), seen
    assert node.proc.poll() is None, "the node kept running"
    c.kill()
