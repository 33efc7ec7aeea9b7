"""Fixtures of the stream tests: an asyncio client of the real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis


@pytest.fixture
async def redis(redis_url: str, redis_client: Any) -> AsyncIterator[Redis]:
    """An asyncio client; `redis_client` deletes the test's keys afterwards."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()
