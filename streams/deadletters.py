"""Dead letters: a rejected message, byte for byte, with its reason and origin."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True)
class DeadLetter:
    """A message that could not be applied, kept so that nothing is lost."""

    reason: str
    problems: list[dict[str, str]]
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    rejected_at: datetime

    def to_bytes(self) -> bytes:
        record: dict[str, Any] = {
            "reason": self.reason,
            "problems": self.problems,
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key_b64": base64.b64encode(self.key).decode()
            if self.key is not None
            else None,
            "value_b64": base64.b64encode(self.value).decode(),
            "rejected_at": self.rejected_at.isoformat(),
        }
        return json.dumps(record, ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> DeadLetter:
        record = json.loads(raw)
        key = record.get("key_b64")
        return cls(
            reason=record["reason"],
            problems=record.get("problems", []),
            topic=record["topic"],
            partition=record["partition"],
            offset=record["offset"],
            key=base64.b64decode(key) if key is not None else None,
            value=base64.b64decode(record["value_b64"]),
            rejected_at=datetime.fromisoformat(record["rejected_at"]),
        )


def dead_letter(
    reason: str,
    problems: list[dict[str, str]],
    *,
    position: tuple[str, int, int],
    key: bytes | None,
    value: bytes,
) -> DeadLetter:
    """Build the dead letter of a message read at ``position``."""
    topic, partition, offset = position
    return DeadLetter(
        reason, problems, topic, partition, offset, key, value, datetime.now(UTC)
    )
