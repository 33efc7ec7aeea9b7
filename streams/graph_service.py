"""The graph service: the whole alliance graph in memory, suggestions into Redis.

It also keeps the KPI ledger, which like the graph needs every partition, and
writes the wards' KPIs to Redis whenever they change.

It reads every partition of the graph's topics from the beginning (the log is the
record), applies each event to one :class:`AllianceGraph`, and brings the stored
suggestions up to date in two steps:

- at once (at the next refresh, about every ``refresh_every_s``), what a member
  just did: a member that registers or changes its profile gets its own
  suggestions computed; a new supplier of a member, or a pair one side
  declined, is taken out of the member's stored list (the rules exclude them);
- in the background, oldest first and a slice of time between polls, the full
  recomputation of every member an event touches: both sides of a link, the
  people at a meeting, and the audience of a new supplier, credential or deal
  (the members it may now be suggested to). A change seen by thousands never
  delays the next event, and a member queued twice is computed once.

While it is behind the log (at start, or when a burst arrives) it applies events
without working out their audiences, which costs time quadratic in the number of
members, and queues every member once instead. It says in Redis whether the
suggestions reflect the whole log (``/readyz`` reports it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from itertools import islice
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from redis.asyncio import Redis
from redis.exceptions import RedisError

from matching.graph import AllianceGraph
from matching.learning import learn_weights
from matching.ranking import MODEL_VERSION, WEIGHTS, Exposure, Suggestion, suggest
from matching.reasons import ReasonKind
from schemas.envelope import InvalidMessage, decode
from schemas.errors import AllianceError
from schemas.events import (
    MatchDeclined,
    OrganisationProfileUpdated,
    OrganisationRegistered,
    SupplierLinked,
)
from schemas.topics import GRAPH_STREAMS, Stream, topic_name
from streams.kpis import KpiProjection
from streams.readmodels import Keys

logger = logging.getLogger(__name__)

GRAPH = "graph"
# The graph's streams, and the reports the KPIs need.
CONSUMED_STREAMS = (*GRAPH_STREAMS, Stream.REPORTS)
REFRESH_CHUNK = 200
KPI_EVERY_S = 30.0
POLL_RECORDS = 5000
# A poll that returns this many records means the service is behind the log.
BURST_RECORDS = POLL_RECORDS
# Background refreshes run this long at most between two polls, and those of
# new or changed members this long (a burst of registrations waits its turn).
BACKGROUND_SLICE_S = 0.2
# Members computed between two looks at the clock (about 10 ms each at 10,000
# members), so that a slice ends near its time.
BACKGROUND_CHUNK = 8
URGENT_SLICE_S = 1.0
# Weights are learnt again once finished matches have grown by this share (or
# by RELEARN_MIN of them), not at every outcome: a new model refreshes everyone.
RELEARN_SHARE = 0.1
RELEARN_MIN = 20


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
        refresh_every_s: float = 0.25,
    ) -> None:
        self.graph = AllianceGraph()
        self._bootstrap = bootstrap
        self._redis = redis
        self._keys = keys
        self.kpis = KpiProjection()
        self._topics = [topic_name(topic_prefix, s) for s in CONSUMED_STREAMS]
        self._limit = limit
        self._refresh_every_s = refresh_every_s
        # New or changed members, oldest first (a dict is an ordered set).
        self._urgent: dict[str, None] = {}
        # Pairs to take out of stored lists at once: (member, candidate).
        self._drops: list[tuple[str, str]] = []
        # Oldest first; a dict is an ordered set.
        self._background: dict[str, None] = {}
        self._everyone = False
        self._positions: dict[str, int] = {}
        self._kpis_written = 0.0
        self.caught_up = False
        self._status_written = False
        self.exposure = Exposure()
        self.weights: dict[ReasonKind, float] = dict(WEIGHTS)
        self.model_version = MODEL_VERSION
        self._learnt_from = 0

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
        loading = True  # until the log is read once to its end
        while not stop.is_set():
            busy = bool(self._background or self._everyone or self._urgent)
            batches = await consumer.getmany(
                timeout_ms=0 if busy else 200, max_records=POLL_RECORDS
            )
            count = sum(len(records) for records in batches.values())
            behind = loading or count >= BURST_RECORDS
            for records in batches.values():
                for record in records:
                    self._apply(
                        record.topic, record.partition, record.offset, record.value,
                        audiences=not behind, at_once=not behind,
                    )  # fmt: skip
            progressed = progressed or count > 0
            idle = count == 0
            loading = loading and not idle
            due = time.monotonic() - last_refresh >= self._refresh_every_s
            if (progressed or self.kpis.changed or self._urgent) and (idle or due):
                await self._with_retry(partial(self.refresh, caught_up=idle))
                last_refresh, progressed = time.monotonic(), False
            elif idle and not busy and not self.caught_up:
                await self._with_retry(partial(self.refresh, caught_up=True))
            if self._background or self._everyone:
                # a slice between polls: the log keeps being read meanwhile
                at_head = not loading and count < BURST_RECORDS
                await self._with_retry(partial(self._refresh_background, at_head))

    def _apply(
        self,
        topic: str,
        partition: int,
        offset: int,
        value: bytes | None,
        *,
        audiences: bool = True,
        at_once: bool = True,
    ) -> None:
        self._positions[f"{topic}:{partition}"] = offset + 1
        try:
            env = decode(value or b"")
        except InvalidMessage:
            return  # the worker sends it to the dead-letter topic
        if not topic.endswith(f".{env.stream.value}"):
            return  # on the wrong topic: the worker dead-letters it too
        try:
            self.kpis.apply(env)
        except (AllianceError, ValueError, OverflowError) as err:
            # An event this version would refuse (an older log may hold one)
            # must not stop the service: it is left out of the KPIs, and said so.
            logger.warning(
                "event %s at %s/%d offset %d left out of the KPIs: %s",
                env.event_id, topic, partition, offset, err,
            )  # fmt: skip
        try:
            touched = self.graph.apply(env, audiences=audiences)
            self._everyone = self._everyone or not audiences
        except AllianceError as err:
            logger.warning(
                "event %s at %s/%d offset %d not applied to the graph: %s",
                env.event_id, topic, partition, offset, err,
            )  # fmt: skip
            return
        self._at_once(env.payload, new_members=at_once)
        self._background.update(dict.fromkeys(touched))

    def _at_once(self, p: Any, *, new_members: bool) -> None:
        """Queue what a member just did for the next refresh. Behind the log
        (``new_members`` false) a new or changed member waits in the background
        queue with everyone else; exclusions are taken out at once anyway."""
        if isinstance(p, OrganisationRegistered | OrganisationProfileUpdated):
            if new_members:
                self._urgent[p.org_id] = None
        elif isinstance(p, SupplierLinked):
            self._drops.append((p.buyer_id, p.supplier_id))
        elif isinstance(p, MatchDeclined):
            match = self.graph.matches.get(p.match_id)
            if match is not None:
                self._drops += [(match.org_id, match.candidate_id),
                                (match.candidate_id, match.org_id)]  # fmt: skip

    async def _with_retry(self, step: Callable[[], Awaitable[None]]) -> None:
        delay = 0.1
        while True:
            try:
                await step()
                return
            except (RedisError, OSError) as err:
                logger.warning("Redis unavailable (%s); retrying in %.1f s", err, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _write_kpis(self, caught_up: bool) -> None:
        """Write the KPIs when they changed: once all is quiet, or now and then
        while events keep coming (a report of every ward takes a while)."""
        due = time.monotonic() - self._kpis_written >= KPI_EVERY_S
        if self.kpis.changed and (caught_up or due):
            started = time.monotonic()
            await self.kpis.write(self._redis, self._keys)
            self._kpis_written = time.monotonic()
            logger.info("wrote KPIs in %.2f s", self._kpis_written - started)

    async def refresh(self, *, caught_up: bool = True) -> None:
        """Apply what members just did to their suggestions, and write the KPIs
        when due; then the progress, but only once both reflect it. Full
        recomputations wait in the background queue."""
        self._relearn()
        self._queue_everyone()
        urgent = self._registered(self._urgent, keep_order=True)
        self._urgent.clear()
        started = time.monotonic()
        done = 0
        while done < len(urgent) and time.monotonic() - started < URGENT_SLICE_S:
            chunk = urgent[done : done + BACKGROUND_CHUNK]
            await self._write(chunk)
            for org_id in chunk:
                self._background.pop(org_id, None)
            done += len(chunk)
            await asyncio.sleep(0)  # let the consumer's heartbeats run
        self._urgent.update(dict.fromkeys(urgent[done:]))  # a burst: next time
        urgent = urgent[:done]
        await self._drop_pairs()
        # KPIs are written when all is quiet, or every KPI_EVERY_S under load
        quiet = caught_up and not self._background and not self._urgent
        await self._write_kpis(quiet)
        if not self.kpis.changed:
            await self._set_caught_up(quiet)
            progress: dict[Any, Any] = dict(self._positions)  # key type is invariant
            if progress:
                await self._redis.hset(self._keys.progress(GRAPH), mapping=progress)
        if urgent:
            logger.info(
                "computed the suggestions of %d new or changed members in %.2f s; "
                "%d more to recompute in the background", len(urgent),
                time.monotonic() - started, len(self._background),
            )  # fmt: skip

    async def _drop_pairs(self) -> None:
        """Take newly excluded candidates (a member's new supplier, a declined
        pair) out of the members' stored lists, without recomputing them."""
        drops, self._drops = self._drops, []
        by_member: dict[str, set[str]] = {}
        for org_id, candidate_id in drops:
            by_member.setdefault(org_id, set()).add(candidate_id)
        members = list(by_member)
        for start in range(0, len(members), REFRESH_CHUNK):
            chunk = members[start : start + REFRESH_CHUNK]
            stored = await self._redis.mget([self._keys.suggestions(o) for o in chunk])
            async with self._redis.pipeline(transaction=False) as pipe:
                for org_id, raw in zip(chunk, stored, strict=True):
                    if raw is None:
                        continue
                    document = json.loads(raw)
                    kept = [s for s in document["suggestions"]
                            if s["candidate_id"] not in by_member[org_id]]  # fmt: skip
                    if len(kept) < len(document["suggestions"]):
                        document["suggestions"] = kept
                        pipe.set(self._keys.suggestions(org_id),
                                 json.dumps(document, ensure_ascii=False))  # fmt: skip
                await pipe.execute()

    def _queue_everyone(self) -> None:
        if self._everyone:
            self._background.update(dict.fromkeys(self.graph.orgs()))
            self._everyone = False

    async def _refresh_background(self, caught_up: bool = True) -> None:
        """Recompute members of the background queue, oldest first, for a slice
        of time; say the suggestions are current once it is empty and the log
        is read to its end."""
        self._queue_everyone()
        deadline = time.monotonic() + BACKGROUND_SLICE_S
        while self._background and time.monotonic() < deadline:
            chunk = list(islice(self._background, BACKGROUND_CHUNK))
            for org_id in chunk:
                del self._background[org_id]
            await self._write(self._registered(chunk, keep_order=True))
        if caught_up and not (self._background or self._urgent or self.kpis.changed):
            await self._set_caught_up(True)

    def _registered(
        self, org_ids: Iterable[str], *, keep_order: bool = False
    ) -> list[str]:
        """Return the members among the ids (sorted, unless ``keep_order``); forget
        the exposure of the rest (they left, or never registered)."""
        given = list(org_ids)
        members = [o for o in given if self.graph.has_org(o)]
        for gone in set(given).difference(members):
            self.exposure.forget(gone)
        return members if keep_order else sorted(members)

    def _relearn(self) -> None:
        """Learn the ranking's weights again when enough matches have finished
        since the last time; a new model refreshes every member's suggestions."""
        outcomes = self.kpis.funnel.outcomes()
        due = self._learnt_from + max(RELEARN_MIN, RELEARN_SHARE * self._learnt_from)
        if len(outcomes) < due:
            return
        self._learnt_from = len(outcomes)
        learnt = learn_weights(outcomes, WEIGHTS)
        if learnt is None or learnt.weights == self.weights:
            return
        self.weights, self.model_version = learnt.weights, learnt.model_version
        logger.info(
            "ranking weights learnt from %d finished matches (%d deals): %s",
            learnt.outcomes, learnt.deals,
            ", ".join(f"{k} {w:.3f}" for k, w in learnt.weights.items()),
        )  # fmt: skip
        self._everyone = True

    async def _set_caught_up(self, caught_up: bool) -> None:
        """Say whether the suggestions reflect the whole log (for /readyz)."""
        if caught_up == self.caught_up and self._status_written:
            return
        self.caught_up, self._status_written = caught_up, True
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
                found = suggest(
                    self.graph, org_id, limit=self._limit, now=now,
                    weights=self.weights, exposure=self.exposure,
                )  # fmt: skip
                document = {
                    "org_id": org_id,
                    "model_version": self.model_version,
                    "computed_at": now.isoformat(),
                    "suggestions": [self._document(s) for s in found],
                }
                pipe.set(
                    self._keys.suggestions(org_id),
                    json.dumps(document, ensure_ascii=False),
                )
            await pipe.execute()

    def _document(self, suggestion: Suggestion) -> dict[str, Any]:
        """Return a suggestion as stored: with the model version that made it and
        each reason's feature value (its contribution over the weight), which
        a match records so that weights can be learnt from its outcome."""
        document = suggestion.to_dict() | {"model_version": self.model_version}
        for reason in document["reasons"]:
            weight = self.weights.get(reason["kind"], 0.0)
            if weight > 0:
                reason["value"] = round(reason["contribution"] / weight, 4)
        return document


async def suggestions_status(redis: Redis, keys: Keys) -> tuple[bool, str] | None:
    """Return what the graph service last said: whether every suggestion is
    current, and since when (ISO time); None if it has not started."""
    status = await redis.hgetall(keys.status(GRAPH))
    if not status:
        return None
    since = status.get(b"since", b"?")
    return status.get(b"caught_up") == b"1", (
        since.decode() if isinstance(since, bytes) else since
    )
