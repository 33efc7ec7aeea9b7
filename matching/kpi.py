"""Ward KPIs against the policy's targets, computed as a projection of the log.

`KpiLedger.apply` only records what each message says, keyed so that a message
applied twice changes nothing; every rule is applied when a report is asked
for. Where two messages disagree (a profile update and a registration, a
schedule and a cancellation), the later one by ``occurred_at`` wins, ties
broken by event id, so that the same log in any order gives the same report.

Matches are the exception: a deal counts only if the match's lifecycle
(`matching.lifecycle`), replayed as the match funnel replays it, ends with the
deal closed. The suggestion opens the match; the match's other messages step
it in the order they arrive (steps that come before the suggestion wait for it
and follow it in their order), and a step the lifecycle refuses is skipped (a
second suggestion of the same match among them). So the report is the same in
any order that keeps each match's steps in theirs, as the matches topic does
(it is keyed by match id).

Rules chosen where the policy's text leaves room:

- Stocks (organisations, simple declarations, Eco Action 21 members) are taken
  at the end of the fiscal year and count members only: registered on or before
  the last day (the registration's ``occurred_at`` in Japan time), membership
  not ended between that registration and the last day.
- Flows (deals, certifications, events) count in the fiscal year of their own
  date and need only a known ward, not a membership at the year's end. A deal's
  date is the ``closed_on`` of the DealClosed its lifecycle accepted; a deal
  withdrawn afterwards (a DealWithdrawn the lifecycle accepts) does not count.
- A member's ward is its latest known ward, whatever the year reported.
- A credential is *in force* on a day when it was recorded active, issued on or
  before that day, expires on or after it (or never), and no lapse or return of
  that org and scheme is dated between its issue and that day.
- A supply-chain certification counts in the year it was obtained even if it
  lapsed or was returned later: the policy counts certifications obtained.
- Alliance totals (``ward=None``) of counts have the sum of the per-ward
  targets as target (target x 23); rates and ratios keep the per-ward target.
"""

from __future__ import annotations

import calendar
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, TypeVar

from matching.errors import MatchingError
from matching.lifecycle import MatchReplay, Stage
from schemas.ems import SCHEME_LEVEL, CredentialStatus, Scheme
from schemas.envelope import Envelope
from schemas.events import (
    EVENT_TYPES,
    AttendanceCorrected,
    AttendanceLogged,
    CredentialLapsed,
    CredentialRecorded,
    CredentialReturned,
    DealClosed,
    EnvironmentReported,
    EventCancelled,
    EventKind,
    EventScheduled,
    MatchSuggested,
    MembershipEnded,
    OrganisationProfileUpdated,
    OrganisationRegistered,
    Payload,
    SupplierLinked,
    SupplierUnlinked,
    SupportProvided,
)
from schemas.fiscal import as_japan_time, fiscal_year, fiscal_year_bounds
from schemas.identity import name_alias
from schemas.topics import Stream
from schemas.wards import WARDS
from schemas.wards import ward as known_ward

logger = logging.getLogger(__name__)

ORGANISATIONS = "organisations"
MATCHES_CONCLUDED = "matches_concluded"
SUPPLY_CHAIN_CERTIFICATIONS = "supply_chain_certifications"
EVENTS_HELD = "events_held"
SIMPLE_EMS_DECLARATIONS = "simple_ems_declarations"
GHG_CHANGE = "ghg_change"
WASTE_CHANGE = "waste_change"
ECO_ACTION_21_GROWTH = "eco_action_21_growth"

DEFAULT_WINDOW_MONTHS = 24
GROWTH_YEARS = 3
SUPPLY_CHAIN_SCHEMES = frozenset(
    {Scheme.LOCAL_SCHEME, Scheme.ECO_ACTION_21, Scheme.ISO_14001}
)
HELD_KINDS = frozenset({EventKind.EXCHANGE, EventKind.MATCHING})

# The moment a message happened, a rank that breaks ties between message types
# (a correction beats what it corrects), and its event id: a total order.
Order = tuple[datetime, int, str]


