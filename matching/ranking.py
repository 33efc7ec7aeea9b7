"""Ranked supplier and buyer suggestions for a member, each with its reasons.

A candidate is a registered org whose offers meet the member's needs (it would
be the member's supplier) or whose needs meet the member's offers (its buyer).
Eight features, each in [0, 1], are weighed into a score; the reasons say, in
both languages, what each feature saw. The weights are `WEIGHTS` unless the
caller gives its own (a learner's, say): `suggest` takes any mapping of
feature to a weight of at least 0.

A member's existing suppliers are not suggested to it; its existing buyers
are, but only as suppliers (a customer that starts supplying its supplier is
common in supply networks, and one of the easiest new links to foresee).

An `Exposure` keeps a few popular candidates from taking every slot: given to
`suggest`, it caps the number of live suggestion lists a candidate is in.
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

from matching.graph import ORG_STRENGTH, AllianceGraph, Credential
from matching.proximity import bfs_parents, parity_pagerank, path_to
from matching.reasons import (
    Reason,
    ReasonKind,
    Role,
    co_customers_reason,
    credential_reason,
    fit_reason,
    proximity_reason,
    recency_reason,
    shared_events_reason,
    track_record_reason,
    ward_reason,
)
from schemas.capabilities import Capability
from schemas.ems import SCHEME_LEVEL, CredentialStatus, Scheme
from schemas.fiscal import as_japan_time
from schemas.wards import WARDS, ward_distance

__all__ = [
    "MODEL_VERSION",
    "WEIGHTS",
    "Exposure",
    "Reason",
    "Suggestion",
    "suggest",
]

logger = logging.getLogger(__name__)

MODEL_VERSION = "heuristic-2"

# Weight of each feature in the score. They sum to 1, so the score is in [0, 1].
# - fit 0.30: a need that meets an offer is what a deal is made of; the other
#   features only order candidates that can do business at all.
# - proximity 0.20, co_customers 0.05 and shared_events 0.12: trust and
#   evidence. Firms buy from firms their partners vouch for, from the
#   suppliers of firms that buy what they buy, and from people they have met.
#   On a real supply network (bench/README.md) proximity by odd walks finds
#   most new links, and the co-customer walk adds a little to it at a quarter
#   of its weight (fitted on an earlier split).
# - ward 0.09: retrofits, audits and waste collection are done on site, and
#   small firms prefer suppliers nearby.
# - credential 0.09: the policy spreads EMS; an EMS-holding partner also eases
#   a large buyer's green procurement.
# - track_record 0.08: kept small while the platform's deal history is thin,
#   and so that early winners do not take every slot.
# - recency 0.02: a candidate that began supplying someone lately is in
#   business now; a tie-breaker among candidates with graph evidence.
WEIGHTS: dict[ReasonKind, float] = {
    "fit": 0.30,
    "proximity": 0.20,
    "co_customers": 0.05,
    "shared_events": 0.12,
    "ward": 0.09,
    "credential": 0.09,
    "track_record": 0.08,
    "recency": 0.02,
}

FEATURES: tuple[ReasonKind, ...] = tuple(WEIGHTS)
Features = tuple[float, ...]

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
# Proximity and co-customers are read on a log scale: a candidate with
# e^-LOG_SPAN of the best candidate's value scores 0, the best scores 1.
LOG_SPAN = 12.0
# The co-customer walk expands a node only while its mass is at least this
# much per link it would read, which bounds its work to about 3 / CO_EPS links.
CO_EPS = 1e-4
# Recency halves with every RECENCY_HALF_LIFE of the candidate's newest link.
RECENCY_HALF_LIFE = timedelta(days=365)

# Exposure cap: a candidate is in at most this share of the members' live
# lists, and never kept out of fewer than MIN_EXPOSURE_LISTS.
EXPOSURE_SHARE = 0.05
MIN_EXPOSURE_LISTS = 20

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


class Exposure:
    """How many live suggestion lists each candidate is in, and the cap on it.

    The rule: a candidate already in `cap` other members' lists is not put in
    one more; it keeps its place in the lists it is in. The cap is
    ``max(MIN_EXPOSURE_LISTS, EXPOSURE_SHARE * members)``, members being the
    number of lists recorded, so that no candidate fills more than about one
    list in twenty however popular it is, while a small alliance is not
    starved. `suggest` records the list it returns for a member, replacing the
    member's previous one; `forget` drops the list of a member that left.
    Counting is incremental: recording a list costs the length of the old and
    the new list; finding the capped candidates reads one count per candidate
    in any live list.
    """

    def __init__(
        self, *, share: float = EXPOSURE_SHARE, min_lists: int = MIN_EXPOSURE_LISTS
    ) -> None:
        self.share = share
        self.min_lists = min_lists
        self._lists: dict[str, tuple[str, ...]] = {}
        self._counts: Counter[str] = Counter()

    @property
    def cap(self) -> int:
        """Return the most lists a candidate may be in now."""
        return max(self.min_lists, int(self.share * len(self._lists)))

    def count(self, candidate_id: str) -> int:
        """Return how many live lists hold the candidate."""
        return self._counts[candidate_id]

    def capped(self, org_id: str) -> set[str]:
        """Return the candidates that may not enter the member's list."""
        cap, own = self.cap, set(self._lists.get(org_id, ()))
        return {v for v, n in self._counts.items() if n >= cap and v not in own}

    def record(self, org_id: str, candidate_ids: Iterable[str]) -> None:
        """Replace the member's live list."""
        self.forget(org_id)
        self._lists[org_id] = tuple(candidate_ids)
        self._counts.update(self._lists[org_id])

    def forget(self, org_id: str) -> None:
        """Drop the member's live list, if any."""
        for v in self._lists.pop(org_id, ()):
            self._counts[v] -= 1
            if self._counts[v] == 0:
                del self._counts[v]


