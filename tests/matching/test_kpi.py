"""KpiLedger: every KPI on a known scenario, fiscal-year boundaries, corrections,
deals judged by the match lifecycle, the supply-chain window, idempotence and
order-independence."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict, deque
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.funnel import Funnel
from matching.kpi import KPI_SPECS, KpiLedger, UnknownKpi, months_before
from schemas.ems import Scheme
from schemas.envelope import Envelope, new_envelope
from schemas.errors import ContractError
from schemas.fiscal import JST
from schemas.topics import Stream

CHIYODA = "13101"
MINATO = "13103"
FY = 2025
# Messages happen one second apart from here on, so that a correction made
# later in a test is also later by occurred_at.
START = datetime(2022, 5, 1, 9, 0, tzinfo=JST)


class Events:
    """Make real envelopes for the KPI tests, one method per event type."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def make(
        self, event_type: str, payload: dict[str, Any], at: datetime | None = None
    ) -> Envelope:
        n = next(self._ids)
        return new_envelope(
            event_type,
            payload,
            source="tests",
            occurred_at=at or START + timedelta(seconds=n),
            event_id=f"kpi-{n:05d}",
        )

    def register(
        self, org_id: str, ward: str = CHIYODA, at: datetime | None = None
    ) -> Envelope:
        payload = {"org_id": org_id, "name": f"Org {org_id}", "ward": ward}
        return self.make("OrganisationRegistered", payload, at)

    def moved(self, org_id: str, ward: str) -> Envelope:
        return self.make("OrganisationProfileUpdated", {"org_id": org_id, "ward": ward})

    def ended(self, org_id: str, on: date) -> Envelope:
        return self.make("MembershipEnded", {"org_id": org_id, "ended_on": on})

    def credential(
        self,
        org_id: str,
        scheme: str,
        issued_on: date,
        expires_on: date | None = None,
    ) -> Envelope:
        payload = {
            "org_id": org_id,
            "scheme": scheme,
            "issued_on": issued_on,
            "expires_on": expires_on,
        }
        return self.make("CredentialRecorded", payload)

    def lapsed(self, org_id: str, scheme: str, on: date) -> Envelope:
        payload = {"org_id": org_id, "scheme": scheme, "lapsed_on": on}
        return self.make("CredentialLapsed", payload)

    def returned(self, org_id: str, scheme: str, on: date) -> Envelope:
        payload = {"org_id": org_id, "scheme": scheme, "returned_on": on}
        return self.make("CredentialReturned", payload)

    def schedule(
        self,
        code: str,
        starts_at: datetime,
        kind: str = "exchange",
        ward: str | None = CHIYODA,
    ) -> Envelope:
        payload = {
            "event_code": code,
            "title": f"Event {code}",
            "kind": kind,
            "ward": ward,
            "starts_at": starts_at,
        }
        return self.make("EventScheduled", payload)

    def attend(self, code: str, org_id: str) -> Envelope:
        payload = {"event_code": code, "org_id": org_id, "attended_at": START}
        return self.make("AttendanceLogged", payload)

    def corrected(self, code: str, org_id: str, attended: bool) -> Envelope:
        payload = {"event_code": code, "org_id": org_id, "attended": attended}
        return self.make("AttendanceCorrected", payload)

    def cancel(self, code: str) -> Envelope:
        return self.make("EventCancelled", {"event_code": code})

    def link(
        self, buyer_id: str, supplier_id: str, since: date, green: bool = False
    ) -> Envelope:
        payload = {
            "buyer_id": buyer_id,
            "supplier_id": supplier_id,
            "since": since,
            "green_procurement_required": green,
        }
        return self.make("SupplierLinked", payload)

    def unlink(self, buyer_id: str, supplier_id: str, until: date) -> Envelope:
        payload = {"buyer_id": buyer_id, "supplier_id": supplier_id, "until": until}
        return self.make("SupplierUnlinked", payload)

    def support(self, buyer_id: str, supplier_id: str, on: date) -> Envelope:
        payload = {
            "buyer_id": buyer_id,
            "supplier_id": supplier_id,
            "kind": "training",
            "provided_on": on,
        }
        return self.make("SupportProvided", payload)

    def suggested(self, match_id: str, org_id: str, candidate_id: str) -> Envelope:
        payload = {
            "match_id": match_id,
            "org_id": org_id,
            "candidate_id": candidate_id,
            "score": 0.5,
            "model_version": "heuristic-1",
        }
        return self.make("MatchSuggested", payload)

    def accepted(self, match_id: str, org_id: str) -> Envelope:
        return self.make("MatchAccepted", {"match_id": match_id, "org_id": org_id})

    def declined(self, match_id: str, org_id: str) -> Envelope:
        return self.make("MatchDeclined", {"match_id": match_id, "org_id": org_id})

    def introduced(self, match_id: str) -> Envelope:
        return self.make("MatchIntroduced", {"match_id": match_id})

    def meeting(self, match_id: str, on: date) -> Envelope:
        return self.make("MeetingHeld", {"match_id": match_id, "held_on": on})

    def closed(self, match_id: str, on: date) -> Envelope:
        return self.make("DealClosed", {"match_id": match_id, "closed_on": on})

    def to_deal(
        self,
        match_id: str,
        org_id: str,
        candidate_id: str,
        on: date,
        met_on: date | None = None,
    ) -> list[Envelope]:
        """Return the legal steps after a suggestion that end in a deal closed on
        ``on``: both sides accept, an introduction, a meeting (on ``met_on``,
        by default the day of the deal), the deal."""
        return [
            self.accepted(match_id, org_id),
            self.accepted(match_id, candidate_id),
            self.introduced(match_id),
            self.meeting(match_id, met_on or on),
            self.closed(match_id, on),
        ]

    def withdrawn(self, match_id: str) -> Envelope:
        return self.make("DealWithdrawn", {"match_id": match_id})

    def reported(
        self, org_id: str, year: int, co2_t: float, waste_t: float
    ) -> Envelope:
        payload = {
            "org_id": org_id,
            "fiscal_year": year,
            "co2_t": co2_t,
            "waste_t": waste_t,
            "electricity_kwh": 0,
        }
        return self.make("EnvironmentReported", payload)