class UnknownKpi(MatchingError, LookupError):
    """No KPI has this id."""

    def __init__(self, kpi: str) -> None:
        super().__init__(f"{kpi!r} is not a KPI; known: {', '.join(KPI_SPECS)}")
        self.kpi = kpi


@dataclass(frozen=True)
class KpiSpec:
    """What a KPI is called, its unit, its per-ward target and its direction."""

    label_en: str
    label_ja: str
    unit: str
    target: float | int
    lower_is_better: bool = False
    additive: bool = True

    def target_for(self, ward: str | None) -> float | int:
        """Return the target of one ward, or the sum over wards of a count."""
        if ward is None and self.additive:
            return self.target * len(WARDS)
        return self.target

    def on_track(self, value: float | int | None, target: float | int) -> bool:
        """Return whether a value meets the target (never when there is none)."""
        if value is None:
            return False
        return value <= target if self.lower_is_better else value >= target


KPI_SPECS: dict[str, KpiSpec] = {
    ORGANISATIONS: KpiSpec(
        "Organisations taking part", "参加団体数", "organisations", 100
    ),
    MATCHES_CONCLUDED: KpiSpec(
        "Business matches concluded", "ビジネスマッチング成立件数", "deals", 20
    ),
    SUPPLY_CHAIN_CERTIFICATIONS: KpiSpec(
        "Certifications obtained through a supply chain",
        "サプライチェーンを通じた認証取得数",
        "certifications",
        10,
    ),
    EVENTS_HELD: KpiSpec(
        "Exchange and matching events held",
        "交流会・マッチングイベント開催数",
        "events",
        6,
    ),
    SIMPLE_EMS_DECLARATIONS: KpiSpec(
        "Simple EMS declarations registered", "簡易EMS宣言登録数", "declarations", 200
    ),
    GHG_CHANGE: KpiSpec(
        "Change in reported GHG emissions",
        "温室効果ガス排出量の増減率",
        "%",
        -3,
        lower_is_better=True,
        additive=False,
    ),
    WASTE_CHANGE: KpiSpec(
        "Change in reported waste",
        "廃棄物排出量の増減率",
        "%",
        -3,
        lower_is_better=True,
        additive=False,
    ),
    ECO_ACTION_21_GROWTH: KpiSpec(
        "Eco Action 21 certified members against three years earlier",
        "エコアクション21認証取得会員数（3年前比）",
        "ratio",
        2.0,
        additive=False,
    ),
}


@dataclass(frozen=True)
class KpiValue:
    """One KPI of one ward (None: the whole alliance) in one fiscal year."""

    kpi: str
    label_en: str
    label_ja: str
    ward: str | None
    fiscal_year: int
    value: float | int | None
    target: float | int
    on_track: bool
    unit: str
    evidence: list[str] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the value as plain JSON-ready data."""
        return asdict(self)


# -- what the ledger keeps of each message ---------------------------------------


class _Ordered(Protocol):
    @property
    def order(self) -> Order: ...


@dataclass(frozen=True)
class _Dated:
    on: date
    event_id: str


@dataclass(frozen=True)
class _WardClaim:
    order: Order
    ward: str


@dataclass(frozen=True)
class _Credential:
    order: Order
    status: CredentialStatus
    issued_on: date
    expires_on: date | None

    @property
    def event_id(self) -> str:
        return self.order[2]


@dataclass(frozen=True)
class _Link:
    order: Order
    since: date
    green: bool


@dataclass(frozen=True)
class _Support:
    buyer_id: str
    provided_on: date
    event_id: str


@dataclass(frozen=True)
class _Concluded:
    """A deal its match's lifecycle accepts, with the DealClosed's and the
    MatchSuggested's event ids."""

    closed_on: date
    org_id: str
    candidate_id: str
    evidence: tuple[str, str]