@dataclass(frozen=True)
class _Context:
    """What one call to `suggest` computes once for all candidates."""

    graph: AllianceGraph
    org_id: str
    member: dict[str, Any]
    orgs: Mapping[str, dict[str, Any]]
    today: date
    weights: tuple[float, ...]
    excluded: set[str]
    # Orgs the member supplies already: candidates as suppliers only.
    buyers: Set[str]
    ppr: dict[Any, float]
    # Nodes the push reached by even walks: a path to a candidate runs through
    # them too.
    even: dict[Any, float]
    co: dict[str, float]
    shared: dict[str, list[str]]
    # Candidates with graph evidence (pushed, walked to, or met at a meeting),
    # with their fit.
    local: dict[str, float]
    max_ppr: float
    max_co: float
    ward_scores: dict[str, float]

    @cached_property
    def parents(self) -> dict[Any, Any]:
        """Breadth-first parents from the member, within the pushed nodes."""
        return bfs_parents(self.graph.G, self.org_id, self.ppr.keys() | self.even)

    def weight(self, kind: ReasonKind) -> float:
        return self.weights[FEATURES.index(kind)]


def suggest(
    graph: AllianceGraph,
    org_id: str,
    *,
    limit: int = 10,
    now: datetime,
    weights: Mapping[ReasonKind, float] | None = None,
    exposure: Exposure | None = None,
) -> list[Suggestion]:
    """Return up to `limit` suggestions for a member, best first.

    Ties are broken by candidate id, so the order is deterministic. A naive
    `now` is read as Japan time. `weights` replaces `WEIGHTS` (a missing
    feature weighs 0). With `exposure`, candidates at its cap are left out and
    the list returned is recorded in it.

    Candidates with graph evidence or a notable record (a credential, a deal)
    are scored first. The rest are scored ward tier by ward tier (same ward,
    bordering, farther), and a tier is skipped, with all after it, once the
    best score anyone in it could reach cannot enter the list: on a large
    graph most candidates are never scored.

    Raises:
        UnknownOrganisation: if `org_id` is not a registered member.
        ValueError: if a weight is negative or names no feature.
    """
    member = graph.org(org_id)
    if limit <= 0:
        return []
    vector = _weight_vector(weights)
    capped = exposure.capped(org_id) if exposure is not None else set()
    ctx = _context(graph, org_id, member, as_japan_time(now), vector, capped)
    ranked = heapq.nsmallest(limit, _ranked(ctx, _standouts(ctx)))
    for ward_score, wards in _ward_tiers(member["ward"]):
        if _cannot_enter(ranked, limit, _bound(ctx, 1.0, ward_score)):
            break
        tier = _fits(ctx, wards, notable=False)
        for fit, group in _by_fit(tier):
            if _cannot_enter(ranked, limit, _bound(ctx, fit, ward_score)):
                break
            ranked = heapq.nsmallest(limit, chain(ranked, _ranked(ctx, group)))
    logger.debug("org %s: %d suggestions", org_id, len(ranked))
    found = [_suggestion(ctx, v) for _, v in ranked]
    if exposure is not None:
        exposure.record(org_id, [s.candidate_id for s in found])
    return found