@pytest.fixture
def ev() -> Events:
    return Events()


def ledger_of(envelopes: list[Envelope], **kwargs: Any) -> KpiLedger:
    ledger = KpiLedger(**kwargs)
    for envelope in envelopes:
        ledger.apply(envelope)
    return ledger


def values(ledger: KpiLedger, year: int = FY, ward: str | None = CHIYODA) -> dict:
    return {v.kpi: v.value for v in ledger.report(year, ward)}


def funnel_of(envelopes: list[Envelope]) -> Funnel:
    funnel = Funnel()
    for envelope in envelopes:
        funnel.apply(envelope)
    return funnel


def funnel_deals(funnel: Funnel) -> int:
    """Return how many matches the funnel saw reach a deal."""
    return sum(row["deal"] for row in funnel.report("model_version"))


def in_topic_order(envelopes: list[Envelope], rnd: random.Random) -> list[Envelope]:
    """Return the log shuffled, but with each match's steps (not its suggestion)
    in the order they were sent, as the matches topic (keyed by match) keeps them."""
    shuffled = rnd.sample(envelopes, len(envelopes))
    steps: defaultdict[str, deque[Envelope]] = defaultdict(deque)
    for envelope in envelopes:
        if is_step(envelope):
            steps[envelope.key].append(envelope)
    return [steps[e.key].popleft() if is_step(e) else e for e in shuffled]


def is_step(envelope: Envelope) -> bool:
    return envelope.stream is Stream.MATCHES and envelope.type != "MatchSuggested"


