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
        offsets = await asyncio.wait_for(consumer.end_offsets(parts), timeout=15)
        return {f"{tp.topic}:{tp.partition}": off for tp, off in offsets.items()}
    except KafkaError as err:
        raise BrokerUnavailable(
            f"could not read offsets from {bootstrap}: {err}"
        ) from err
    finally:
        await consumer.stop()
