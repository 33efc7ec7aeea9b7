"""The funnel counts a scripted scenario right."""

from datetime import UTC, datetime, timedelta

import pytest

from matching.funnel import Funnel
from schemas.envelope import new_envelope

T0 = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)


class Script:
    def __init__(self) -> None:
        self.funnel = Funnel()
        self.n = 0

    def say(self, event_type: str, days: float = 0, **payload: object) -> None:
        self.n += 1
        env = new_envelope(event_type, payload, source="t",
                           occurred_at=T0 + timedelta(days=days), event_id=f"e{self.n}")  # fmt: skip
        self.funnel.apply(env)
        self.funnel.apply(env)  # a repeat changes nothing

    def member(self, org: str, ward: str, offers: list[str]) -> None:
        self.say(
            "OrganisationRegistered", org_id=org, name=org, ward=ward, offers=offers
        )

    def match(self, mid: str, org: str, cand: str, version: str = "h1") -> None:
        reasons = [
            {"kind": "fit", "contribution": 0.3},
            {"kind": "ward", "contribution": 0.1},
        ]
        self.say("MatchSuggested", match_id=mid, org_id=org, candidate_id=cand, score=0.4,
                 model_version=version, reasons=reasons)  # fmt: skip

    def to_deal(self, mid: str, org: str, cand: str, deal_day: float) -> None:
        self.say("MatchAccepted", 1, match_id=mid, org_id=org)
        self.say("MatchAccepted", 2, match_id=mid, org_id=cand)
        self.say("MatchIntroduced", 3, match_id=mid)
        self.say("MeetingHeld", 5, match_id=mid, held_on="2026-05-06")
        self.say("DealClosed", deal_day, match_id=mid, closed_on="2026-05-20")


@pytest.fixture
def script() -> Script:
    s = Script()
    s.member("a", "13101", [])
    s.member("b", "13101", ["solar"])
    s.member("c", "13123", ["hvac"])
    s.match("m1", "a", "b")
    s.to_deal("m1", "a", "b", deal_day=10)
    s.match("m2", "a", "c")
    s.say("MatchDeclined", 1, match_id="m2", org_id="c")
    s.match("m3", "c", "b", version="h2")
    s.say("MatchAccepted", 1, match_id="m3", org_id="c")
    s.say("MatchAccepted", 1, match_id="m3", org_id="b")
    s.match("m4", "a", "b")
    s.to_deal("m4", "a", "b", deal_day=20)
    s.say("DealWithdrawn", 25, match_id="m4")
    return s


def test_funnel_counts_each_stage_once_per_match(script: Script) -> None:
    (row,) = script.funnel.report("fiscal_year")

    assert (row["suggested"], row["accepted"], row["meeting"], row["deal"]) == (
        4,
        3,
        2,
        2,
    )
    assert row["acceptance_rate"] == 0.75
    assert row["median_days_to_deal"] == 15.0


def test_funnel_groups_by_ward_category_and_model_version(script: Script) -> None:
    by_ward = {r["ward"]: r["suggested"] for r in script.funnel.report("ward")}
    by_category = {r["category"]: r["deal"] for r in script.funnel.report("category")}
    by_version = {
        r["model_version"]: r["accepted"] for r in script.funnel.report("model_version")
    }

    assert by_ward == {"13101": 3, "13123": 1}
    assert by_category == {"hvac": 0, "solar": 2}
    assert by_version == {"h1": 2, "h2": 1}


def test_funnel_counts_steps_that_arrive_before_their_suggestion() -> None:
    s = Script()
    s.say("MatchAccepted", 1, match_id="late", org_id="x")
    s.say("MatchAccepted", 1, match_id="late", org_id="y")

    s.match("late", "x", "y")

    (row,) = s.funnel.report("reason_kind")[:1]
    assert row["accepted"] == 1


def test_funnel_keeps_a_match_suggested_again_under_a_new_event_id() -> None:
    s = Script()
    s.match("m1", "a", "b")
    s.to_deal("m1", "a", "b", deal_day=10)

    s.match("m1", "a", "b")

    (row,) = s.funnel.report("fiscal_year")
    assert (row["suggested"], row["deal"]) == (1, 1)


def test_funnel_refuses_an_unknown_dimension() -> None:
    with pytest.raises(ValueError, match="group by one of"):
        Funnel().report("colour")


def test_only_matches_waiting_for_answers_have_an_expiry_deadline() -> None:
    s = Script()
    s.match("waiting", "a", "b")
    s.match("half", "a", "c")
    s.say("MatchAccepted", 2, match_id="half", org_id="a")
    s.match("declined", "b", "c")
    s.say("MatchDeclined", 1, match_id="declined", org_id="c")
    s.match("both", "c", "a")
    s.say("MatchAccepted", 1, match_id="both", org_id="c")
    s.say("MatchAccepted", 1, match_id="both", org_id="a")

    assert s.funnel.awaiting_answers() == {
        "waiting": T0 + timedelta(days=30),
        "half": T0 + timedelta(days=30),
    }


def test_finished_matches_are_outcomes_with_the_features_they_were_scored_by() -> None:
    s = Script()
    s.match("deal", "a", "b", version="heuristic-1")  # fit 0.3, ward 0.1
    s.to_deal("deal", "a", "b", deal_day=10)
    s.say("MatchSuggested", match_id="valued", org_id="b", candidate_id="c",
          score=0.5, model_version="learnt-300",
          reasons=[{"kind": "ward", "contribution": 0.2, "value": 0.5}])  # fmt: skip
    s.say("MatchDeclined", 1, match_id="valued", org_id="c")
    s.say("MatchSuggested", match_id="unknown", org_id="c", candidate_id="a",
          score=0.5, model_version="other", reasons=[{"kind": "ward",
          "contribution": 0.2}])  # fmt: skip
    s.say("MatchDeclined", 1, match_id="unknown", org_id="c")
    s.match("open", "c", "b")

    found = s.funnel.outcomes()

    assert [(o.deal, dict(o.features)) for o in found] == [
        (True, {"fit": 0.3 / 0.35, "ward": 0.1 / 0.10}),
        (False, {"ward": 0.5}),
    ]
