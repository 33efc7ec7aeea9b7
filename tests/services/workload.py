"""A mixed stream of events for the fault tests, and the state it must leave.

The stream touches every projected topic with updates whose order matters per
key (profile changes, links then unlinks, attendance then its correction), so
an event applied twice, skipped, or applied out of its key's order shows up in
the final state. The expected state is computed directly from the input: each
event projected once, in the order it was sent, into a fresh key prefix with
no broker in between.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import redis
from redis.asyncio import Redis

from matching.kpi import KpiLedger
from schemas.capabilities import Capability
from schemas.ems import Scheme
from schemas.envelope import Envelope, decode
from schemas.wards import WARDS
from streams.readmodels import Keys, project

NOW = "2026-12-04T10:00:00+09:00"
BATCH = 1_000
# Keys that say how far a consumer got, not what the events say.
_BOOKKEEPING = (
    ":applied:",
    ":progress:",
    ":idempotency:",
    ":status:",
    ":match-recorded:",
    ":match-lock:",
)
# Keys the graph service writes (computed from the whole log, with a clock).
_DERIVED = (
    ":suggestions:",
    ":kpis:",
    ":kpi-evidence:",
    ":firm-adoption:",
    ":funnel",
    ":match-deadlines",
)


def mixed_stream(orgs: int, events: int, seed: int = 6) -> list[dict[str, Any]]:
    """Return ``events`` valid events about ``orgs`` members, registrations first."""
    rng = random.Random(seed)
    capabilities = list(Capability)
    wards = sorted(WARDS)
    ids = [f"w{i:04d}" for i in range(orgs)]
    out: list[dict[str, Any]] = [
        _event("OrganisationRegistered", {
            "org_id": org, "name": f"試験{i}株式会社", "ward": rng.choice(wards),
            "offers": rng.sample(capabilities, 1), "needs": rng.sample(capabilities, 1),
        }) for i, org in enumerate(ids)
    ]  # fmt: skip
    codes = [f"fair-{i:02d}" for i in range(20)]
    out += [
        _event("EventScheduled", {"event_code": code, "title": f"環境交流会{code}",
                                  "kind": "matching", "ward": rng.choice(wards),
                                  "starts_at": NOW})
        for code in codes
    ]  # fmt: skip
    linked: set[tuple[str, str]] = set()
    while len(out) < events:
        out.append(_random_event(rng, ids, codes, capabilities, linked))
    for n, event in enumerate(out):
        event["event_id"] = f"mix-{seed}-{n:06d}"
    return out


def _random_event(
    rng: random.Random,
    ids: list[str],
    codes: list[str],
    capabilities: list[Capability],
    linked: set[tuple[str, str]],
) -> dict[str, Any]:
    org = rng.choice(ids)
    roll = rng.random()
    if roll < 0.25:
        return _event("OrganisationProfileUpdated", {
            "org_id": org, "needs": rng.sample(capabilities, rng.randint(0, 3)),
            "size": rng.choice(["small", "medium", "large"]),
        })  # fmt: skip
    if roll < 0.45:
        supplier = rng.choice([i for i in rng.sample(ids, 2) if i != org])
        since = date(2020, 4, 1) + timedelta(days=rng.randrange(2000))
        linked.add((org, supplier))
        return _event("SupplierLinked", {"buyer_id": org, "supplier_id": supplier,
                                         "since": since.isoformat()})  # fmt: skip
    if roll < 0.52 and linked:
        buyer, supplier = linked.pop()
        return _event("SupplierUnlinked", {"buyer_id": buyer, "supplier_id": supplier,
                                           "until": "2026-03-31"})  # fmt: skip
    if roll < 0.75:
        return _event("AttendanceLogged", {"event_code": rng.choice(codes),
                                           "org_id": org, "attended_at": NOW})  # fmt: skip
    if roll < 0.82:
        return _event("AttendanceCorrected", {"event_code": rng.choice(codes),
                                              "org_id": org,
                                              "attended": rng.random() < 0.5})  # fmt: skip
    if roll < 0.92:
        issued = date(2022, 4, 1) + timedelta(days=rng.randrange(1500))
        return _event("CredentialRecorded", {"org_id": org,
                                             "scheme": rng.choice(list(Scheme)),
                                             "issued_on": issued.isoformat()})  # fmt: skip
    return _event("EnvironmentReported", {
        "org_id": org, "fiscal_year": rng.choice([2023, 2024, 2025]),
        "co2_t": round(rng.uniform(0, 500), 1), "waste_t": round(rng.uniform(0, 50), 1),
        "electricity_kwh": rng.randrange(100_000),
    })  # fmt: skip


def _event(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "occurred_at": NOW, "source": "fault-test",
            "payload": payload}  # fmt: skip


def batches(events: list[dict[str, Any]]) -> Iterator[bytes]:
    """Yield the events as NDJSON bodies of the batch route."""
    for start in range(0, len(events), BATCH):
        yield "\n".join(json.dumps(e) for e in events[start : start + BATCH]).encode()


def envelopes(events: list[dict[str, Any]]) -> list[Envelope]:
    return [decode(json.dumps(e).encode()) for e in events]


async def expected_read_models(
    redis_url: str, prefix: str, events: list[dict[str, Any]]
) -> None:
    """Project every event once, in the order sent, under ``prefix``."""
    client = Redis.from_url(redis_url)
    keys = Keys(prefix)
    try:
        for n, env in enumerate(envelopes(events)):
            assert await project(client, keys, env, position=("direct", 0, n))
    finally:
        await client.aclose()


def read_models(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every read model under ``prefix``, with the prefix taken off the keys."""
    state: dict[str, Any] = {}
    for raw in client.scan_iter(f"{prefix}:*", count=1000):
        key = raw.decode()
        if any(part in key for part in (*_BOOKKEEPING, *_DERIVED)):
            continue
        state[key.removeprefix(prefix)] = _value(client, raw)
    return state


def _value(client: redis.Redis, key: bytes) -> Any:
    kind = client.type(key).decode()
    if kind == "string":
        return client.get(key)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "set":
        return client.smembers(key)
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    if kind == "list":
        return client.lrange(key, 0, -1)
    raise AssertionError(f"unexpected Redis type {kind} at {key!r}")


def expected_kpis(events: list[dict[str, Any]], fiscal_year: int) -> dict[str, Any]:
    """Every ward's KPIs (and the alliance's) of a fiscal year, computed from
    the events directly."""
    ledger = KpiLedger()
    for env in envelopes(events):
        ledger.apply(env)
    return {
        ward or "all": {v.kpi: v.value for v in ledger.report(fiscal_year, ward)}
        for ward in [None, *WARDS]
    }


def served_kpis(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The same shape, from the API's KPI snapshot."""
    return {
        ward: {v["kpi"]: v["value"] for v in values}
        for ward, values in snapshot["wards"].items()
    }
