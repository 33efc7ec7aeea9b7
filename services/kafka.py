"""Kafka administration: topics and end offsets."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from schemas.topics import Stream, topic_name
from services.errors import BrokerUnavailable

logger = logging.getLogger(__name__)


def all_topics(prefix: str) -> list[str]:
    """Return the names of every topic of the platform."""
    return [topic_name(prefix, stream) for stream in Stream]


async def ensure_topics(bootstrap: str, prefix: str, partitions: int) -> None:
    """Create the platform's topics that do not exist yet."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in all_topics(prefix) if t not in existing]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(t, num_partitions=partitions, replication_factor=1)
                    for t in missing
                ]
            )
            logger.info("created topics %s", ", ".join(missing))
    except TopicAlreadyExistsError:
        pass
    except KafkaError as err:
        raise BrokerUnavailable(
            f"could not create topics on {bootstrap}: {err}"
        ) from err
    finally:
        await admin.close()


async def log_end_offsets(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Return the offset after the last message of each (assigned) partition.

    A broker's answer to ListOffsets is not enough: the embedded broker answers
    the offset after the *first* message of the partition's last record batch,
    so a reader that stops there misses the rest of the batch. A fetch reports
    the high watermark correctly, so this reads the last batch once and takes
    the watermark from it. The consumer's positions are left at those batches:
    seek where you want to read afterwards.
    """
    listed = await consumer.end_offsets(parts)
    ends = dict(listed)
    unread = [tp for tp, end in listed.items() if end > 0]
    for tp in unread:
        consumer.seek(tp, listed[tp] - 1)
    for _ in range(50):  # each fetch waits at most 200 ms
        unread = [tp for tp in unread if consumer.highwater(tp) is None]
        if not unread:
            break
        await consumer.getmany(*unread, timeout_ms=200, max_records=1)
    for tp in ends:
        ends[tp] = max(ends[tp], consumer.highwater(tp) or 0)
    return ends


async def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Return the end offset of every partition, keyed ``"topic:partition"``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    try:
        await consumer.start()
        parts = []
        for topic in topics:
            ids = consumer.partitions_for_topic(topic)
            if ids is None:
                await consumer._client.force_metadata_update()
                ids = consumer.partitions_for_topic(topic) or set()
            parts += [TopicPartition(topic, p) for p in sorted(ids)]
        consumer.assign(parts)
        offsets = await asyncio.wait_for(log_end_offsets(consumer, parts), timeout=15)
        return {f"{tp.topic}:{tp.partition}": off for tp, off in offsets.items()}
    except KafkaError as err:
        raise BrokerUnavailable(
            f"could not read offsets from {bootstrap}: {err}"
        ) from err
    finally:
        await consumer.stop()
