"""Ranked supplier and buyer suggestions for a member, each with its reasons.

A candidate is a registered org whose offers meet the member's needs (it would
be the member's supplier) or whose needs meet the member's offers (its buyer).
Six features, each in [0, 1], are weighed into a score; the reasons say, in
both languages, what each feature saw.
"""

from __future__ import annotations

import heapq
import logging
import math
import operator
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cached_property
from itertools import chain
from typing import Any

from matching.graph import STRENGTH, AllianceGraph, Credential
from matching.proximity import bfs_parents, path_to, personalized_pagerank
from matching.reasons import (
    Reason,
    ReasonKind,
    Role,
    credential_reason,
    fit_reason,
    proximity_reason,
    shared_events_reason,
    track_record_reason,
    ward_reason,
)
from schemas.capabilities import Capability
from schemas.ems import SCHEME_LEVEL, CredentialStatus, Scheme
from schemas.fiscal import as_japan_time
from schemas.wards import WARDS, ward_distance

__all__ = ["MODEL_VERSION", "WEIGHTS", "Reason", "Suggestion", "suggest"]

logger = logging.getLogger(__name__)

MODEL_VERSION = "heuristic-1"

# Weight of each feature in the score. They sum to 1, so the score is in [0, 1].
# - fit 0.35: a need that meets an offer is what a deal is made of; the other
#   features only order candidates that can do business at all.
# - proximity 0.20 and shared_events 0.15: trust. Firms buy from firms their
#   partners vouch for and from people they have met; both close triangles
#   the way business networks grow. Together they weigh as much as fit, so a
#   known firm that fits comes before a stranger that fits a little better.
# - ward 0.10: retrofits, audits and waste collection are done on site, and
#   small firms prefer suppliers nearby.
# - credential 0.10: the policy spreads EMS; an EMS-holding partner also eases
#   a large buyer's green procurement.
# - track_record 0.10: kept small while the platform's deal history is thin,
#   and so that early winners do not take every slot.
WEIGHTS: dict[ReasonKind, float] = {
    "fit": 0.35,
    "proximity": 0.20,
    "shared_events": 0.15,
    "ward": 0.10,
    "credential": 0.10,
    "track_record": 0.10,
}

FEATURES: tuple[ReasonKind, ...] = tuple(WEIGHTS)
_WEIGHT_VECTOR = tuple(WEIGHTS[kind] for kind in FEATURES)
Features = tuple[float, float, float, float, float, float]

# A declined pairing is not suggested again for this long.
DECLINE_COOLDOWN = timedelta(days=180)

# Track record is the mean of a Beta(PRIOR_DEALS, PRIOR_NO_DEALS) prior updated
# by the candidate's history: (deals + 1) / (suggested + 4). A newcomer starts
# at 0.25, a plausible share of introductions that end in a deal, and a few
# lucky or unlucky outcomes move it only a little.
PRIOR_DEALS = 1
PRIOR_NO_DEALS = 3

# Ward feature by ward distance (0 same ward, 1 bordering); farther scores 0.
WARD_SCORE = {0: 1.0, 1: 0.5}

MAX_SCHEME_LEVEL = max(SCHEME_LEVEL.values())

# Personalised PageRank: restart probability and push tolerance.
PPR_ALPHA = 0.15
PPR_EPS = 1e-4

SCORE_DIGITS = 4


@dataclass(frozen=True)
class Suggestion:
    """A candidate suggested to a member, with the reasons for it."""

    candidate_id: str
    candidate_name: str
    role: Role
    categories: list[Capability]
    score: float
    model_version: str
    reasons: list[Reason]

    def to_dict(self) -> dict[str, Any]:
        """Return the suggestion as JSON-able data."""
        return {
            "candidate_id": self.candidate_id,
            "candidate_name": self.candidate_name,
            "role": self.role,
            "categories": [c.value for c in self.categories],
            "score": self.score,
            "model_version": self.model_version,
            "reasons": [r.to_dict() for r in self.reasons],
        }


