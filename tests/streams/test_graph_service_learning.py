"""The graph service learns ranking weights once enough matches have finished."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from matching.learning import MIN_OUTCOMES
from matching.ranking import MODEL_VERSION, WEIGHTS
from schemas.envelope import new_envelope
from streams.graph_service import GraphService
from streams.readmodels import Keys

T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


class Log:
    def __init__(self, service: GraphService) -> None:
        self.service = service
        self.offset = 0

    def say(self, event_type: str, days: float = 0, **payload: Any) -> None:
        env = new_envelope(event_type, payload, source="t",
                           occurred_at=T0 + timedelta(days=days))  # fmt: skip
        self.service._apply(f"t.{env.stream.value}", 0, self.offset, env.to_bytes())
        self.offset += 1


def _finished_matches(log: Log, n: int) -> None:
    """Deals come to candidates nearby; far ones are declined."""
    rng = random.Random(4)
    for i in range(n):
        ward = rng.random()
        deal = rng.random() < 0.1 + 0.8 * ward
        mid = f"m{i}"
        reasons = [{"kind": "fit", "contribution": 0.3, "value": 1.0},
                   {"kind": "ward", "contribution": round(0.09 * ward, 4),
                    "value": round(ward, 4)}]  # fmt: skip
        log.say("MatchSuggested", match_id=mid, org_id="a", candidate_id=f"c{i}",
                score=0.4, model_version=MODEL_VERSION, reasons=reasons)  # fmt: skip
        if not deal:
            log.say("MatchDeclined", 1, match_id=mid, org_id=f"c{i}")
            continue
        log.say("MatchAccepted", 1, match_id=mid, org_id="a")
        log.say("MatchAccepted", 2, match_id=mid, org_id=f"c{i}")
        log.say("MatchIntroduced", 3, match_id=mid)
        log.say("MeetingHeld", 5, match_id=mid, held_on="2026-06-06")
        log.say("DealClosed", 9, match_id=mid, closed_on="2026-06-10")


def _service() -> GraphService:
    redis: Any = None  # the learning step needs no Redis
    return GraphService(bootstrap="unused:9092", redis=redis, keys=Keys("t"),
                        topic_prefix="t")  # fmt: skip


def test_heuristic_weights_until_enough_matches_have_finished() -> None:
    service = _service()
    _finished_matches(Log(service), MIN_OUTCOMES - 1)

    service._relearn()

    assert (service.model_version, service.weights) == (MODEL_VERSION, WEIGHTS)


def test_enough_finished_matches_give_a_learnt_model_and_refresh_everyone() -> None:
    service = _service()
    log = Log(service)
    log.say("OrganisationRegistered", org_id="a", name="緑商店", ward="13101")
    _finished_matches(log, 400)
    service._everyone = False

    service._relearn()

    assert service.model_version == "learnt-400"
    assert service.weights["ward"] > WEIGHTS["ward"]
    assert service._everyone  # every member is refreshed with the new weights
    service._everyone = False
    service._relearn()  # nothing new finished: no new model, no refresh
    assert service.model_version == "learnt-400" and not service._everyone
