"""Faults with real processes: a killed worker, a dead broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.demo import wait_until_processed
from services.runtime import Platform
from tests.services.test_platform import platform_settings, registered
from tests.services.workload import (
    BATCH,
    batches,
    expected_kpis,
    expected_read_models,
    mixed_stream,
    read_models,
    served_kpis,
)

pytestmark = pytest.mark.integration

EVENTS = 20_000
ORGS = 600
FISCAL_YEARS = (2025, 2026)


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return mixed_stream(ORGS, EVENTS)


def _run_with_fault(
    platform: Platform, stream: list[dict[str, Any]], fault: Callable[[int], None]
) -> httpx.Client:
    """Post the stream in batches, calling ``fault(batch number)`` between them,
    then wait until every message has been processed."""
    api = httpx.Client(base_url=platform.api_url, timeout=60)
    for n, body in enumerate(batches(stream)):
        answer = api.post("/v1/events/batch", content=body)
        assert answer.status_code == 200, answer.text
        statuses = {json.loads(line)["status"] for line in answer.text.splitlines()}
        assert statuses == {"accepted"}, answer.text[:500]
        fault(n)
    asyncio.run(wait_until_processed(platform, platform.settings))
    return api


def _assert_state_is_what_the_events_say(
    platform: Platform,
    api: httpx.Client,
    stream: list[dict[str, Any]],
    redis_client: Any,
    redis_url: str,
) -> None:
    prefix = platform.settings.redis_prefix
    direct = f"{prefix}-direct"
    asyncio.run(expected_read_models(redis_url, direct, stream))
    try:
        expected = read_models(redis_client, direct)
    finally:
        for key in redis_client.scan_iter(f"{direct}:*", count=1000):
            redis_client.delete(key)
    assert redis_client.scard(f"{prefix}:applied:worker") == len(stream)
    actual = read_models(redis_client, prefix)
    assert actual.keys() == expected.keys()
    wrong = [k for k in expected if actual[k] != expected[k]]
    assert not wrong, f"{len(wrong)} read models differ, e.g. {wrong[:3]}"
    for year in FISCAL_YEARS:
        served = api.get("/v1/kpis", params={"fiscal_year": year}).json()
        got, want = served_kpis(served), expected_kpis(stream, year)
        differ = {
            (ward, kpi): (got[ward].get(kpi), value)
            for ward, values in want.items()
            for kpi, value in values.items()
            if got.get(ward, {}).get(kpi) != value
        }
        assert not differ, f"FY{year} KPIs (served, expected) differ: {differ}"


def test_worker_killed_mid_stream_ends_with_every_event_applied_once(
    platform: Platform, stream: list[dict[str, Any]], redis_client: Any, redis_url: str
) -> None:
    def kill_worker_and_graph(batch: int) -> None:
        if batch != EVENTS // BATCH // 2:
            return
        for child in platform.children:
            if child.name in ("worker", "graph") and child.process is not None:
                os.kill(child.process.pid, signal.SIGKILL)
                child.process.wait()
        platform.supervise()  # restarts them, as 'alliance up' does

    api = _run_with_fault(platform, stream, kill_worker_and_graph)
    _assert_state_is_what_the_events_say(platform, api, stream, redis_client, redis_url)


def test_second_worker_joining_mid_stream_changes_nothing(
    platform: Platform, stream: list[dict[str, Any]], redis_client: Any, redis_url: str
) -> None:
    applied = f"{platform.settings.redis_prefix}:applied:worker"

    def add_worker(batch: int) -> None:
        if batch != EVENTS // BATCH // 2:
            return
        deadline = time.monotonic() + 60
        while redis_client.scard(applied) < EVENTS // 4 < EVENTS:
            assert time.monotonic() < deadline, "the first worker applies nothing"
            time.sleep(0.1)
        platform.add_worker()  # the group rebalances while events flow

    api = _run_with_fault(platform, stream, add_worker)
    workers = [c for c in platform.children if c.name.startswith("worker")]
    assert len(workers) == 2 and not any(w.exited() for w in workers)
    _assert_state_is_what_the_events_say(platform, api, stream, redis_client, redis_url)
    logs = [w.log_path.read_text("utf-8", errors="replace") for w in workers]
    # the second worker took a share of the partitions, the first gave it up
    assert "now projects" in logs[1] and "now projects nothing" not in logs[1]
    assert logs[0].count("now projects") >= 2


def test_dead_broker_gets_503_with_retry_after_quickly(
    redis_url: str, unique_prefix: str, tmp_path: Path, redis_client: Any
) -> None:
    settings = platform_settings(unique_prefix, tmp_path, redis_url=redis_url)
    first = Platform(settings.model_copy(update={"request_timeout_s": 2.0}))
    first.start()
    try:
        api = httpx.Client(base_url=first.api_url, timeout=20)
        assert first.broker is not None and first.broker.process is not None
        first.broker.process.kill()
        first.broker.process.wait()

        started = time.monotonic()
        answer = api.post(
            "/v1/events", json=registered("down-1", "停止中株式会社", "13101")
        )
        waited = time.monotonic() - started
    finally:
        first.stop()
    assert answer.status_code == 503
    assert answer.headers["Retry-After"]
    assert waited < 15
