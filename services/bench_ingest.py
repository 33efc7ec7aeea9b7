"""``alliance bench ingest``: ingest, replay and freshness, measured in one run.

One run starts (or is given) a broker and a Redis, publishes a synthetic
alliance's log (`matching.synthetic`) and measures, against the same broker:

- raw: an `AIOKafkaConsumer` reading the projected topics and decoding every
  message (`schemas.envelope.decode`), with no effect: the baseline;
- live: the real worker and graph service (`services.runtime.Platform`), from
  the first message published until the worker's progress in Redis covers
  every message;
- freshness: a steady stream at a given rate with probes in it, and for each
  probe the time from its publication until the suggestions in Redis show it;
- replay: `services.replay.replay_read_models` into a fresh key prefix, in a
  child process whose peak resident memory is read when it ends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer
    from redis.asyncio import Redis

    from matching.synthetic import SyntheticLog
    from services.runtime import Platform
    from streams.readmodels import Keys

logger = logging.getLogger(__name__)

PHASES = ("raw", "live", "freshness", "replay")
TARGET_LIVE_RATIO = 0.025
TARGET_REPLAY_RATIO = 0.25
TARGET_FRESHNESS_P99_S = 2.0
# Supply links per organisation, as in `alliance bench suggestions`; with the
# credentials and attendance a plan has about 11.4 events per organisation.
LINKS_PER_ORG = 10
EVENTS_PER_ORG = 11.45
PLAN_GROWTH = 1.01
MAX_PLAN_TRIES = 300
MIN_EVENTS = 100
SEND_BATCH = 1000
RAW_BATCH = 2000
POLL_S = 0.01
WAIT_TIMEOUT_S = 900.0
PROBE_TIMEOUT_S = 180.0
PROBE_TRIES = 5
PARTITIONS = 3
STEADY_SOURCE = "bench-steady"
LOG_LINE = re.compile(
    r"wrote KPIs in ([\d.]+) s|(?:refreshed|computed the) suggestions of (\d+) "
    r"(?:new or changed )?members in ([\d.]+) s"
)


@dataclass(frozen=True)
class Options:
    """What one run measures, and where."""

    events: int
    phases: frozenset[str]
    seed: int = 2026
    rate: float = 1000.0
    freshness_s: float = 30.0
    probes_per_s: float = 2.0
    graph_timeout_s: float = 1800.0
    bootstrap: str | None = None
    redis_url: str | None = None
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:8]}")
    data_dir: Path | None = None


# -- the command ---------------------------------------------------------------------


@click.command(name="ingest")
@click.option("--events", default=100_000, show_default=True, help="Events to publish.")
@click.option(
    "--phases",
    default=",".join(PHASES),
    show_default=True,
    help="Comma-separated phases to run (raw is always run: it is the baseline).",
)
@click.option("--replay-only", is_flag=True, help="Run only the raw and replay phases.")
@click.option("--seed", default=2026, show_default=True, help="Seed of the alliance.")
@click.option(
    "--rate", default=1000.0, show_default=True, help="Events/s of the steady stream."
)
@click.option(
    "--freshness-seconds",
    default=30.0,
    show_default=True,
    help="How long the steady stream runs.",
)
@click.option(
    "--probes-per-second", default=2.0, show_default=True, help="Probes in the stream."
)
@click.option(
    "--graph-timeout",
    default=1800.0,
    show_default=True,
    help="Seconds to wait for the graph service to catch up before freshness.",
)
@click.option("--bootstrap", default=None, help="An existing broker (host:port).")
@click.option("--redis-url", default=None, help="An existing Redis (keys prefixed).")
@click.option("--prefix", default=None, help="Topic and key prefix (default: random).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Logs of the processes started (default: a temporary folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_ingest(
    events: int,
    phases: str,
    replay_only: bool,
    seed: int,
    rate: float,
    freshness_seconds: float,
    probes_per_second: float,
    graph_timeout: float,
    bootstrap: str | None,
    redis_url: str | None,
    prefix: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Time raw consumption, the live pipeline, replay and suggestion freshness."""
    chosen = {"raw", "replay"} if replay_only else set(phases.split(",")) | {"raw"}
    unknown = sorted(chosen - set(PHASES))
    if unknown:
        raise click.BadParameter(f"unknown phases: {', '.join(unknown)}")
    if events < MIN_EVENTS:
        raise click.BadParameter(f"--events must be at least {MIN_EVENTS}")
    options = Options(
        events=events,
        phases=frozenset(chosen),
        seed=seed,
        rate=rate,
        freshness_s=freshness_seconds,
        probes_per_s=probes_per_second,
        graph_timeout_s=graph_timeout,
        bootstrap=bootstrap,
        redis_url=redis_url,
        data_dir=data_dir,
        **({"prefix": prefix} if prefix else {}),
    )
    result = run_bench(options)
    click.echo(json.dumps(result, indent=2) if as_json else _text(result))


