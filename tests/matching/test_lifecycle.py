"""Every legal step of a match, and illegal ones refused with their reason."""

from datetime import UTC, datetime, timedelta

import pytest

from matching.lifecycle import IllegalStep, MatchReplay, Stage, replay
from schemas.envelope import Envelope, new_envelope

T0 = datetime(2026, 5, 1, 1, 0, tzinfo=UTC)


def ev(event_type: str, days: float = 0, **payload: object) -> Envelope:
    ev.n = getattr(ev, "n", 0) + 1  # type: ignore[attr-defined]
    return new_envelope(
        event_type,
        {"match_id": "m1", **payload},
        source="t",
        occurred_at=T0 + timedelta(days=days),
        event_id=f"e{ev.n}",  # type: ignore[attr-defined]
    )


def suggested() -> Envelope:
    return ev(
        "MatchSuggested", org_id="a", candidate_id="b", score=0.4, model_version="h1"
    )


def accepted(org: str, days: float = 1) -> Envelope:
    return ev("MatchAccepted", days, org_id=org)


ROAD = [suggested, lambda: accepted("a"), lambda: accepted("b"),
        lambda: ev("MatchIntroduced", 2), lambda: ev("MeetingHeld", 3, held_on="2026-05-04"),
        lambda: ev("DealClosed", 9, closed_on="2026-05-10")]  # fmt: skip
STAGES = [Stage.SUGGESTED, Stage.SUGGESTED, Stage.ACCEPTED, Stage.INTRODUCED,
          Stage.MEETING_HELD, Stage.DEAL_CLOSED]  # fmt: skip


@pytest.mark.parametrize("length", range(1, len(ROAD) + 1))
def test_lifecycle_follows_the_road_to_a_deal(length: int) -> None:
    events = [make() for make in ROAD[:length]]

    match = replay(events)

    assert match.stage is STAGES[length - 1]


@pytest.mark.parametrize(
    ("steps", "stage"),
    [
        (["decline_a"], Stage.DECLINED),
        (["accept_a", "decline_b"], Stage.DECLINED),
        (["expire"], Stage.EXPIRED),
        (["accept_a", "expire"], Stage.EXPIRED),
        (["accept_a", "accept_b", "introduce", "close"], Stage.CLOSED_WITHOUT_DEAL),
        (["accept_a", "accept_b", "introduce", "meet", "close"], Stage.CLOSED_WITHOUT_DEAL),
        (["accept_a", "accept_b", "introduce", "meet", "deal", "withdraw"],
         Stage.CLOSED_WITHOUT_DEAL),
    ],
)  # fmt: skip
def test_lifecycle_leaves_the_road_legally(steps: list[str], stage: Stage) -> None:
    events = [suggested(), *(STEP[s]() for s in steps)]

    match = replay(events)

    assert match.stage is stage


STEP = {
    "accept_a": lambda: accepted("a"),
    "accept_b": lambda: accepted("b"),
    "decline_a": lambda: ev("MatchDeclined", 1, org_id="a"),
    "decline_b": lambda: ev("MatchDeclined", 1, org_id="b"),
    "expire": lambda: ev("MatchExpired", 31),
    "introduce": lambda: ev("MatchIntroduced", 2),
    "meet": lambda: ev("MeetingHeld", 3, held_on="2026-05-04"),
    "deal": lambda: ev("DealClosed", 9, closed_on="2026-05-10"),
    "close": lambda: ev("MatchClosedWithoutDeal", 9),
    "withdraw": lambda: ev("DealWithdrawn", 20),
}


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        (["introduce"], "is suggested: MatchIntroduced needs it to be accepted"),
        (["accept_a", "introduce"], "needs it to be accepted"),
        (["deal"], "is suggested: DealClosed needs it to be meeting_held"),
        (["accept_a", "accept_b", "introduce", "deal"], "is introduced"),
        (["decline_a", "accept_b"], "is declined: no more answers"),
        (["accept_a", "accept_b", "decline_a"], "is accepted: no more answers"),
        (["accept_a", "accept_b", "expire"], "is accepted: it cannot expire"),
        (["withdraw"], "needs it to be deal_closed"),
        (["close"], "is suggested"),
        (
            ["accept_a", "accept_b", "introduce", "meet", "deal", "meet"],
            "is deal_closed",
        ),
    ],
)
def test_lifecycle_refuses_illegal_steps_with_the_reason(
    steps: list[str], reason: str
) -> None:
    events = [suggested(), *(STEP[s]() for s in steps)]

    with pytest.raises(IllegalStep, match=reason):
        replay(events)


def test_lifecycle_refuses_an_answer_from_a_stranger() -> None:
    with pytest.raises(IllegalStep, match="not a side"):
        replay([suggested(), accepted("c")])


def test_lifecycle_refuses_answers_after_30_days_and_early_expiry() -> None:
    with pytest.raises(IllegalStep, match="expired 30 days"):
        replay([suggested(), accepted("a", days=31)])
    with pytest.raises(IllegalStep, match="not 30 days old"):
        replay([suggested(), ev("MatchExpired", 10)])


def test_lifecycle_records_model_version_and_score() -> None:
    match = replay([suggested()])

    assert (match.model_version, match.score) == ("h1", 0.4)


@pytest.mark.parametrize(
    ("held_on", "closed_on", "refused"),
    [
        ("2026-04-30", "2026-05-10", "the meeting on 2026-04-30 is dated before the "
                                     "suggestion on 2026-05-01"),
        ("2026-05-04", "2026-05-03", "the deal on 2026-05-03 is dated before the "
                                     "meeting on 2026-05-04"),
        ("2026-05-01", "2026-05-01", None),  # all on the day of the suggestion
    ],
)  # fmt: skip
def test_meeting_and_deal_cannot_be_dated_before_what_led_to_them(
    held_on: str, closed_on: str, refused: str | None
) -> None:
    events = [suggested(), accepted("a"), accepted("b"), ev("MatchIntroduced", 2),
              ev("MeetingHeld", 3, held_on=held_on),
              ev("DealClosed", 9, closed_on=closed_on)]  # fmt: skip

    if refused is None:
        assert replay(events).stage is Stage.DEAL_CLOSED
    else:
        with pytest.raises(IllegalStep, match=refused):
            replay(events)


def test_match_replay_waits_for_the_suggestion_and_skips_refused_steps():
    live = MatchReplay()
    early = [accepted("a"), ev("DealClosed", 2, match_id="m1", closed_on="2026-05-03")]

    waited = [live.apply(step) for step in early]
    taken = live.apply(suggested())

    assert waited == [[], []]
    assert [env.type for env, _ in taken] == ["MatchSuggested", "MatchAccepted"]
    assert taken[-1][1].accepted_by == {"a"}
    assert live.apply(suggested()) == []  # a second suggestion is refused
