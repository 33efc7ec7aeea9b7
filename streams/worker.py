"""The faust worker: one thin agent per topic, projecting events into Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

import faust
from redis.asyncio import Redis
from redis.exceptions import RedisError

from schemas.envelope import Envelope, InvalidMessage, decode
from schemas.topics import Stream, topic_name
from streams.deadletters import dead_letter
from streams.readmodels import Keys, Position, project_batch

logger = logging.getLogger(__name__)

PROJECTED_STREAMS = (
    Stream.MEMBERSHIP,
    Stream.ATTENDANCE,
    Stream.SUPPLY_CHAIN,
    Stream.MATCHES,
    Stream.REPORTS,
)
REDIS_RETRY_MAX_S = 5.0
# The embedded broker completes a group join only when the rebalance timeout has
# passed, so a short one lets a worker start (and a rebalance finish) in seconds.
REBALANCE_TIMEOUT_S = 4.0
SESSION_TIMEOUT_S = 10.0
HEARTBEAT_INTERVAL_S = 1.0
# An agent applies up to this many messages in one Redis transaction, waiting at
# most this long for a batch to fill.
BATCH_MESSAGES = 500
BATCH_WITHIN_S = 0.05


def create_app(
    *,
    bootstrap: str,
    redis_url: str,
    topic_prefix: str,
    redis_prefix: str,
    partitions: int,
    data_dir: Path,
) -> faust.App:
    """Build the faust app with an agent for each projected stream."""
    app = faust.App(
        f"{topic_prefix}-worker",
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(data_dir / "faust"),
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=1,
        producer_acks=-1,
        broker_rebalance_timeout=REBALANCE_TIMEOUT_S,
        broker_session_timeout=SESSION_TIMEOUT_S,
        broker_heartbeat_interval=HEARTBEAT_INTERVAL_S,
    )
    dead = app.topic(
        topic_name(topic_prefix, Stream.DEAD_LETTERS),
        key_serializer="raw",
        value_serializer="raw",
    )
    context = _Context(Redis.from_url(redis_url), Keys(redis_prefix), dead)
    for stream in PROJECTED_STREAMS:
        topic = app.topic(
            topic_name(topic_prefix, stream),
            key_serializer="raw",
            value_serializer="raw",
        )
        app.agent(topic, name=f"project-{stream.value}")(_agent_for(stream, context))
    app.on_partitions_assigned.connect(_log_assignment)
    return app


async def _log_assignment(_app: Any, /, *args: Any, signal: Any, **__: Any) -> None:
    """Say which partitions this worker projects after each rebalance.

    faust waits, before giving partitions up, until the events its agents have
    started are applied and acknowledged (``stream_wait_empty``), and commits
    only acknowledged offsets: an offset is committed after its effects are in
    Redis, never before. A worker that lost its partitions without noticing
    (stalled past the session timeout) can still apply an event late; the
    applied-id set makes that a no-op.
    """
    assigned: set[faust.types.TP] = args[0] if args else set()
    parts = ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))
    logger.warning("rebalanced: this worker now projects %s", parts or "nothing")


class _Context:
    def __init__(self, redis: Redis, keys: Keys, dead: faust.TopicT) -> None:
        self.redis = redis
        self.keys = keys
        self.dead = dead


def _agent_for(
    stream: Stream, ctx: _Context
) -> Callable[[faust.StreamT], Coroutine[Any, Any, None]]:
    async def agent(messages: faust.StreamT) -> None:
        # faust acks a batch's messages once the loop body is done with it.
        batches = messages.take_events(  # type: ignore[attr-defined]  # on Stream only
            BATCH_MESSAGES, BATCH_WITHIN_S
        )
        async for events in batches:
            batch = [await _decode_event(ctx, stream, event) for event in events]
            await _with_redis_retry(partial(_apply, ctx, batch))

    return agent


async def _decode_event(
    ctx: _Context, stream: Stream, event: faust.EventT
) -> tuple[Envelope | None, Position]:
    msg = event.message
    position = (msg.topic, msg.partition, msg.offset)
    env = await _decode_or_reject(ctx, stream, event.value, msg.key, position)
    return env, position


async def _decode_or_reject(
    ctx: _Context,
    stream: Stream,
    value: bytes | None,
    key: bytes | None,
    position: Position,
) -> Envelope | None:
    """Return the message's envelope, or send it to the dead-letter topic."""
    try:
        env = decode(value)
    except InvalidMessage as err:
        reason, problems = f"invalid message: {err}", err.problems
    else:
        if env.stream is stream:
            return env
        reason = (
            f"{env.type} belongs on the {env.stream.value} topic, not {stream.value}"
        )
        problems = [{"field": "type", "problem": reason}]
    letter = dead_letter(
        reason, problems, position=position, key=key, value=value or b""
    )
    await ctx.dead.send(key=key, value=letter.to_bytes())
    logger.warning("message at %s/%d offset %d rejected: %s", *position, reason)
    return None


async def _apply(ctx: _Context, batch: list[tuple[Envelope | None, Position]]) -> None:
    applied = await project_batch(ctx.redis, ctx.keys, batch)
    logger.debug("%d messages up to %s applied=%d", len(batch), batch[-1][1], applied)


async def _with_redis_retry(step: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a step until Redis takes it: a message is never skipped for an outage."""
    delay = 0.1
    while True:
        try:
            await step()
            return
        except (RedisError, OSError) as err:
            logger.warning("Redis unavailable (%s); retrying in %.1f s", err, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX_S)


def run_worker(app: faust.App, loglevel: str = "INFO") -> None:
    """Run the faust worker until it is told to stop."""
    worker = faust.Worker(app, loglevel=loglevel.lower(), quiet=True)
    worker.execute_from_commandline()