@dataclass(frozen=True)
class _Fit:
    role: Role
    categories: tuple[Capability, ...]
    value: float


@dataclass(frozen=True)
class _Context:
    """What one call to `suggest` computes once for all candidates."""

    graph: AllianceGraph
    org_id: str
    member: dict[str, Any]
    orgs: Mapping[str, dict[str, Any]]
    today: date
    excluded: set[str]
    ppr: dict[Any, float]
    shared: dict[str, list[str]]
    # Candidates with graph evidence (pushed by PageRank or met at a meeting),
    # with their fit.
    local: dict[str, float]
    max_ppr: float
    ward_scores: dict[str, float]

    @cached_property
    def parents(self) -> dict[Any, Any]:
        """Breadth-first parents from the member, within the pushed nodes."""
        return bfs_parents(self.graph.G, self.org_id, self.ppr)


def suggest(
    graph: AllianceGraph, org_id: str, *, limit: int = 10, now: datetime
) -> list[Suggestion]:
    """Return up to `limit` suggestions for a member, best first.

    Ties are broken by candidate id, so the order is deterministic. A naive
    `now` is read as Japan time.

    Candidates with graph evidence or a notable record (a credential, a deal)
    are scored first. The rest are scored ward tier by ward tier (same ward,
    bordering, farther), and a tier is skipped, with all after it, once the
    best score anyone in it could reach cannot enter the list: on a large
    graph most candidates are never scored.

    Raises:
        UnknownOrganisation: if `org_id` is not a registered member.
    """
    member = graph.org(org_id)
    if limit <= 0:
        return []
    ctx = _context(graph, org_id, member, as_japan_time(now))
    ranked = heapq.nsmallest(limit, _ranked(ctx, _standouts(ctx)))
    for ward_score, wards in _ward_tiers(member["ward"]):
        if _cannot_enter(ranked, limit, _bound(1.0, ward_score)):
            break
        tier = _fits(ctx, wards, notable=False)
        for fit, group in _by_fit(tier):
            if _cannot_enter(ranked, limit, _bound(fit, ward_score)):
                break
            ranked = heapq.nsmallest(limit, chain(ranked, _ranked(ctx, group)))
    logger.debug("org %s: %d suggestions", org_id, len(ranked))
    return [_suggestion(ctx, v) for _, v in ranked]


def _context(
    graph: AllianceGraph, org_id: str, member: dict[str, Any], now: datetime
) -> _Context:
    """Compute what the candidates' features read: proximity, meetings, wards."""
    ppr = personalized_pagerank(graph.G, org_id, PPR_ALPHA, PPR_EPS, strength=STRENGTH)
    shared = graph.shared_events(org_id)
    excluded = _excluded(graph, org_id, now)
    local = _local_fits(graph, member, excluded, ppr.keys() | shared.keys())
    return _Context(
        graph=graph,
        org_id=org_id,
        member=member,
        orgs=graph.org_attrs,
        today=now.date(),
        excluded=excluded,
        ppr=ppr,
        shared=shared,
        local=local,
        max_ppr=max((ppr.get(v, 0.0) for v in local), default=0.0),
        ward_scores={
            code: WARD_SCORE.get(ward_distance(member["ward"], code), 0.0)
            for code in WARDS
        },
    )


def _excluded(graph: AllianceGraph, org_id: str, now: datetime) -> set[str]:
    """Return the member, its supply partners and its recently declined pairs."""
    declined = graph.declined_between(org_id, now - DECLINE_COOLDOWN, now)
    return {org_id} | graph.supply_partners(org_id) | declined


def _local_fits(
    graph: AllianceGraph,
    member: dict[str, Any],
    excluded: set[str],
    nodes: Iterable[Hashable],
) -> dict[str, float]:
    """Return the fit of each candidate among nodes with graph evidence."""
    fits: dict[str, float] = {}
    for v in nodes:
        if not isinstance(v, str) or v in excluded or not graph.has_org(v):
            continue  # meetings and placeholders are not candidates
        fit = _role(member, graph.org(v)).value
        if fit > 0:
            fits[v] = fit
    return fits


