"""Partition reassignment (AlterPartitionReassignments / ListPartitionReassignments through
kafka-python's admin client): a partition's Raft group takes in new replicas as learners, they
catch up, the voters change by joint consensus, the old replicas leave and their data goes."""

import signal

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaAdminClient
from kafka import TopicPartition as KTopicPartition
from kafka.errors import InvalidReplicationAssignmentError, NoReassignmentInProgressError, UnknownTopicOrPartitionError

from clients import wait_for
from cluster import Cluster, Stream, read_all

FAST = {"RAFTSTREAM_REPLICA_LAG_TIME_MAX_MS": "1000", "RAFTSTREAM_OFFSETS_TOPIC_NUM_PARTITIONS": "4"}


def replica_map(c, via):
    """{(topic, partition): (leader, replicas)} of every topic, internal ones included."""
    md = AdminClient({"bootstrap.servers": via.bootstrap}).list_topics(timeout=10)
    return {(t.topic, p.id): (p.leader, list(p.replicas))
            for t in md.topics.values() for p in t.partitions.values()}


def controller_call(bootstrap, call):
    """`call` on a fresh kafka-python admin client, or None if it failed: kafka-python sends
    these requests to the controller it learned first and does not retry when that node has
    just been killed."""
    try:
        kp = KafkaAdminClient(bootstrap_servers=bootstrap)
    except Exception:
        return None
    try:
        return call(kp)
    except Exception:
        return None
    finally:
        kp.close()


def controller_answer(bootstrap, call, what):
    """`controller_call`, asked again until a controller answers (one may have just died)."""
    answer = {}
    wait_for(lambda: answer.update(got=controller_call(bootstrap, call)) or answer["got"] is not None, what)
    return answer["got"]


def one_replica_move(c, topic, records):
    """Creates `topic` (1 partition, RF 3) and starts an acks=all stream with `records` acked;
    returns (leader, replicas, spare node, follower to move off, target, stream)."""
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=3)])[topic].result(30)
    leader = c.wait_leader(topic, 0)
    (_, replicas) = replica_map(c, c.node(leader))[(topic, 0)]
    spare = next(b.node_id for b in c.nodes if b.node_id not in replicas)
    moved_off = next(r for r in reversed(replicas) if r != leader)
    target = [spare if r == moved_off else r for r in replicas]
    s = Stream(c.bootstrap, topic)
    wait_for(lambda: len(s.acked) >= records, f"{records} acknowledged records")
    return leader, replicas, spare, moved_off, target, s


def test_draining_a_node_moves_its_replicas_and_leadership_with_no_loss(tmp_path):
    c = Cluster(tmp_path, n=4, env=FAST).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("drain", num_partitions=3, replication_factor=3)])["drain"].result(30)
    drained = c.wait_leader("drain", 0)
    s = Stream(c.bootstrap, "drain")
    # A committed offset lives in __consumer_offsets, which the drain moves too.
    group = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "drainers"})
    group.commit(offsets=[TopicPartition("drain", 1, 42)], asynchronous=False)
    group.close()
    wait_for(lambda: len(s.acked) >= 1000, "1000 acknowledged records")

    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    plan = {}
    for (topic, p), (_, replicas) in replica_map(c, c.node(drained)).items():
        if drained in replicas:
            spare = min(n for n in (1, 2, 3, 4) if n not in replicas)
            plan[KTopicPartition(topic, p)] = [spare if r == drained else r for r in replicas]
    assert any(tp.topic == "drain" for tp in plan) and any(tp.topic == "__consumer_offsets" for tp in plan)
    assert kp.alter_partition_reassignments(plan) == {tp: None for tp in plan}

    wait_for(lambda: kp.list_partition_reassignments() == {}, "every reassignment finishing", timeout=90)
    for b in c.nodes:
        if b.node_id != drained:
            wait_for(lambda: all(drained not in replicas and leader != drained and leader in replicas
                                 for leader, replicas in replica_map(c, b).values()),
                     f"node {b.node_id} showing nothing on node {drained}")
    moved = replica_map(c, c.node(1 if drained != 1 else 2))
    for tp, target in plan.items():
        assert sorted(moved[(tp.topic, tp.partition)][1]) == sorted(target)
    # The drained node stopped the groups it left and removed their data.
    wait_for(lambda: not any((c.node(drained).data_dir / "topics").glob("drain-*")),
             "the drained node's partition data removed")

    c.node(drained).kill(signal.SIGKILL)
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 1000, "acks=all continuing without the drained node")
    s.close_and_check(c.alive()[0].bootstrap)
    probe = Consumer({"bootstrap.servers": c.alive()[0].bootstrap, "group.id": "drainers"})
    assert probe.committed([TopicPartition("drain", 1)], timeout=30)[0].offset == 42
    probe.close()
    kp.close()
    c.kill()


