"""What the API's routes share: their dependencies and accepting events once."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Path
from redis.asyncio import Redis

from schemas.envelope import Envelope
from schemas.events import IDENTIFIER_MAX, IDENTIFIER_PATTERN
from services.errors import BrokerUnavailable
from services.producer import Publisher
from streams.readmodels import Keys

ACCEPTED = "accepted"
PENDING = "pending"
CLAIM_TTL_S = 30


@dataclass
class Dependencies:
    """What the API talks to; built by the runtime, replaced in tests."""

    publisher: Publisher
    redis: Redis
    keys: Keys


# An id in a route's path, checked like the ids in events, so that no request
# can name a key of another kind.
IdPath = Annotated[
    str,
    Path(
        pattern=IDENTIFIER_PATTERN,
        max_length=IDENTIFIER_MAX,
        description="letters, digits and . _ -",
    ),
]


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def accept_events(deps: Dependencies, envelopes: list[Envelope]) -> list[str]:
    """Publish the events not accepted before; return each one's status.

    Each event id is claimed in Redis (SET NX) before it is published, so that
    concurrent posts of one event publish it once; a claim is released when the
    broker refuses, so that a retry can succeed.
    """
    # An id repeated within the request is a duplicate of its first line.
    firsts: dict[str, Envelope] = {}
    for e in envelopes:
        firsts.setdefault(e.event_id, e)
    unique = list(firsts.values())  # each id's first envelope, in the order sent
    owned = await _claim(deps, unique)
    fresh = [e for e, mine in zip(unique, owned, strict=True) if mine]
    keys = [deps.keys.idempotency(e.event_id) for e in fresh]
    try:
        await deps.publisher.publish(fresh)
    except BrokerUnavailable:
        if keys:
            await deps.redis.delete(*keys)
        raise
    if keys:
        await deps.redis.mset(dict.fromkeys(keys, ACCEPTED))
    first = {id(e) for e in fresh}
    return ["accepted" if id(e) in first else "duplicate" for e in envelopes]


async def _claim(deps: Dependencies, envelopes: list[Envelope]) -> list[bool]:
    """Claim each event id; False means it was accepted already.

    An id another request is still publishing is waited for, so that "duplicate"
    is only said of an event that is durable.
    """
    async with deps.redis.pipeline(transaction=False) as pipe:
        for e in envelopes:
            pipe.set(
                deps.keys.idempotency(e.event_id), PENDING, nx=True, ex=CLAIM_TTL_S
            )
        claimed = [bool(c) for c in await pipe.execute()]
    for index, e in enumerate(envelopes):
        if not claimed[index]:
            claimed[index] = await _wait_for_other(deps, e.event_id)
    return claimed


async def _wait_for_other(deps: Dependencies, event_id: str) -> bool:
    key = deps.keys.idempotency(event_id)
    deadline = time.monotonic() + CLAIM_TTL_S
    while time.monotonic() < deadline:
        value = await deps.redis.get(key)
        if value is not None and text(value) == ACCEPTED:
            return False
        if value is None and await deps.redis.set(
            key, PENDING, nx=True, ex=CLAIM_TTL_S
        ):
            return True
        await asyncio.sleep(0.05)
    raise BrokerUnavailable(
        f"event {event_id} is still being accepted by another request"
    )
