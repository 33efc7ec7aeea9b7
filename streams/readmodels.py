"""Read models in Redis: the key layout and the projection that writes them.

Every write is idempotent (hash fields set, set members added), so a message
delivered twice leaves the same state; the set of applied event ids only saves
the work. The check of that set, the effects, the applied mark and the
consumer's progress are written in one script call, which Redis runs whole as
it runs a MULTI/EXEC, so they are never seen apart; a run of events shares one
call.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from redis.asyncio import Redis

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
from schemas.topics import Stream

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

    def presence(self, event_code: str) -> str:
        """Per org, the precedence of the latest attendance or correction."""
        return f"{self.prefix}:event:{event_code}:presence"

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

# Applies the steps of `Writes`: a JSON list of [event id, writes], each write a
# [command, arguments...]. An event whose id is in the applied set is skipped;
# an empty id marks writes done whatever (the progress). Redis runs a script
# whole, as it runs a MULTI/EXEC, so the check, the effects, the applied mark and
# the progress are never seen apart. The write [IF_NEWER, key, field, precedence,
# writes] makes its inner writes (and stores the precedence in that hash field)
# unless the one stored there is higher: the latest event by time wins, whatever
# the order in which events arrive (see `Envelope.precedence`).
_APPLY_STEPS = """
local function run(write)
  if write[1] == "IF_NEWER" then
    local seen = redis.call("HGET", write[2], write[3])
    if seen and seen > write[4] then
      return
    end
    redis.call("HSET", write[2], write[3], write[4])
    for _, inner in ipairs(write[5]) do
      redis.call(unpack(inner))
    end
  else
    redis.call(unpack(write))
  end
end
local applied_ids, applied = KEYS[1], 0
for _, step in ipairs(cjson.decode(ARGV[1])) do
  local event_id = step[1]
  if event_id == "" or redis.call("SISMEMBER", applied_ids, event_id) == 0 then
    for _, write in ipairs(step[2]) do
      run(write)
    end
    if event_id ~= "" then
      redis.call("SADD", applied_ids, event_id)
      applied = applied + 1
    end
  end
end
return applied
"""


class Writes:
    """The writes of a run of events, staged, then applied by one script call.

    A MULTI/EXEC of many events costs the client a reply and the encoding of
    every argument per command; the script does the same writes, as atomically,
    for one argument and one reply.
    """

    def __init__(self, applied_key: str) -> None:
        self.applied_key = applied_key
        self.steps: list[tuple[str, list[list[Any]]]] = []

    def __len__(self) -> int:
        return len(self.steps)

    def event(self, event_id: str) -> None:
        """Start the writes of an event (of none, for ``""``)."""
        self.steps.append((event_id, []))

    def hset(
        self,
        key: str,
        field: str | None = None,
        value: str | int | None = None,
        *,
        mapping: dict[str, Any] | None = None,
    ) -> None:
        pairs = {} if field is None or value is None else {field: value}
        write = ["HSET", key]
        for k, v in (pairs | (mapping or {})).items():
            write += [k, str(v)]
        self.steps[-1][1].append(write)

    def hdel(self, key: str, *fields: str) -> None:
        self.steps[-1][1].append(["HDEL", key, *fields])

    def sadd(self, key: str, *members: str) -> None:
        self.steps[-1][1].append(["SADD", key, *members])

    def srem(self, key: str, *members: str) -> None:
        self.steps[-1][1].append(["SREM", key, *members])

    def sunionstore(self, dest: str, keys: list[str]) -> None:
        self.steps[-1][1].append(["SUNIONSTORE", dest, *keys])

    @contextmanager
    def if_newer(self, key: str, field: str, precedence: str) -> Iterator[None]:
        """Make the writes staged inside unless the hash field holds a higher
        precedence (see `Envelope.precedence`); then store this one there."""
        outer = self.steps[-1][1]
        inner: list[list[Any]] = []
        self.steps[-1] = (self.steps[-1][0], inner)
        try:
            yield
        finally:
            self.steps[-1] = (self.steps[-1][0], outer)
        outer.append(["IF_NEWER", key, field, precedence, inner])

    async def execute(self, redis: Redis) -> int:
        """Apply the staged steps; return how many events were applied."""
        if not self.steps:
            return 0
        steps, self.steps = self.steps, []
        applied = await redis.eval(_APPLY_STEPS, 1, self.applied_key, _dump(steps))
        return int(applied)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _stage_member(pipe: Writes, keys: Keys, env: Envelope, before: Any) -> None:
    p = env.payload
    if isinstance(p, OrganisationRegistered):
        profile = p.model_dump(mode="json")
        key, precedence = keys.member(p.org_id), env.precedence()
        _stage_profile(pipe, key, profile, precedence)
        with pipe.if_newer(key, "latest:registered_at", precedence):
            pipe.hset(key, "registered_at", env.occurred_at.isoformat())
        with pipe.if_newer(key, "latest:membership", precedence):
            pipe.hdel(key, "ended_on")  # registered again after an end
        pipe.sadd(keys.members, p.org_id)
        if before is not None:  # a member known by name only until now
            _stage_merge(pipe, keys, before, p.org_id)
    elif isinstance(p, OrganisationProfileUpdated):
        changes = p.model_dump(mode="json", exclude_none=True)
        _stage_profile(pipe, keys.member(p.org_id), changes, env.precedence(rank=1))
    elif isinstance(p, MembershipEnded):
        key = keys.member(p.org_id)
        with pipe.if_newer(key, "latest:membership", env.precedence()):
            pipe.hset(key, "ended_on", p.ended_on.isoformat())
    elif isinstance(p, CredentialRecorded):
        # The certificate issued last is the one held, whatever the arrival order.
        record = p.model_dump(mode="json") | {"event_id": env.event_id}
        key, scheme = keys.credentials(p.org_id), p.scheme.value
        precedence = f"{p.issued_on.isoformat()}|{env.precedence()}"
        with pipe.if_newer(key, f"issued:{scheme}", precedence):
            pipe.hset(key, scheme, _dump(record))
    elif isinstance(p, CredentialLapsed | CredentialReturned):
        # Kept as a dated fact; `read_credentials` applies it to the certificate
        # it concerns, even one recorded after it arrived.
        status = "lapsed" if isinstance(p, CredentialLapsed) else "returned"
        end = {"status": status, "on": _since(p).isoformat()}
        field = f"end:{p.scheme.value}:{env.event_id}"
        pipe.hset(keys.credentials(p.org_id), field, _dump(end))


PROFILE_FIELD = "profile:"
"""Prefix of the member hash's fields that hold the profile, one per field."""