@dataclass
class _MatchDeal:
    """A match replayed through its lifecycle (`MatchReplay`), with the ids of
    its suggestion and of the deal the lifecycle took."""

    replay: MatchReplay = field(default_factory=MatchReplay)
    suggestion_id: str = ""
    deal: _Dated | None = None

    def apply(self, envelope: Envelope) -> None:
        for taken, _ in self.replay.apply(envelope):
            if isinstance(taken.payload, MatchSuggested):
                self.suggestion_id = taken.event_id
            elif isinstance(taken.payload, DealClosed):
                self.deal = _Dated(taken.payload.closed_on, taken.event_id)

    @property
    def concluded(self) -> _Concluded | None:
        """Return the deal if the match stands at deal closed, else None."""
        match, deal = self.replay.match, self.deal
        if match is None or deal is None or match.stage is not Stage.DEAL_CLOSED:
            return None
        evidence = (deal.event_id, self.suggestion_id)
        return _Concluded(deal.on, match.org_id, match.candidate_id, evidence)


@dataclass(frozen=True)
class _Scheduled:
    order: Order
    kind: EventKind
    ward: str | None
    starts_at: datetime


@dataclass(frozen=True)
class _Presence:
    order: Order
    attended: bool


@dataclass(frozen=True)
class _Report:
    order: Order
    co2_t: float
    waste_t: float


@dataclass(frozen=True)
class _Result:
    value: float | int | None
    evidence: list[str]
    note: str | None = None


K = TypeVar("K")
R = TypeVar("R", bound=_Ordered)
Handler = Callable[[Any, Envelope], None]


def _order(envelope: Envelope, rank: int = 0) -> Order:
    return (envelope.occurred_at, rank, envelope.event_id)


def _keep_latest(records: dict[K, R], key: K, record: R) -> None:
    """Keep the record under the key unless a later one is there already."""
    current = records.get(key)
    if current is None or record.order > current.order:
        records[key] = record


def _last_day(year: int) -> date:
    """Return 31 March that ends a fiscal year."""
    return date(year + 1, 3, 31)


