"""A synthetic alliance of any size, for benchmarks: a deterministic event log.

The log holds what a real alliance's log holds, in the proportions of a regional
business network:

- every organisation registers once, in a ward (central wards weigh double),
  with an EDINET industry and the offers and needs `schemas.capabilities`
  assumes for it, plus, for some, one need or offer of their own;
- some organisations record an EMS credential (lighter schemes more often);
- supply links join organisations with a heavy-tailed degree distribution:
  supplier and buyer are drawn in proportion to Zipf weights
  :math:`w_i = r_i^{-s}` over a random ranking :math:`r` of the organisations,
  so a few large suppliers and buyers hold many links and most hold one or two;
- meetings are scheduled, and attended mostly by organisations of their ward.

The log is a sequence of ``(type, payload, occurred_at)`` with payload values
already of their contract types (enums, dates). `build_graph` applies it in one
of two ways, which leave the graph in the same state (tested):

- the envelope path: each entry is wrapped in a validated `Envelope`
  (`envelopes`) and applied to an `AllianceGraph`, as the graph service does;
- the fast path (default): the same envelopes are built without validation
  (`constructed_envelopes`) and applied, by the same handlers, to a graph that
  does not work out whom each event touches while it loads. That answer
  changes no state, but for a registration or a credential it is every
  organisation that needs what the newcomer offers or offers what it needs,
  so the envelope path costs time quadratic in the number of organisations
  (about 200 us an event at 10,000 organisations, hours at 100,000).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import numpy as np

from matching.graph import AllianceGraph
from schemas.capabilities import (
    INDUSTRY_CAPABILITIES,
    Capability,
    capabilities_for_industry,
)
from schemas.ems import CredentialStatus, Scheme
from schemas.envelope import ENVELOPE_MODELS, Envelope, new_envelope
from schemas.events import EVENT_TYPES, EventKind
from schemas.fiscal import JST
from schemas.wards import WARDS

__all__ = [
    "LogEntry",
    "SyntheticLog",
    "SyntheticSpec",
    "build_graph",
    "bulk_load",
    "constructed_envelopes",
    "envelopes",
]

logger = logging.getLogger(__name__)

LogEntry = tuple[str, dict[str, Any], datetime]
T = TypeVar("T")

SOURCE = "synthetic"
START = date(2015, 4, 1)
HISTORY_DAYS = 11 * 365
# Industry of the organisations the capability table does not list.
OTHER_INDUSTRY = "その他"
CENTRAL_WARDS = ("13101", "13102", "13103", "13104")
SCHEME_SHARES = {
    Scheme.SIMPLE_DECLARATION: 0.5,
    Scheme.LOCAL_SCHEME: 0.2,
    Scheme.ECO_ACTION_21: 0.2,
    Scheme.ISO_14001: 0.1,
}
STATUS_SHARES = {
    CredentialStatus.ACTIVE: 0.85,
    CredentialStatus.LAPSED: 0.10,
    CredentialStatus.RETURNED: 0.05,
}
CREDENTIAL_YEARS = 3
# Draws of supply links are topped up this many times at most, so that removing
# repeated pairs cannot loop for ever.
MAX_DRAW_ROUNDS = 50
PROGRESS_EVERY = 10_000


@dataclass(frozen=True)
class SyntheticSpec:
    """The size and shape of a synthetic alliance.

    Attributes
    ----------
    orgs, supply_links : int
        Registered organisations, and distinct supply links between them.
    seed : int
        Seed of every random choice: the same spec gives the same log.
    supplier_exponent, buyer_exponent : float
        Zipf exponents :math:`s` of the supplier and buyer weights.
    credential_share : float
        Share of organisations that record a credential.
    orgs_per_meeting : int
        One meeting is scheduled for this many organisations.
    mean_attendance : float
        Mean number of organisations at a meeting (geometric, at least 5).
    own_capability_share : float
        Share of organisations that add one need (and, as often, one offer) of
        their own to their industry's.
    """

    orgs: int
    supply_links: int
    seed: int = 2026
    supplier_exponent: float = 0.7
    buyer_exponent: float = 0.6
    credential_share: float = 0.08
    orgs_per_meeting: int = 100
    mean_attendance: float = 30.0
    own_capability_share: float = 0.3

    def __post_init__(self) -> None:
        if self.orgs < 2:
            raise ValueError("a synthetic alliance needs at least 2 organisations")
        # Keep the graph sparse enough for distinct pairs to be drawn quickly.
        if not 0 <= self.supply_links <= self.orgs * (self.orgs - 1) // 4:
            raise ValueError("supply_links must be in [0, orgs * (orgs - 1) / 4]")


class SyntheticLog:
    """The planned log of a synthetic alliance; iterate it for its entries.

    Planning draws every random choice with NumPy at once; iterating turns them
    into payloads one by one, so that a large log is never held in memory.
    """

    def __init__(self, spec: SyntheticSpec) -> None:
        self.spec = spec
        rng = np.random.default_rng(spec.seed)
        n = spec.orgs
        self._width = len(str(n - 1))
        self._wards = _draw_wards(rng, n)
        self._industries = _draw_industries(rng, n)
        self._extras = _draw_extras(rng, n, spec.own_capability_share)
        self._credentials = _draw_credentials(rng, n, spec.credential_share)
        self._links = _draw_links(rng, spec)
        self._link_days = rng.integers(0, HISTORY_DAYS, len(self._links))
        self._meetings = _draw_meetings(rng, spec, self._wards)
        logger.info(
            "planned a synthetic alliance: %d orgs, %d supply links, %d meetings",
            n,
            len(self._links),
            len(self._meetings),
        )

    def __len__(self) -> int:
        """Return the number of entries in the log."""
        attendance = sum(len(attendees) for _, attendees in self._meetings)
        return (
            self.spec.orgs
            + len(self._credentials[0])
            + len(self._links)
            + len(self._meetings)
            + attendance
        )

    def __iter__(self) -> Iterator[LogEntry]:
        yield from self._registrations()
        yield from self._credential_entries()
        yield from self._link_entries()
        yield from self._meeting_entries()

    def org_id(self, index: int) -> str:
        """Return the id of the organisation at `index`."""
        return f"org-{index:0{self._width}d}"

    def _registrations(self) -> Iterator[LogEntry]:
        at = _moment(START)
        capabilities = list(Capability)
        for i in range(self.spec.orgs):
            industry = self._industries[i]
            offers, needs = capabilities_for_industry(industry)
            extra_need, extra_offer = self._extras[i]
            if extra_need >= 0:
                needs = needs | {capabilities[extra_need]}
            if extra_offer >= 0:
                offers = offers | {capabilities[extra_offer]}
            payload = {
                "org_id": self.org_id(i),
                "name": f"Synthetic firm {i}",
                "ward": self._wards[i],
                "industry": industry,
                "offers": sorted(offers),
                "needs": sorted(needs),
            }
            yield "OrganisationRegistered", payload, at

    def _credential_entries(self) -> Iterator[LogEntry]:
        orgs, schemes, statuses, days = self._credentials
        for i, scheme, status, day in zip(orgs, schemes, statuses, days, strict=True):
            issued_on = START + timedelta(days=int(day))
            expires_on = None
            if scheme != Scheme.SIMPLE_DECLARATION:
                expires_on = issued_on + timedelta(days=365 * CREDENTIAL_YEARS)
            payload = {
                "org_id": self.org_id(int(i)),
                "scheme": scheme,
                "status": status,
                "issued_on": issued_on,
                "expires_on": expires_on,
            }
            yield "CredentialRecorded", payload, _moment(issued_on)

    def _link_entries(self) -> Iterator[LogEntry]:
        for (supplier, buyer), day in zip(self._links, self._link_days, strict=True):
            since = START + timedelta(days=int(day))
            payload = {
                "buyer_id": self.org_id(int(buyer)),
                "supplier_id": self.org_id(int(supplier)),
                "category": self._category(int(supplier), int(buyer)),
                "since": since,
            }
            yield "SupplierLinked", payload, _moment(since)

    def _category(self, supplier: int, buyer: int) -> Capability | None:
        """Return what the supplier sells the buyer: a need it meets, if any."""
        offers, _ = capabilities_for_industry(self._industries[supplier])
        _, needs = capabilities_for_industry(self._industries[buyer])
        common = sorted(offers & needs) or sorted(offers)
        return common[0] if common else None

    def _meeting_entries(self) -> Iterator[LogEntry]:
        kinds = list(EventKind)
        for m, (ward, attendees) in enumerate(self._meetings):
            code = f"meeting-{m}"
            starts_at = _moment(START + timedelta(days=(m * 7) % HISTORY_DAYS))
            scheduled = {
                "event_code": code,
                "title": f"{WARDS[ward].name_en} {kinds[m % len(kinds)].value} {m}",
                "kind": kinds[m % len(kinds)],
                "ward": ward,
                "starts_at": starts_at,
            }
            yield "EventScheduled", scheduled, starts_at
            for org in attendees:
                payload = {
                    "event_code": code,
                    "org_id": self.org_id(int(org)),
                    "attended_at": starts_at,
                }
                yield "AttendanceLogged", payload, starts_at


def envelopes(log: Iterable[LogEntry], *, seed: int = 0) -> Iterator[Envelope]:
    """Wrap each entry in a validated envelope with a deterministic event id."""
    for n, (event_type, payload, at) in enumerate(log):
        yield new_envelope(
            event_type, payload, source=SOURCE, occurred_at=at, event_id=_id(seed, n)
        )


def constructed_envelopes(
    log: Iterable[LogEntry], *, seed: int = 0
) -> Iterator[Envelope]:
    """Build the same envelopes as `envelopes` without validating them.

    Safe only for entries whose values already have their contract types, as
    `SyntheticLog` makes them.
    """
    for n, (event_type, payload, at) in enumerate(log):
        spec = EVENT_TYPES[event_type]
        yield ENVELOPE_MODELS[event_type].model_construct(
            event_id=_id(seed, n),
            type=event_type,
            schema_version=spec.version,
            occurred_at=at,
            source=SOURCE,
            payload=spec.payload.model_construct(**payload),
        )


def build_graph(
    log: SyntheticLog,
    *,
    validate: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AllianceGraph:
    """Return the graph of a synthetic alliance, applying its log in order.

    Parameters
    ----------
    log : SyntheticLog
        What to apply.
    validate : bool
        Take the envelope path (see the module's docstring); otherwise the fast
        path.
    progress : callable, optional
        Called with the number of entries applied since its last call.
    """
    seed = log.spec.seed
    if validate:
        graph = AllianceGraph()
        for envelope in _reported(envelopes(log, seed=seed), progress):
            graph.apply(envelope)
        return graph
    return bulk_load(constructed_envelopes(log, seed=seed), progress=progress)


def bulk_load(
    log: Iterable[Envelope], *, progress: Callable[[int], None] | None = None
) -> AllianceGraph:
    """Return a new graph with the envelopes applied by `AllianceGraph.bulk_load`.

    The graph ends in the state `AllianceGraph.apply` would leave; only what
    `apply` returns while loading (whom each event touches) is left out, which
    makes loading linear in the size of the log.
    """
    graph = AllianceGraph()
    graph.bulk_load(_reported(log, progress))
    return graph


def _reported(
    items: Iterable[Envelope], progress: Callable[[int], None] | None
) -> Iterator[Envelope]:
    """Yield the items, telling `progress` how many went by every so often."""
    if progress is None:
        yield from items
        return
    pending = 0
    for item in items:
        yield item
        pending += 1
        if pending == PROGRESS_EVERY:
            progress(pending)
            pending = 0
    if pending:
        progress(pending)


# -- planning ------------------------------------------------------------------------


def _draw_wards(rng: np.random.Generator, n: int) -> list[str]:
    codes = list(WARDS)
    weights = np.array([2.0 if code in CENTRAL_WARDS else 1.0 for code in codes])
    drawn = rng.choice(len(codes), size=n, p=weights / weights.sum())
    return [codes[i] for i in drawn]


def _draw_industries(rng: np.random.Generator, n: int) -> list[str]:
    """Draw an industry per organisation; one in five is of another industry."""
    names = [*INDUSTRY_CAPABILITIES, OTHER_INDUSTRY]
    weights = np.ones(len(names))
    weights[-1] = (len(names) - 1) / 4
    drawn = rng.choice(len(names), size=n, p=weights / weights.sum())
    return [names[i] for i in drawn]


def _draw_extras(
    rng: np.random.Generator, n: int, share: float
) -> list[tuple[int, int]]:
    """Draw an own need and an own offer per organisation (-1 for none)."""
    count = len(Capability)
    needs = np.where(rng.random(n) < share, rng.integers(0, count, n), -1)
    offers = np.where(rng.random(n) < share, rng.integers(0, count, n), -1)
    return list(zip(needs.tolist(), offers.tolist(), strict=True))


def _draw_credentials(
    rng: np.random.Generator, n: int, share: float
) -> tuple[np.ndarray, list[Scheme], list[CredentialStatus], np.ndarray]:
    orgs = np.flatnonzero(rng.random(n) < share)
    schemes = _draw_from(rng, SCHEME_SHARES, len(orgs))
    statuses = _draw_from(rng, STATUS_SHARES, len(orgs))
    days = rng.integers(0, HISTORY_DAYS, len(orgs))
    return orgs, schemes, statuses, days


def _draw_from(rng: np.random.Generator, shares: dict[T, float], size: int) -> list[T]:
    values = list(shares)
    weights = np.array([shares[v] for v in values])
    return [
        values[i] for i in rng.choice(len(values), size=size, p=weights / weights.sum())
    ]


def _zipf_weights(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    r"""Return probabilities :math:`w_i \propto r_i^{-s}` over a random ranking."""
    ranks = rng.permutation(n) + 1.0
    weights = ranks**-exponent
    return weights / weights.sum()


def _draw_links(rng: np.random.Generator, spec: SyntheticSpec) -> np.ndarray:
    """Draw distinct (supplier, buyer) pairs, one per unordered pair of orgs."""
    n, wanted = spec.orgs, spec.supply_links
    supplier_p = _zipf_weights(rng, n, spec.supplier_exponent)
    buyer_p = _zipf_weights(rng, n, spec.buyer_exponent)
    pairs = np.empty((0, 2), dtype=np.int64)
    for _ in range(MAX_DRAW_ROUNDS):
        missing = wanted - len(pairs)
        if missing == 0:
            return pairs
        size = math.ceil(missing * 1.2) + 16
        drawn = np.column_stack(
            [rng.choice(n, size, p=supplier_p), rng.choice(n, size, p=buyer_p)]
        )
        drawn = drawn[drawn[:, 0] != drawn[:, 1]]
        pairs = _first_of_each_pair(np.vstack([pairs, drawn]), n)[:wanted]
    if len(pairs) < wanted:
        raise ValueError(
            f"drew {len(pairs)} distinct supply links of {wanted} in "
            f"{MAX_DRAW_ROUNDS} rounds; lower supply_links or the exponents"
        )
    return pairs


def _first_of_each_pair(pairs: np.ndarray, n: int) -> np.ndarray:
    """Keep the first row of each unordered pair, in the order drawn."""
    keys = np.minimum(pairs[:, 0], pairs[:, 1]) * n + np.maximum(
        pairs[:, 0], pairs[:, 1]
    )
    _, first = np.unique(keys, return_index=True)
    return pairs[np.sort(first)]


def _draw_meetings(
    rng: np.random.Generator, spec: SyntheticSpec, wards: list[str]
) -> list[tuple[str, np.ndarray]]:
    """Draw meetings: a ward each, and attendees, half or more from that ward."""
    by_ward: dict[str, list[int]] = {}
    for i, ward in enumerate(wards):
        by_ward.setdefault(ward, []).append(i)
    codes = sorted(by_ward)
    meetings = []
    for _ in range(math.ceil(spec.orgs / spec.orgs_per_meeting)):
        ward = codes[int(rng.integers(len(codes)))]
        size = min(spec.orgs, 4 + int(rng.geometric(1 / (spec.mean_attendance - 4))))
        local = np.asarray(by_ward[ward])
        near = rng.choice(local, size=min(len(local), (size + 1) // 2), replace=False)
        anyone = rng.choice(spec.orgs, size=size - len(near), replace=False)
        meetings.append((ward, np.unique(np.concatenate([near, anyone]))))
    return meetings


def _moment(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), tzinfo=JST)


def _id(seed: int, n: int) -> str:
    return f"synthetic-{seed}-{n:09d}"
