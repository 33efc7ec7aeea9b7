"""End offsets as the log really has them, on the embedded broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.topics import Stream, topic_name
from services.kafka import end_offsets, ensure_topics

pytestmark = pytest.mark.integration


async def _send_in_batches(bootstrap: str, topic: str, batches: int, size: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        for b in range(batches):
            sent = [
                await producer.send(topic, f"{b}-{i}".encode(), partition=0)
                for i in range(size)
            ]
            await asyncio.gather(*sent)  # one record batch per round
    finally:
        await producer.stop()


async def test_end_offsets_count_every_message_of_multi_record_batches(
    broker: str, unique_prefix: str
) -> None:
    await ensure_topics(broker, unique_prefix, 1)
    topic = topic_name(unique_prefix, Stream.REPORTS)
    await _send_in_batches(broker, topic, batches=4, size=50)

    ends = await end_offsets(broker, [topic])

    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        seen = 0
        for _ in range(40):
            batch = await consumer.getmany(tp, timeout_ms=250)
            seen += sum(len(records) for records in batch.values())
            if seen >= 200:
                break
    finally:
        await consumer.stop()
    assert seen == 200
    assert ends == {f"{topic}:0": 200}
