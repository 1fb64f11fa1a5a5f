"""Commits made while a rebalance is being prepared are kept (issue 14, item 1).

A member told by its heartbeat that the group is rebalancing commits what it processed before it
rejoins (aiokafka's `on_partitions_revoked`, its autocommit, kafkajs, librdkafka). Kafka stores
that commit; if the broker refused it, the partition's next owner would start from the older
offset and read those records a second time."""

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from broker import Broker

TOPIC = "revoked"
PER_PARTITION = 5


class CommitOnRevoke(ConsumerRebalanceListener):
    """Commits the processed offsets of the partitions being taken away."""

    def __init__(self):
        self.consumer = None
        self.processed = {}
        self.commit_errors = []
        self.revocations = 0

    async def on_partitions_revoked(self, revoked):
        self.revocations += 1
        offsets = {tp: off for tp, off in self.processed.items() if tp in revoked}
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except Exception as e:  # recorded: the test asserts there were none
                self.commit_errors.append(repr(e))

    async def on_partitions_assigned(self, assigned):
        pass


async def consume_until(consumer, predicate, timeout_s=30):
    """Polls `consumer` until `predicate()` holds; returns the records read meanwhile."""
    read = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, f"condition not reached; read {len(read)}"
        batches = await consumer.getmany(timeout_ms=100)
        for records in batches.values():
            read.extend(records)
    return read


async def scenario(bootstrap):
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    for p in range(2):
        for i in range(PER_PARTITION):
            await producer.send_and_wait(TOPIC, f"p{p}-{i}".encode(), partition=p)
    await producer.stop()

    common = dict(bootstrap_servers=bootstrap, group_id="no-duplicates", enable_auto_commit=False,
                  auto_offset_reset="earliest", heartbeat_interval_ms=300, session_timeout_ms=10000)
    listener = CommitOnRevoke()
    a = AIOKafkaConsumer(**common, client_id="a")
    listener.consumer = a
    a.subscribe([TOPIC], listener=listener)
    await a.start()
    tps = [TopicPartition(TOPIC, p) for p in range(2)]

    def a_processed_everything():
        return all(listener.processed.get(tp) == PER_PARTITION for tp in tps)

    read_by_a = []
    while not a_processed_everything():
        for tp, records in (await a.getmany(timeout_ms=100)).items():
            read_by_a.extend(records)
            listener.processed[tp] = records[-1].offset + 1
    assert len(read_by_a) == 2 * PER_PARTITION

    # B joins: A hears of the rebalance by heartbeat, commits in on_partitions_revoked, rejoins.
    b = AIOKafkaConsumer(**common, client_id="b")
    b.subscribe([TOPIC])
    await b.start()

    def settled():
        return len(a.assignment()) == 1 and len(b.assignment()) == 1

    _, read_by_b = await asyncio.gather(consume_until(a, settled), consume_until(b, settled))
    (b_tp,) = b.assignment()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while await b.position(b_tp) < PER_PARTITION:
        assert loop.time() < deadline, "B never reached the partition's end"
        for records in (await b.getmany(timeout_ms=100)).values():
            read_by_b.extend(records)
    await a.stop()
    await b.stop()
    return listener, read_by_b


def test_commit_while_preparing_rebalance_is_kept(tmp_path):
    b = Broker(tmp_path / "data", env={"RAFTSTREAM_GROUP_INITIAL_REBALANCE_DELAY_MS": "0"}).start()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result(10)

    listener, read_by_b = asyncio.run(scenario(b.bootstrap))

    assert listener.revocations >= 1, "A went through a rebalance"
    assert listener.commit_errors == [], "the commit in on_partitions_revoked was refused"
    assert [r.value for r in read_by_b] == [], "B re-read records A had processed and committed"
    b.kill()
