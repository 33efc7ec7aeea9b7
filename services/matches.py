"""Members answer suggestions and report meetings and deals: the match routes."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Query
from redis.exceptions import RedisError

from matching.funnel import DIMENSIONS
from matching.lifecycle import IllegalStep, Match, replay
from schemas.envelope import Envelope, InvalidMessage, new_envelope
from services.api_support import Dependencies, IdPath, accept_events
from services.errors import BrokerUnavailable

logger = logging.getLogger(__name__)

MATCH_NAMESPACE = uuid.UUID("2d0f5d8e-7a35-4e6b-a1f4-5c0b8f1e9a21")
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
        steps = await _steps(deps, match_id)
        now = datetime.now(UTC)
        new: list[Envelope] = []
        if not steps:
            payload = {"match_id": match_id, "org_id": org_id, "candidate_id": candidate_id,
                       "score": suggestion["score"], "model_version": suggestion["model_version"],
                       "reasons": [_reason_ref(r) for r in suggestion["reasons"]]}  # fmt: skip
            new.append(_event("MatchSuggested", payload, now))
        new.append(
            _event("MatchAccepted", {"match_id": match_id, "org_id": org_id}, now)
        )
        match = _check([*steps, *new])
        await accept_events(deps, new)
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
        steps = await _steps(deps, match_id)
        if not steps:
            raise HTTPException(404, f"no match {match_id!r}")
        new = [
            _event(
                event_type, {**(body or {}), "match_id": match_id}, datetime.now(UTC)
            )
        ]
        match = _check([*steps, *new])
        await accept_events(deps, new)
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


def _event(event_type: str, payload: dict[str, Any], at: datetime) -> Envelope:
    try:
        return new_envelope(event_type, payload, source="api", occurred_at=at)
    except InvalidMessage as err:
        raise HTTPException(422, {"detail": "the step's fields are wrong",
                                  "problems": err.problems}) from err  # fmt: skip


def _check(events: list[Envelope]) -> Match:
    try:
        return replay(events)
    except IllegalStep as err:
        raise HTTPException(409, str(err)) from err


async def _steps(deps: Dependencies, match_id: str) -> list[Envelope]:
    """Return the match's events as the read model holds them, in time order."""
    raw = await deps.redis.hgetall(deps.keys.match(match_id))
    records = sorted((json.loads(v) for v in raw.values()), key=_in_order)
    return [
        new_envelope(
            r["type"],
            {k: v for k, v in r.items() if k not in _STEP_FIELDS},
            source="api",
            occurred_at=datetime.fromisoformat(r["at"]),
            event_id=r["event_id"],
        )
        for r in records
    ]


def _in_order(record: dict[str, Any]) -> tuple[bool, str, str]:
    """Order a match's steps: the suggestion first, then by time (steps posted
    in one request share their time)."""
    return (record["type"] != "MatchSuggested", record["at"], record["event_id"])


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
    expired: list[Envelope] = []
    for raw in due:
        match_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        steps = await _steps(deps, match_id)
        if not steps:
            continue
        env = new_envelope(
            "MatchExpired",
            {"match_id": match_id},
            source="expiry-timer",
            occurred_at=now,
            event_id=str(uuid.uuid5(MATCH_NAMESPACE, f"{match_id}\x1fexpired")),
        )
        try:
            match = replay([*steps, env])
        except IllegalStep:
            continue  # answered (or expired) since the list was written
        expired.append(env)
        logger.info(
            "the match of %s with %s expired: 30 days passed without both answers",
            match.org_id, match.candidate_id,
        )  # fmt: skip
    if expired:
        await accept_events(deps, expired)
    return [e.payload.match_id for e in expired]  # type: ignore[attr-defined]


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