def _stage_profile(
    pipe: Writes, key: str, fields: dict[str, Any], precedence: str
) -> None:
    """Set each profile field to its value in the latest event that gives it.

    An update that arrives before its registration is kept: the registration,
    earlier by time, does not overwrite the fields the update set.
    """
    for name, value in fields.items():
        with pipe.if_newer(key, f"latest:{name}", precedence):
            pipe.hset(key, PROFILE_FIELD + name, _dump(value))


def read_profile(member: dict[bytes, bytes]) -> dict[str, Any]:
    """Return the profile held in a member hash (as read by HGETALL)."""
    start = len(PROFILE_FIELD)
    return {
        field.decode()[start:]: json.loads(value)
        for field, value in member.items()
        if field.startswith(PROFILE_FIELD.encode())
    }


def _stage_merge(pipe: Writes, keys: Keys, alias: str, into: str) -> None:
    """Fold a member known by name only into the one with a corporate number."""
    for key in (keys.member_events, keys.suppliers, keys.buyers):
        pipe.sunionstore(key(into), [key(into), key(alias)])
    pipe.hset(keys.member(alias), "merged_into", into)
    pipe.srem(keys.members, alias)


def read_credentials(held: dict[bytes, bytes]) -> list[dict[str, Any]]:
    """Return the certificates in a credentials hash (as read by HGETALL), each
    with the status of its latest lapse or return dated on or after its issue."""
    records, ends = {}, defaultdict(list)
    for raw_field, value in held.items():
        field = raw_field.decode()
        if ":" not in field:
            records[field] = json.loads(value)
        elif field.startswith("end:"):
            ends[field.split(":")[1]].append(json.loads(value))
    for scheme, record in records.items():
        later = [e for e in ends[scheme] if e["on"] >= record["issued_on"]]
        if later:
            end = max(later, key=lambda e: (e["on"], e["status"]))
            record |= {"status": end["status"], "status_since": end["on"]}
    return list(records.values())


def _since(p: CredentialLapsed | CredentialReturned) -> date:
    return p.lapsed_on if isinstance(p, CredentialLapsed) else p.returned_on


