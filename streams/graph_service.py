"""The graph service: the whole alliance graph in memory, suggestions into Redis.

It also keeps the KPI ledger, which like the graph needs every partition, and
writes the wards' KPIs to Redis whenever they change.

It reads every partition of the graph's topics from the beginning (the log is the
record), applies each event to one :class:`AllianceGraph`, and recomputes the
suggestions of the organisations that a change touches. While it is catching up
it gathers the touched organisations and refreshes them in one pass.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis
from redis.exceptions import RedisError

from matching.graph import AllianceGraph
from matching.ranking import MODEL_VERSION, suggest
from schemas.envelope import InvalidMessage, decode
from schemas.errors import AllianceError
from schemas.topics import GRAPH_STREAMS, Stream, topic_name
from streams.kpis import KpiProjection
from streams.readmodels import Keys

logger = logging.getLogger(__name__)

GRAPH = "graph"
# The graph's streams, and the reports the KPIs need.
CONSUMED_STREAMS = (*GRAPH_STREAMS, Stream.REPORTS)
REFRESH_CHUNK = 200
KPI_EVERY_S = 10.0


class GraphService:
    """Keep the graph current and the suggestions of touched members fresh."""

    def __init__(
        self,
        *,
        bootstrap: str,
        redis: Redis,
        keys: Keys,
        topic_prefix: str,
        limit: int = 20,
        refresh_every_s: float = 0.5,
    ) -> None:
        self.graph = AllianceGraph()
        self._bootstrap = bootstrap
        self._redis = redis
        self._keys = keys
        self.kpis = KpiProjection()
        self._topics = [topic_name(topic_prefix, s) for s in CONSUMED_STREAMS]
        self._limit = limit
        self._refresh_every_s = refresh_every_s
        self._pending: set[str] = set()
        self._positions: dict[str, int] = {}
        self._kpis_written = 0.0
        self.caught_up = False

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            await self._set_caught_up(False)
            await self._assign_all(consumer)
            await self._loop(consumer, stop)
        finally:
            await consumer.stop()

    async def _assign_all(self, consumer: AIOKafkaConsumer) -> None:
        await consumer.topics()  # loads the metadata of every topic
        parts = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        logger.info(
            "graph service reading %d partitions of %s", len(parts), self._topics
        )

    async def _loop(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        last_refresh = time.monotonic()
        progressed = False
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    self._apply(
                        record.topic, record.partition, record.offset, record.value
                    )
                    progressed = True
            idle = not batches
            due = time.monotonic() - last_refresh >= self._refresh_every_s
            if (progressed or self.kpis.changed) and (idle or due):
                await self._refresh_with_retry(caught_up=idle)
                last_refresh, progressed = time.monotonic(), False

    def _apply(
        self, topic: str, partition: int, offset: int, value: bytes | None
    ) -> None:
        self._positions[f"{topic}:{partition}"] = offset + 1
        try:
            env = decode(value or b"")
        except InvalidMessage:
            return  # the worker sends it to the dead-letter topic
        self.kpis.apply(env)
        try:
            self._pending |= self.graph.apply(env)
        except AllianceError as err:
            logger.warning(
                "event %s at %s/%d offset %d not applied to the graph: %s",
                env.event_id, topic, partition, offset, err,
            )  # fmt: skip

    async def _refresh_with_retry(self, *, caught_up: bool) -> None:
        delay = 0.1
        while True:
            try:
                await self.refresh(caught_up=caught_up)
                return
            except (RedisError, OSError) as err:
                logger.warning("Redis unavailable (%s); retrying in %.1f s", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write_kpis(self, caught_up: bool) -> None:
        """Write the KPIs when they changed: once caught up, or now and then while
        catching up (a full report of every ward and year takes a while)."""
        due = time.monotonic() - self._kpis_written >= KPI_EVERY_S
        if self.kpis.changed and (caught_up or due):
            started = time.monotonic()
            await self.kpis.write(self._redis, self._keys)
            self._kpis_written = time.monotonic()
            logger.info("wrote KPIs in %.2f s", self._kpis_written - started)

    async def refresh(self, *, caught_up: bool = True) -> None:
        """Write fresh suggestions of every pending organisation, and the KPIs
        when due; then the progress, but only once both reflect it."""
        pending = sorted(o for o in self._pending if self.graph.has_org(o))
        started = time.monotonic()
        for start in range(0, len(pending), REFRESH_CHUNK):
            await self._write(pending[start : start + REFRESH_CHUNK])
            await asyncio.sleep(0)  # let the consumer's heartbeats run
        self._pending.clear()
        await self._write_kpis(caught_up)
        if not self.kpis.changed:
            progress: dict[Any, Any] = dict(self._positions)  # key type is invariant
            await self._redis.hset(self._keys.progress(GRAPH), mapping=progress)
            if caught_up and not self.caught_up:
                await self._set_caught_up(True)
        if pending:
            logger.info(
                "refreshed suggestions of %d members in %.2f s",
                len(pending),
                time.monotonic() - started,
            )

    async def _set_caught_up(self, caught_up: bool) -> None:
        """Say whether the suggestions reflect the whole log (for /readyz)."""
        self.caught_up = caught_up
        since = datetime.now(UTC).isoformat()
        await self._redis.hset(
            self._keys.status(GRAPH),
            mapping={"caught_up": int(caught_up), "since": since},
        )
        if caught_up:
            logger.info("caught up with the log; suggestions are current")

    async def _write(self, org_ids: Iterable[str]) -> None:
        now = datetime.now(UTC)
        async with self._redis.pipeline(transaction=False) as pipe:
            for org_id in org_ids:
                found = suggest(self.graph, org_id, limit=self._limit, now=now)
                document = {
                    "org_id": org_id,
                    "model_version": MODEL_VERSION,
                    "computed_at": now.isoformat(),
                    "suggestions": [s.to_dict() for s in found],
                }
                pipe.set(
                    self._keys.suggestions(org_id),
                    json.dumps(document, ensure_ascii=False),
                )
            await pipe.execute()
