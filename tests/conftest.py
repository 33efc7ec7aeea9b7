"""Shared fixtures: the real embedded broker and a real Redis, started once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.embedded import EmbeddedBroker, EmbeddedRedis

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start one embedded Kafka-compatible broker for the test session."""
    embedded = EmbeddedBroker(tmp_path_factory.mktemp("broker"))
    embedded.start()
    yield embedded.bootstrap
    embedded.stop()


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Use the machine's Redis (ALLIANCE_TEST_REDIS_URL or localhost:6379), or
    start a redis-server of our own when there is none."""
    url = os.environ.get("ALLIANCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if _reachable(url):
        yield url
        return
    embedded = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    embedded.start()
    yield embedded.url
    embedded.stop()


@pytest.fixture
def unique_prefix() -> str:
    """A topic and key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_client(redis_url: str, unique_prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    for key in client.scan_iter(f"{unique_prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is not here (the unshipped data lives there)")
    return SHARED_DATA
