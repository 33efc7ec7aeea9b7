"""Members answer suggestions and report meetings and deals: the match routes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Query
from redis.exceptions import RedisError

from matching.funnel import DIMENSIONS
from matching.lifecycle import IllegalStep, Match, replay
from schemas.envelope import Envelope, InvalidMessage, decode, new_envelope
from services.api_support import Dependencies, IdPath, accept_events
from services.errors import BrokerUnavailable

logger = logging.getLogger(__name__)

MATCH_NAMESPACE = uuid.UUID("2d0f5d8e-7a35-4e6b-a1f4-5c0b8f1e9a21")
LOCK_TTL_MS = 10_000
LOCK_WAIT_S = 5.0
_STEP_FIELDS = ("type", "at", "event_id")


def add_match_routes(app: FastAPI, deps: Dependencies) -> None:
    """Add the routes that move a match along its lifecycle."""

    @app.post("/v1/members/{org_id}/suggestions/{candidate_id}/accept", tags=["matches"],
              status_code=202)  # fmt: skip
    async def accept_suggestion(org_id: IdPath, candidate_id: IdPath) -> dict[str, Any]:
        """Accept a suggestion: open its match (recording the model version and
        score that produced it) and say yes for this member."""
        suggestion = await _current_suggestion(deps, org_id, candidate_id)
        match_id = str(uuid.uuid5(MATCH_NAMESPACE, f"{org_id}\x1f{candidate_id}"))
        async with _match_lock(deps, match_id):
            steps = await _steps(deps, match_id)
            now = datetime.now(UTC)
            new: list[Envelope] = []
            if not steps:
                payload = {"match_id": match_id, "org_id": org_id,
                           "candidate_id": candidate_id, "score": suggestion["score"],
                           "model_version": suggestion["model_version"],
                           "reasons": [_reason_ref(r) for r in suggestion["reasons"]]}  # fmt: skip
                new.append(_event("MatchSuggested", payload, now, match_id))
            answer = {"match_id": match_id, "org_id": org_id}
            new.append(_event("MatchAccepted", answer, now, match_id))
            match, _ = await _record(deps, steps, new)
        return {"match_id": match_id, "stage": match.stage.value}

    @app.post("/v1/matches/{match_id}/{step}", tags=["matches"], status_code=202)
    async def step_match(
        match_id: IdPath,
        step: str,
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> dict[str, Any]:
        """Move a match on: accept, decline, introduce, meeting, deal, close or
        withdraw (a deal). The body carries the step's fields (e.g. org_id for
        accept/decline, held_on for meeting, closed_on for deal)."""
        event_type = _STEP_TYPES.get(step)
        if event_type is None:
            raise HTTPException(
                404, f"unknown step {step!r}; known: {', '.join(_STEP_TYPES)}"
            )
        async with _match_lock(deps, match_id):
            steps = await _steps(deps, match_id)
            if not steps:
                raise HTTPException(404, f"no match {match_id!r}")
            fields = {**(body or {}), "match_id": match_id}
            new = [_event(event_type, fields, datetime.now(UTC), match_id)]
            match, _ = await _record(deps, steps, new)
        return {"match_id": match_id, "stage": match.stage.value}

    @app.get("/v1/matches/funnel", tags=["matches"])
    async def get_funnel(
        by: Annotated[
            str, Query(description=f"one of {', '.join(DIMENSIONS)}")
        ] = "fiscal_year",
    ) -> dict[str, Any]:
        """Return acceptance, meeting and deal rates and the median days to a
        deal, grouped by fiscal year, ward, category, model version or reason."""
        if by not in DIMENSIONS:
            raise HTTPException(
                422, f"group by one of {', '.join(DIMENSIONS)}, not {by!r}"
            )
        raw = await deps.redis.get(deps.keys.funnel)
        funnel = json.loads(raw) if raw is not None else {by: [], "computed_at": None}
        return {"by": by, "rows": funnel[by], "computed_at": funnel["computed_at"]}

    @app.get("/v1/matches/{match_id}", tags=["matches"])
    async def get_match(match_id: IdPath) -> dict[str, Any]:
        """Return a match's stage and every step so far."""
        steps = await _steps(deps, match_id)
        if not steps:
            raise HTTPException(404, f"no match {match_id!r}")
        match = _check(steps)
        return {"match_id": match_id, "stage": match.stage.value, "org_id": match.org_id,
                "candidate_id": match.candidate_id, "model_version": match.model_version,
                "score": match.score, "steps": [s.to_dict() for s in steps]}  # fmt: skip


_STEP_TYPES = {
    "accept": "MatchAccepted",
    "decline": "MatchDeclined",
    "introduce": "MatchIntroduced",
    "meeting": "MeetingHeld",
    "deal": "DealClosed",
    "close": "MatchClosedWithoutDeal",
    "withdraw": "DealWithdrawn",
    "expire": "MatchExpired",
}


def _reason_ref(reason: dict[str, Any]) -> dict[str, Any]:
    """Keep what a match records of a reason: kind, contribution and the
    feature's value (which weights are later learnt from)."""
    ref = {"kind": reason["kind"], "contribution": reason["contribution"]}
    if reason.get("value") is not None:
        ref["value"] = reason["value"]
    return ref


def _event(
    event_type: str, payload: dict[str, Any], at: datetime, match_id: str
) -> Envelope:
    """Build a step; its id comes from the match, the step and the side, so a
    retried request is recognised as the same step."""
    side = payload.get("org_id", "")
    event_id = str(uuid.uuid5(MATCH_NAMESPACE, f"{match_id}\x1f{event_type}\x1f{side}"))
    try:
        return new_envelope(
            event_type, payload, source="api", occurred_at=at, event_id=event_id
        )
    except InvalidMessage as err:
        raise HTTPException(422, {"detail": "the step's fields are wrong",
                                  "problems": err.problems}) from err  # fmt: skip