def _standouts(ctx: _Context) -> dict[str, float]:
    """Return the candidates no ward tier bounds: notable or with graph evidence."""
    return {**_fits(ctx, WARDS, notable=True), **ctx.local}


def _ward_tiers(ward: str) -> list[tuple[float, list[str]]]:
    """Group the wards by their ward score for a member in `ward`, best first."""
    tiers: defaultdict[float, list[str]] = defaultdict(list)
    for code in WARDS:
        tiers[WARD_SCORE.get(ward_distance(ward, code), 0.0)].append(code)
    return sorted(tiers.items(), reverse=True)


def _bound(fit: float, ward_score: float) -> float:
    """Return the most that a plain candidate with this fit and ward score scores.

    Plain means no graph evidence, no credential and no deal; without a deal the
    track record is at most the newcomer's.
    """
    track = WEIGHTS["track_record"] * track_record(0, 0)
    return WEIGHTS["fit"] * fit + WEIGHTS["ward"] * ward_score + track


def _cannot_enter(ranked: list[tuple[float, str]], limit: int, bound: float) -> bool:
    """Return whether a candidate scoring at most `bound` cannot enter `ranked`."""
    return len(ranked) == limit and round(bound, SCORE_DIGITS) < -ranked[-1][0]


def _by_fit(fits: dict[str, float]) -> list[tuple[float, dict[str, float]]]:
    """Group candidates by fit, best fit first."""
    groups: defaultdict[float, dict[str, float]] = defaultdict(dict)
    for v, fit in fits.items():
        groups[fit][v] = fit
    return sorted(groups.items(), key=lambda group: -group[0])


def _fits(ctx: _Context, wards: Iterable[str], *, notable: bool) -> dict[str, float]:
    """Return the fit of the candidates in these wards, notable or not.

    Fit is the share of the member's needs that the candidate offers, or the
    share of the candidate's needs that the member offers, whichever is larger.
    Excluded orgs and, among the not notable, those with graph evidence (scored
    already) are left out.
    """
    member, wards = ctx.member, list(wards)
    supplies = _coverage(ctx.graph.offering, member["needs"], wards, notable)
    buys = _coverage(ctx.graph.needing, member["offers"], wards, notable)
    for v in ctx.excluded | (set() if notable else ctx.local.keys()):
        supplies.pop(v, None)
        buys.pop(v, None)
    # Neither division is by zero: a count implies a non-empty side.
    fits = {v: n / len(member["needs"]) for v, n in supplies.items()}
    for v, n in buys.items():
        fits[v] = max(fits.get(v, 0.0), n / len(ctx.orgs[v]["needs"]))
    return fits


def _coverage(
    index: Callable[[Capability, str, bool], Set[str]],
    capabilities: Iterable[Capability],
    wards: list[str],
    notable: bool,
) -> Counter[str]:
    """Count, for each org the index lists, how many of the capabilities it has."""
    counts: Counter[str] = Counter()
    for capability in capabilities:
        for ward in wards:
            counts.update(index(capability, ward, notable))
    return counts


def _ranked(ctx: _Context, fits: dict[str, float]) -> Iterator[tuple[float, str]]:
    """Yield (-score, candidate id) for candidates: sorting them ranks them."""
    for v, fit in fits.items():
        yield -_score(_features(ctx, v, fit)), v


def _score(features: Features) -> float:
    """Return the weighted sum of a candidate's features, rounded."""
    return round(sum(map(operator.mul, _WEIGHT_VECTOR, features)), SCORE_DIGITS)


