"""Rebuild the read models from the log, with the live path's projection code."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis
from tqdm import tqdm

from schemas.envelope import Envelope, InvalidMessage, decode
from schemas.topics import topic_name
from services.kafka import log_end_offsets
from streams.readmodels import Keys, project_batch
from streams.worker import PROJECTED_STREAMS

logger = logging.getLogger(__name__)

BATCH_RECORDS = 2000


async def replay_read_models(
    bootstrap: str, redis: Redis, keys: Keys, topic_prefix: str
) -> tuple[int, int]:
    """Apply every message now in the projected topics; return (applied, skipped).

    Events already applied (their ids are in Redis) are skipped, so a replay over
    intact read models changes nothing, and one after Redis was lost rebuilds
    them. Invalid messages are skipped here: the worker dead-letters them.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = await _assign_all(consumer, topic_prefix)
        ends = await log_end_offsets(consumer, parts)
        await consumer.seek_to_beginning(*parts)
        todo = {tp for tp, end in ends.items() if end > 0}
        total = sum(ends.values())
        with tqdm(
            total=total, desc="Replaying the log", unit=" events", file=sys.stderr
        ) as bar:
            return await _drain(consumer, redis, keys, todo, ends, bar)
    finally:
        await consumer.stop()


async def _assign_all(consumer: AIOKafkaConsumer, prefix: str) -> list[TopicPartition]:
    await consumer.topics()
    parts = [
        TopicPartition(topic, p)
        for topic in (topic_name(prefix, s) for s in PROJECTED_STREAMS)
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(parts)
    await consumer.seek_to_beginning(*parts)
    return parts


async def _drain(
    consumer: AIOKafkaConsumer,
    redis: Redis,
    keys: Keys,
    todo: set[TopicPartition],
    ends: dict[TopicPartition, int],
    bar: tqdm,
) -> tuple[int, int]:
    applied = read = 0
    writing: asyncio.Future[int] | None = None
    while todo:
        batches = await consumer.getmany(
            *todo, timeout_ms=1000, max_records=BATCH_RECORDS
        )
        for tp, records in batches.items():
            batch = [
                (_decoded(r.value), (r.topic, r.partition, r.offset)) for r in records
            ]
            # Decode the next batch while Redis applies this one; batches are
            # still applied one after the other, in the order read.
            applied += await writing if writing is not None else 0
            writing = asyncio.ensure_future(project_batch(redis, keys, batch))
            read += len(batch)
            bar.update(len(batch))
            if records and records[-1].offset + 1 >= ends[tp]:
                todo.discard(tp)
    applied += await writing if writing is not None else 0
    return applied, read - applied


def _decoded(value: bytes | None) -> Envelope | None:
    """Return the message's envelope; None for an invalid one (the worker
    dead-letters it; here it only counts as read)."""
    try:
        return decode(value)
    except InvalidMessage:
        return None
