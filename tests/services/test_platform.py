"""The whole platform as processes: API -> broker -> worker/graph -> Redis -> API."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas.fiscal import as_japan_time
from services.runtime import Platform
from services.settings import Settings

pytestmark = pytest.mark.integration

NOW = "2026-12-04T10:00:00+09:00"


def wait_for(check: Callable[[], Any], *, timeout_s: float = 60.0) -> Any:
    """Poll until ``check`` returns something truthy; fail after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout_s} s")


def platform_settings(prefix: str, data_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        topic_prefix=prefix,
        redis_prefix=prefix,
        api_port=0,
        data_dir=data_dir,
        partitions=3,
        **overrides,
    )


def registered(org_id: str, name: str, ward: str, **profile: Any) -> dict[str, Any]:
    return {
        "type": "OrganisationRegistered",
        "occurred_at": NOW,
        "source": "test",
        "payload": {"org_id": org_id, "name": name, "ward": ward, **profile},
    }


def suggestions_of(api: httpx.Client, org_id: str) -> list[dict[str, Any]]:
    answer = api.get(f"/v1/members/{org_id}/suggestions", params={"limit": 10})
    if answer.status_code != 200 or answer.json()["status"] != "ready":
        return []
    return list(answer.json()["suggestions"])


def test_posted_event_reaches_read_model_and_changes_suggestions(
    platform: Platform,
) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    for event in (
        registered("buyer-1", "青空商店", "13101", needs=["led_lighting"]),
        registered("seller-1", "光電工業", "13102", offers=["led_lighting"]),
        registered("seller-2", "遠方照明", "13123", offers=["led_lighting"]),
    ):
        assert api.post("/v1/events", json=event).status_code == 202

    member = wait_for(lambda: api.get("/v1/members/buyer-1").status_code == 200)
    first = wait_for(
        lambda: (
            len(suggestions_of(api, "buyer-1")) == 2 and suggestions_of(api, "buyer-1")
        )
    )
    assert wait_for(lambda: api.get("/readyz").json()["suggestions"] == "current")
    # each reason records its feature's value, which weights are learnt from
    assert all(0 <= r["value"] <= 1 for s in first for r in s["reasons"])
    schedule = {
        "type": "EventScheduled", "occurred_at": NOW, "source": "test",
        "payload": {"event_code": "fair-1", "title": "江戸川 matching fair",
                    "kind": "matching", "starts_at": NOW},
    }  # fmt: skip
    api.post("/v1/events", json=schedule)
    for org in ("buyer-1", "seller-2"):
        attended = {
            "type": "AttendanceLogged", "occurred_at": NOW, "source": "test",
            "payload": {"event_code": "fair-1", "org_id": org, "attended_at": NOW},
        }  # fmt: skip
        assert api.post("/v1/events", json=attended).status_code == 202

    def far_seller_has_shared_event() -> dict[str, Any] | None:
        for s in suggestions_of(api, "buyer-1"):
            kinds = {r["kind"] for r in s["reasons"]}
            if s["candidate_id"] == "seller-2" and "shared_events" in kinds:
                return s
        return None

    changed = wait_for(far_seller_has_shared_event)
    attended = wait_for(
        lambda: api.get("/v1/members/buyer-1").json()["events_attended"]
    )
    assert member
    assert [s["candidate_id"] for s in first] == ["seller-1", "seller-2"]
    assert any("江戸川 matching fair" in r["text_en"] for r in changed["reasons"])
    assert attended == ["fair-1"]


def test_invalid_event_is_refused_naming_the_field(platform: Platform) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    bad = registered("x-1", "Bad ward firm", "Osaka")

    answer = api.post("/v1/events", json=bad)

    assert answer.status_code == 422
    assert [p["field"] for p in answer.json()["problems"]] == ["payload.ward"]


def test_same_event_id_twice_is_accepted_once(platform: Platform) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    event = registered("dup-1", "二重登録株式会社", "13104") | {
        "event_id": "fixed-id-1"
    }

    first = api.post("/v1/events", json=event)
    second = api.post("/v1/events", json=event)

    assert (first.status_code, first.json()["status"]) == (202, "accepted")
    assert (second.status_code, second.json()["status"]) == (202, "duplicate")
    assert second.json()["event_id"] == first.json()["event_id"] == "fixed-id-1"