def _weight_vector(weights: Mapping[ReasonKind, float] | None) -> tuple[float, ...]:
    """Return the weights in the order of `FEATURES`, checked."""
    if weights is None:
        return tuple(WEIGHTS[kind] for kind in FEATURES)
    unknown = set(weights) - set(FEATURES)
    if unknown or any(w < 0 for w in weights.values()):
        raise ValueError(f"weights must be >= 0 and name features: {dict(weights)}")
    return tuple(float(weights.get(kind, 0.0)) for kind in FEATURES)


def _context(
    graph: AllianceGraph,
    org_id: str,
    member: dict[str, Any],
    now: datetime,
    weights: tuple[float, ...],
    capped: set[str],
) -> _Context:
    """Compute what the candidates' features read: proximity, meetings, wards."""
    orgs = graph.org_attrs
    even, ppr = parity_pagerank(
        graph.G,
        org_id,
        PPR_ALPHA,
        PPR_EPS,
        strength=ORG_STRENGTH,
        follow=orgs.__contains__,
    )
    co = co_customer_walk(graph, org_id)
    shared = graph.shared_events(org_id)
    excluded = _excluded(graph, org_id, now) | capped
    buyers = graph.buyers_of(org_id)
    evidence = ppr.keys() | co.keys() | shared.keys()
    local = _local_fits(graph, member, excluded, buyers, evidence)
    return _Context(
        graph=graph,
        org_id=org_id,
        member=member,
        orgs=orgs,
        today=now.date(),
        weights=weights,
        excluded=excluded,
        buyers=buyers,
        ppr=ppr,
        even=even,
        co=co,
        shared=shared,
        local=local,
        max_ppr=max((ppr.get(v, 0.0) for v in local), default=0.0),
        max_co=max((co.get(v, 0.0) for v in local), default=0.0),
        ward_scores={
            code: WARD_SCORE.get(ward_distance(member["ward"], code), 0.0)
            for code in WARDS
        },
    )


def co_customer_walk(graph: AllianceGraph, org_id: str) -> dict[str, float]:
    r"""Return the suppliers of the member's co-customers, by walk probability.

    A three-step walk along supply links: from the member to one of its
    suppliers, to one of that supplier's other customers, to one of that
    customer's suppliers, each step uniform:

    .. math:: w(s) = \sum_{s' \in S(c)} \sum_{c' \in B(s') \setminus c}
        \sum_{s \in S(c')} \frac{1}{|S(c)|\,|B(s')|\,|S(c')|}

    where :math:`S(x)` are the suppliers of x and :math:`B(x)` its buyers.
    It is item-based collaborative filtering with degree normalisation [1]_:
    firms that buy what the member buys buy from s. A node is expanded only
    while its mass is at least `CO_EPS` per link it reads, so the work is at
    most about :math:`3 / \epsilon` links whatever the graph.

    References
    ----------
    .. [1] T. Zhou, J. Ren, M. Medo and Y.-C. Zhang, "Bipartite network
       projection and personal recommendation", Phys. Rev. E 76, 046115, 2007.
    """
    first = _spread({org_id: 1.0}, graph.suppliers_of)
    second = _spread(first, graph.buyers_of)
    second.pop(org_id, None)
    return _spread(second, graph.suppliers_of)


def _spread(
    mass: Mapping[str, float], step: Callable[[str], Set[str]]
) -> dict[str, float]:
    """Move each node's mass evenly to its `step` neighbours, if it is enough."""
    moved: dict[str, float] = {}
    for u, m in mass.items():
        targets = step(u)
        if not targets or m < CO_EPS * len(targets):
            continue
        share = m / len(targets)
        for v in targets:
            moved[v] = moved.get(v, 0.0) + share
    return moved


def _excluded(graph: AllianceGraph, org_id: str, now: datetime) -> set[str]:
    """Return the member, its suppliers and its recently declined pairs."""
    declined = graph.declined_between(org_id, now - DECLINE_COOLDOWN, now)
    return {org_id} | graph.suppliers_of(org_id) | declined


def _local_fits(
    graph: AllianceGraph,
    member: dict[str, Any],
    excluded: set[str],
    buyers: Set[str],
    nodes: Iterable[Hashable],
) -> dict[str, float]:
    """Return the fit of each candidate among nodes with graph evidence."""
    fits: dict[str, float] = {}
    for v in nodes:
        if not isinstance(v, str) or v in excluded or not graph.has_org(v):
            continue  # meetings and placeholders are not candidates
        fit = _role(member, graph.org(v), v in buyers).value
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