def scenario(ev: Events) -> list[Envelope]:
    """A small alliance with a known answer for every KPI in FY2025."""
    return [
        # organisations: a, b in Chiyoda; c, e in Minato; d left in FY2025
        ev.register("a"),
        ev.register("b"),
        ev.register("c", MINATO),
        ev.register("d"),
        ev.register("e"),
        ev.moved("e", MINATO),
        ev.ended("d", date(2025, 12, 1)),
        # deals: m1 crosses wards, m3 is withdrawn, m4 falls in FY2026
        ev.suggested("m1", "a", "c"),
        *ev.to_deal("m1", "a", "c", date(2025, 6, 1), met_on=date(2025, 5, 20)),
        ev.suggested("m2", "a", "b"),
        *ev.to_deal("m2", "a", "b", date(2025, 7, 1)),
        ev.suggested("m3", "a", "b"),
        *ev.to_deal("m3", "a", "b", date(2025, 8, 1)),
        ev.withdrawn("m3"),
        ev.suggested("m4", "b", "c"),
        *ev.to_deal("m4", "b", "c", date(2026, 4, 1)),
        # certifications: a helped by buyer c; b supplies c under green procurement
        ev.support("c", "a", date(2024, 1, 10)),
        ev.credential("a", "eco_action_21", date(2025, 9, 1)),
        ev.link("c", "b", date(2024, 4, 1), green=True),
        ev.credential("b", "iso_14001", date(2025, 10, 1)),
        ev.credential("b", "eco_action_21", date(2021, 4, 1), date(2027, 3, 31)),
        # events: only ev1 was held (ev2 cancelled, ev3 a study, ev4 corrected away)
        ev.schedule("ev1", datetime(2025, 6, 10, 14, tzinfo=JST)),
        ev.attend("ev1", "a"),
        ev.schedule("ev2", datetime(2025, 7, 10, 14, tzinfo=JST), kind="matching"),
        ev.attend("ev2", "a"),
        ev.cancel("ev2"),
        ev.schedule("ev3", datetime(2025, 8, 10, 14, tzinfo=JST), kind="study"),
        ev.attend("ev3", "a"),
        ev.schedule("ev4", datetime(2025, 9, 10, 14, tzinfo=JST)),
        ev.attend("ev4", "b"),
        ev.corrected("ev4", "b", attended=False),
        # simple declarations: d's no longer counts, d having left
        ev.credential("a", "simple_declaration", date(2024, 5, 1)),
        ev.credential("b", "simple_declaration", date(2025, 5, 1)),
        ev.credential("d", "simple_declaration", date(2025, 5, 1)),
        # reports: Chiyoda's GHG 200 -> 190 t, waste 20 -> 22 t
        ev.reported("a", 2024, 100, 10),
        ev.reported("a", 2025, 90, 10),
        ev.reported("b", 2024, 100, 10),
        ev.reported("b", 2025, 100, 12),
        ev.reported("c", 2025, 50, 5),
    ]


EXPECTED_CHIYODA = {
    "organisations": 2,
    "matches_concluded": 2,
    "supply_chain_certifications": 2,
    "events_held": 1,
    "simple_ems_declarations": 2,
    "ghg_change": -5.0,
    "waste_change": 10.0,
    "eco_action_21_growth": 2.0,
}


# -- the whole scenario -----------------------------------------------------------


def test_report_scenario_gives_known_value_for_every_kpi(ev):
    ledger = ledger_of(scenario(ev))

    result = values(ledger)

    assert result == EXPECTED_CHIYODA


def test_report_scenario_other_ward_and_alliance_total(ev):
    ledger = ledger_of(scenario(ev))

    minato = values(ledger, ward=MINATO)
    total = values(ledger, ward=None)

    assert minato["organisations"] == 2
    assert minato["matches_concluded"] == 1
    assert minato["supply_chain_certifications"] == 0
    assert minato["ghg_change"] is None
    assert total["organisations"] == 4
    assert total["matches_concluded"] == 2
    assert total["supply_chain_certifications"] == 2


def test_report_on_track_compares_each_value_with_its_target(ev):
    ledger = ledger_of(scenario(ev))

    report = {v.kpi: v for v in ledger.report(FY, CHIYODA)}

    assert report["ghg_change"].on_track is True
    assert report["waste_change"].on_track is False
    assert report["eco_action_21_growth"].on_track is True
    assert report["organisations"].on_track is False
    assert report["organisations"].target == 100


def test_report_alliance_total_of_a_count_targets_the_sum_over_wards(ev):
    ledger = ledger_of(scenario(ev))

    report = {v.kpi: v for v in ledger.report(FY, None)}

    assert report["matches_concluded"].target == 20 * 23
    assert report["ghg_change"].target == -3


