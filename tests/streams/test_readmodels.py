"""Read models in a real Redis: events that arrive out of order by time leave
the state they would leave in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from redis.asyncio import Redis

from schemas.envelope import Envelope, new_envelope
from streams.readmodels import Keys, project_batch, read_credentials, read_profile

T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)
_offsets = count()


def event(event_type: str, days: float, **payload: Any) -> Envelope:
    at = T0 + timedelta(days=days)
    return new_envelope(event_type, payload, source="t", occurred_at=at)


async def apply(redis: Redis, keys: Keys, *envelopes: Envelope) -> None:
    batch = [(env, ("t", 0, next(_offsets))) for env in envelopes]
    await project_batch(redis, keys, batch)


async def profile(redis: Redis, keys: Keys, org_id: str) -> dict[str, Any]:
    return read_profile(await redis.hgetall(keys.member(org_id)))


def registered(days: float, **profile: Any) -> Envelope:
    payload = {"org_id": "a", "name": "旧名", "ward": "13101", **profile}
    return event("OrganisationRegistered", days, **payload)


async def test_profile_update_that_arrives_before_its_registration_is_kept(
    redis, unique_prefix
):
    keys = Keys(unique_prefix)
    update = event("OrganisationProfileUpdated", 2, org_id="a", needs=["solar"])

    await apply(redis, keys, update)
    await apply(redis, keys, registered(0, needs=["hvac"], offers=["led_lighting"]))

    got = await profile(redis, keys, "a")
    assert got["name"] == "旧名"
    assert (got["needs"], got["offers"]) == (["solar"], ["led_lighting"])
    assert await redis.sismember(keys.members, "a")


async def test_profile_in_order_and_out_of_order_alike_in_one_batch(
    redis, unique_prefix
):
    events = [
        registered(0, needs=["hvac"]),
        event("OrganisationProfileUpdated", 1, org_id="a", name="新名"),
        event("OrganisationProfileUpdated", 2, org_id="a", needs=["solar"]),
    ]
    in_order, reversed_ = Keys(f"{unique_prefix}:x"), Keys(f"{unique_prefix}:y")

    await apply(redis, in_order, *events)
    await apply(redis, reversed_, *reversed(events))

    expected = {"name": "新名", "needs": ["solar"]}
    assert (await profile(redis, in_order, "a")).items() >= expected.items()
    assert await profile(redis, reversed_, "a") == await profile(redis, in_order, "a")


async def test_later_registration_overrides_an_earlier_update(redis, unique_prefix):
    keys = Keys(unique_prefix)
    update = event("OrganisationProfileUpdated", 0, org_id="a", needs=["solar"])

    await apply(redis, keys, update, registered(3, needs=["hvac"]))

    assert (await profile(redis, keys, "a"))["needs"] == ["hvac"]


async def test_correction_that_arrives_before_the_attendance_still_takes_it_back(
    redis, unique_prefix
):
    keys = Keys(unique_prefix)
    logged = event("AttendanceLogged", 0, event_code="m1", org_id="a",
                   attended_at=T0)  # fmt: skip
    corrected = event("AttendanceCorrected", 1, event_code="m1", org_id="a",
                      attended=False)  # fmt: skip

    await apply(redis, keys, corrected)
    await apply(redis, keys, logged)

    assert await redis.smembers(keys.attendees("m1")) == set()
    assert await redis.smembers(keys.member_events("a")) == set()


async def test_attendance_logged_again_after_a_correction_counts(redis, unique_prefix):
    keys = Keys(unique_prefix)
    corrected = event("AttendanceCorrected", 1, event_code="m1", org_id="a",
                      attended=False)  # fmt: skip
    again = event("AttendanceLogged", 2, event_code="m1", org_id="a",
                  attended_at=T0 + timedelta(days=2))  # fmt: skip

    await apply(redis, keys, again, corrected)

    assert await redis.smembers(keys.attendees("m1")) == {b"a"}


def credential(days: float, issued_on: str) -> Envelope:
    return event("CredentialRecorded", days, org_id="a", scheme="eco_action_21",
                 issued_on=issued_on)  # fmt: skip


async def credentials(redis: Redis, keys: Keys) -> list[dict[str, Any]]:
    held = read_credentials(await redis.hgetall(keys.credentials("a")))
    return [{k: c[k] for k in ("issued_on", "status")} for c in held]


async def test_lapse_that_arrives_before_its_credential_applies_to_it(
    redis, unique_prefix
):
    keys = Keys(unique_prefix)
    lapse = event("CredentialLapsed", 5, org_id="a", scheme="eco_action_21",
                  lapsed_on="2026-04-01")  # fmt: skip

    await apply(redis, keys, lapse)
    await apply(redis, keys, credential(0, "2025-04-01"))

    got = await credentials(redis, keys)
    assert got == [{"issued_on": "2025-04-01", "status": "lapsed"}]


async def test_renewed_credential_is_active_and_an_older_one_arriving_late_is_not_held(
    redis, unique_prefix
):
    keys = Keys(unique_prefix)
    lapse = event("CredentialLapsed", 5, org_id="a", scheme="eco_action_21",
                  lapsed_on="2026-04-01")  # fmt: skip

    await apply(redis, keys, credential(0, "2025-04-01"), lapse)
    await apply(redis, keys, credential(9, "2026-06-01"), credential(1, "2024-04-01"))

    got = await credentials(redis, keys)
    assert got == [{"issued_on": "2026-06-01", "status": "active"}]


async def test_updates_of_the_same_moment_leave_one_state_in_any_order(
    redis, unique_prefix
):
    at = T0 + timedelta(days=1)
    updates = [
        new_envelope(
            "OrganisationProfileUpdated",
            {"org_id": "a", "ward": ward},
            source="t",
            occurred_at=at,
            event_id=event_id,
        )
        for event_id, ward in (("u-a", "13104"), ("u-z", "13103"))
    ]
    first, second = Keys(f"{unique_prefix}:x"), Keys(f"{unique_prefix}:y")

    await apply(redis, first, registered(0), *updates)
    await apply(redis, second, registered(0), *reversed(updates))

    assert (await profile(redis, first, "a"))["ward"] == "13103"
    assert (await profile(redis, second, "a"))["ward"] == "13103"


async def test_membership_end_and_registration_the_latest_by_time_holds(
    redis, unique_prefix
):
    keys = Keys(unique_prefix)
    ended = event("MembershipEnded", 5, org_id="a", ended_on="2026-06-06")

    await apply(redis, keys, ended, registered(0))
    was_ended = await redis.hget(keys.member("a"), "ended_on")
    await apply(redis, keys, registered(9, name="再入会"))

    assert was_ended == b"2026-06-06"
    assert await redis.hget(keys.member("a"), "ended_on") is None
    registered_at = await redis.hget(keys.member("a"), "registered_at")
    assert registered_at.decode().startswith("2026-06-10")
