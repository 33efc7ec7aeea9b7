"""Publishing accepted events: the journal first, then Kafka with acks=all."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.envelope import Envelope, InvalidMessage, decode
from schemas.topics import topic_name
from services.errors import BrokerUnavailable

logger = logging.getLogger(__name__)


class Journal:
    """An append-only file of accepted events, one JSON message a line.

    In the embedded mode the broker keeps topics in memory only; the journal is
    what makes an accepted event survive a restart. A line is written and synced
    to disk before the API answers, and the journal is replayed into the broker
    when the platform starts.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")

    def append(self, envelopes: Sequence[Envelope]) -> None:
        """Write the events and sync them to disk."""
        self._file.write(b"".join(e.to_bytes() + b"\n" for e in envelopes))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def read(path: Path) -> Iterator[Envelope]:
        """Yield the journal's events in order; a torn last line is skipped."""
        if not path.exists():
            return
        with path.open("rb") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    yield decode(line.rstrip(b"\n"))
                except InvalidMessage as err:
                    logger.warning("journal %s line %d skipped: %s", path, number, err)


class Publisher:
    """Send events to their topics, keyed by entity, waiting for the broker's ack."""

    def __init__(
        self,
        bootstrap: str,
        topic_prefix: str,
        *,
        journal: Journal | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._prefix = topic_prefix
        self._journal = journal
        self._timeout_s = timeout_s
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Connect to the broker (aiokafka needs a running event loop for this)."""
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            linger_ms=2,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            await self._producer.start()
        except KafkaError as err:
            raise BrokerUnavailable(f"the broker is not reachable: {err}") from err

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
        if self._journal is not None:
            self._journal.close()

    async def connected(self) -> bool:
        """Return whether the broker answers a metadata request right now."""
        if self._producer is None:
            return False
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
        except (KafkaError, TimeoutError, OSError):
            return False
        return True

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Make the events durable: journal (if any), then every broker ack.

        The whole call, waiting for other callers included, takes at most the
        publisher's timeout, so a dead broker gives quick refusals, not a queue.

        Raises:
            BrokerUnavailable: when the broker did not acknowledge in time. If the
                events were journaled they reach the broker at the next start; a
                client that retries with the same event ids changes nothing.
        """
        if not envelopes:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                async with self._lock:  # journal order is send order
                    if self._journal is not None:
                        self._journal.append(envelopes)
                    acks = await self._enqueue(envelopes)
                await asyncio.gather(*acks)
        except (KafkaError, TimeoutError) as err:
            raise BrokerUnavailable(f"the broker did not acknowledge: {err!r}") from err

    async def send_only(self, envelopes: Sequence[Envelope]) -> None:
        """Send events without journaling them (journal replay at start)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                await asyncio.gather(*await self._enqueue(envelopes))
        except (KafkaError, TimeoutError) as err:
            raise BrokerUnavailable(f"the broker did not acknowledge: {err!r}") from err

    async def _enqueue(
        self, envelopes: Sequence[Envelope]
    ) -> list[asyncio.Future[Any]]:
        """Hand the events to the producer in order; return their acks to await."""
        if self._producer is None:
            raise BrokerUnavailable("the publisher was not started")
        return [
            await self._producer.send(
                topic_name(self._prefix, e.stream), e.to_bytes(), key=e.key.encode()
            )
            for e in envelopes
        ]