def test_report_returns_every_kpi_with_both_labels(ev):
    ledger = ledger_of(scenario(ev))

    report = ledger.report(FY, CHIYODA)

    assert [v.kpi for v in report] == list(KPI_SPECS)
    assert all(v.label_en and v.label_ja and v.unit for v in report)
    assert all(v.fiscal_year == FY and v.ward == CHIYODA for v in report)


def test_kpi_value_to_dict_is_plain_data(ev):
    ledger = ledger_of(scenario(ev))

    data = ledger.value("events_held", FY, CHIYODA).to_dict()

    assert data["kpi"] == "events_held"
    assert data["value"] == 1
    assert data["target"] == 6
    assert data["evidence"] == ledger.evidence("events_held", FY, CHIYODA)


def test_evidence_names_the_events_behind_the_number(ev):
    suggestion = ev.suggested("m1", "a", "b")
    steps = ev.to_deal("m1", "a", "b", date(2025, 6, 1))
    ledger = ledger_of([ev.register("a"), ev.register("b"), suggestion, *steps])

    evidence = ledger.evidence("matches_concluded", FY, CHIYODA)

    assert evidence == [suggestion.event_id, steps[-1].event_id]


def test_value_refuses_unknown_kpi_and_ward():
    ledger = KpiLedger()

    with pytest.raises(UnknownKpi):
        ledger.value("happiness", FY)
    with pytest.raises(ContractError):
        ledger.report(FY, "99999")


# -- fiscal-year boundaries -------------------------------------------------------


def test_events_held_judges_fiscal_year_in_japan_time(ev):
    last_minute = datetime(2026, 3, 31, 14, 59, tzinfo=UTC)  # 23:59 JST
    first_minute = datetime(2026, 3, 31, 15, 0, tzinfo=UTC)  # 00:00 JST 1 April
    ledger = ledger_of(
        [
            ev.schedule("late", last_minute),
            ev.attend("late", "a"),
            ev.schedule("early", first_minute),
            ev.attend("early", "a"),
        ]
    )

    fy2025 = ledger.value("events_held", 2025, CHIYODA)
    fy2026 = ledger.value("events_held", 2026, CHIYODA)

    assert fy2025.value == 1
    assert fy2026.value == 1
    assert "kpi-00001" in fy2025.evidence
    assert "kpi-00003" in fy2026.evidence


def test_organisations_registered_at_year_end_count_in_the_right_year(ev):
    ledger = ledger_of(
        [
            ev.register("late", at=datetime(2026, 3, 31, 14, 59, tzinfo=UTC)),
            ev.register("early", at=datetime(2026, 3, 31, 15, 0, tzinfo=UTC)),
        ]
    )

    fy2025 = values(ledger, 2025)["organisations"]
    fy2026 = values(ledger, 2026)["organisations"]

    assert (fy2025, fy2026) == (1, 2)


def test_matches_concluded_on_31_march_count_in_the_ending_year(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("b"),
            ev.suggested("m1", "a", "b"),
            *ev.to_deal("m1", "a", "b", date(2026, 3, 31)),
        ]
    )

    counts = [values(ledger, year)["matches_concluded"] for year in (2025, 2026)]

    assert counts == [1, 0]


# -- corrections ------------------------------------------------------------------


def test_events_held_cancelled_event_does_not_count(ev):
    held = [
        ev.schedule("fair", datetime(2025, 6, 1, tzinfo=JST)),
        ev.attend("fair", "a"),
    ]
    ledger = ledger_of(held)
    assert values(ledger)["events_held"] == 1

    ledger.apply(ev.cancel("fair"))

    assert values(ledger)["events_held"] == 0
    assert ledger.evidence("events_held", FY, CHIYODA) == []


def test_events_held_needs_an_attendance_left_after_corrections(ev):
    ledger = ledger_of(
        [
            ev.schedule("fair", datetime(2025, 6, 1, tzinfo=JST)),
            ev.attend("fair", "a"),
            ev.attend("fair", "b"),
            ev.corrected("fair", "a", attended=False),
        ]
    )
    assert values(ledger)["events_held"] == 1

    ledger.apply(ev.corrected("fair", "b", attended=False))

    assert values(ledger)["events_held"] == 0


