"""The match funnel: how many suggestions were accepted, met and closed, and how
fast, by fiscal year, ward, capability category, model version and reason kind.

A projection of the matches stream (with the members' wards and offers from the
membership stream), rebuilt by replaying the log like every other view.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any

from matching.learning import Outcome
from matching.lifecycle import EXPIRY, Match, MatchReplay, Stage
from schemas.envelope import Envelope
from schemas.events import (
    MatchSuggested,
    OrganisationProfileUpdated,
    OrganisationRegistered,
)
from schemas.fiscal import fiscal_year

DIMENSIONS = ("fiscal_year", "ward", "category", "model_version", "reason_kind")
REACHED = {
    Stage.ACCEPTED: ("accepted",),
    Stage.INTRODUCED: ("accepted",),
    Stage.MEETING_HELD: ("accepted", "meeting"),
    Stage.DEAL_CLOSED: ("accepted", "meeting", "deal"),
}


# The weights of the first heuristic model, which recorded only each reason's
# contribution (weight x value): its outcomes are learnt from through these.
_HEURISTIC_1 = {"fit": 0.35, "proximity": 0.20, "shared_events": 0.15,
                "ward": 0.10, "credential": 0.10, "track_record": 0.10}  # fmt: skip
FINISHED = {
    Stage.DEAL_CLOSED: True,
    Stage.DECLINED: False,
    Stage.EXPIRED: False,
    Stage.CLOSED_WITHOUT_DEAL: False,
}


@dataclass
class _Tracked:
    match: Match
    reasons: list[str]
    features: dict[str, float] | None
    reached: set[str] = field(default_factory=set)
    deal_at: datetime | None = None


class Funnel:
    """Count each match once per stage it ever reached, grouped every way asked."""

    def __init__(self) -> None:
        self._applied: set[str] = set()
        self._matches: dict[str, _Tracked] = {}
        self._replays: defaultdict[str, MatchReplay] = defaultdict(MatchReplay)
        self._wards: dict[str, str] = {}
        self._offers: dict[str, frozenset[str]] = {}

    def apply(self, env: Envelope) -> None:
        """Apply one event; repeated event ids change nothing."""
        if env.event_id in self._applied:
            return
        self._applied.add(env.event_id)
        p = env.payload
        if isinstance(p, OrganisationRegistered | OrganisationProfileUpdated):
            self._profile(p)
        elif (match_id := getattr(p, "match_id", None)) is not None:
            for taken, match in self._replays[match_id].apply(env):
                self._take(taken, match)

    def _profile(self, p: OrganisationRegistered | OrganisationProfileUpdated) -> None:
        if p.ward is not None:
            self._wards[p.org_id] = p.ward
        if p.offers is not None:
            self._offers[p.org_id] = frozenset(c.value for c in p.offers)

    def _take(self, env: Envelope, match: Match) -> None:
        """Record a step its match's lifecycle took, with the match after it."""
        p = env.payload
        if isinstance(p, MatchSuggested):
            self._matches[p.match_id] = _Tracked(
                match, [r.kind for r in p.reasons], _features(p)
            )
            return
        tracked = self._matches[match.match_id]
        tracked.match = match
        tracked.reached.update(REACHED.get(match.stage, ()))
        if match.stage is Stage.DEAL_CLOSED:
            tracked.deal_at = env.occurred_at

    def outcomes(self) -> list[Outcome]:
        """Return the finished matches whose feature values are known, each
        with whether it ended in a deal, oldest suggestion first."""
        finished = [
            t
            for t in self._matches.values()
            if t.match.stage in FINISHED and t.features is not None
        ]
        finished.sort(key=lambda t: (t.match.suggested_at, t.match.match_id))
        return [
            Outcome(t.features, FINISHED[t.match.stage])
            for t in finished
            if t.features is not None
        ]

    def awaiting_answers(self) -> dict[str, datetime]:
        """Return the matches still waiting for an answer, each with the moment
        after which it expires (30 days after the suggestion)."""
        return {
            match_id: tracked.match.suggested_at + EXPIRY
            for match_id, tracked in self._matches.items()
            if tracked.match.stage is Stage.SUGGESTED
        }

    def report(self, by: str) -> list[dict[str, Any]]:
        """Return the funnel grouped by one of DIMENSIONS."""
        if by not in DIMENSIONS:
            raise ValueError(f"group by one of {', '.join(DIMENSIONS)}, not {by!r}")
        groups: defaultdict[str, list[_Tracked]] = defaultdict(list)
        for tracked in self._matches.values():
            for key in self._keys(tracked, by):
                groups[key].append(tracked)
        return [_row(by, key, rows) for key, rows in sorted(groups.items())]

    def _keys(self, tracked: _Tracked, by: str) -> list[str]:
        m = tracked.match
        if by == "fiscal_year":
            return [str(fiscal_year(m.suggested_at))]
        if by == "ward":
            return [self._wards.get(m.org_id, "unknown")]
        if by == "category":
            return sorted(self._offers.get(m.candidate_id, frozenset())) or ["unknown"]
        if by == "model_version":
            return [m.model_version]
        return sorted(set(tracked.reasons)) or ["none"]


def _features(p: MatchSuggested) -> dict[str, float] | None:
    """Return the feature values a suggestion was scored with, if recorded."""
    features: dict[str, float] = {}
    for r in p.reasons:
        if r.value is not None:
            features[r.kind] = r.value
        elif p.model_version == "heuristic-1" and r.kind in _HEURISTIC_1:
            features[r.kind] = r.contribution / _HEURISTIC_1[r.kind]
        else:
            return None  # a model whose weights are not known here
    return features


def _row(by: str, key: str, rows: list[_Tracked]) -> dict[str, Any]:
    suggested = len(rows)
    counts = {
        stage: sum(stage in t.reached for t in rows)
        for stage in ("accepted", "meeting", "deal")
    }
    days = [
        (t.deal_at - t.match.suggested_at).total_seconds() / 86400
        for t in rows
        if t.deal_at is not None
    ]
    return {
        by: key,
        "suggested": suggested,
        **counts,
        "acceptance_rate": counts["accepted"] / suggested,
        "meeting_rate": counts["meeting"] / suggested,
        "deal_rate": counts["deal"] / suggested,
        "median_days_to_deal": round(median(days), 1) if days else None,
    }