def run_bench(options: Options) -> dict[str, Any]:
    """Run the phases of `options` in order; return their figures."""
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="alliance-bench-"))
    _progress(f"prefix {options.prefix}; logs in {data_dir}")
    with _Infrastructure(options, data_dir) as infra:
        log = _synthetic_log(options.events, options.seed)
        result: dict[str, Any] = {"events": options.events, "seed": options.seed}
        result["alliance"] = {
            "orgs": log.spec.orgs,
            "supply_links": log.spec.supply_links,
        }
        if "live" in options.phases:
            result |= _with_platform(options, infra, log, data_dir)
        else:
            asyncio.run(_publish_log(infra.bootstrap, options, log))
        result["raw"] = asyncio.run(_raw(infra.bootstrap, options.prefix))
        if "replay" in options.phases:
            result["replay"] = _replay_in_child(infra, options.prefix)
        _add_ratios(result)
        return result


def _progress(message: str) -> None:
    click.echo(message, err=True)


# -- infrastructure ------------------------------------------------------------------


class _Infrastructure:
    """The broker and Redis of a run: the given ones, or children started here."""

    def __init__(self, options: Options, data_dir: Path) -> None:
        self.options = options
        self.data_dir = data_dir
        self.bootstrap = options.bootstrap or ""
        self.redis_url = options.redis_url or ""
        self._children: list[Any] = []

    def __enter__(self) -> _Infrastructure:
        from services.embedded import EmbeddedBroker, EmbeddedRedis

        try:
            if not self.bootstrap:
                broker = EmbeddedBroker(self.data_dir)
                self._children.append(broker)
                broker.start()
                self.bootstrap = broker.bootstrap
            if not self.redis_url:
                redis = EmbeddedRedis(self.data_dir)
                self._children.append(redis)
                redis.start()
                self.redis_url = redis.url
        except BaseException:
            self.__exit__()
            raise
        _progress(f"broker at {self.bootstrap}, Redis at {self.redis_url}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.options.redis_url:  # a Redis of others: leave no key behind
            _delete_prefix(self.redis_url, self.options.prefix)
        for child in reversed(self._children):
            child.stop()


def _delete_prefix(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        batch = []
        for key in client.scan_iter(f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                client.unlink(*batch)
                batch.clear()
        if batch:
            client.unlink(*batch)
    finally:
        client.close()


def _redis_client(url: str) -> Redis:
    from redis.asyncio import Redis

    return Redis.from_url(url)


# -- the log -------------------------------------------------------------------------


def _synthetic_log(events: int, seed: int) -> SyntheticLog:
    """Plan the smallest synthetic alliance (to about 1 %) whose log holds at
    least `events` entries, so that little of its tail (attendance) is cut."""
    from matching.synthetic import SyntheticLog, SyntheticSpec

    orgs = max(10, math.ceil(events / EVENTS_PER_ORG))
    for _ in range(MAX_PLAN_TRIES):
        links = min(LINKS_PER_ORG * orgs, orgs * (orgs - 1) // 4)
        log = SyntheticLog(SyntheticSpec(orgs=orgs, supply_links=links, seed=seed))
        if len(log) >= events:
            return log
        orgs = math.ceil(orgs * PLAN_GROWTH) + 1
    raise click.ClickException(f"could not plan an alliance of {events} events")


def _messages(log: SyntheticLog, events: int, prefix: str) -> Iterator[Message]:
    """Yield the first `events` entries of the log as messages."""
    from matching.synthetic import constructed_envelopes

    for env in islice(constructed_envelopes(log, seed=log.spec.seed), events):
        yield Message.of(env, prefix)


@dataclass(frozen=True)
class Message:
    """A Kafka record ready to send."""

    topic: str
    key: bytes
    value: bytes

    @staticmethod
    def of(env: Any, prefix: str) -> Message:
        from schemas.topics import topic_name

        return Message(topic_name(prefix, env.stream), env.key.encode(), env.to_bytes())


async def _producer(bootstrap: str) -> AIOKafkaProducer:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    return producer


async def _send(
    producer: AIOKafkaProducer, messages: Iterable[Message], total: int
) -> int:
    """Send messages in order, waiting for the acks a batch at a time."""
    sent = 0
    acks: list[asyncio.Future[Any]] = []
    with tqdm(total=total, desc="publishing", unit=" events", file=sys.stderr) as bar:
        for m in messages:
            acks.append(await producer.send(m.topic, m.value, key=m.key))
            if len(acks) >= SEND_BATCH:
                await asyncio.gather(*acks)
                sent += len(acks)
                bar.update(len(acks))
                acks.clear()
        await asyncio.gather(*acks)
        bar.update(len(acks))
    return sent + len(acks)


async def _publish_log(bootstrap: str, options: Options, log: SyntheticLog) -> float:
    """Create the topics and publish the log; return the seconds it took."""
    from services.kafka import ensure_topics

    await ensure_topics(bootstrap, options.prefix, PARTITIONS)
    producer = await _producer(bootstrap)
    try:
        started = time.perf_counter()
        await _send(
            producer, _messages(log, options.events, options.prefix), options.events
        )
        return time.perf_counter() - started
    finally:
        await producer.stop()


def _projected_topics(prefix: str) -> list[str]:
    from schemas.topics import topic_name
    from streams.worker import PROJECTED_STREAMS

    return [topic_name(prefix, s) for s in PROJECTED_STREAMS]


# -- raw -----------------------------------------------------------------------------


async def _raw(bootstrap: str, prefix: str) -> dict[str, Any]:
    """Read and decode every message of the projected topics, with no effect."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from schemas.envelope import InvalidMessage, decode
    from services.kafka import log_end_offsets

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        parts = [
            TopicPartition(t, p)
            for t in _projected_topics(prefix)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        consumer.assign(parts)
        ends = await log_end_offsets(consumer, parts)
        await consumer.seek_to_beginning(*parts)
        todo = {tp for tp, end in ends.items() if end > 0}
        decoded = invalid = 0
        started = time.perf_counter()
        with tqdm(
            total=sum(ends.values()), desc="raw consume+decode", unit=" events",
            file=sys.stderr,
        ) as bar:  # fmt: skip
            deadline = time.monotonic() + WAIT_TIMEOUT_S
            while todo and time.monotonic() < deadline:
                batches = await consumer.getmany(
                    *todo, timeout_ms=1000, max_records=RAW_BATCH
                )
                for tp, records in batches.items():
                    for record in records:
                        try:
                            decode(record.value)
                            decoded += 1
                        except InvalidMessage:
                            invalid += 1
                    bar.update(len(records))
                    if records and records[-1].offset + 1 >= ends[tp]:
                        todo.discard(tp)
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    count = decoded + invalid
    return {
        "messages": count,
        "invalid": invalid,
        "seconds": round(seconds, 3),
        "events_per_s": round(count / seconds, 1),
    }


# -- live and freshness --------------------------------------------------------------


def _with_platform(
    options: Options, infra: _Infrastructure, log: SyntheticLog, data_dir: Path
) -> dict[str, Any]:
    """Start the worker, graph service and API; measure live, then freshness."""
    from services.runtime import Platform
    from services.settings import Settings

    settings = Settings(
        kafka_bootstrap=infra.bootstrap,
        redis_url=infra.redis_url,
        topic_prefix=options.prefix,
        redis_prefix=options.prefix,
        partitions=PARTITIONS,
        api_port=0,
        data_dir=data_dir / "platform",
    )
    platform = Platform(settings)
    _progress("starting the worker, the graph service and the API")
    platform.start()
    try:
        result = {"live": asyncio.run(_live(platform, options, log))}
        if "freshness" in options.phases:
            result["freshness"] = asyncio.run(_freshness(platform, options, log))
        return result
    finally:
        platform.stop()


async def _live(
    platform: Platform, options: Options, log: SyntheticLog
) -> dict[str, Any]:
    """Publish the log and time it until the worker has applied every message."""
    from streams.graph_service import GRAPH
    from streams.readmodels import WORKER, Keys

    keys = Keys(options.prefix)
    redis = _redis_client(platform.redis_url)
    try:
        await _warm_up(platform, options, keys, redis)
        started = time.perf_counter()
        producer = await _producer(platform.bootstrap)
        try:
            messages = _messages(log, options.events, options.prefix)
            sent = await _send(producer, messages, options.events)
        finally:
            await producer.stop()
        published_s = time.perf_counter() - started
        ends = await _ends(platform.bootstrap, options.prefix)
        if not await _wait_progress(
            platform, redis, keys.progress(WORKER), ends, "worker"
        ):
            raise click.ClickException("the worker did not apply every event in time")
        live_s = time.perf_counter() - started
        applied = int(await redis.scard(keys.applied(WORKER)))
        graph_s: float | None = None
        settled_s: float | None = None
        if "freshness" in options.phases:  # which needs it caught up
            graph = keys.progress(GRAPH)
            wait = options.graph_timeout_s
            if await _wait_progress(platform, redis, graph, ends, "graph", wait):
                graph_s = time.perf_counter() - started
            # then until every suggestion the burst changed is recomputed, so
            # that freshness is measured on a settled platform
            if graph_s is not None and await _wait_current(redis, keys, wait):
                settled_s = time.perf_counter() - started
    finally:
        await redis.aclose()
    return {
        "events": sent,
        "warm_up_events": 1,
        "applied_by_worker": applied,
        "publish_seconds": round(published_s, 3),
        "seconds": round(live_s, 3),
        "events_per_s": round(sent / live_s, 1),
        "graph_caught_up_seconds": None if graph_s is None else round(graph_s, 3),
        "suggestions_current_seconds": (
            None if settled_s is None else round(settled_s, 3)
        ),
    }


async def _wait_current(redis: Redis, keys: Any, timeout_s: float) -> bool:
    """Wait until the graph service says every suggestion is current."""
    from streams.graph_service import suggestions_status

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = await suggestions_status(redis, keys)
        if status is not None and status[0]:
            return True
        await asyncio.sleep(0.5)
    return False


async def _warm_up(
    platform: Platform, options: Options, keys: Keys, redis: Redis
) -> None:
    """Send one registration and wait until the worker applied it, so that the
    timing does not include the worker joining its consumer group."""
    env = _envelope(
        "OrganisationRegistered",
        {"org_id": "bench-warm-up", "name": "Warm-up firm", "ward": "13101"},
        event_id=f"{options.prefix}-warm-up",
    )
    producer = await _producer(platform.bootstrap)
    try:
        await (await producer.send(*_record(env, options.prefix)))
    finally:
        await producer.stop()
    deadline = time.monotonic() + WAIT_TIMEOUT_S
    while not await redis.sismember(keys.applied("worker"), env.event_id):
        platform.check_children()
        if time.monotonic() > deadline:
            raise click.ClickException("the worker did not apply the warm-up event")
        await asyncio.sleep(0.05)


def _envelope(event_type: str, payload: dict[str, Any], *, event_id: str) -> Any:
    from schemas.envelope import new_envelope

    return new_envelope(
        event_type,
        payload,
        source=STEADY_SOURCE,
        occurred_at=datetime.now(UTC),
        event_id=event_id,
    )


def _record(env: Any, prefix: str) -> tuple[str, bytes, bytes]:
    m = Message.of(env, prefix)
    return m.topic, m.value, m.key


async def _ends(bootstrap: str, prefix: str) -> dict[str, int]:
    from services.kafka import end_offsets

    return await end_offsets(bootstrap, _projected_topics(prefix))


async def _wait_progress(
    platform: Platform,
    redis: Redis,
    key: str,
    ends: dict[str, int],
    who: str,
    timeout_s: float = WAIT_TIMEOUT_S,
) -> bool:
    """Wait until a consumer's progress in Redis reaches every end offset;
    return False if it did not within the timeout."""
    total = sum(ends.values())
    deadline = time.monotonic() + timeout_s
    with tqdm(
        total=total, desc=f"{who} progress", unit=" events", file=sys.stderr
    ) as bar:
        while True:
            progress = await redis.hgetall(key)
            done = sum(
                min(int(progress.get(part.encode(), 0)), end)
                for part, end in ends.items()
            )
            bar.update(done - bar.n)
            if done >= total:
                return True
            platform.check_children()
            if time.monotonic() > deadline:
                logger.warning("the %s did not catch up in %.0f s", who, timeout_s)
                return False
            await asyncio.sleep(POLL_S)


# -- freshness -----------------------------------------------------------------------


@dataclass
class _Probe:
    """An event whose effect on one member's suggestions is awaited."""

    kind: str  # "registration" or "link"
    org_id: str
    published: float
    candidate: str | None = None
    computed_at: str | None = None
    seen: float | None = None

    def shows(self, raw: bytes | None) -> bool:
        """Return whether the member's suggestions document reflects the event."""
        if raw is None:
            return False
        if self.kind == "registration":
            return True
        # A new supplier is taken out of the member's list as soon as the
        # graph service applies the link; the full recomputation follows later.
        doc = json.loads(raw)
        return self.candidate not in {s["candidate_id"] for s in doc["suggestions"]}


class _SteadyStream:
    """Background events of a live alliance, with probes at a fixed interval.

    The background: 60 % new supply links between random members, 25 %
    attendance at new meetings (30 members each), 15 % environment reports.
    Probes alternate: a new member's registration (shown once its own
    suggestions are written) and a supply link from a member to its current
    first suggestion (shown once the member's suggestions, recomputed, no longer
    hold that supplier: one's own suppliers are never suggested).
    """

    def __init__(self, options: Options, log: SyntheticLog, keys: Keys) -> None:
        self.options = options
        self.keys = keys
        self.orgs = [log.org_id(i) for i in range(log.spec.orgs)]
        self.rng = random.Random(options.seed)
        self.count = 0
        self.probes: list[_Probe] = []

    def background(self) -> Any:
        n, rng = self.count, self.rng
        self.count += 1
        event_id = f"{self.options.prefix}-steady-{n}"
        r = rng.random()
        if r < 0.6:
            buyer, supplier = rng.sample(self.orgs, 2)
            payload = {
                "buyer_id": buyer,
                "supplier_id": supplier,
                "since": date.today(),
            }
            return _envelope("SupplierLinked", payload, event_id=event_id)
        if r < 0.85:
            payload = {
                "event_code": f"steady-meeting-{n // 120}",
                "org_id": rng.choice(self.orgs),
                "attended_at": datetime.now(UTC),
            }
            return _envelope("AttendanceLogged", payload, event_id=event_id)
        payload = {
            "org_id": rng.choice(self.orgs),
            "fiscal_year": 2025,
            "co2_t": round(rng.uniform(1, 500), 1),
            "waste_t": round(rng.uniform(0, 50), 1),
            "electricity_kwh": round(rng.uniform(1e3, 1e6)),
        }
        return _envelope("EnvironmentReported", payload, event_id=event_id)

    async def probe(self, redis: Redis) -> tuple[Any, _Probe] | None:
        """Build the next probe; None when no member with suggestions was found."""
        k = len(self.probes)
        event_id = f"{self.options.prefix}-probe-{k}"
        if k % 2 == 0:
            org_id = f"probe-{k}"
            payload: dict[str, Any] = {
                "org_id": org_id,
                "name": f"Probe firm {k}",
                "ward": "13101",
                "offers": ["energy_audit", "led_lighting"],
                "needs": ["solar", "recycling"],
            }
            env = _envelope("OrganisationRegistered", payload, event_id=event_id)
            return env, _Probe("registration", org_id, 0.0)
        for _ in range(PROBE_TRIES):
            buyer = self.rng.choice(self.orgs)
            raw = await redis.get(self.keys.suggestions(buyer))
            doc = json.loads(raw) if raw else None
            if not doc or not doc["suggestions"]:
                continue
            supplier = doc["suggestions"][0]["candidate_id"]
            payload = {
                "buyer_id": buyer,
                "supplier_id": supplier,
                "since": date.today(),
            }
            env = _envelope("SupplierLinked", payload, event_id=event_id)
            probe = _Probe("link", buyer, 0.0, supplier, doc["computed_at"])
            return env, probe
        return None


async def _freshness(
    platform: Platform, options: Options, log: SyntheticLog
) -> dict[str, Any]:
    """Run the steady stream and poll Redis for what each probe changes."""
    from streams.readmodels import Keys

    keys = Keys(options.prefix)
    stream = _SteadyStream(options, log, keys)
    graph_log = platform.data_dir / "logs" / "graph.log"
    log_start = graph_log.stat().st_size if graph_log.exists() else 0
    publisher, poller = (
        _redis_client(platform.redis_url),
        _redis_client(platform.redis_url),
    )
    producer = await _producer(platform.bootstrap)
    done = asyncio.Event()
    try:
        poll = asyncio.create_task(_poll(poller, keys, stream.probes, done))
        sent, seconds = await _stream(producer, publisher, options, stream)
        done.set()
        await asyncio.wait_for(poll, PROBE_TIMEOUT_S + 10)
    finally:
        await producer.stop()
        await publisher.aclose()
        await poller.aclose()
    result = _latencies(stream.probes)
    result |= {
        "rate_target": options.rate,
        "events": sent,
        "seconds": round(seconds, 3),
        "rate_achieved": round(sent / seconds, 1),
        "graph_refreshes": _refreshes(graph_log, log_start, seconds),
    }
    return result


async def _stream(
    producer: AIOKafkaProducer, redis: Redis, options: Options, stream: _SteadyStream
) -> tuple[int, float]:
    """Publish at the steady rate for the set time, probes included."""
    started = time.monotonic()
    end = started + options.freshness_s
    probe_every = 1 / options.probes_per_s
    next_probe = started + probe_every
    sent = 0
    with tqdm(desc="steady stream", unit=" events", file=sys.stderr) as bar:
        while (now := time.monotonic()) < end:
            acks = []
            due = int((now - started) * options.rate) - sent
            for _ in range(max(due, 0)):
                env = stream.background()
                acks.append(await producer.send(*_record(env, options.prefix)))
            if now >= next_probe:
                next_probe += probe_every
                built = await stream.probe(redis)
                if built is not None:
                    env, probe = built
                    probe.published = time.monotonic()
                    acks.append(await producer.send(*_record(env, options.prefix)))
                    stream.probes.append(probe)
            await asyncio.gather(*acks)
            sent += len(acks)
            bar.update(len(acks))
            await asyncio.sleep(POLL_S / 2)
    return sent, time.monotonic() - started


async def _poll(
    redis: Redis, keys: Keys, probes: list[_Probe], done: asyncio.Event
) -> None:
    """Check every waiting probe each few milliseconds until all are seen, or
    the stream is over and the last one waited its time out."""
    while True:
        now = time.monotonic()
        waiting = [
            p for p in probes if p.seen is None and now - p.published < PROBE_TIMEOUT_S
        ]
        if done.is_set() and not waiting:
            return
        if waiting:
            async with redis.pipeline(transaction=False) as pipe:
                for p in waiting:
                    pipe.get(keys.suggestions(p.org_id))
                found = await pipe.execute()
            seen = time.monotonic()
            for p, raw in zip(waiting, found, strict=True):
                if p.shows(raw):
                    p.seen = seen
        await asyncio.sleep(POLL_S)


def _latencies(probes: list[_Probe]) -> dict[str, Any]:
    result: dict[str, Any] = {"probes": len(probes)}
    for kind in ("all", "registration", "link"):
        chosen = [p for p in probes if kind == "all" or p.kind == kind]
        seen = [p.seen - p.published for p in chosen if p.seen is not None]
        figures: dict[str, Any] = {
            "probes": len(chosen),
            "unseen": len(chosen) - len(seen),
        }
        if seen:
            p50, p99 = _percentile(seen, 50), _percentile(seen, 99)
            figures |= {
                "p50_s": round(p50, 3),
                "p99_s": round(p99, 3),
                "max_s": round(max(seen), 3),
            }
        result[kind] = figures
    return result


def _percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile, interpolating between ranks."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _refreshes(graph_log: Path, start: int, window_s: float) -> dict[str, Any]:
    """Sum up the graph service's refreshes logged since `start`.

    A refresh writes the suggestions of the pending members, then the KPIs when
    they changed; it logs the KPI write, then the whole refresh, so the time of
    the suggestions is the difference.
    """
    if not graph_log.exists():
        return {}
    with graph_log.open("rb") as f:
        f.seek(start)
        text = f.read().decode("utf-8", "replace")
    members, total_s, kpi_s = [], [], []
    kpi_pending = 0.0
    for kpi, n, seconds in LOG_LINE.findall(text):
        if kpi:
            kpi_pending = float(kpi)
            continue
        members.append(int(n))
        total_s.append(float(seconds))
        kpi_s.append(kpi_pending)
        kpi_pending = 0.0
    if not members:
        return {"refreshes": 0}
    suggestions_s = sum(total_s) - sum(kpi_s)
    return {
        "refreshes": len(members),
        "members_per_refresh_mean": round(sum(members) / len(members), 1),
        "members_per_refresh_max": max(members),
        "seconds_per_refresh_mean": round(sum(total_s) / len(members), 3),
        "seconds_per_refresh_max": round(max(total_s), 3),
        "kpi_writes": sum(1 for k in kpi_s if k > 0),
        "kpi_write_seconds_max": round(max(kpi_s), 3),
        "kpi_share_of_refresh_time": round(sum(kpi_s) / max(sum(total_s), 1e-9), 3),
        "suggestion_ms_per_member": round(1000 * suggestions_s / sum(members), 2),
        "busy_share": round(sum(total_s) / window_s, 2),
    }


# -- replay --------------------------------------------------------------------------


def _replay_in_child(infra: _Infrastructure, prefix: str) -> dict[str, Any]:
    """Replay into a fresh key prefix in a child process; return its figures."""
    argv = [
        sys.executable, "-m", "services.bench_ingest",
        infra.bootstrap, infra.redis_url, prefix, f"{prefix}:replay",
    ]  # fmt: skip
    finished = subprocess.run(argv, stdout=subprocess.PIPE, check=True, timeout=7200)
    figures: dict[str, Any] = json.loads(
        finished.stdout.decode().strip().splitlines()[-1]
    )
    return figures


async def _replay(
    bootstrap: str, redis_url: str, topic_prefix: str, redis_prefix: str
) -> dict[str, Any]:
    from services.replay import replay_read_models
    from streams.readmodels import Keys

    redis = _redis_client(redis_url)
    try:
        started = time.perf_counter()
        applied, skipped = await replay_read_models(
            bootstrap, redis, Keys(redis_prefix), topic_prefix
        )
        seconds = time.perf_counter() - started
    finally:
        await redis.aclose()
    return {
        "applied": applied,
        "skipped": skipped,
        "seconds": round(seconds, 3),
        "events_per_s": round((applied + skipped) / seconds, 1),
        "peak_rss_mib": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
    }


def _replay_child(argv: list[str]) -> int:
    bootstrap, redis_url, topic_prefix, redis_prefix = argv
    figures = asyncio.run(_replay(bootstrap, redis_url, topic_prefix, redis_prefix))
    sys.stdout.write(json.dumps(figures) + "\n")  # the parent reads this line
    return 0


# -- figures -------------------------------------------------------------------------


def _add_ratios(result: dict[str, Any]) -> None:
    raw = result["raw"]["events_per_s"]
    for phase, target in (("live", TARGET_LIVE_RATIO), ("replay", TARGET_REPLAY_RATIO)):
        if phase in result:
            ratio = result[phase]["events_per_s"] / raw
            result[phase] |= {
                "ratio_to_raw": round(ratio, 4),
                "target_ratio": target,
                "met": ratio >= target,
            }
    fresh = result.get("freshness", {}).get("all", {})
    if fresh:
        fresh["target_p99_s"] = TARGET_FRESHNESS_P99_S
        fresh["met"] = fresh["unseen"] == 0 and fresh.get("p99_s", math.inf) < 2.0


def _met(flag: bool) -> str:
    return "met" if flag else "NOT met"


def _text(r: dict[str, Any]) -> str:
    raw = r["raw"]
    lines = [
        f"synthetic alliance: {r['events']:,} events ({r['alliance']['orgs']:,} orgs "
        f"planned), seed {r['seed']}",
        f"raw (aiokafka consume + decode): {raw['events_per_s']:,.0f} events/s "
        f"({raw['messages']:,} messages in {raw['seconds']:.1f} s)",
    ]
    if "live" in r:
        v = r["live"]
        lines.append(
            f"live (faust worker, graph service alongside): {v['events_per_s']:,.0f} "
            f"events/s ({v['events']:,} in {v['seconds']:.1f} s; published in "
            f"{v['publish_seconds']:.1f} s; {v['applied_by_worker']:,} applied incl. "
            f"{v['warm_up_events']} warm-up) = {100 * v['ratio_to_raw']:.1f} % of raw "
            f"(target {100 * v['target_ratio']:.1f} %: {_met(v['met'])})"
        )
        caught_up = v["graph_caught_up_seconds"]
        if caught_up is not None:
            lines.append(f"graph service caught up with the log at {caught_up:.1f} s")
    if "freshness" in r:
        lines += _freshness_text(r["freshness"])
    if "replay" in r:
        p = r["replay"]
        lines.append(
            f"replay (services.replay, fresh prefix): {p['events_per_s']:,.0f} "
            f"events/s ({p['applied']:,} applied, {p['skipped']:,} skipped, in "
            f"{p['seconds']:.1f} s) = {100 * p['ratio_to_raw']:.1f} % of raw (target "
            f"{100 * p['target_ratio']:.0f} %: {_met(p['met'])}); peak RSS "
            f"{p['peak_rss_mib']:,} MiB"
        )
    return "\n".join(lines)


def _freshness_text(f: dict[str, Any]) -> list[str]:
    lines = [
        f"freshness at {f['rate_target']:,.0f} events/s for {f['seconds']:.0f} s "
        f"(achieved {f['rate_achieved']:,.0f}/s):"
    ]
    for kind in ("all", "registration", "link"):
        k = f[kind]
        figures = (
            f"p50 {k['p50_s']:.3f} s, p99 {k['p99_s']:.3f} s, max {k['max_s']:.3f} s"
            if "p50_s" in k
            else "none seen"
        )
        lines.append(f"  {kind}: {k['probes']} probes, {k['unseen']} unseen; {figures}")
    lines[-3] += f" (target p99 < 2 s: {_met(f['all']['met'])})"
    g = f["graph_refreshes"]
    if g.get("refreshes"):
        lines.append(
            f"  graph service: {g['refreshes']} refreshes ending in the window, "
            f"{g['members_per_refresh_mean']:,.0f} members each on average (max "
            f"{g['members_per_refresh_max']:,}), {g['seconds_per_refresh_mean']:.2f} s "
            f"each (max {g['seconds_per_refresh_max']:.2f} s), of which KPI writes "
            f"{100 * g['kpi_share_of_refresh_time']:.0f} % (max "
            f"{g['kpi_write_seconds_max']:.2f} s); suggestions "
            f"{g['suggestion_ms_per_member']:.1f} ms a member"
        )
    return lines


if __name__ == "__main__":
    sys.exit(_replay_child(sys.argv[1:]))