def test_events_held_without_a_ward_count_only_in_the_total(ev):
    ledger = ledger_of(
        [
            ev.schedule("online", datetime(2025, 6, 1, tzinfo=JST), ward=None),
            ev.attend("online", "a"),
        ]
    )

    ward_count = values(ledger)["events_held"]
    total = values(ledger, ward=None)["events_held"]

    assert (ward_count, total) == (0, 1)


def test_matches_concluded_withdrawn_deal_does_not_count(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("b"),
            ev.suggested("m1", "a", "b"),
            *ev.to_deal("m1", "a", "b", date(2025, 6, 1)),
        ]
    )
    assert values(ledger)["matches_concluded"] == 1

    ledger.apply(ev.withdrawn("m1"))

    assert values(ledger)["matches_concluded"] == 0
    assert values(ledger, ward=None)["matches_concluded"] == 0
    assert ledger.evidence("matches_concluded", FY, None) == []


def test_matches_concluded_withdrawal_before_the_deal_is_skipped(ev):
    suggestion = ev.suggested("m1", "a", "b")
    withdrawal = ev.withdrawn("m1")  # no deal to withdraw yet: refused
    steps = ev.to_deal("m1", "a", "b", date(2025, 6, 1))

    ledger = ledger_of(
        [ev.register("a"), ev.register("b"), suggestion, withdrawal, *steps]
    )

    assert values(ledger)["matches_concluded"] == 1


def test_matches_concluded_deal_without_earlier_steps_does_not_count(ev):
    envelopes = [
        ev.register("a"),
        ev.register("b"),
        ev.suggested("m1", "a", "b"),
        ev.closed("m1", date(2025, 6, 1)),  # produced straight to the topic
    ]
    ledger = ledger_of(envelopes)
    funnel = funnel_of(envelopes)

    counted = values(ledger, ward=None)["matches_concluded"]

    assert counted == 0
    assert funnel_deals(funnel) == 0


def test_matches_concluded_deal_on_a_declined_match_does_not_count(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("b"),
            ev.suggested("m1", "a", "b"),
            ev.declined("m1", "b"),
            *ev.to_deal("m1", "a", "b", date(2025, 6, 1)),
        ]
    )

    counted = values(ledger, ward=None)["matches_concluded"]

    assert counted == 0


def test_matches_concluded_deal_dated_before_its_meeting_does_not_count(ev):
    steps = ev.to_deal("m1", "a", "b", date(2025, 6, 1), met_on=date(2025, 6, 2))
    ledger = ledger_of(
        [ev.register("a"), ev.register("b"), ev.suggested("m1", "a", "b"), *steps]
    )

    counted = values(ledger, ward=None)["matches_concluded"]

    assert counted == 0


def test_matches_concluded_deal_closed_twice_counts_the_first_accepted(ev):
    first = ev.to_deal("m1", "a", "b", date(2025, 6, 1))
    again = ev.closed("m1", date(2026, 6, 1))  # the match is closed already
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("b"),
            ev.suggested("m1", "a", "b"),
            *first,
            again,
        ]
    )

    counts = [values(ledger, year)["matches_concluded"] for year in (2025, 2026)]

    assert counts == [1, 0]
    assert first[-1].event_id in ledger.evidence("matches_concluded", FY, CHIYODA)


def test_matches_concluded_steps_before_their_suggestion_count_once_it_arrives(ev):
    suggestion = ev.suggested("m1", "a", "b")
    steps = ev.to_deal("m1", "a", "b", date(2025, 6, 1))
    ledger = ledger_of([ev.register("a"), ev.register("b"), *steps])
    assert values(ledger)["matches_concluded"] == 0

    ledger.apply(suggestion)

    assert values(ledger)["matches_concluded"] == 1
    assert funnel_deals(funnel_of([*steps, suggestion])) == 1


def test_matches_concluded_cross_ward_deal_counts_in_each_ward_once_in_total(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("c", MINATO),
            ev.suggested("m1", "a", "c"),
            *ev.to_deal("m1", "a", "c", date(2025, 6, 1)),
        ]
    )

    chiyoda = values(ledger, ward=CHIYODA)["matches_concluded"]
    minato = values(ledger, ward=MINATO)["matches_concluded"]
    total = values(ledger, ward=None)["matches_concluded"]

    assert (chiyoda, minato, total) == (1, 1, 1)


