"""A partition leader paused (SIGSTOP) for a long GC-like stall is replaced, and once resumed
it answers what waited in its socket as a follower, never as the leader it was."""

import signal
import time

from clients import wait_for
from cluster import Cluster, Stream
from test_cluster import answer, create_rf3, metadata_request, presend, produce_request


def produce_error(sock):
    from kafka.protocol.producer import ProduceResponse
    return answer(sock, ProduceResponse, 3).responses[0].partition_responses[0].error_code


def metadata_leader(sock):
    from kafka.protocol.metadata import MetadataResponse
    return answer(sock, MetadataResponse, 1).topics[0].partitions[0].leader_id


NOT_LEADER_OR_FOLLOWER = 6


def test_a_paused_leader_is_replaced_and_answers_not_leader_once_resumed(tmp_path):
    """SIGSTOP of a partition's leader for 10 s (a long GC-like stall): the other two elect a
    leader and acknowledgements resume; the client learns of the new leader when its request to
    the paused node times out (`socket.timeout.ms`, as with Kafka). A Produce already waiting
    in the paused node's socket is the first thing it reads when it continues: it answers
    NOT_LEADER_OR_FOLLOWER, never success (its first act after a stall is to check its lease),
    and does not name itself leader. Nothing acknowledged is lost or duplicated."""
    c = Cluster(tmp_path).start()
    leader = create_rf3(c, "paused")
    others = [b for b in c.nodes if b.node_id != leader]
    # librdkafka gives up on a request to a silent node after socket.timeout.ms (60 s by default).
    s = Stream(c.bootstrap, "paused", {"socket.timeout.ms": 3000, "retry.backoff.ms": 100,
                                       "retry.backoff.max.ms": 500}, pace_s=0.005)
    wait_for(lambda: len(s.acked) >= 1000, "1000 acknowledged records")
    c.node(leader).proc.send_signal(signal.SIGSTOP)
    paused_at = time.monotonic()
    try:
        new = c.wait_leader("paused", 0, not_in=(leader,), via=others[0])
        elected_s = time.monotonic() - paused_at
        before = len(s.acked)
        wait_for(lambda: len(s.acked) >= before + 1000, "acknowledgements from the new leader", 30)
        resumed_s = s.first_ack_after(paused_at) - paused_at
        # Metadata first, then Produce, on one connection: answered in that order.
        waiting = presend(c.node(leader).port, metadata_request("paused"),
                          produce_request("paused", b"to-the-paused-node"))
        remaining = 10 - (time.monotonic() - paused_at)
        if remaining > 0:
            time.sleep(remaining)  # the length of the stall is the point: nothing to wait for
    finally:
        c.node(leader).proc.send_signal(signal.SIGCONT)
    assert metadata_leader(waiting) != leader, "the resumed node named itself leader"
    assert produce_error(waiting) == NOT_LEADER_OR_FOLLOWER
    waiting.close()
    late = presend(c.node(leader).port, produce_request("paused", b"after-resuming"))
    assert produce_error(late) == NOT_LEADER_OR_FOLLOWER
    late.close()
    wait_for(lambda: c.leader_of("paused", 0, via=c.node(leader)) == new, "the resumed node naming the new leader")
    print(f"node {leader} paused: node {new} elected after {elected_s:.2f} s, acks resumed after {resumed_s:.2f} s")
    assert elected_s < 3.0, f"election took {elected_s:.2f} s"
    # The client's socket timeout plus a retry, well before the paused node came back.
    assert resumed_s < 9.0, f"acknowledgements resumed after {resumed_s:.2f} s"
    s.close_and_check(c.bootstrap)
    # Every record produced was acknowledged once: nothing else (the raw ones) is in the log.
    from clients import high_watermark
    assert high_watermark(c.bootstrap, "paused", 0)[1] == len(s.acked)
    c.kill()
