"""Read models in Redis: the key layout and the projection that writes them.

Every write is idempotent (hash fields set, set members added), so a message
delivered twice leaves the same state; the set of applied event ids only saves
the work. Effects, the applied mark and the consumer's progress are written in
one MULTI/EXEC transaction, so they are never seen apart.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from schemas.envelope import Envelope
from schemas.events import (
    AttendanceCorrected,
    AttendanceLogged,
    CredentialLapsed,
    CredentialRecorded,
    CredentialReturned,
    EnvironmentReported,
    EventCancelled,
    EventScheduled,
    MembershipEnded,
    OrganisationProfileUpdated,
    OrganisationRegistered,
    SupplierLinked,
    SupplierUnlinked,
    SupportProvided,
)
from schemas.identity import name_alias

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Keys:
    """Names of the Redis keys under one prefix."""

    prefix: str

    def member(self, org_id: str) -> str:
        return f"{self.prefix}:member:{org_id}"

    def credentials(self, org_id: str) -> str:
        return f"{self.prefix}:member:{org_id}:credentials"

    def member_events(self, org_id: str) -> str:
        return f"{self.prefix}:member:{org_id}:events"

    def suppliers(self, org_id: str) -> str:
        return f"{self.prefix}:member:{org_id}:suppliers"

    def buyers(self, org_id: str) -> str:
        return f"{self.prefix}:member:{org_id}:buyers"

    def support(self, org_id: str) -> str:
        return f"{self.prefix}:member:{org_id}:support"

    def reports(self, org_id: str) -> str:
        return f"{self.prefix}:member:{org_id}:reports"

    def match(self, match_id: str) -> str:
        return f"{self.prefix}:match:{match_id}"

    def adoption(self, buyer_id: str) -> str:
        return f"{self.prefix}:firm-adoption:{buyer_id}"

    @property
    def funnel(self) -> str:
        return f"{self.prefix}:funnel"

    @property
    def match_deadlines(self) -> str:
        """Matches waiting for answers, scored by when they expire (epoch s)."""
        return f"{self.prefix}:match-deadlines"

    def kpis(self, fiscal_year: int) -> str:
        return f"{self.prefix}:kpis:{fiscal_year}"

    def kpi_evidence(self, fiscal_year: int, ward: str, kpi: str) -> str:
        return f"{self.prefix}:kpi-evidence:{fiscal_year}:{ward}:{kpi}"

    def suggestions(self, org_id: str) -> str:
        return f"{self.prefix}:suggestions:{org_id}"

    def event(self, event_code: str) -> str:
        return f"{self.prefix}:event:{event_code}"

    def attendees(self, event_code: str) -> str:
        return f"{self.prefix}:event:{event_code}:attendees"

    @property
    def members(self) -> str:
        return f"{self.prefix}:members"

    def applied(self, consumer: str) -> str:
        return f"{self.prefix}:applied:{consumer}"

    def progress(self, consumer: str) -> str:
        return f"{self.prefix}:progress:{consumer}"

    def status(self, consumer: str) -> str:
        """Whether a consumer has caught up with the log, and since when."""
        return f"{self.prefix}:status:{consumer}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}:idempotency:{key}"


WORKER = "worker"


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _stage_member(pipe: Pipeline, keys: Keys, env: Envelope, before: Any) -> None:
    p = env.payload
    if isinstance(p, OrganisationRegistered):
        profile = p.model_dump(mode="json")
        when = env.occurred_at.isoformat()
        pipe.hset(
            keys.member(p.org_id),
            mapping={"profile": _dump(profile), "registered_at": when},
        )
        pipe.sadd(keys.members, p.org_id)
        if before is not None:  # a member known by name only until now
            _stage_merge(pipe, keys, before, p.org_id)
    elif isinstance(p, OrganisationProfileUpdated):
        changes = p.model_dump(mode="json", exclude_none=True)
        pipe.hset(
            keys.member(p.org_id), "profile", _dump({**(before or {}), **changes})
        )
    elif isinstance(p, MembershipEnded):
        pipe.hset(keys.member(p.org_id), mapping={"ended_on": p.ended_on.isoformat()})
    elif isinstance(p, CredentialRecorded):
        record = p.model_dump(mode="json") | {"event_id": env.event_id}
        pipe.hset(keys.credentials(p.org_id), p.scheme.value, _dump(record))
    elif isinstance(p, CredentialLapsed | CredentialReturned) and before is not None:
        status = "lapsed" if isinstance(p, CredentialLapsed) else "returned"
        record = before | {"status": status, "status_since": _since(p).isoformat()}
        pipe.hset(keys.credentials(p.org_id), p.scheme.value, _dump(record))


def _stage_merge(pipe: Pipeline, keys: Keys, alias: str, into: str) -> None:
    """Fold a member known by name only into the one with a corporate number."""
    for key in (keys.member_events, keys.suppliers, keys.buyers):
        pipe.sunionstore(key(into), [key(into), key(alias)])
    pipe.hset(keys.member(alias), "merged_into", into)
    pipe.srem(keys.members, alias)


def _since(p: CredentialLapsed | CredentialReturned) -> date:
    return p.lapsed_on if isinstance(p, CredentialLapsed) else p.returned_on


def _stage_attendance(pipe: Pipeline, keys: Keys, env: Envelope, before: Any) -> None:
    p = env.payload
    if isinstance(p, EventScheduled):
        event = _dump(p.model_dump(mode="json"))
        pipe.hset(keys.event(p.event_code), mapping={"event": event})
    elif isinstance(p, EventCancelled):
        pipe.hset(
            keys.event(p.event_code), mapping={"cancelled": _dump(p.reason or "")}
        )
    elif isinstance(p, AttendanceLogged) or (
        isinstance(p, AttendanceCorrected) and p.attended
    ):
        pipe.sadd(keys.attendees(p.event_code), p.org_id)
        pipe.sadd(keys.member_events(p.org_id), p.event_code)
    elif isinstance(p, AttendanceCorrected):
        pipe.srem(keys.attendees(p.event_code), p.org_id)
        pipe.srem(keys.member_events(p.org_id), p.event_code)


def _stage_supply(pipe: Pipeline, keys: Keys, env: Envelope, before: Any) -> None:
    p = env.payload
    if isinstance(p, SupplierLinked):
        pipe.sadd(keys.suppliers(p.buyer_id), p.supplier_id)
        pipe.sadd(keys.buyers(p.supplier_id), p.buyer_id)
    elif isinstance(p, SupplierUnlinked):
        pipe.srem(keys.suppliers(p.buyer_id), p.supplier_id)
        pipe.srem(keys.buyers(p.supplier_id), p.buyer_id)
    elif isinstance(p, SupportProvided):
        record = p.model_dump(mode="json")
        pipe.hset(keys.support(p.supplier_id), env.event_id, _dump(record))


def _stage_match(pipe: Pipeline, keys: Keys, env: Envelope, before: Any) -> None:
    """Record each lifecycle step of a match with when it happened.

    The legality of steps is judged by the match lifecycle in ``matching``; this
    read model only shows what the log says.
    """
    p = env.payload
    match_id = getattr(p, "match_id", None)
    if match_id is None:
        return
    step = {
        "type": env.type,
        "at": env.occurred_at.isoformat(),
        "event_id": env.event_id,
    }
    pipe.hset(
        keys.match(match_id), env.event_id, _dump(step | p.model_dump(mode="json"))
    )


def _stage_report(pipe: Pipeline, keys: Keys, env: Envelope, before: Any) -> None:
    p = env.payload
    if isinstance(p, EnvironmentReported):
        record = p.model_dump(mode="json") | {"event_id": env.event_id}
        pipe.hset(keys.reports(p.org_id), str(p.fiscal_year), _dump(record))


_STAGES = (_stage_member, _stage_attendance, _stage_supply, _stage_match, _stage_report)


async def _state_before(redis: Redis, keys: Keys, env: Envelope) -> Any:
    """Read what an event merges with: a profile, a credential, or the member a
    registration with a corporate number takes over."""
    p = env.payload
    if isinstance(p, OrganisationRegistered):
        alias = name_alias(p.name, p.ward, p.corporate_number)
        if alias is None or alias == p.org_id:
            return None
        return alias if await redis.sismember(keys.members, alias) else None
    if isinstance(p, OrganisationProfileUpdated):
        raw = await redis.hget(keys.member(p.org_id), "profile")
    elif isinstance(p, CredentialLapsed | CredentialReturned):
        raw = await redis.hget(keys.credentials(p.org_id), p.scheme.value)
    else:
        return None
    return json.loads(raw) if raw is not None else None


async def project(
    redis: Redis, keys: Keys, env: Envelope, *, position: tuple[str, int, int]
) -> bool:
    """Apply one event to the read models; return False if it was already applied.

    ``position`` is the message's (topic, partition, offset); the consumer's
    progress is recorded with the effects. Updates that merge into earlier state
    read it first: one consumer owns a partition, and per-key order holds there.
    """
    topic, partition, offset = position
    already = await redis.sismember(keys.applied(WORKER), env.event_id)
    before = None if already else await _state_before(redis, keys, env)
    async with redis.pipeline(transaction=True) as pipe:
        if not already:
            for stage in _STAGES:
                stage(pipe, keys, env, before)
            pipe.sadd(keys.applied(WORKER), env.event_id)
        pipe.hset(keys.progress(WORKER), f"{topic}:{partition}", offset + 1)
        await pipe.execute()
    if already:
        logger.debug("event %s already applied; skipped", env.event_id)
    return not already


async def record_progress(
    redis: Redis, keys: Keys, consumer: str, position: tuple[str, int, int]
) -> None:
    """Record that a consumer is done with a message it did not apply."""
    topic, partition, offset = position
    await redis.hset(keys.progress(consumer), f"{topic}:{partition}", offset + 1)