def _bound(ctx: _Context, fit: float, ward_score: float) -> float:
    """Return the most that a plain candidate with this fit and ward score scores.

    Plain means no graph evidence, no credential and no deal: proximity,
    co-customers, shared events, credential and recency are 0, and without a
    deal the track record is at most the newcomer's.
    """
    track = ctx.weight("track_record") * track_record(0, 0)
    return ctx.weight("fit") * fit + ctx.weight("ward") * ward_score + track


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
    share of the candidate's needs that the member offers, whichever is larger;
    an org the member supplies already fits as a supplier only. Excluded orgs
    and, among the not notable, those with graph evidence (scored already) are
    left out.
    """
    member, wards = ctx.member, list(wards)
    supplies = _coverage(ctx.graph.offering, member["needs"], wards, notable)
    buys = _coverage(ctx.graph.needing, member["offers"], wards, notable)
    for v in ctx.excluded | (set() if notable else ctx.local.keys()):
        supplies.pop(v, None)
        buys.pop(v, None)
    for v in ctx.buyers:
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
        yield -_score(ctx.weights, _features(ctx, v, fit)), v


def _score(weights: tuple[float, ...], features: Features) -> float:
    """Return the weighted sum of a candidate's features, rounded."""
    return round(sum(map(operator.mul, weights, features)), SCORE_DIGITS)


def _features(ctx: _Context, v: str, fit: float) -> Features:
    """Return a candidate's features, each in [0, 1], in the order of `FEATURES`."""
    attrs = ctx.orgs[v]
    ppr, co, shared = ctx.ppr.get(v), ctx.co.get(v), ctx.shared.get(v)
    credentials = attrs["credentials"]
    evident = v in ctx.local
    return (
        fit,
        _log_scaled(ppr, ctx.max_ppr) if ppr else 0.0,
        _log_scaled(co, ctx.max_co) if co else 0.0,
        1.0 - math.exp(-len(shared)) if shared else 0.0,
        ctx.ward_scores.get(attrs["ward"], 0.0),
        _credential_feature(credentials, ctx.today) if credentials else 0.0,
        track_record(attrs["suggested"], attrs["deals"]),
        _recency(ctx.graph.newest_supply(v), ctx.today) if evident else 0.0,
    )


def _log_scaled(value: float, best: float) -> float:
    r"""Return :math:`\max(0, 1 + \ln(value / best) / \mathrm{LOG\_SPAN})`.

    A positive value implies a positive best, since best is the maximum.
    """
    return max(0.0, 1.0 + math.log(value / best) / LOG_SPAN)


def _recency(newest: date | None, today: date) -> float:
    """Return 2^(-age / half-life) of the candidate's newest supply link."""
    if newest is None or newest > today:
        return 0.0 if newest is None else 1.0
    return 0.5 ** ((today - newest) / RECENCY_HALF_LIFE)


def _credential_feature(credentials: dict[Scheme, Credential], today: date) -> float:
    held = best_credential(credentials, today)
    return SCHEME_LEVEL[held[0]] / MAX_SCHEME_LEVEL if held else 0.0


def _role(
    member: dict[str, Any], candidate: dict[str, Any], buys_already: bool = False
) -> _Fit:
    """Return the role the candidate fits better, and the categories that fit.

    A candidate the member supplies already fits as a supplier only.
    """
    supplies = tuple(sorted(member["needs"] & candidate["offers"]))
    buys = () if buys_already else tuple(sorted(member["offers"] & candidate["needs"]))
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
    role = _role(ctx.member, attrs, v in ctx.buyers)
    features = _features(ctx, v, role.value)
    reasons = [
        _reason(ctx, v, role, kind, contribution)
        for kind, weight, value in zip(FEATURES, ctx.weights, features, strict=True)
        if (contribution := round(weight * value, SCORE_DIGITS)) > 0
    ]
    reasons.sort(key=lambda r: -r.contribution)
    return Suggestion(
        candidate_id=v,
        candidate_name=attrs["name"],
        role=role.role,
        categories=list(role.categories),
        score=_score(ctx.weights, features),
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
        case "co_customers":
            return co_customers_reason(ctx.graph, ctx.org_id, v, contribution)
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
        case "recency":
            newest = ctx.graph.newest_supply(v)
            assert newest is not None  # a positive contribution implies one
            return recency_reason(newest, contribution)