def test_batch_answers_line_by_line(platform: Platform) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    good = registered("batch-1", "一括商事", "13105")
    body = "\n".join(
        [json.dumps(good), "{not json", json.dumps(registered("b2", "", "13105"))]
    )

    answer = api.post("/v1/events/batch", content=body.encode())

    lines = [json.loads(line) for line in answer.text.splitlines()]
    assert [(r["line"], r["status"]) for r in lines] == [
        (1, "accepted"), (2, "rejected"), (3, "rejected"),
    ]  # fmt: skip
    assert lines[2]["problems"][0]["field"] == "payload.name"


async def test_invalid_message_on_topic_goes_to_dead_letters_while_others_apply(
    platform: Platform,
) -> None:
    prefix = platform.settings.topic_prefix
    good = registered("dl-good", "正常株式会社", "13106") | {"event_id": "dl-good-1"}
    producer = AIOKafkaProducer(bootstrap_servers=platform.bootstrap)
    await producer.start()
    for value in (b"\xff\xfe not json", json.dumps(good).encode()):
        await producer.send_and_wait(f"{prefix}.membership", value, key=b"dl-good")
    await producer.stop()

    api = httpx.Client(base_url=platform.api_url, timeout=10)
    wait_for(lambda: api.get("/v1/members/dl-good").status_code == 200)
    consumer = AIOKafkaConsumer(
        f"{prefix}.dead-letters", bootstrap_servers=platform.bootstrap,
        auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    record = await consumer.getone()
    await consumer.stop()

    letter = json.loads(record.value)
    assert letter["topic"] == f"{prefix}.membership"
    assert "not UTF-8" in letter["reason"]
    assert base64.b64decode(letter["value_b64"]) == b"\xff\xfe not json"


def test_accepted_event_survives_restart_of_embedded_broker(
    redis_url: str, unique_prefix: str, tmp_path: Path, redis_client: Any
) -> None:
    first = Platform(platform_settings(unique_prefix, tmp_path, redis_url=redis_url))
    first.start()
    try:
        api = httpx.Client(base_url=first.api_url, timeout=10)
        event = registered("keep-1", "永続株式会社", "13107")
        assert api.post("/v1/events", json=event).status_code == 202
    finally:
        first.stop()
    fresh_keys = f"{unique_prefix}:after"
    second = Platform(
        platform_settings(unique_prefix, tmp_path, redis_url=redis_url).model_copy(
            update={"redis_prefix": fresh_keys}
        )
    )
    second.start()
    try:
        api = httpx.Client(base_url=second.api_url, timeout=10)

        member = wait_for(lambda: api.get("/v1/members/keep-1").status_code == 200)

        assert member
        assert api.get("/v1/members/keep-1").json()["name"] == "永続株式会社"
    finally:
        second.stop()


async def test_dead_letter_on_wrong_topic_is_listed_and_replayed_once(
    platform: Platform,
) -> None:
    from services.client import AllianceClient
    from services.deadletters import read_dead_letters, replayable

    prefix = platform.settings.topic_prefix
    misplaced = registered("lost-1", "迷子株式会社", "13108") | {
        "event_id": "lost-1-id"
    }
    producer = AIOKafkaProducer(bootstrap_servers=platform.bootstrap)
    await producer.start()
    await producer.send_and_wait(
        f"{prefix}.attendance", json.dumps(misplaced).encode(), key=b"x"
    )
    await producer.stop()

    async def letters() -> list[Any]:
        return await read_dead_letters(platform.bootstrap, prefix)

    deadline = time.monotonic() + 60
    while not (found := await letters()) and time.monotonic() < deadline:
        time.sleep(0.3)
    fixed, still_bad = replayable(found)
    client = AllianceClient(platform.api_url)
    first = [a["status"] for batch in client.post_all(fixed) for a in batch]
    second = [a["status"] for batch in client.post_all(fixed) for a in batch]
    api = httpx.Client(base_url=platform.api_url, timeout=10)

    assert "belongs on the membership topic" in found[0].letter.reason
    assert (first, second, still_bad) == (["accepted"], ["duplicate"], [])
    assert wait_for(lambda: api.get("/v1/members/lost-1").status_code == 200)


def test_corrections_change_the_read_model(platform: Platform) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)

    def post(event_type: str, payload: dict[str, Any]) -> None:
        body = {"type": event_type, "occurred_at": NOW, "payload": payload}
        assert api.post("/v1/events", json=body).status_code == 202

    post(
        "OrganisationRegistered",
        {"org_id": "c-buyer", "name": "訂正商事", "ward": "13110"},
    )
    post(
        "OrganisationRegistered",
        {"org_id": "c-seller", "name": "訂正工業", "ward": "13110"},
    )
    post("CredentialRecorded", {"org_id": "c-seller", "scheme": "eco_action_21",
                                "issued_on": "2024-04-01"})  # fmt: skip
    post("SupplierLinked", {"buyer_id": "c-buyer", "supplier_id": "c-seller",
                            "since": "2024-04-01"})  # fmt: skip
    post("AttendanceLogged", {"event_code": "c-fair", "org_id": "c-seller",
                              "attended_at": NOW})  # fmt: skip
    post("OrganisationProfileUpdated", {"org_id": "c-seller", "needs": ["solar"]})
    post("CredentialLapsed", {"org_id": "c-seller", "scheme": "eco_action_21",
                              "lapsed_on": "2026-04-01"})  # fmt: skip
    post("AttendanceCorrected", {"event_code": "c-fair", "org_id": "c-seller",
                                 "attended": False})  # fmt: skip
    post("SupplierUnlinked", {"buyer_id": "c-buyer", "supplier_id": "c-seller",
                              "until": "2026-03-31"})  # fmt: skip
    post("EnvironmentReported", {"org_id": "c-seller", "fiscal_year": 2025, "co2_t": 12.5,
                                 "waste_t": 3, "electricity_kwh": 40000})  # fmt: skip

    def settled() -> dict[str, Any] | None:
        member = api.get("/v1/members/c-seller").json()
        credentials = [c["status"] for c in member.get("credentials", [])]
        done = member.get("reports") and credentials == ["lapsed"]
        return (
            member
            if done and member["needs"] and not member["events_attended"]
            else None
        )

    member = wait_for(settled)
    assert member["name"] == "訂正工業"
    assert member["needs"] == ["solar"]
    assert [c["status"] for c in member["credentials"]] == ["lapsed"]
    assert member["events_attended"] == []
    assert wait_for(lambda: api.get("/v1/members/c-buyer").json()["suppliers"] == [])
    assert member["reports"][0]["co2_t"] == 12.5