def test_reassignment_grows_a_partition_and_refuses_bad_targets(tmp_path):
    c = Cluster(tmp_path, env=FAST).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("grow", num_partitions=1, replication_factor=1)])["grow"].result(30)
    s = Stream(c.bootstrap, "grow")
    wait_for(lambda: len(s.acked) >= 500, "500 acknowledged records")
    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    (leader, replicas) = replica_map(c, c.node(1))[("grow", 0)]
    target = replicas + [n for n in (1, 2, 3) if n not in replicas]
    grow = KTopicPartition("grow", 0)
    assert kp.alter_partition_reassignments({grow: target}) == {grow: None}
    # The new replicas catch up: the leader counts them in sync.
    wait_for(lambda: c.partitions("grow", c.node(leader)).get(0, (0, [], []))[2] == [1, 2, 3],
             "the added replicas in sync")
    wait_for(lambda: kp.list_partition_reassignments() == {}, "the reassignment finishing")
    assert replica_map(c, c.node(2))[("grow", 0)][1] == target
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "acks=all with three replicas")
    s.close()
    assert s.failed == []

    refused = kp.alter_partition_reassignments({
        KTopicPartition("no-such-topic", 0): [1],
        KTopicPartition("grow", 7): [1],
        KTopicPartition("grow", 0): [1, 9],
    })
    assert refused[KTopicPartition("no-such-topic", 0)] is UnknownTopicOrPartitionError
    assert refused[KTopicPartition("grow", 7)] is UnknownTopicOrPartitionError
    assert refused[grow] is InvalidReplicationAssignmentError
    assert kp.alter_partition_reassignments({grow: [2, 2]}) == {grow: InvalidReplicationAssignmentError}
    assert kp.alter_partition_reassignments({grow: None}) == {grow: NoReassignmentInProgressError}
    assert kp.list_partition_reassignments() == {}
    values = read_all(c.bootstrap, "grow", len(s.acked))
    assert set(s.acked) <= set(values) and values == sorted(set(values))
    kp.close()
    c.kill()


def test_a_node_added_to_a_running_cluster_is_filled_and_rejoins_after_a_restart(tmp_path):
    c = Cluster(tmp_path, env=FAST).start()
    admin = AdminClient({"bootstrap.servers": c.bootstrap})
    admin.create_topics([NewTopic("fill", num_partitions=1, replication_factor=3)])["fill"].result(30)
    old_leader = c.wait_leader("fill", 0)
    s = Stream(c.bootstrap, "fill")
    wait_for(lambda: len(s.acked) >= 500, "500 acknowledged records")
    # Node 4 is told of node 1 only; the others learn its address from the controller.
    new = c.add_node(known=[1])
    assert new.node_id == 4
    for b in c.nodes[:3]:
        wait_for(lambda: 4 in AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).brokers,
                 f"node {b.node_id} listing the new node")
    # New topics are placed on it, and it leads what it is preferred for.
    admin.create_topics([NewTopic("fresh", num_partitions=4, replication_factor=3)])["fresh"].result(30)
    wait_for(lambda: len(c.partitions("fresh", new)) == 4 and all(
        leader > 0 for leader, _, _ in c.partitions("fresh", new).values()), "leaders of the new topic")
    fresh = c.partitions("fresh", new)
    assert sum(4 in replicas for _, replicas, _ in fresh.values()) == 3, fresh
    # An existing partition moves from its leader's node to the new one.
    kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
    (_, replicas) = replica_map(c, c.node(2))[("fill", 0)]
    target = [4 if r == old_leader else r for r in replicas]
    fill = KTopicPartition("fill", 0)
    assert kp.alter_partition_reassignments({fill: target}) == {fill: None}
    wait_for(lambda: kp.list_partition_reassignments() == {}, "the reassignment finishing", timeout=60)
    leader = c.wait_leader("fill", 0, not_in=(old_leader,))
    wait_for(lambda: c.partitions("fill", c.node(leader))[0][2] == sorted(target), "the new node in sync")
    kp.close()
    c.node(old_leader).kill(signal.SIGKILL)
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "acks=all without the node that was moved off")
    # The added node restarts from its own disk and is back in sync.
    new.kill(signal.SIGTERM)
    new.start(60)
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "acks=all after the new node's restart")
    wait_for(lambda: c.partitions("fill", c.node(c.leader_of("fill", 0)))[0][2] == sorted(target),
             "the restarted new node back in sync")
    s.close_and_check(new.bootstrap)
    c.kill()


