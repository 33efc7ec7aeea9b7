"""Fixtures of the services tests: a whole platform as processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.runtime import Platform
from tests.services.test_platform import platform_settings


@pytest.fixture
def platform(
    broker: str, redis_url: str, unique_prefix: str, tmp_path: Path, redis_client: Any
) -> Iterator[Platform]:
    settings = platform_settings(
        unique_prefix, tmp_path, kafka_bootstrap=broker, redis_url=redis_url
    )
    running = Platform(settings)
    running.start()
    yield running
    running.stop()