async def test_flushed_read_models_are_rebuilt_identically_by_replay(
    platform: Platform, redis_client: Any
) -> None:
    from redis.asyncio import Redis

    from services.replay import replay_read_models
    from streams.readmodels import Keys

    api = httpx.Client(base_url=platform.api_url, timeout=10)
    events = [registered(f"r-{i}", f"再構築{i}株式会社", "13113") for i in range(20)]
    lines = "\n".join(json.dumps(e) for e in events).encode()
    assert api.post("/v1/events/batch", content=lines).status_code == 200
    wait_for(lambda: api.get("/v1/members").json()["total"] == 20)
    before = {f"r-{i}": api.get(f"/v1/members/r-{i}").json() for i in range(20)}
    prefix = platform.settings.redis_prefix
    for key in redis_client.scan_iter(f"{prefix}:*", count=1000):
        redis_client.delete(key)
    assert api.get("/v1/members").json()["total"] == 0

    redis = Redis.from_url(platform.redis_url)
    applied, skipped = await replay_read_models(
        platform.bootstrap, redis, Keys(prefix), platform.settings.topic_prefix
    )
    again, _ = await replay_read_models(
        platform.bootstrap, redis, Keys(prefix), platform.settings.topic_prefix
    )
    await redis.aclose()

    after = {f"r-{i}": api.get(f"/v1/members/r-{i}").json() for i in range(20)}
    assert (applied, skipped, again) == (20, 0, 0)
    assert after == before