# A match's legal path after its suggestion, and steps a producer might slip in
# (expiry, which needs 30 days, and withdrawal, since the funnel counts a deal
# reached whether withdrawn or not, are left out).
LEGAL_PATH = ("accept a", "accept b", "introduce", "meeting", "deal")
STRAY_STEPS = ("decline b", "close", "deal", "meeting", "introduce", "accept a")


@st.composite
def match_steps(draw: st.DrawFn) -> list[str]:
    """Draw one match's steps: its legal path with some steps dropped and others
    slipped in, and its suggestion anywhere among them, or missing."""
    steps = [step for step in LEGAL_PATH if draw(st.integers(0, 4))]
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(steps)))
        steps.insert(at, draw(st.sampled_from(STRAY_STEPS)))
    if draw(st.integers(0, 5)):
        steps.insert(draw(st.integers(0, len(steps))), "suggest")
    return steps


def match_step(ev: Events, match_id: str, step: str) -> Envelope:
    if step == "suggest":
        return ev.suggested(match_id, "a", "b")
    if step.startswith(("accept", "decline")):
        verb, side = step.split()
        return (ev.accepted if verb == "accept" else ev.declined)(match_id, side)
    if step == "introduce":
        return ev.introduced(match_id)
    if step == "meeting":
        return ev.meeting(match_id, date(2025, 6, 1))
    if step == "deal":
        return ev.closed(match_id, date(2025, 6, 2))
    return ev.make("MatchClosedWithoutDeal", {"match_id": match_id})


@settings(max_examples=100, deadline=None)
@given(st.lists(match_steps(), max_size=4))
def test_matches_concluded_agrees_with_the_funnel_on_any_steps(matches):
    ev = Events()
    envelopes = [ev.register("a"), ev.register("b")]
    for n, steps in enumerate(matches):
        envelopes += [match_step(ev, f"m{n}", step) for step in steps]

    counted = values(ledger_of(envelopes), ward=None)["matches_concluded"]

    assert counted == funnel_deals(funnel_of(envelopes))


def test_organisations_follow_the_latest_ward(ev):
    ledger = ledger_of([ev.register("a"), ev.moved("a", MINATO)])

    chiyoda = values(ledger, ward=CHIYODA)["organisations"]
    minato = values(ledger, ward=MINATO)["organisations"]

    assert (chiyoda, minato) == (0, 1)


@pytest.mark.parametrize(
    ("ended_on", "expected"), [(date(2026, 3, 31), 0), (date(2026, 4, 1), 1)]
)
def test_organisations_ended_on_the_last_day_no_longer_count(ev, ended_on, expected):
    ledger = ledger_of([ev.register("a"), ev.ended("a", ended_on)])

    count = values(ledger)["organisations"]

    assert count == expected


def test_organisations_ended_membership_counts_until_its_year_ends(ev):
    ledger = ledger_of([ev.register("a"), ev.ended("a", date(2025, 12, 1))])

    counts = [values(ledger, year)["organisations"] for year in (2024, 2025)]

    assert counts == [1, 0]


def test_supply_chain_certifications_lapsed_credential_still_counts(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("buyer"),
            ev.support("buyer", "a", date(2025, 4, 10)),
            ev.credential("a", "eco_action_21", date(2025, 6, 1)),
            ev.lapsed("a", "eco_action_21", date(2025, 12, 1)),
        ]
    )

    result = values(ledger)

    assert result["supply_chain_certifications"] == 1  # obtained in FY2025
    assert result["eco_action_21_growth"] is None  # not held at the year's end


def test_eco_action_21_growth_lapsed_credential_is_not_held_at_year_end(ev):
    early = datetime(2022, 4, 2, tzinfo=JST)
    ledger = ledger_of(
        [
            ev.register("a", at=early),
            ev.register("b", at=early),
            ev.credential("a", "eco_action_21", date(2022, 6, 1)),
            ev.credential("b", "eco_action_21", date(2022, 6, 1)),
            ev.lapsed("b", "eco_action_21", date(2025, 6, 1)),
        ]
    )

    growth = ledger.value("eco_action_21_growth", FY, CHIYODA)

    assert growth.value == 0.5
    assert growth.on_track is False
    assert growth.note == "1 at the end of FY2025, 2 at the end of FY2022"


