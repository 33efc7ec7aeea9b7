"""Kafka topics: one per stream, plus the dead-letter topic."""

from __future__ import annotations

from enum import StrEnum


class Stream(StrEnum):
    """The platform's streams; the value is the topic's name after the prefix."""

    MEMBERSHIP = "membership"
    ATTENDANCE = "attendance"
    SUPPLY_CHAIN = "supply-chain"
    MATCHES = "matches"
    REPORTS = "reports"
    DEAD_LETTERS = "dead-letters"


def topic_name(prefix: str, stream: Stream) -> str:
    """Return the full topic name of a stream, e.g. ``alliance.membership``."""
    return f"{prefix}.{stream.value}"


# Streams whose events change the alliance graph.
GRAPH_STREAMS: tuple[Stream, ...] = (
    Stream.MEMBERSHIP,
    Stream.ATTENDANCE,
    Stream.SUPPLY_CHAIN,
    Stream.MATCHES,
)
