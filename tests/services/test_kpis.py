"""KPIs from event to API answer, through the real broker, worker and graph service."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import httpx
import pytest

from services.demo import wait_until_processed
from services.runtime import Platform

pytestmark = pytest.mark.integration


def post(api: httpx.Client, event_type: str, payload: dict[str, Any], at: str) -> None:
    body = {"type": event_type, "occurred_at": at, "payload": payload}
    answer = api.post("/v1/events", json=body)
    assert answer.status_code == 202, answer.text


def kpi(snapshot: dict[str, Any], ward: str, name: str) -> dict[str, Any]:
    return next(v for v in snapshot["wards"][ward] if v["kpi"] == name)


def test_kpis_count_cross_ward_deals_boundaries_and_cancellations(
    platform: Platform,
) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    day = "2026-06-01T10:00:00+09:00"
    for org, ward in (("k-a", "13101"), ("k-b", "13123")):
        post(
            api,
            "OrganisationRegistered",
            {"org_id": org, "name": f"{org} 株式会社", "ward": ward},
            day,
        )
    post(api, "MatchSuggested", {"match_id": "km-1", "org_id": "k-a", "candidate_id": "k-b",
                                 "score": 0.5, "model_version": "t"}, day)  # fmt: skip
    for step, payload in (("MatchAccepted", {"org_id": "k-a"}),
                          ("MatchAccepted", {"org_id": "k-b"}),
                          ("MatchIntroduced", {}),
                          ("MeetingHeld", {"held_on": "2026-06-01"})):  # fmt: skip
        post(api, step, {"match_id": "km-1", **payload}, day)
    # 23:59 on 31 March 2027 in Tokyo, sent in UTC: still FY2026.
    post(api, "DealClosed", {"match_id": "km-1", "closed_on": "2027-03-31"},
         "2027-03-31T14:59:00Z")  # fmt: skip
    for code, starts_at in (("k-fair", "2027-03-31T14:59:00Z"), ("k-next", "2027-03-31T15:00:00Z"),
                            ("k-off", "2026-07-01T10:00:00+09:00")):  # fmt: skip
        post(api, "EventScheduled", {"event_code": code, "title": code, "kind": "matching",
                                     "ward": "13101", "starts_at": starts_at}, day)  # fmt: skip
        post(api, "AttendanceLogged", {"event_code": code, "org_id": "k-a",
                                       "attended_at": starts_at}, day)  # fmt: skip
    post(api, "EventCancelled", {"event_code": "k-off"}, day)
    post(api, "SupplierLinked", {"buyer_id": "k-a", "supplier_id": "k-b",
                                 "since": "2026-04-01"}, day)  # fmt: skip
    post(api, "CredentialRecorded", {"org_id": "k-b", "scheme": "eco_action_21",
                                     "issued_on": "2026-05-01"}, day)  # fmt: skip

    asyncio.run(wait_until_processed(platform, platform.settings))

    snapshot = api.get("/v1/kpis", params={"fiscal_year": 2026}).json()
    evidence = api.get(
        "/v1/kpis/events_held/evidence",
        params={"fiscal_year": 2026, "ward": "千代田区"},
    ).json()
    exported = api.get("/v1/kpis.csv", params={"fiscal_year": 2026})
    adoption = api.get("/v1/firms/k-a/suppliers/ems-adoption").json()
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))

    assert kpi(snapshot, "13101", "matches_concluded")["value"] == 1
    assert kpi(snapshot, "13123", "matches_concluded")["value"] == 1
    assert kpi(snapshot, "13101", "events_held")["value"] == 1
    assert kpi(snapshot, "13101", "organisations")["value"] == 1
    assert evidence["count"] >= 1
    assert exported.content.startswith(b"\xef\xbb\xbf")
    assert adoption["by_level"]["eco_action_21"] == ["k-b"]
    assert any(r["ward_name_ja"] == "江戸川区" and r["kpi"] == "matches_concluded"
               and r["value"] == "1" for r in rows)  # fmt: skip


def test_kpis_attribute_certifications_and_count_declarations_reports_and_growth(
    platform: Platform,
) -> None:
    api = httpx.Client(base_url=platform.api_url, timeout=10)
    early = "2023-04-02T10:00:00+09:00"
    day = "2026-06-01T10:00:00+09:00"
    for org, ward in (("k-big", "13101"), ("k-s", "13105"), ("k-t", "13105"),
                      ("k-u", "13105"), ("k-v", "13105")):  # fmt: skip
        post(
            api,
            "OrganisationRegistered",
            {"org_id": org, "name": f"{org} 商事", "ward": ward},
            early,
        )
    for supplier, support_on in (("k-s", "2025-06-01"), ("k-t", "2023-01-01")):
        post(api, "SupplierLinked", {"buyer_id": "k-big", "supplier_id": supplier,
                                     "since": "2022-04-01"}, early)  # fmt: skip
        post(api, "SupportProvided", {"buyer_id": "k-big", "supplier_id": supplier,
                                      "kind": "training", "provided_on": support_on}, early)  # fmt: skip
    credentials = (("k-s", "eco_action_21", "2026-05-01"), ("k-t", "iso_14001", "2026-05-01"),
                   ("k-u", "eco_action_21", "2023-05-01"), ("k-v", "eco_action_21", "2026-05-01"),
                   ("k-s", "simple_declaration", "2026-04-10"),
                   ("k-t", "simple_declaration", "2026-04-10"))  # fmt: skip
    for org, scheme, issued_on in credentials:
        post(
            api,
            "CredentialRecorded",
            {"org_id": org, "scheme": scheme, "issued_on": issued_on},
            day,
        )
    post(api, "CredentialLapsed", {"org_id": "k-s", "scheme": "eco_action_21",
                                   "lapsed_on": "2026-09-01"}, day)  # fmt: skip
    post(api, "CredentialReturned", {"org_id": "k-t", "scheme": "simple_declaration",
                                     "returned_on": "2026-10-01"}, day)  # fmt: skip
    for year, co2 in ((2025, 100.0), (2026, 90.0)):
        post(api, "EnvironmentReported", {"org_id": "k-s", "fiscal_year": year, "co2_t": co2,
                                          "waste_t": 10, "electricity_kwh": 5000}, day)  # fmt: skip

    asyncio.run(wait_until_processed(platform, platform.settings))

    snapshot = api.get("/v1/kpis", params={"fiscal_year": 2026, "ward": "13105"}).json()
    certified = kpi(snapshot, "13105", "supply_chain_certifications")
    evidence = api.get("/v1/kpis/supply_chain_certifications/evidence",
                       params={"fiscal_year": 2026, "ward": "13105"}).json()  # fmt: skip
    assert certified["value"] == 1
    assert evidence["count"] >= 1
    assert kpi(snapshot, "13105", "simple_ems_declarations")["value"] == 1
    assert kpi(snapshot, "13105", "ghg_change")["value"] == -10
    assert kpi(snapshot, "13105", "ghg_change")["on_track"] is True
    assert kpi(snapshot, "13105", "waste_change")["value"] == 0
    assert kpi(snapshot, "13105", "eco_action_21_growth")["value"] == 2