def test_eco_action_21_growth_expired_credential_is_not_held(ev):
    early = datetime(2022, 4, 2, tzinfo=JST)
    ledger = ledger_of(
        [
            ev.register("a", at=early),
            ev.register("b", at=early),
            ev.credential("a", "eco_action_21", date(2022, 6, 1), date(2026, 3, 31)),
            ev.credential("b", "eco_action_21", date(2022, 6, 1), date(2026, 3, 30)),
        ]
    )

    growth = values(ledger)["eco_action_21_growth"]

    assert growth == 0.5


def test_eco_action_21_growth_is_none_without_members_three_years_before(ev):
    ledger = ledger_of(
        [ev.register("a"), ev.credential("a", "eco_action_21", date(2025, 6, 1))]
    )

    growth = ledger.value("eco_action_21_growth", FY, CHIYODA)

    assert growth.value is None
    assert growth.on_track is False
    assert "no certified member at the end of FY2022" in (growth.note or "")


def test_simple_ems_declarations_returned_on_31_march_stop_counting(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("b"),
            ev.credential("a", "simple_declaration", date(2025, 5, 1)),
            ev.credential("b", "simple_declaration", date(2025, 5, 1)),
            ev.returned("a", "simple_declaration", date(2026, 3, 31)),
            ev.returned("b", "simple_declaration", date(2026, 4, 1)),
        ]
    )

    fy2025 = ledger.value("simple_ems_declarations", FY, CHIYODA)

    assert fy2025.value == 1
    assert fy2025.evidence == ["kpi-00004"]
    assert values(ledger, 2026)["simple_ems_declarations"] == 0


def test_simple_ems_declarations_renewed_after_return_count_again(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.credential("a", "simple_declaration", date(2024, 5, 1)),
            ev.returned("a", "simple_declaration", date(2024, 9, 1)),
            ev.credential("a", "simple_declaration", date(2025, 5, 1)),
        ]
    )

    counts = [values(ledger, year)["simple_ems_declarations"] for year in (2024, 2025)]

    assert counts == [0, 1]


def test_ghg_change_without_two_years_of_reports_is_none_with_a_note(ev):
    ledger = ledger_of([ev.register("a"), ev.reported("a", 2025, 90, 10)])

    change = ledger.value("ghg_change", FY, CHIYODA)

    assert change.value is None
    assert change.on_track is False
    assert change.note == "no organisation reported in both FY2024 and FY2025"


def test_ghg_change_takes_the_latest_report_of_a_year(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.reported("a", 2024, 100, 10),
            ev.reported("a", 2025, 50, 10),
            ev.reported("a", 2025, 97, 10),  # a resubmission
        ]
    )

    change = values(ledger)["ghg_change"]

    assert change == pytest.approx(-3.0)


# -- the supply-chain window ------------------------------------------------------


@pytest.mark.parametrize(
    ("provided_on", "expected"),
    [
        (date(2023, 9, 1), 1),  # exactly 24 months before: just inside
        (date(2023, 8, 31), 0),  # a day earlier: just outside
        (date(2025, 9, 1), 1),  # the day of issue
        (date(2025, 9, 2), 0),  # after the issue
    ],
)
def test_supply_chain_certifications_window_of_support(ev, provided_on, expected):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.register("buyer", MINATO),
            ev.support("buyer", "a", provided_on),
            ev.credential("a", "iso_14001", date(2025, 9, 1)),
        ]
    )

    count = values(ledger)["supply_chain_certifications"]

    assert count == expected


def test_supply_chain_certifications_window_is_a_constructor_parameter(ev):
    envelopes = [
        ev.register("a"),
        ev.support("buyer", "a", date(2024, 8, 1)),
        ev.credential("a", "local_scheme", date(2025, 9, 1)),
    ]

    wide = values(ledger_of(envelopes))["supply_chain_certifications"]
    narrow = values(ledger_of(envelopes, window_months=12))[
        "supply_chain_certifications"
    ]

    assert (wide, narrow) == (1, 0)


