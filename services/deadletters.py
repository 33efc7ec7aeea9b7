"""Reading the dead-letter topic, and sending letters back once their cause is fixed."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.envelope import Envelope, InvalidMessage, decode
from schemas.topics import Stream, topic_name
from services.kafka import log_end_offsets
from streams.deadletters import DeadLetter

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StoredLetter:
    """A dead letter and where it sits in the dead-letter topic."""

    partition: int
    offset: int
    letter: DeadLetter


async def read_dead_letters(bootstrap: str, topic_prefix: str) -> list[StoredLetter]:
    """Return every dead letter now in the topic, oldest first per partition."""
    topic = topic_name(topic_prefix, Stream.DEAD_LETTERS)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [
            TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
        ]
        if not parts:
            return []
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await log_end_offsets(consumer, parts)
        await consumer.seek_to_beginning(*parts)
        return await asyncio.wait_for(_read_until(consumer, ends), READ_TIMEOUT_S)
    finally:
        await consumer.stop()


async def _read_until(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]
) -> list[StoredLetter]:
    letters: list[StoredLetter] = []
    remaining = {tp for tp, end in ends.items() if end > 0}
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                letters.append(_stored(record.partition, record.offset, record.value))
                if record.offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    return letters


def _stored(partition: int, offset: int, value: bytes | None) -> StoredLetter:
    return StoredLetter(partition, offset, DeadLetter.from_bytes(value or b"{}"))


def replayable(
    letters: list[StoredLetter],
) -> tuple[list[Envelope], list[StoredLetter]]:
    """Split letters into events that are valid now, and letters still invalid."""
    fixed: list[Envelope] = []
    still_bad: list[StoredLetter] = []
    for stored in letters:
        try:
            fixed.append(decode(stored.letter.value))
        except InvalidMessage:
            still_bad.append(stored)
    return fixed, still_bad