def months_before(day: date, months: int) -> date:
    """Return the same day `months` earlier, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _ids(groups: Iterable[Iterable[str]]) -> list[str]:
    return sorted({event_id for group in groups for event_id in group})


# -- the ledger -------------------------------------------------------------------


class KpiLedger:
    """The ward KPIs, built by applying envelopes in any order.

    Args:
        window_months: how long before a credential's issue a buyer's support
            or green-procurement requirement credits it to the supply chain.
    """

    def __init__(self, *, window_months: int = DEFAULT_WINDOW_MONTHS) -> None:
        if window_months < 0:
            raise ValueError("window_months must not be negative")
        self.window_months = window_months
        self._applied: set[str] = set()
        self._registered: defaultdict[str, list[_Dated]] = defaultdict(list)
        self._ended: defaultdict[str, list[_Dated]] = defaultdict(list)
        self._wards: dict[str, _WardClaim] = {}
        self._credentials: defaultdict[tuple[str, Scheme], dict[date, _Credential]]
        self._credentials = defaultdict(dict)
        self._credential_ends: defaultdict[tuple[str, Scheme], list[_Dated]]
        self._credential_ends = defaultdict(list)
        self._links: defaultdict[tuple[str, str], list[_Link]] = defaultdict(list)
        self._unlinks: defaultdict[tuple[str, str], list[_Dated]] = defaultdict(list)
        self._buyers_of: defaultdict[str, set[str]] = defaultdict(set)
        self._suppliers_of: defaultdict[str, set[str]] = defaultdict(set)
        self._schemes_of: defaultdict[str, set[Scheme]] = defaultdict(set)
        self._support: defaultdict[str, list[_Support]] = defaultdict(list)
        self._matches: defaultdict[str, _MatchDeal] = defaultdict(_MatchDeal)
        # The deals that count, by fiscal year and match id; kept current as
        # match messages arrive, since reports read them for every ward and year.
        self._concluded: defaultdict[int, dict[str, _Concluded]] = defaultdict(dict)
        self._scheduled: dict[str, _Scheduled] = {}
        self._cancellations: defaultdict[str, list[Order]] = defaultdict(list)
        self._presence: defaultdict[str, dict[str, _Presence]] = defaultdict(dict)
        self._reports: defaultdict[str, dict[int, _Report]] = defaultdict(dict)
        self._handlers = self._make_handlers()
        self._kpis = self._make_kpis()

    def _make_handlers(self) -> dict[str, Handler]:
        matches: dict[str, Handler] = {
            event_type: self._on_match_event
            for event_type, spec in EVENT_TYPES.items()
            if spec.stream is Stream.MATCHES
        }
        return matches | {
            "OrganisationRegistered": self._on_registered,
            "OrganisationProfileUpdated": self._on_profile_updated,
            "MembershipEnded": self._on_membership_ended,
            "CredentialRecorded": self._on_credential,
            "CredentialLapsed": self._on_credential_ended,
            "CredentialReturned": self._on_credential_ended,
            "EventScheduled": self._on_event_scheduled,
            "EventCancelled": self._on_event_cancelled,
            "AttendanceLogged": self._on_attendance,
            "AttendanceCorrected": self._on_attendance_corrected,
            "SupplierLinked": self._on_supplier_linked,
            "SupplierUnlinked": self._on_supplier_unlinked,
            "SupportProvided": self._on_support,
            "EnvironmentReported": self._on_environment_reported,
        }

    def _make_kpis(self) -> dict[str, Callable[[int, str | None], _Result]]:
        return {
            ORGANISATIONS: self._organisations,
            MATCHES_CONCLUDED: self._matches_concluded,
            SUPPLY_CHAIN_CERTIFICATIONS: self._supply_chain_certifications,
            EVENTS_HELD: self._events_held,
            SIMPLE_EMS_DECLARATIONS: self._simple_ems_declarations,
            GHG_CHANGE: self._ghg_change,
            WASTE_CHANGE: self._waste_change,
            ECO_ACTION_21_GROWTH: self._eco_action_21_growth,
        }

    # -- applying events ---------------------------------------------------------

    def apply(self, envelope: Envelope) -> None:
        """Record one event; an event id seen before changes nothing."""
        if envelope.event_id in self._applied:
            logger.debug("event %s already applied", envelope.event_id)
            return
        handler = self._handlers.get(envelope.type)
        if handler is not None:
            handler(envelope.payload, envelope)
        self._applied.add(envelope.event_id)
        logger.debug("applied %s %s", envelope.type, envelope.event_id)

    def is_applied(self, event_id: str) -> bool:
        """Return whether an event id has been applied."""
        return event_id in self._applied

    def _on_registered(self, p: OrganisationRegistered, envelope: Envelope) -> None:
        day = as_japan_time(envelope.occurred_at).date()
        self._registered[p.org_id].append(_Dated(day, envelope.event_id))
        _keep_latest(self._wards, p.org_id, _WardClaim(_order(envelope), p.ward))
        # The member known by name only until now is this one: it stops counting
        # on its own. (Its earlier credentials and attendance stay under its old
        # id; the ward, and so the ward's counts, are the same.)
        alias = name_alias(p.name, p.ward, p.corporate_number)
        if alias is not None and alias != p.org_id:
            self._ended[alias].append(_Dated(day, envelope.event_id))

    def _on_profile_updated(
        self, p: OrganisationProfileUpdated, envelope: Envelope
    ) -> None:
        if p.ward is not None:
            claim = _WardClaim(_order(envelope, rank=1), p.ward)
            _keep_latest(self._wards, p.org_id, claim)

    def _on_membership_ended(self, p: MembershipEnded, envelope: Envelope) -> None:
        self._ended[p.org_id].append(_Dated(p.ended_on, envelope.event_id))

    def _on_credential(self, p: CredentialRecorded, envelope: Envelope) -> None:
        """Keep one record per org, scheme and issue date: the latest message."""
        record = _Credential(_order(envelope), p.status, p.issued_on, p.expires_on)
        _keep_latest(self._credentials[p.org_id, p.scheme], p.issued_on, record)
        self._schemes_of[p.org_id].add(p.scheme)

    def _on_credential_ended(
        self, p: CredentialLapsed | CredentialReturned, envelope: Envelope
    ) -> None:
        on = p.lapsed_on if isinstance(p, CredentialLapsed) else p.returned_on
        self._credential_ends[p.org_id, p.scheme].append(_Dated(on, envelope.event_id))

    def _on_event_scheduled(self, p: EventScheduled, envelope: Envelope) -> None:
        record = _Scheduled(_order(envelope), p.kind, p.ward, p.starts_at)
        _keep_latest(self._scheduled, p.event_code, record)

    def _on_event_cancelled(self, p: EventCancelled, envelope: Envelope) -> None:
        self._cancellations[p.event_code].append(_order(envelope, rank=1))

    def _on_attendance(self, p: AttendanceLogged, envelope: Envelope) -> None:
        presence = _Presence(_order(envelope), attended=True)
        _keep_latest(self._presence[p.event_code], p.org_id, presence)

    def _on_attendance_corrected(
        self, p: AttendanceCorrected, envelope: Envelope
    ) -> None:
        presence = _Presence(_order(envelope, rank=1), attended=p.attended)
        _keep_latest(self._presence[p.event_code], p.org_id, presence)

    def _on_supplier_linked(self, p: SupplierLinked, envelope: Envelope) -> None:
        link = _Link(_order(envelope), p.since, p.green_procurement_required)
        self._links[p.buyer_id, p.supplier_id].append(link)
        self._buyers_of[p.supplier_id].add(p.buyer_id)
        self._suppliers_of[p.buyer_id].add(p.supplier_id)

    def _on_supplier_unlinked(self, p: SupplierUnlinked, envelope: Envelope) -> None:
        until = _Dated(p.until, envelope.event_id)
        self._unlinks[p.buyer_id, p.supplier_id].append(until)

    def _on_support(self, p: SupportProvided, envelope: Envelope) -> None:
        support = _Support(p.buyer_id, p.provided_on, envelope.event_id)
        self._support[p.supplier_id].append(support)

    def _on_match_event(self, p: Payload, envelope: Envelope) -> None:
        """Replay the message through its match's lifecycle and refile the
        match's deal if that changed it."""
        match_id = envelope.key  # the matches topic is keyed by match id
        replay = self._matches[match_id]
        before = replay.concluded
        replay.apply(envelope)
        after = replay.concluded
        if before == after:
            return
        if before is not None:
            del self._concluded[fiscal_year(before.closed_on)][match_id]
        if after is not None:
            self._concluded[fiscal_year(after.closed_on)][match_id] = after

    def _on_environment_reported(
        self, p: EnvironmentReported, envelope: Envelope
    ) -> None:
        report = _Report(_order(envelope), p.co2_t, p.waste_t)
        _keep_latest(self._reports[p.org_id], p.fiscal_year, report)

    # -- reading -----------------------------------------------------------------

    def report(self, fiscal_year: int, ward: str | None = None) -> list[KpiValue]:
        """Return every KPI of a ward (None: the whole alliance) in a fiscal year."""
        return [self.value(kpi, fiscal_year, ward) for kpi in KPI_SPECS]

    def value(self, kpi: str, fiscal_year: int, ward: str | None = None) -> KpiValue:
        """Return one KPI of a ward (None: the whole alliance) in a fiscal year.

        Raises:
            UnknownKpi: if no KPI has this id.
            ContractError: if the ward or the fiscal year is not plausible.
        """
        compute = self._kpis.get(kpi)
        if compute is None:
            raise UnknownKpi(kpi)
        fiscal_year_bounds(fiscal_year)  # refuses an implausible year
        if ward is not None:
            known_ward(ward)
        spec = KPI_SPECS[kpi]
        result = compute(fiscal_year, ward)
        target = spec.target_for(ward)
        return KpiValue(
            kpi=kpi,
            label_en=spec.label_en,
            label_ja=spec.label_ja,
            ward=ward,
            fiscal_year=fiscal_year,
            value=result.value,
            target=target,
            on_track=spec.on_track(result.value, target),
            unit=spec.unit,
            evidence=result.evidence,
            note=result.note,
        )

    def evidence(self, kpi: str, fiscal_year: int, ward: str | None) -> list[str]:
        """Return the event ids behind a KPI's value, sorted."""
        return self.value(kpi, fiscal_year, ward).evidence

    def ward_of(self, org_id: str) -> str | None:
        """Return the latest known ward of an org, None if it never registered."""
        if org_id not in self._registered:
            return None
        claim = self._wards.get(org_id)
        return claim.ward if claim else None

    def membership(self, org_id: str, fiscal_year: int) -> str | None:
        """Return the registration event that makes the org a member at the end
        of the fiscal year, or None if it is not one then."""
        last_day = _last_day(fiscal_year)
        registrations = [
            r for r in self._registered.get(org_id, ()) if r.on <= last_day
        ]
        if not registrations:
            return None
        latest = max(registrations, key=lambda r: (r.on, r.event_id))
        ends = self._ended.get(org_id, ())
        if any(latest.on <= end.on <= last_day for end in ends):
            return None
        return latest.event_id

    def credited_buyers(
        self, org_id: str, scheme: Scheme, issued_on: date | None = None
    ) -> list[str]:
        """Return the buyers a credential is credited to, sorted.

        ``issued_on`` picks one of the org's credentials of that scheme; without
        it, the latest issued one is read.
        """
        records = self._credentials.get((org_id, scheme), {})
        if not records:
            return []
        day = issued_on if issued_on is not None else max(records)
        if day not in records:
            return []
        return sorted(self._credits(org_id, day))

    # -- the KPIs ----------------------------------------------------------------

    def _in(self, org_id: str, ward: str | None) -> bool:
        """Return whether the org belongs to the ward (None: to any ward)."""
        org_ward = self.ward_of(org_id)
        return org_ward is not None and (ward is None or org_ward == ward)

    def _organisations(self, year: int, ward: str | None) -> _Result:
        evidence = [
            event_id
            for org_id in self._registered
            if self._in(org_id, ward)
            and (event_id := self.membership(org_id, year)) is not None
        ]
        return _Result(len(evidence), sorted(evidence))

    def _matches_concluded(self, year: int, ward: str | None) -> _Result:
        """Count the deals closed in the year that their match's lifecycle
        accepts, once per ward of either side."""
        counted = [
            deal.evidence
            for deal in self._concluded.get(year, {}).values()
            if ward is None
            or ward in {self.ward_of(deal.org_id), self.ward_of(deal.candidate_id)}
        ]
        return _Result(len(counted), _ids(counted))

    def _supply_chain_certifications(self, year: int, ward: str | None) -> _Result:
        counted = [
            [record.event_id, *event_ids]
            for org_id, record in self._obtained(year, ward)
            for event_ids in [_ids(self._credits(org_id, record.issued_on).values())]
            if event_ids
        ]
        return _Result(len(counted), _ids(counted))

    def _obtained(
        self, year: int, ward: str | None
    ) -> Iterator[tuple[str, _Credential]]:
        """Yield the certifications recorded active and issued in the year."""
        for (org_id, scheme), records in self._credentials.items():
            if scheme not in SUPPLY_CHAIN_SCHEMES or not self._in(org_id, ward):
                continue
            for record in records.values():
                if record.status is CredentialStatus.ACTIVE and (
                    fiscal_year(record.issued_on) == year
                ):
                    yield org_id, record

    def _credits(self, org_id: str, issued_on: date) -> dict[str, list[str]]:
        """Return the buyers a credential issued that day is credited to, with
        the support and link events that credit it."""
        credits: defaultdict[str, list[str]] = defaultdict(list)
        start = months_before(issued_on, self.window_months)
        for support in self._support.get(org_id, ()):
            if start <= support.provided_on <= issued_on:
                credits[support.buyer_id].append(support.event_id)
        for buyer_id in self._buyers_of.get(org_id, ()):
            link = self._link_on(buyer_id, org_id, issued_on)
            if link is not None and link.green:
                credits[buyer_id].append(link.order[2])
        return dict(credits)

    def _link_on(self, buyer_id: str, supplier_id: str, day: date) -> _Link | None:
        """Return the supply link in force on a day: the latest begun by then,
        unless it was unlinked before that day."""
        pair = (buyer_id, supplier_id)
        begun = [link for link in self._links.get(pair, ()) if link.since <= day]
        if not begun:
            return None
        link = max(begun, key=lambda link: (link.since, link.order))
        ends = self._unlinks.get(pair, ())
        if any(link.since <= end.on < day for end in ends):
            return None
        return link

    def _events_held(self, year: int, ward: str | None) -> _Result:
        counted: list[list[str]] = []
        for event_code, event in self._scheduled.items():
            if event.kind not in HELD_KINDS or fiscal_year(event.starts_at) != year:
                continue
            if ward is not None and event.ward != ward:
                continue
            if self._cancelled(event_code, event):
                continue
            present = self._present(event_code)
            if present:
                counted.append([event.order[2], *present])
        return _Result(len(counted), _ids(counted))

    def _cancelled(self, event_code: str, event: _Scheduled) -> bool:
        """Return whether a cancellation came at or after the latest schedule."""
        cancellations = self._cancellations.get(event_code, ())
        return any(moment >= event.order[0] for moment, _, _ in cancellations)

    def _present(self, event_code: str) -> list[str]:
        """Return the events that leave an org marked present at an event."""
        presences = self._presence.get(event_code, {}).values()
        return [presence.order[2] for presence in presences if presence.attended]

    def _simple_ems_declarations(self, year: int, ward: str | None) -> _Result:
        holders = self._members_holding(Scheme.SIMPLE_DECLARATION, year, ward)
        return _Result(len(holders), _ids(holders.values()))

    def _eco_action_21_growth(self, year: int, ward: str | None) -> _Result:
        """Compare Eco Action 21 members now with three fiscal years earlier."""
        before = year - GROWTH_YEARS
        now = self._members_holding(Scheme.ECO_ACTION_21, year, ward)
        then = self._members_holding(Scheme.ECO_ACTION_21, before, ward)
        evidence = _ids([*now.values(), *then.values()])
        counts = (
            f"{len(now)} at the end of FY{year}, {len(then)} at the end of FY{before}"
        )
        if not then:
            note = f"no certified member at the end of FY{before}; {counts}"
            return _Result(None, evidence, note)
        return _Result(len(now) / len(then), evidence, counts)

    def _members_holding(
        self, scheme: Scheme, year: int, ward: str | None
    ) -> dict[str, list[str]]:
        """Return the members holding a credential in force at the year's end,
        with the records that show it."""
        last_day = _last_day(year)
        holders: dict[str, list[str]] = {}
        for (org_id, held), records in self._credentials.items():
            if held is not scheme or not self._in(org_id, ward):
                continue
            in_force = [
                record.event_id
                for record in records.values()
                if self._in_force(org_id, scheme, record, last_day)
            ]
            if in_force and self.membership(org_id, year) is not None:
                holders[org_id] = in_force
        return holders

    def _in_force(
        self, org_id: str, scheme: Scheme, record: _Credential, day: date
    ) -> bool:
        """Return whether a credential is in force on a day (see the module)."""
        if record.status is not CredentialStatus.ACTIVE or record.issued_on > day:
            return False
        if record.expires_on is not None and record.expires_on < day:
            return False
        ends = self._credential_ends.get((org_id, scheme), ())
        return not any(record.issued_on <= end.on <= day for end in ends)

    def _ghg_change(self, year: int, ward: str | None) -> _Result:
        return self._change(year, ward, lambda report: report.co2_t)

    def _waste_change(self, year: int, ward: str | None) -> _Result:
        return self._change(year, ward, lambda report: report.waste_t)

    def _change(
        self, year: int, ward: str | None, amount: Callable[[_Report], float]
    ) -> _Result:
        """Return the change in percent over orgs that reported both years."""
        pairs = [
            (by_year[year], by_year[year - 1])
            for org_id, by_year in self._reports.items()
            if self._in(org_id, ward) and year in by_year and year - 1 in by_year
        ]
        evidence = _ids([now.order[2], then.order[2]] for now, then in pairs)
        if not pairs:
            note = f"no organisation reported in both FY{year - 1} and FY{year}"
            return _Result(None, evidence, note)
        # fsum is exact, so the figure does not depend on the order events came in.
        before = math.fsum(amount(then) for _, then in pairs)
        after = math.fsum(amount(now) for now, _ in pairs)
        if before == 0:
            note = f"the {len(pairs)} organisations reported nothing in FY{year - 1}"
            return _Result(None, evidence, note)
        return _Result((after - before) / before * 100, evidence)