def test_supply_chain_certifications_ignore_simple_declarations(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.support("buyer", "a", date(2025, 4, 10)),
            ev.credential("a", "simple_declaration", date(2025, 6, 1)),
        ]
    )

    count = values(ledger)["supply_chain_certifications"]

    assert count == 0


def test_supply_chain_certifications_green_link_unlinked_before_issue(ev):
    envelopes = [
        ev.register("a"),
        ev.link("buyer", "a", date(2024, 4, 1), green=True),
        ev.credential("a", "eco_action_21", date(2025, 9, 1)),
    ]
    assert values(ledger_of(envelopes))["supply_chain_certifications"] == 1

    ledger = ledger_of([*envelopes, ev.unlink("buyer", "a", date(2025, 8, 31))])

    assert values(ledger)["supply_chain_certifications"] == 0


def test_supply_chain_certifications_plain_link_earns_no_credit(ev):
    ledger = ledger_of(
        [
            ev.register("a"),
            ev.link("buyer", "a", date(2024, 4, 1), green=False),
            ev.credential("a", "eco_action_21", date(2025, 9, 1)),
        ]
    )

    count = values(ledger)["supply_chain_certifications"]

    assert count == 0


def test_credited_buyers_names_each_buyer_behind_a_certification(ev):
    ledger = ledger_of([*scenario(ev), ev.support("z", "b", date(2025, 1, 1))])

    buyers_a = ledger.credited_buyers("a", Scheme.ECO_ACTION_21)
    buyers_b = ledger.credited_buyers("b", Scheme.ISO_14001, date(2025, 10, 1))

    assert buyers_a == ["c"]
    assert buyers_b == ["c", "z"]
    assert ledger.credited_buyers("b", Scheme.LOCAL_SCHEME) == []


def test_months_before_clamps_to_the_end_of_a_shorter_month():
    assert months_before(date(2026, 2, 28), 24) == date(2024, 2, 28)
    assert months_before(date(2024, 2, 29), 12) == date(2023, 2, 28)
    assert months_before(date(2025, 1, 15), 1) == date(2024, 12, 15)


# -- idempotence and order --------------------------------------------------------


def snapshot(ledger: KpiLedger) -> list[dict]:
    wards = (CHIYODA, MINATO, None)
    return [
        v.to_dict()
        for year in (2025, 2026)
        for w in wards
        for v in ledger.report(year, w)
    ]


def test_apply_every_event_twice_changes_nothing(ev):
    envelopes = scenario(ev)
    ledger = ledger_of(envelopes)
    before = snapshot(ledger)

    for envelope in envelopes:
        ledger.apply(envelope)

    assert snapshot(ledger) == before
    assert values(ledger) == EXPECTED_CHIYODA


def test_apply_shuffled_log_converges_for_a_few_seeds(ev):
    envelopes = scenario(ev)
    expected = snapshot(ledger_of(envelopes))

    shuffled = [in_topic_order(envelopes, random.Random(seed)) for seed in range(5)]

    assert all(snapshot(ledger_of(log)) == expected for log in shuffled)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.randoms(use_true_random=False))
def test_apply_any_order_converges(rnd):
    envelopes = scenario(Events())
    expected = snapshot(ledger_of(envelopes))

    shuffled = in_topic_order(envelopes, rnd)

    assert snapshot(ledger_of(shuffled)) == expected


def test_emission_change_is_the_same_float_whatever_the_order(ev):
    # Sums of these amounts differ in the last bits by the order they are added.
    amounts = [0.1, 0.2, 0.3, 1e9, 0.7, 12.345, 1e-3, 3.3, 99.99, 0.15]
    envelopes = []
    for n, amount in enumerate(amounts):
        org = f"org-{n}"
        envelopes += [
            ev.register(org, CHIYODA),
            ev.reported(org, FY - 1, amount, amount),
            ev.reported(org, FY, amount * 0.9 + 0.01, amount),
        ]
    figures = {
        values(ledger_of(random.Random(seed).sample(envelopes, len(envelopes))))[
            "ghg_change"
        ]
        for seed in range(20)
    }
    assert len(figures) == 1
