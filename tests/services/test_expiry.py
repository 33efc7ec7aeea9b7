"""Matches left unanswered for 30 days expire by themselves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.runtime import Platform
from tests.services.test_platform import platform_settings, registered, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def quick_expiry(
    broker: str, redis_url: str, unique_prefix: str, tmp_path: Path, redis_client: Any
) -> Iterator[Platform]:
    settings = platform_settings(
        unique_prefix, tmp_path, kafka_bootstrap=broker, redis_url=redis_url,
        match_expiry_check_s=0.5,
    )  # fmt: skip
    running = Platform(settings)
    running.start()
    yield running
    running.stop()


def _suggested(match_id: str, org_id: str, candidate_id: str, days_ago: int) -> dict:
    at = datetime.now(UTC) - timedelta(days=days_ago)
    return {
        "type": "MatchSuggested",
        "occurred_at": at.isoformat(),
        "source": "test",
        "payload": {"match_id": match_id, "org_id": org_id,
                    "candidate_id": candidate_id, "score": 0.4,
                    "model_version": "heuristic-1"},
    }  # fmt: skip


def test_unanswered_match_expires_after_30_days_and_answered_one_does_not(
    quick_expiry: Platform,
) -> None:
    api = httpx.Client(base_url=quick_expiry.api_url, timeout=10)
    for event in (
        registered("ex-buyer", "期限商店", "13101", needs=["solar"]),
        registered("ex-seller", "期限工業", "13101", offers=["solar"]),
        registered("ex-other", "期限電機", "13102", offers=["solar"]),
        _suggested("old-unanswered", "ex-buyer", "ex-seller", days_ago=40),
        _suggested("old-half", "ex-buyer", "ex-other", days_ago=35),
        _suggested("recent", "ex-seller", "ex-other", days_ago=5),
        {"type": "MatchAccepted", "source": "test",
         "occurred_at": (datetime.now(UTC) - timedelta(days=34)).isoformat(),
         "payload": {"match_id": "old-half", "org_id": "ex-buyer"}},
    ):  # fmt: skip
        assert api.post("/v1/events", json=event).status_code == 202

    def stage(match_id: str) -> str | None:
        answer = api.get(f"/v1/matches/{match_id}")
        return answer.json()["stage"] if answer.status_code == 200 else None

    assert wait_for(lambda: stage("old-unanswered") == "expired", timeout_s=30)
    assert wait_for(lambda: stage("old-half") == "expired", timeout_s=30)
    steps = api.get("/v1/matches/old-unanswered").json()["steps"]
    assert [s["type"] for s in steps] == ["MatchSuggested", "MatchExpired"]
    assert stage("recent") == "suggested"

    late = api.post("/v1/matches/old-unanswered/accept", json={"org_id": "ex-buyer"})
    assert late.status_code == 409

    def funnel() -> dict[str, Any] | None:
        rows = api.get("/v1/matches/funnel", params={"by": "model_version"}).json()
        return rows["rows"][0] if rows["rows"] else None

    row = wait_for(lambda: (r := funnel()) and r["suggested"] == 3 and r)
    assert (row["accepted"], row["deal"]) == (0, 0)