def test_update_posted_before_its_registration_is_not_lost(platform: Platform) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    update = {
        "type": "OrganisationProfileUpdated", "occurred_at": NOW, "source": "test",
        "payload": {"org_id": "late-reg", "needs": ["solar"]},
    }  # fmt: skip
    earlier = registered("late-reg", "遅延登録", "13105", needs=["hvac"])
    earlier["occurred_at"] = "2026-12-01T10:00:00+09:00"
    seller = registered("solar-seller", "太陽光設備", "13105", offers=["solar"])

    for event in (update, earlier, seller):
        assert api.post("/v1/events", json=event).status_code == 202

    member = wait_for(
        lambda: (r := api.get("/v1/members/late-reg")).status_code == 200 and r.json()
    )
    assert (member["name"], member["needs"]) == ("遅延登録", ["solar"])
    firsts = wait_for(lambda: suggestions_of(api, "late-reg"))
    assert firsts[0]["candidate_id"] == "solar-seller"


def test_corporate_number_merges_the_member_known_by_name(platform: Platform) -> None:
    from schemas.identity import org_identity

    api = httpx.Client(base_url=platform.api_url, timeout=10)
    alias = org_identity("株式会社あおば", "13116", None)
    for event in (
        registered(alias, "株式会社あおば", "13116"),
        {"type": "AttendanceLogged", "occurred_at": NOW,
         "payload": {"event_code": "m-fair", "org_id": alias, "attended_at": NOW}},
    ):  # fmt: skip
        assert api.post("/v1/events", json=event).status_code == 202
    wait_for(lambda: api.get(f"/v1/members/{alias}").json().get("events_attended"))

    numbered = registered(
        "5070001000715", "あおば(株)", "13116", corporate_number="5070001000715"
    )
    assert api.post("/v1/events", json=numbered).status_code == 202

    member = wait_for(lambda: api.get("/v1/members/5070001000715").json().get("name"))
    assert member
    merged = api.get("/v1/members/5070001000715").json()
    assert merged["events_attended"] == ["m-fair"]
    assert api.get(f"/v1/members/{alias}").json()["merged_into"] == "5070001000715"
    ids = [m["org_id"] for m in api.get("/v1/members").json()["members"]]
    assert ids == ["5070001000715"]
    gone = api.get(f"/v1/members/{alias}/suggestions")
    assert gone.status_code == 410
    assert "5070001000715" in gone.json()["detail"]


def test_match_moves_from_suggestion_to_deal_and_refuses_illegal_steps(
    platform: Platform,
) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    for event in (
        registered("mb-1", "買手商店", "13101", needs=["solar"]),
        registered("ms-1", "太陽工業", "13101", offers=["solar"]),
    ):
        assert api.post("/v1/events", json=event).status_code == 202
    wait_for(lambda: suggestions_of(api, "mb-1"))

    opened = api.post("/v1/members/mb-1/suggestions/ms-1/accept").json()
    match_id = opened["match_id"]
    wait_for(lambda: api.get(f"/v1/matches/{match_id}").status_code == 200)
    today = as_japan_time(datetime.now(UTC)).date()  # the suggestion's day
    met_on, closed_on = str(today + timedelta(days=1)), str(today + timedelta(days=6))
    too_early = api.post(f"/v1/matches/{match_id}/deal", json={"closed_on": closed_on})

    def step(name: str, body: dict[str, Any], stage: str) -> None:
        assert api.post(f"/v1/matches/{match_id}/{name}", json=body).status_code == 202
        wait_for(lambda: api.get(f"/v1/matches/{match_id}").json()["stage"] == stage)

    step("accept", {"org_id": "ms-1"}, "accepted")
    step("introduce", {}, "introduced")
    step("meeting", {"held_on": met_on}, "meeting_held")
    step("deal", {"closed_on": closed_on, "amount_jpy": 1200000}, "deal_closed")
    match = api.get(f"/v1/matches/{match_id}").json()

    def funnel_counts_the_deal() -> dict[str, Any] | None:
        rows = api.get("/v1/matches/funnel", params={"by": "ward"}).json()["rows"]
        return rows[0] if rows and rows[0]["deal"] == 1 else None

    funnel = wait_for(funnel_counts_the_deal)

    assert opened["stage"] == "suggested"
    assert too_early.status_code == 409
    assert "needs it to be meeting_held" in too_early.json()["detail"]
    assert match["model_version"] and match["score"] > 0
    assert [s["type"] for s in match["steps"]][:2] == [
        "MatchSuggested",
        "MatchAccepted",
    ]
    assert (funnel["ward"], funnel["suggested"], funnel["accepted"]) == ("13101", 1, 1)