def _features(ctx: _Context, v: str, fit: float) -> Features:
    """Return a candidate's features, each in [0, 1], in the order of `FEATURES`."""
    attrs = ctx.orgs[v]
    ppr, shared = ctx.ppr.get(v), ctx.shared.get(v)
    credentials = attrs["credentials"]
    return (
        fit,
        ppr / ctx.max_ppr if ppr else 0.0,  # ppr > 0 implies max_ppr > 0
        1.0 - math.exp(-len(shared)) if shared else 0.0,
        ctx.ward_scores.get(attrs["ward"], 0.0),
        _credential_feature(credentials, ctx.today) if credentials else 0.0,
        track_record(attrs["suggested"], attrs["deals"]),
    )


def _credential_feature(credentials: dict[Scheme, Credential], today: date) -> float:
    held = best_credential(credentials, today)
    return SCHEME_LEVEL[held[0]] / MAX_SCHEME_LEVEL if held else 0.0


def _role(member: dict[str, Any], candidate: dict[str, Any]) -> _Fit:
    """Return the role the candidate fits better, and the categories that fit."""
    supplies = tuple(sorted(member["needs"] & candidate["offers"]))
    buys = tuple(sorted(member["offers"] & candidate["needs"]))
    as_supplier = len(supplies) / len(member["needs"]) if supplies else 0.0
    as_buyer = len(buys) / len(candidate["needs"]) if buys else 0.0
    if as_supplier >= as_buyer:
        return _Fit("supplier", supplies, as_supplier)
    return _Fit("buyer", buys, as_buyer)


def best_credential(
    credentials: dict[Scheme, Credential], today: date
) -> tuple[Scheme, date | None] | None:
    """Return the highest active credential valid on `today`, with its expiry."""
    valid = [
        (scheme, expires_on)
        for scheme, (status, issued_on, expires_on) in credentials.items()
        if status == CredentialStatus.ACTIVE
        and issued_on <= today
        and (expires_on is None or today <= expires_on)
    ]
    return max(valid, key=lambda held: SCHEME_LEVEL[held[0]], default=None)


def track_record(suggested: int, deals: int) -> float:
    """Return the smoothed deal rate of a candidate (Beta prior mean, see above)."""
    return (deals + PRIOR_DEALS) / (suggested + PRIOR_DEALS + PRIOR_NO_DEALS)


def _suggestion(ctx: _Context, v: str) -> Suggestion:
    """Build the suggestion of a chosen candidate, with its reasons."""
    attrs = ctx.graph.org(v)
    role = _role(ctx.member, attrs)
    features = _features(ctx, v, role.value)
    reasons = [
        _reason(ctx, v, role, kind, contribution)
        for kind, value in zip(FEATURES, features, strict=True)
        if (contribution := round(WEIGHTS[kind] * value, SCORE_DIGITS)) > 0
    ]
    reasons.sort(key=lambda r: -r.contribution)
    return Suggestion(
        candidate_id=v,
        candidate_name=attrs["name"],
        role=role.role,
        categories=list(role.categories),
        score=_score(features),
        model_version=MODEL_VERSION,
        reasons=reasons,
    )


def _reason(
    ctx: _Context, v: str, role: _Fit, kind: ReasonKind, contribution: float
) -> Reason:
    """Build the reason of one feature, with the evidence behind it."""
    match kind:
        case "fit":
            return fit_reason(role.role, role.categories, contribution)
        case "proximity":
            path = [str(node) for node in path_to(ctx.parents, v)]
            return proximity_reason(ctx.graph, path, contribution)
        case "shared_events":
            return shared_events_reason(ctx.graph, ctx.shared[v], contribution)
        case "ward":
            ward = ctx.graph.org(v)["ward"]
            return ward_reason(ctx.member["ward"], ward, contribution)
        case "credential":
            held = best_credential(ctx.graph.org(v)["credentials"], ctx.today)
            assert held is not None  # a positive contribution implies one
            return credential_reason(held[0], held[1], contribution)
        case "track_record":
            return track_record_reason(*ctx.graph.record(v), contribution)
