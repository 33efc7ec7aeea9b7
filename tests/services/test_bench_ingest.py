"""The ingest benchmark, run small over the real broker and Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from services.cli_bench import bench

pytestmark = pytest.mark.integration

EVENTS = 2000


def test_bench_ingest_prints_every_figure_with_each_event_applied_once(
    broker: str, redis_url: str, unique_prefix: str, tmp_path: Path, redis_client: Any
) -> None:
    args = [
        "ingest",
        "--events", str(EVENTS),
        "--freshness-seconds", "4",
        "--bootstrap", broker,
        "--redis-url", redis_url,
        "--prefix", unique_prefix,
        "--data-dir", str(tmp_path),
        "--json",
    ]  # fmt: skip

    result = CliRunner().invoke(bench, args, catch_exceptions=False)

    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    live, raw, replay = figures["live"], figures["raw"], figures["replay"]
    assert live["events"] == EVENTS
    assert live["applied_by_worker"] == EVENTS + live["warm_up_events"]
    sent = EVENTS + live["warm_up_events"] + figures["freshness"]["events"]
    assert raw["messages"] == sent
    assert replay["applied"] == sent
    for rate in (raw["events_per_s"], live["events_per_s"], replay["events_per_s"]):
        assert rate > 0
    assert live["ratio_to_raw"] > 0 and replay["ratio_to_raw"] > 0
    assert replay["peak_rss_mib"] > 0
    fresh = figures["freshness"]["all"]
    assert fresh["probes"] > 0 and fresh["p50_s"] > 0 and fresh["p99_s"] > 0
    assert not list(redis_client.scan_iter(f"{unique_prefix}:*", count=1000))