def test_awkward_requests_get_clear_answers_not_errors(platform: Platform) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    good = registered("aw-1", "厄介商事", "13101") | {"event_id": "aw-reg-1"}
    other = registered("aw-2", "厄介工業", "13101") | {"event_id": "aw-reg-2"}
    body = "\n".join(json.dumps(e) for e in (good, other, good)).encode()

    started = time.monotonic()
    answer = api.post("/v1/events/batch", content=body)

    assert time.monotonic() - started < 5
    statuses = [json.loads(line)["status"] for line in answer.text.splitlines()]
    assert statuses == ["accepted", "accepted", "duplicate"]
    # ids in paths are checked like ids in events: no other kind of key is reached
    for path in ("/v1/members/aw-1:credentials", "/v1/members/aw-1:events/suggestions",
                 "/v1/matches/x:y", "/v1/firms/a%20b/suppliers/ems-adoption"):  # fmt: skip
        assert api.get(path).status_code == 422, path
    for early in (
        {"type": "OrganisationProfileUpdated", "occurred_at": NOW, "source": "t",
         "payload": {"org_id": "aw-early", "needs": ["solar"]}},
        {"type": "MembershipEnded", "occurred_at": NOW, "source": "t",
         "payload": {"org_id": "aw-ghost", "ended_on": "2026-06-01"}},
    ):  # fmt: skip
        assert api.post("/v1/events", json=early).status_code == 202
    assert wait_for(lambda: api.get("/v1/members/aw-2").status_code == 200)
    assert api.get("/v1/members/aw-early").status_code == 404
    ghost = wait_for(lambda: "not registered" in api.get("/v1/members/aw-ghost").text)
    assert ghost


def test_match_steps_posted_at_once_are_recorded_once(platform: Platform) -> None:
    from concurrent.futures import ThreadPoolExecutor

    api = httpx.Client(base_url=platform.api_url, timeout=20)
    for event in (
        registered("rc-b", "競合商店", "13101", needs=["solar"]),
        registered("rc-s", "競合工業", "13101", offers=["solar"]),
    ):
        assert api.post("/v1/events", json=event).status_code == 202
    wait_for(lambda: suggestions_of(api, "rc-b"))

    def post(path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        with httpx.Client(base_url=platform.api_url, timeout=20) as client:
            return client.post(path, json=body)

    with ThreadPoolExecutor(4) as pool:  # a double (or quadruple) click
        opened = list(pool.map(post, ["/v1/members/rc-b/suggestions/rc-s/accept"] * 4))
        match_id = opened[0].json()["match_id"]
        assert {o.status_code for o in opened} == {202}
        post(f"/v1/matches/{match_id}/accept", {"org_id": "rc-s"})
        introduced = list(pool.map(post, [f"/v1/matches/{match_id}/introduce"] * 4))
    assert {i.status_code for i in introduced} == {202}

    match = api.get(f"/v1/matches/{match_id}").json()
    assert match["stage"] == "introduced"
    assert [s["type"] for s in match["steps"]] == [
        "MatchSuggested", "MatchAccepted", "MatchAccepted", "MatchIntroduced"
    ]  # fmt: skip
    # a step posted as a plain event is checked like the routes' steps
    orphan = {"type": "DealClosed", "occurred_at": NOW, "source": "t",
              "payload": {"match_id": "no-such-match", "closed_on": "2026-06-01"}}  # fmt: skip
    assert api.post("/v1/events", json=orphan).status_code == 409
