"""A node cut off from the cluster (it hears no majority of the nodes) can commit nothing and
knows no leader to send clients to, and a client connected to it alone would ask it for metadata
again and again (librdkafka asks a broker it is connected to). So it answers Metadata and then
closes the connection: the client asks another node next. While it hears a majority, client
connections stay open."""

import signal

from kafka.protocol.metadata import MetadataResponse

from clients import wait_for
from cluster import Cluster
from test_cluster import answer, create_rf3, metadata_request, presend


def second_answer_on_one_connection(port, topic):
    """The leader of `topic`/0 in the first Metadata answer, and whether a second request on the
    same connection, sent after that answer, was answered too."""
    sock = presend(port, metadata_request(topic))
    try:
        first = answer(sock, MetadataResponse, 1).topics[0].partitions[0].leader_id
        req = metadata_request(topic)
        req.with_header(correlation_id=2, client_id="raw")
        try:
            sock.sendall(req.encode(header=True, framed=True))
            return first, len(sock.recv(4)) == 4
        except (ConnectionResetError, BrokenPipeError):
            return first, False
    finally:
        sock.close()


def test_a_cut_off_node_closes_a_clients_connection_after_metadata(tmp_path):
    c = Cluster(tmp_path).start()
    leader = create_rf3(c, "cut")
    node = c.node(leader)
    assert second_answer_on_one_connection(node.port, "cut") == (leader, True)

    for b in c.nodes:
        if b is not node:
            b.kill(signal.SIGKILL)
    seen = {}

    def closed_after_metadata():
        seen["last"] = second_answer_on_one_connection(node.port, "cut")
        return not seen["last"][1]
    wait_for(closed_after_metadata, "the cut-off node closing after a Metadata answer", 15)
    # It answered before closing, and named no leader (-1: LEADER_NOT_AVAILABLE).
    assert seen["last"] == (-1, False), seen
    assert node.proc.poll() is None, "the node kept running"
    c.kill()
