"""Published contracts: a JSON Schema per event type and an AsyncAPI document.

Producers written in other languages integrate from these; they are generated
from the same models that validate every message, so they cannot drift.
"""

from __future__ import annotations

from typing import Any

from schemas.envelope import ENVELOPE_MODELS
from schemas.events import EVENT_TYPES
from schemas.topics import Stream, topic_name

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_COMPONENT_REF = "#/components/schemas/{model}"

_STREAM_DESCRIPTIONS = {
    Stream.MEMBERSHIP: "Organisations joining and their EMS credentials; keyed by org_id.",
    Stream.ATTENDANCE: "Events (meetings) scheduled and who attended; keyed by event_code.",
    Stream.SUPPLY_CHAIN: "Supply links between buyers and suppliers, and support given; keyed by buyer_id.",
    Stream.MATCHES: "Suggested matches and each step towards a deal; keyed by match_id.",
    Stream.REPORTS: "Members' environmental reports per fiscal year; keyed by org_id.",
    Stream.DEAD_LETTERS: "Messages that could not be applied, with their reason and original bytes.",
}


def event_json_schema(
    event_type: str, *, ref_template: str = "#/$defs/{model}"
) -> dict[str, Any]:
    """Return the JSON Schema (2020-12) of one event type's full message."""
    model = ENVELOPE_MODELS[event_type]
    schema = model.model_json_schema(mode="validation", ref_template=ref_template)
    spec = EVENT_TYPES[event_type]
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:green-alliance:event:{event_type}:v{spec.version}",
        "title": event_type,
        "description": (
            f"{event_type} v{spec.version} on the '{spec.stream.value}' topic, "
            f"keyed by payload.{spec.key_field}."
        ),
        **{k: v for k, v in schema.items() if k != "title"},
    }


def all_event_json_schemas() -> dict[str, dict[str, Any]]:
    """Return the JSON Schema of every event type, by type name."""
    return {name: event_json_schema(name) for name in EVENT_TYPES}


def asyncapi_document(topic_prefix: str, *, version: str) -> dict[str, Any]:
    """Return an AsyncAPI 2.6 document of the topics and their messages."""
    channels: dict[str, Any] = {}
    for stream in Stream:
        if stream is Stream.DEAD_LETTERS:
            continue
        names = [n for n, s in EVENT_TYPES.items() if s.stream is stream]
        channels[topic_name(topic_prefix, stream)] = {
            "description": _STREAM_DESCRIPTIONS[stream],
            "subscribe": {
                "operationId": f"consume-{stream.value}",
                "message": {
                    "oneOf": [{"$ref": f"#/components/messages/{n}"} for n in names]
                },
            },
            "publish": {
                "operationId": f"produce-{stream.value}",
                "message": {
                    "oneOf": [{"$ref": f"#/components/messages/{n}"} for n in names]
                },
            },
        }
    channels[topic_name(topic_prefix, Stream.DEAD_LETTERS)] = {
        "description": _STREAM_DESCRIPTIONS[Stream.DEAD_LETTERS],
        "subscribe": {
            "operationId": "consume-dead-letters",
            "message": {"$ref": "#/components/messages/DeadLetter"},
        },
    }
    messages, shared = _messages()
    return {
        "asyncapi": "2.6.0",
        "id": "urn:green-alliance:platform",
        "info": {
            "title": "Green Alliance event log",
            "version": version,
            "description": (
                "Every change is one JSON message (UTF-8) in a common envelope. "
                "Applying a message twice changes nothing: the event_id decides."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages, "schemas": shared},
    }


def _messages() -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the messages, and the schemas they share (hoisted from $defs)."""
    messages: dict[str, Any] = {}
    shared: dict[str, Any] = {}
    for name, spec in EVENT_TYPES.items():
        schema = event_json_schema(name, ref_template=_COMPONENT_REF)
        schema.pop("$schema", None)
        shared.update(schema.pop("$defs", {}))
        messages[name] = {
            "name": name,
            "title": name,
            "summary": schema["description"],
            "contentType": "application/json",
            "payload": schema,
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": f"payload.{spec.key_field}",
                    }
                }
            },
        }
    messages["DeadLetter"] = {
        "name": "DeadLetter",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "required": ["reason", "topic", "partition", "offset", "value_b64"],
            "properties": {
                "reason": {"type": "string"},
                "problems": {"type": "array", "items": {"type": "object"}},
                "topic": {"type": "string"},
                "partition": {"type": "integer"},
                "offset": {"type": "integer"},
                "key_b64": {"type": ["string", "null"]},
                "value_b64": {
                    "type": "string",
                    "description": "the original bytes, base64",
                },
                "rejected_at": {"type": "string", "format": "date-time"},
            },
        },
    }
    return messages, shared
