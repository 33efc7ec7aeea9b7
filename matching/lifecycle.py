"""The life of a match: from a suggestion to a deal, and every way off that road.

    suggested --accept (each side)--> accepted --introduce--> introduced
    introduced --meeting--> meeting held --deal--> deal closed
    deal closed --withdraw--> closed without deal
    suggested / accepted by one side --decline (either side)--> declined
    suggested / accepted by one side, 30 days on --expire--> expired
    introduced / meeting held --close--> closed without deal

A step that does not fit the match's state is refused with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from matching.errors import MatchingError
from schemas.envelope import Envelope
from schemas.events import (
    DealClosed,
    DealWithdrawn,
    MatchAccepted,
    MatchClosedWithoutDeal,
    MatchDeclined,
    MatchExpired,
    MatchIntroduced,
    MatchSuggested,
    MeetingHeld,
)
from schemas.fiscal import as_japan_time

logger = logging.getLogger(__name__)

EXPIRY = timedelta(days=30)


class Stage(StrEnum):
    SUGGESTED = "suggested"
    ACCEPTED = "accepted"  # by both sides
    INTRODUCED = "introduced"
    MEETING_HELD = "meeting_held"
    DEAL_CLOSED = "deal_closed"
    DECLINED = "declined"
    EXPIRED = "expired"
    CLOSED_WITHOUT_DEAL = "closed_without_deal"


class IllegalStep(MatchingError):
    """A step that the match's current stage does not allow."""


@dataclass(frozen=True)
class Match:
    """A match as its events have made it so far."""

    match_id: str
    org_id: str
    candidate_id: str
    suggested_at: datetime
    model_version: str
    score: float
    stage: Stage = Stage.SUGGESTED
    accepted_by: frozenset[str] = field(default_factory=frozenset)
    met_on: date | None = None

    @property
    def sides(self) -> frozenset[str]:
        return frozenset({self.org_id, self.candidate_id})

    def step(self, env: Envelope) -> Match:
        """Return the match after one more event, or refuse it.

        Raises:
            IllegalStep: naming the stage and why the step does not fit.
        """
        p = env.payload
        if isinstance(p, MatchAccepted | MatchDeclined):
            return self._answer(p, env.occurred_at)
        if isinstance(p, MatchExpired):
            return self._expire(env.occurred_at)
        moves: dict[type, tuple[frozenset[Stage], Stage]] = {
            MatchIntroduced: (frozenset({Stage.ACCEPTED}), Stage.INTRODUCED),
            MeetingHeld: (frozenset({Stage.INTRODUCED}), Stage.MEETING_HELD),
            DealClosed: (frozenset({Stage.MEETING_HELD}), Stage.DEAL_CLOSED),
            MatchClosedWithoutDeal: (
                frozenset({Stage.INTRODUCED, Stage.MEETING_HELD}),
                Stage.CLOSED_WITHOUT_DEAL,
            ),
            DealWithdrawn: (frozenset({Stage.DEAL_CLOSED}), Stage.CLOSED_WITHOUT_DEAL),
        }
        allowed, target = moves.get(type(p), (frozenset(), self.stage))
        if self.stage not in allowed:
            raise IllegalStep(
                f"match {self.match_id} is {self.stage.value}: {env.type} needs it to be "
                f"{' or '.join(s.value for s in sorted(allowed)) or 'something else'}"
            )
        if isinstance(p, MeetingHeld):
            self._not_before(p.held_on, "the meeting", self.suggested_on, "suggestion")
            return replace(self, stage=target, met_on=p.held_on)
        if isinstance(p, DealClosed):
            self._not_before(p.closed_on, "the deal", self.met_on, "meeting")
        return replace(self, stage=target)

    @property
    def suggested_on(self) -> date:
        """The day of the suggestion, in Japan."""
        return as_japan_time(self.suggested_at).date()

    def _not_before(
        self, day: date, what: str, earlier: date | None, earlier_what: str
    ) -> None:
        if earlier is not None and day < earlier:
            raise IllegalStep(
                f"match {self.match_id}: {what} on {day} is dated before the "
                f"{earlier_what} on {earlier}"
            )

    def _answer(self, p: MatchAccepted | MatchDeclined, at: datetime) -> Match:
        if p.org_id not in self.sides:
            raise IllegalStep(f"{p.org_id} is not a side of match {self.match_id}")
        if self.stage is not Stage.SUGGESTED:
            raise IllegalStep(
                f"match {self.match_id} is {self.stage.value}: no more answers"
            )
        if at - self.suggested_at > EXPIRY:
            raise IllegalStep(
                f"match {self.match_id} expired 30 days after the suggestion"
            )
        if isinstance(p, MatchDeclined):
            return replace(self, stage=Stage.DECLINED)
        accepted = self.accepted_by | {p.org_id}
        stage = Stage.ACCEPTED if accepted == self.sides else Stage.SUGGESTED
        return replace(self, accepted_by=accepted, stage=stage)

    def _expire(self, at: datetime) -> Match:
        if self.stage is not Stage.SUGGESTED:
            raise IllegalStep(
                f"match {self.match_id} is {self.stage.value}: it cannot expire"
            )
        if at - self.suggested_at < EXPIRY:
            raise IllegalStep(f"match {self.match_id} is not 30 days old yet")
        return replace(self, stage=Stage.EXPIRED)


def start(env: Envelope) -> Match:
    """Return the match a MatchSuggested event opens."""
    p = env.payload
    if not isinstance(p, MatchSuggested):
        raise IllegalStep(f"a match starts with MatchSuggested, not {env.type}")
    return Match(
        p.match_id, p.org_id, p.candidate_id, env.occurred_at, p.model_version, p.score
    )


def replay(events: list[Envelope]) -> Match:
    """Return the match its events make, in order; the first must open it."""
    match = start(events[0])
    for env in events[1:]:
        match = match.step(env)
    return match


@dataclass
class MatchReplay:
    """One match's messages, put through its lifecycle as they arrive.

    The MatchSuggested opens the match; a step that comes before it waits for
    it and follows it, in arrival order; a step the lifecycle refuses (a second
    suggestion among them) is skipped. The graph, the funnel and the KPIs all
    replay matches this way, so they agree on each match's stage.
    """

    match: Match | None = None
    waiting: list[Envelope] = field(default_factory=list)

    def apply(self, env: Envelope) -> list[tuple[Envelope, Match]]:
        """Return the steps taken now, each with the match after it: none while
        the match waits for its suggestion; the suggestion and the waiting steps
        the lifecycle takes, when it comes; otherwise this step, if taken."""
        if self.match is not None:
            return self._take([env])
        if not isinstance(env.payload, MatchSuggested):
            self.waiting.append(env)
            return []
        self.match = start(env)
        waiting, self.waiting = self.waiting, []
        return [(env, self.match), *self._take(waiting)]

    def _take(self, steps: list[Envelope]) -> list[tuple[Envelope, Match]]:
        taken = []
        for env in steps:
            assert self.match is not None
            try:
                self.match = self.match.step(env)
            except IllegalStep as err:
                logger.debug("event %s is not applied: %s", env.event_id, err)
                continue
            taken.append((env, self.match))
        return taken
