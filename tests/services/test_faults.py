"""Faults with real processes: a killed worker, a dead broker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.demo import wait_until_processed
from services.runtime import Platform
from tests.services.test_platform import platform_settings, registered

pytestmark = pytest.mark.integration

EVENTS = 20_000
BATCH = 1_000


def _batches() -> list[bytes]:
    events = [
        registered(f"f-{i:05d}", f"耐障害{i}株式会社", "13101")
        | {"event_id": f"fault-{i}"}
        for i in range(EVENTS)
    ]
    lines = [json.dumps(e) for e in events]
    return ["\n".join(lines[i : i + BATCH]).encode() for i in range(0, EVENTS, BATCH)]


def test_worker_killed_mid_stream_ends_with_every_event_applied_once(
    broker: str, redis_url: str, unique_prefix: str, tmp_path: Path, redis_client: Any
) -> None:
    platform = Platform(
        platform_settings(
            unique_prefix, tmp_path, kafka_bootstrap=broker, redis_url=redis_url
        )
    )
    platform.start()
    try:
        api = httpx.Client(base_url=platform.api_url, timeout=60)
        worker = next(c for c in platform.children if c.name == "worker")
        for n, body in enumerate(_batches()):
            assert api.post("/v1/events/batch", content=body).status_code == 200
            if n == EVENTS // BATCH // 2 and worker.process is not None:
                os.kill(worker.process.pid, signal.SIGKILL)
                worker.process.wait()
                platform.supervise()  # restarts the worker, as 'alliance up' does

        asyncio.run(wait_until_processed(platform, platform.settings))

        total = api.get("/v1/members").json()["total"]
        applied = redis_client.scard(f"{unique_prefix}:applied:worker")
        sample = api.get("/v1/members/f-19999").json()
    finally:
        platform.stop()
    assert total == EVENTS
    assert applied == EVENTS
    assert sample["name"] == "耐障害19999株式会社"


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
