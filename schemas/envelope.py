"""The envelope that wraps every message, and its encoding on the wire."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)

from schemas.errors import ContractError
from schemas.events import EVENT_TYPES, Identifier, Payload
from schemas.fiscal import plausible_date
from schemas.topics import Stream

# Namespace of event ids derived from content (imports): the same row gives the
# same id, so a row imported twice is applied once.
IMPORT_NAMESPACE = uuid.UUID("6f3b7c1e-2a4d-4c55-9a0e-8d6f1f3c2b10")


# An event, as written to the log, may be this large: well inside the broker's
# 1 MiB message limit, so that an accepted event can always be published.
MAX_EVENT_BYTES = 256 * 1024


class Envelope(BaseModel):
    """One change, as it travels on a topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Identifier
    type: str
    schema_version: int = Field(1, ge=1)
    occurred_at: AwareDatetime
    source: Annotated[str, Field(min_length=1, max_length=200)]
    payload: Payload

    @field_validator("occurred_at", mode="after")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        return plausible_date(value)

    @property
    def stream(self) -> Stream:
        return EVENT_TYPES[self.type].stream

    @property
    def key(self) -> str:
        return str(getattr(self.payload, EVENT_TYPES[self.type].key_field))

    def precedence(self, rank: int = 0) -> str:
        """Return a text that sorts as the events happened: by time, then rank
        (a correction ranks above what it corrects), then event id.

        Projections keep, per field, the value of the latest event by this
        order, so events that arrive in any order leave the same state; events
        of the same moment and rank are told apart by event id, as the KPIs
        tell them apart. Times are bounded to years 1900..2199, so the
        fixed-width UTC time sorts as text.
        """
        at = self.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        return f"{at}|{rank}|{self.event_id}"

    def to_bytes(self) -> bytes:
        return self.model_dump_json(serialize_as_any=True).encode()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", serialize_as_any=True)


def _typed_envelope(name: str, payload: type[Payload]) -> type[Envelope]:
    tag: Any = Literal[name]  # a literal built at run time, one per event type
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{name}Envelope",
        __base__=Envelope,
        type=(tag, ...),
        payload=(payload, ...),
    )


ENVELOPE_MODELS: dict[str, type[Envelope]] = {
    name: _typed_envelope(name, spec.payload) for name, spec in EVENT_TYPES.items()
}
_ENVELOPES = tuple(ENVELOPE_MODELS.values())
_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(
    Annotated[Union[_ENVELOPES], Field(discriminator="type")]  # type: ignore[valid-type, arg-type]  # noqa: UP007
)

# Upcasters turn an older payload into the current version, keyed by (type,
# version they read); none are needed while every type is at version 1.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _upcast(data: dict[str, Any]) -> dict[str, Any]:
    event_type = data.get("type")
    version = data.get("schema_version", 1)
    if not isinstance(event_type, str):
        return data
    while isinstance(version, int) and (event_type, version) in UPCASTERS:
        data = {**data, "payload": UPCASTERS[(event_type, version)](data["payload"])}
        version += 1
        data["schema_version"] = version
    return data


def describe_errors(err: ValidationError) -> list[dict[str, str]]:
    """Turn pydantic errors into {field, problem} pairs a person can read."""
    problems = []
    for e in err.errors(include_url=False):
        loc = [str(p) for p in e["loc"]]
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]  # the discriminator's tag adds nothing for a reader
        problems.append({"field": ".".join(loc) or "(message)", "problem": e["msg"]})
    return problems


class InvalidMessage(ContractError):
    """A message does not satisfy its contract; ``problems`` says where."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        first = problems[0]["field"] if problems else None
        super().__init__(summary, field=first)
        self.problems = problems


def parse_envelope(data: Any) -> Envelope:
    """Validate a decoded message (a dict) against its contract.

    Raises:
        InvalidMessage: naming each bad field.
    """
    if not isinstance(data, dict):
        raise InvalidMessage(
            [{"field": "(message)", "problem": "must be a JSON object"}]
        )
    event_type = data.get("type")
    if not isinstance(event_type, str) or event_type not in EVENT_TYPES:
        known = ", ".join(sorted(EVENT_TYPES))
        raise InvalidMessage(
            [
                {
                    "field": "type",
                    "problem": f"unknown event type {event_type!r}; known: {known}",
                }
            ]
        )
    version = data.get("schema_version", 1)
    current = EVENT_TYPES[event_type].version
    if isinstance(version, int) and version > current:
        problem = (
            f"version {version} of {event_type} is not known; the newest is {current}"
        )
        raise InvalidMessage([{"field": "schema_version", "problem": problem}])
    try:
        envelope: Envelope = _ADAPTER.validate_python(_upcast(data))
    except ValidationError as err:
        raise InvalidMessage(describe_errors(err)) from err
    except RecursionError as err:
        problem = "nested too deep to validate"
        raise InvalidMessage([{"field": "(message)", "problem": problem}]) from err
    size = len(envelope.to_bytes())
    if size > MAX_EVENT_BYTES:
        problem = f"the event is {size:,} bytes; at most {MAX_EVENT_BYTES:,} are taken"
        raise InvalidMessage([{"field": "(message)", "problem": problem}])
    return envelope


def decode(raw: bytes | None) -> Envelope:
    """Decode a message's bytes (UTF-8 JSON) and validate it.

    Whatever the bytes, the only error raised is :class:`InvalidMessage`.
    """
    if raw is None:
        raise InvalidMessage([{"field": "(message)", "problem": "empty (a tombstone)"}])
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        problem = f"not UTF-8: {err}"
        raise InvalidMessage([{"field": "(message)", "problem": problem}]) from err
    except json.JSONDecodeError as err:
        problem = f"not JSON: {err.msg} at line {err.lineno}"
        raise InvalidMessage([{"field": "(message)", "problem": problem}]) from err
    except (ValueError, RecursionError) as err:
        # An integer past Python's digit limit, or nesting too deep to parse.
        problem = f"not acceptable JSON: {type(err).__name__}: {str(err)[:200]}"
        raise InvalidMessage([{"field": "(message)", "problem": problem}]) from err
    return parse_envelope(data)


def new_envelope(
    event_type: str,
    payload: dict[str, Any],
    *,
    source: str,
    occurred_at: datetime,
    event_id: str | None = None,
) -> Envelope:
    """Build and validate an envelope; a missing event id gets a fresh UUID."""
    return parse_envelope(
        {
            "event_id": event_id or str(uuid.uuid4()),
            "type": event_type,
            "schema_version": EVENT_TYPES[event_type].version
            if event_type in EVENT_TYPES
            else 1,
            "occurred_at": occurred_at,
            "source": source,
            "payload": payload,
        }
    )


def content_event_id(source: str, *parts: object) -> str:
    """Return a stable event id for imported content (same input, same id)."""
    return str(uuid.uuid5(IMPORT_NAMESPACE, "\x1f".join([source, *map(str, parts)])))
