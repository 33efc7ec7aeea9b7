"""The KPI projection writes the fiscal years that matter, and rewrites the
ones an event changes, into a real Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from redis.asyncio import Redis

from schemas.envelope import Envelope, new_envelope
from schemas.fiscal import fiscal_year
from streams.kpis import KpiProjection
from streams.readmodels import Keys

NOW_FY = fiscal_year(datetime.now(UTC))


def event(event_type: str, at: datetime, **payload: Any) -> Envelope:
    return new_envelope(event_type, payload, source="t", occurred_at=at)


def two_years_ago() -> datetime:
    return datetime.now(UTC) - timedelta(days=730)


async def organisations(redis: Redis, keys: Keys, year: int, ward: str) -> int:
    snapshot = json.loads(await redis.get(keys.kpis(year)))
    (value,) = [v for v in snapshot["wards"][ward] if v["kpi"] == "organisations"]
    return int(value["value"])


def test_fiscal_years_stop_at_next_year_whatever_dates_far_ahead_say() -> None:
    projection = KpiProjection()
    registered = event("OrganisationRegistered", two_years_ago(), org_id="a",
                       name="遠い先", ward="13117")  # fmt: skip
    credential = event("CredentialRecorded", datetime.now(UTC), org_id="a",
                       scheme="eco_action_21", issued_on="2026-04-01",
                       expires_on="2099-12-31")  # fmt: skip

    projection.apply(registered)
    projection.apply(credential)

    years = projection.fiscal_years()
    assert years[0] == fiscal_year(two_years_ago())
    assert years[-1] == NOW_FY + 1


async def test_ward_move_rewrites_the_earlier_years_too(redis, unique_prefix):
    keys, projection = Keys(unique_prefix), KpiProjection()
    projection.apply(event("OrganisationRegistered", two_years_ago(), org_id="a",
                           name="移転", ward="13114"))  # fmt: skip
    await projection.write(redis, keys)
    earlier = fiscal_year(two_years_ago())
    assert await organisations(redis, keys, earlier, "13114") == 1

    projection.apply(event("OrganisationProfileUpdated", datetime.now(UTC),
                           org_id="a", ward="13115"))  # fmt: skip
    await projection.write(redis, keys)

    assert await organisations(redis, keys, earlier, "13114") == 0
    assert await organisations(redis, keys, earlier, "13115") == 1