async def record_match_events(deps: Dependencies, envelopes: list[Envelope]) -> str:
    """Accept events of one match posted as plain events, after the same check
    as the match routes: they must follow the match's steps so far.

    Raises:
        HTTPException: 409 naming the step that does not fit.
    """
    match_id = envelopes[0].payload.match_id  # type: ignore[attr-defined]
    async with _match_lock(deps, match_id):
        steps = await _steps(deps, match_id)
        _, recorded = await _record(deps, steps, envelopes)
    return "accepted" if recorded else "duplicate"


@asynccontextmanager
async def _match_lock(deps: Dependencies, match_id: str) -> AsyncIterator[None]:
    """Hold the match's lock: its steps are checked and recorded one request
    at a time, across API processes."""
    key = f"{deps.keys.prefix}:match-lock:{match_id}"
    token = uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT_S
    while not await deps.redis.set(key, token, nx=True, px=LOCK_TTL_MS):
        if time.monotonic() > deadline:
            raise HTTPException(
                409, f"another step of match {match_id} is being recorded; retry"
            )
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        if await deps.redis.get(key) == token.encode():
            await deps.redis.delete(key)


async def _record(
    deps: Dependencies, steps: list[Envelope], new: list[Envelope]
) -> tuple[Match, bool]:
    """Check the new steps against the match's, accept them, and remember them
    until the read model has them (the caller holds the match's lock). Return
    the match and whether any step was new (not a retried request's)."""
    known = {s.event_id for s in steps}
    fresh = [e for e in new if e.event_id not in known]  # a retried request
    match = _check([*steps, *fresh])
    if fresh:
        await accept_events(deps, fresh)
        match_id = fresh[0].payload.match_id  # type: ignore[attr-defined]
        key = _recorded_key(deps, match_id)
        await deps.redis.rpush(key, *(e.to_bytes() for e in fresh))
    return match, bool(fresh)


def _recorded_key(deps: Dependencies, match_id: str) -> str:
    return f"{deps.keys.prefix}:match-recorded:{match_id}"


def _check(events: list[Envelope]) -> Match:
    try:
        return replay(events)
    except IllegalStep as err:
        raise HTTPException(409, str(err)) from err


async def _steps(deps: Dependencies, match_id: str) -> list[Envelope]:
    """Return the match's steps in order: those the read model holds, and those
    the API accepted that the worker may not have projected yet."""
    raw = await deps.redis.hgetall(deps.keys.match(match_id))
    steps = {
        r["event_id"]: new_envelope(
            r["type"],
            {k: v for k, v in r.items() if k not in _STEP_FIELDS},
            source="api",
            occurred_at=datetime.fromisoformat(r["at"]),
            event_id=r["event_id"],
        )
        for r in (json.loads(v) for v in raw.values())
    }
    rank: dict[str, int] = {}
    for recorded in await deps.redis.lrange(_recorded_key(deps, match_id), 0, -1):
        env = decode(recorded if isinstance(recorded, bytes) else recorded.encode())
        steps.setdefault(env.event_id, env)
        rank.setdefault(env.event_id, len(rank))
    return sorted(steps.values(), key=lambda e: _in_order(e, rank.get(e.event_id, -1)))


def _in_order(env: Envelope, rank: int) -> tuple[bool, int, datetime, str]:
    """Order a match's steps: the suggestion first, then in the order the API
    accepted them (rank; -1 for steps known only from the read model, which
    came before), then by time."""
    return (env.type != "MatchSuggested", rank, env.occurred_at, env.event_id)


async def _current_suggestion(
    deps: Dependencies, org_id: str, candidate_id: str
) -> Any:
    raw = await deps.redis.get(deps.keys.suggestions(org_id))
    document = json.loads(raw) if raw is not None else {"suggestions": []}
    for s in document["suggestions"]:
        if s["candidate_id"] == candidate_id:
            return s | {"model_version": document["model_version"]}
    raise HTTPException(
        404, f"{candidate_id} is not among the suggestions of {org_id} now"
    )


async def expire_due_matches(deps: Dependencies, now: datetime) -> list[str]:
    """Expire every match whose 30 days passed without both answers; return
    their ids.

    The graph service lists the matches waiting for answers with their
    deadlines; each is checked against its own steps before it expires, and
    its MatchExpired event has an id made from the match's, so two API
    processes (or a retry) expire a match once.
    """
    due = await deps.redis.zrangebyscore(deps.keys.match_deadlines, 0, now.timestamp())
    expired: list[str] = []
    for raw in due:
        match_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        async with _match_lock(deps, match_id):
            steps = await _steps(deps, match_id)
            if not steps:
                continue
            env = _event("MatchExpired", {"match_id": match_id}, now, match_id)
            try:
                match = replay([*steps, env])
            except IllegalStep:
                continue  # answered (or expired) since the list was written
            await _record(deps, steps, [env])
        expired.append(match_id)
        logger.info(
            "the match of %s with %s expired: 30 days passed without both answers",
            match.org_id, match.candidate_id,
        )  # fmt: skip
    return expired


async def expire_matches_every(deps: Dependencies, every_s: float) -> None:
    """Expire due matches now and then, for as long as the API runs."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await expire_due_matches(deps, datetime.now(UTC))
        except (RedisError, OSError, BrokerUnavailable, HTTPException) as err:
            detail = err.detail if isinstance(err, HTTPException) else err
            logger.warning("could not expire matches now (%s); will try again", detail)
        except Exception:  # the timer must outlive a bug in one round
            logger.exception("expiring matches failed; will try again")