# -- the large-firm view -------------------------------------------------------------

EXPIRY_WARNING_DAYS = 90


def buyers(ledger: KpiLedger) -> set[str]:
    """Return the organisations that have declared a supplier."""
    return set(ledger._suppliers_of)


def buyers_of(ledger: KpiLedger, org_id: str) -> set[str]:
    """Return the organisations that have declared ``org_id`` a supplier."""
    return set(ledger._buyers_of.get(org_id, ()))


def supplier_adoption(ledger: KpiLedger, buyer_id: str, today: date) -> dict[str, Any]:
    """Return a buyer's view of its suppliers' EMS adoption on a day.

    Suppliers by their best credential in force; credentials obtained by fiscal
    year; suppliers the buyer supported, and which of them obtained a credential
    afterwards; credentials expiring within 90 days; suppliers with none.
    """
    suppliers = sorted(
        s
        for s in ledger._suppliers_of.get(buyer_id, ())
        if ledger._link_on(buyer_id, s, today)
    )
    by_level: dict[str, list[str]] = {scheme.value: [] for scheme in Scheme}
    by_level["none"] = []
    by_year: defaultdict[int, int] = defaultdict(int)
    expiring: list[dict[str, Any]] = []
    for supplier in suppliers:
        best = _best_in_force(ledger, supplier, today)
        by_level[best.value if best else "none"].append(supplier)
        for scheme in sorted(ledger._schemes_of.get(supplier, ())):
            records = ledger._credentials[supplier, scheme]
            for record in records.values():
                if record.status is CredentialStatus.ACTIVE:
                    by_year[fiscal_year(record.issued_on)] += 1
                if _expiring(ledger, supplier, scheme, record, today):
                    expiring.append(_expiry(supplier, scheme, record))
    return {
        "buyer_id": buyer_id,
        "as_of": today.isoformat(),
        "suppliers": len(suppliers),
        "by_level": by_level,
        "obtained_by_fiscal_year": dict(sorted(by_year.items())),
        "supported": _supported(ledger, buyer_id, suppliers),
        "expiring_within_90_days": expiring,
        "without_credential": by_level["none"],
    }