def test_a_reassignment_outlives_its_leader_and_waits_for_a_down_target(tmp_path):
    # Five nodes: with two of them down the controller group keeps its majority.
    c = Cluster(tmp_path, n=5, env=FAST).start()
    leader, replicas, spare, moved_off, target, s = one_replica_move(c, "move", 500)
    # The new replica's node is down: the move waits for it.
    c.node(spare).kill(signal.SIGKILL)
    move = KTopicPartition("move", 0)
    via = c.node(moved_off).bootstrap
    wait_for(lambda: controller_call(via, lambda kp: kp.alter_partition_reassignments({move: target}))
             == {move: None}, "the reassignment recorded")
    # (The killed node may have been the controller leader.)
    pending = controller_answer(via, lambda kp: kp.list_partition_reassignments(), "the pending reassignment listed")
    assert pending[move]["adding_replicas"] == [spare] and pending[move]["removing_replicas"] == [moved_off]
    # The leader driving it dies; the next leader carries on once the new node is back.
    c.node(leader).kill(signal.SIGKILL)
    c.wait_leader("move", 0, not_in=(leader,))
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "acks=all with two of the three replicas")
    c.node(spare).start()
    wait_for(lambda: controller_call(via, lambda kp: kp.list_partition_reassignments()) == {},
             "the reassignment finishing", timeout=60)
    # The restarted node applies the controller's log behind the controller: its metadata
    # reaches the final replica set a moment after the controller reports the move done.
    wait_for(lambda: sorted(replica_map(c, c.node(spare))[("move", 0)][1]) == sorted(target),
             "the restarted node's metadata showing the new replicas")
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 500, "acks=all on the new replicas")
    s.close_and_check(c.node(spare).bootstrap)
    c.kill()


def test_a_cancelled_reassignment_leaves_the_replicas_as_they_were(tmp_path):
    c = Cluster(tmp_path, n=4, env=FAST).start()
    leader, replicas, spare, moved_off, target, s = one_replica_move(c, "undo", 300)
    # The target node is down, so the move stays pending (its learner waits to catch up).
    c.node(spare).kill(signal.SIGKILL)
    undo = KTopicPartition("undo", 0)
    via = c.node(leader).bootstrap
    wait_for(lambda: controller_call(via, lambda kp: kp.alter_partition_reassignments({undo: target}))
             == {undo: None}, "the reassignment recorded")
    wait_for(lambda: (controller_call(via, lambda kp: kp.list_partition_reassignments()) or {})
             .get(undo, {}).get("adding_replicas") == [spare], "the move listed as pending")
    wait_for(lambda: controller_call(via, lambda kp: kp.alter_partition_reassignments({undo: None}))
             == {undo: None}, "the reassignment cancelled")
    wait_for(lambda: controller_call(via, lambda kp: kp.list_partition_reassignments()) == {},
             "nothing pending", timeout=60)
    assert replica_map(c, c.node(moved_off))[("undo", 0)][1] == replicas
    # The node that was to be added comes back: it holds nothing of the partition.
    c.node(spare).start()
    before = len(s.acked)
    wait_for(lambda: len(s.acked) >= before + 300, "acks=all on the original replicas")
    wait_for(lambda: not any((c.node(spare).data_dir / "topics").glob("undo-*")), "no data on the spare node")
    wait_for(lambda: c.partitions("undo", c.node(c.leader_of("undo", 0)))[0][2] == sorted(replicas),
             "the original replicas in sync")
    s.close_and_check(c.bootstrap)
    c.kill()
