"""Publishing accepted events: the journal first, then Kafka with acks=all."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

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

        Raises:
            BrokerUnavailable: when the broker did not acknowledge in time. The
                events stay in the journal and reach the broker at the next start;
                a client that retries with the same event ids changes nothing.
        """
        if not envelopes:
            return
        async with self._lock:  # keeps journal order equal to send order
            if self._journal is not None:
                self._journal.append(envelopes)
            await self._send(envelopes)

    async def send_only(self, envelopes: Sequence[Envelope]) -> None:
        """Send events without journaling them (journal replay at start)."""
        await self._send(envelopes)

    async def _send(self, envelopes: Sequence[Envelope]) -> None:
        if self._producer is None:
            raise BrokerUnavailable("the publisher was not started")
        try:
            futures = [
                await self._producer.send(
                    topic_name(self._prefix, e.stream), e.to_bytes(), key=e.key.encode()
                )
                for e in envelopes
            ]
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self._timeout_s)
        except (KafkaError, TimeoutError) as err:
            raise BrokerUnavailable(f"the broker did not acknowledge: {err!r}") from err