def _best_in_force(ledger: KpiLedger, org_id: str, day: date) -> Scheme | None:
    held = [
        scheme
        for scheme in ledger._schemes_of.get(org_id, ())
        if any(
            ledger._in_force(org_id, scheme, r, day)
            for r in ledger._credentials[org_id, scheme].values()
        )
    ]
    return max(held, key=SCHEME_LEVEL.__getitem__, default=None)


def _expiring(
    ledger: KpiLedger, org_id: str, scheme: Scheme, record: Any, today: date
) -> bool:
    if record.expires_on is None or not ledger._in_force(org_id, scheme, record, today):
        return False
    return (record.expires_on - today).days <= EXPIRY_WARNING_DAYS


def _expiry(org_id: str, scheme: Scheme, record: Any) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "scheme": scheme.value,
        "expires_on": record.expires_on.isoformat(),
    }


def _supported(
    ledger: KpiLedger, buyer_id: str, suppliers: list[str]
) -> list[dict[str, Any]]:
    """Return the suppliers the buyer supported, with what they obtained after."""
    supported = []
    for supplier in suppliers:
        given = [s for s in ledger._support.get(supplier, ()) if s.buyer_id == buyer_id]
        if not given:
            continue
        first = min(s.provided_on for s in given)
        obtained = sorted(
            {
                scheme.value
                for (org, scheme), records in ledger._credentials.items()
                if org == supplier
                and any(r.issued_on >= first and r.status is CredentialStatus.ACTIVE
                        for r in records.values())
            }
        )  # fmt: skip
        supported.append(
            {"org_id": supplier, "first_support_on": first.isoformat(),
             "obtained_after": obtained}
        )  # fmt: skip
    return supported