def _stage_attendance(pipe: Writes, keys: Keys, env: Envelope, before: Any) -> None:
    p = env.payload
    if isinstance(p, EventScheduled):
        event = _dump(p.model_dump(mode="json"))
        pipe.hset(keys.event(p.event_code), mapping={"event": event})
    elif isinstance(p, EventCancelled):
        pipe.hset(
            keys.event(p.event_code), mapping={"cancelled": _dump(p.reason or "")}
        )
    elif isinstance(p, AttendanceLogged | AttendanceCorrected):
        # The latest word on an org's presence holds, by time: a correction
        # that arrives before what it corrects still wins over it.
        corrected = isinstance(p, AttendanceCorrected)
        present = p.attended if isinstance(p, AttendanceCorrected) else True
        precedence = env.precedence(rank=1 if corrected else 0)
        with pipe.if_newer(keys.presence(p.event_code), p.org_id, precedence):
            if present:
                pipe.sadd(keys.attendees(p.event_code), p.org_id)
                pipe.sadd(keys.member_events(p.org_id), p.event_code)
            else:
                pipe.srem(keys.attendees(p.event_code), p.org_id)
                pipe.srem(keys.member_events(p.org_id), p.event_code)


def _stage_supply(pipe: Writes, keys: Keys, env: Envelope, before: Any) -> None:
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


def _stage_match(pipe: Writes, keys: Keys, env: Envelope, before: Any) -> None:
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


def _stage_report(pipe: Writes, keys: Keys, env: Envelope, before: Any) -> None:
    p = env.payload
    if isinstance(p, EnvironmentReported):
        record = p.model_dump(mode="json") | {"event_id": env.event_id}
        pipe.hset(keys.reports(p.org_id), str(p.fiscal_year), _dump(record))


# Each event type belongs to one stream, and only that stream's stage writes it.
_STAGES = {
    Stream.MEMBERSHIP: _stage_member,
    Stream.ATTENDANCE: _stage_attendance,
    Stream.SUPPLY_CHAIN: _stage_supply,
    Stream.MATCHES: _stage_match,
    Stream.REPORTS: _stage_report,
}


def _reads_state(env: Envelope) -> bool:
    """Return whether applying an event reads earlier state (`_state_before`)."""
    p = env.payload
    if isinstance(p, OrganisationRegistered):
        alias = name_alias(p.name, p.ward, p.corporate_number)
        return alias is not None and alias != p.org_id
    return False


async def _state_before(redis: Redis, keys: Keys, env: Envelope) -> Any:
    """Read what an event merges with: the member known by name only that a
    registration with a corporate number takes over."""
    p = env.payload
    if not isinstance(p, OrganisationRegistered):
        return None
    alias = name_alias(p.name, p.ward, p.corporate_number)
    if alias is None or alias == p.org_id:
        return None
    return alias if await redis.sismember(keys.members, alias) else None


Position = tuple[str, int, int]


async def project(
    redis: Redis, keys: Keys, env: Envelope, *, position: Position
) -> bool:
    """Apply one event to the read models; return False if it was already applied.

    ``position`` is the message's (topic, partition, offset); the consumer's
    progress is recorded with the effects. Updates that merge into earlier state
    read it first: one consumer owns a partition, and per-key order holds there.
    """
    return await project_batch(redis, keys, [(env, position)]) == 1


async def project_batch(
    redis: Redis, keys: Keys, batch: Sequence[tuple[Envelope | None, Position]]
) -> int:
    """Apply messages in order, many at a time; return how many were applied.

    Each event is applied as by `project`: one already applied, or met earlier in
    the batch, is skipped; the check, its effects, its applied mark and the
    progress past it go in the same atomic step. An event that merges into
    earlier state first applies the steps so far, then reads, so it sees every
    event before it. ``None`` stands for a message that is not applied (it was
    dead-lettered): it only moves the progress.
    """
    applied = 0
    progress: dict[str, int] = {}
    pipe = Writes(keys.applied(WORKER))
    for env, (topic, partition, offset) in batch:
        if env is not None:
            if len(pipe) and _reads_state(env):
                applied += await _execute(redis, pipe, keys, progress)
            before = await _state_before(redis, keys, env)
            pipe.event(env.event_id)
            _STAGES[env.stream](pipe, keys, env, before)
        progress[f"{topic}:{partition}"] = offset + 1
    applied += await _execute(redis, pipe, keys, progress)
    if applied < len(batch):
        logger.debug(
            "%d of %d messages applied before; skipped",
            len(batch) - applied,
            len(batch),
        )
    return applied


async def _execute(
    redis: Redis, pipe: Writes, keys: Keys, progress: dict[str, int]
) -> int:
    """Apply the staged events with the progress past them, in one step."""
    if progress:
        pipe.event("")
        pipe.hset(keys.progress(WORKER), mapping=progress)
        progress.clear()
    return await pipe.execute(redis)


async def record_progress(
    redis: Redis, keys: Keys, consumer: str, position: tuple[str, int, int]
) -> None:
    """Record that a consumer is done with a message it did not apply."""
    topic, partition, offset = position
    await redis.hset(keys.progress(consumer), f"{topic}:{partition}", offset + 1)
