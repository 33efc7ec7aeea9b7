import json
import re
from datetime import UTC, datetime

import jsonschema
import pytest

from schemas.contracts import (
    all_event_json_schemas,
    asyncapi_document,
    event_json_schema,
)
from schemas.envelope import new_envelope
from schemas.events import EVENT_TYPES


def test_every_event_type_has_a_valid_json_schema() -> None:
    schemas = all_event_json_schemas()

    assert set(schemas) == set(EVENT_TYPES)
    for schema in schemas.values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_json_schema_accepts_a_real_message_and_refuses_a_bad_one() -> None:
    env = new_envelope(
        "SupplierLinked",
        {"buyer_id": "b", "supplier_id": "s", "since": "2024-05-01"},
        source="t",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    validator = jsonschema.Draft202012Validator(event_json_schema("SupplierLinked"))
    bad = env.to_dict() | {"payload": {"buyer_id": "b"}}

    assert list(validator.iter_errors(env.to_dict())) == []
    assert list(validator.iter_errors(bad))


def test_asyncapi_lists_every_topic_and_every_reference_resolves() -> None:
    document = asyncapi_document("alliance", version="0.1.0")
    text = json.dumps(document)

    refs = set(re.findall(r'"#/components/(\w+)/(\w+)"', text))

    assert document["asyncapi"] == "2.6.0"
    assert "alliance.membership" in document["channels"]
    assert "alliance.dead-letters" in document["channels"]
    for section, name in refs:
        assert name in document["components"][section], (section, name)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_asyncapi_message_payloads_are_valid_schemas(name: str) -> None:
    document = asyncapi_document("alliance", version="0.1.0")
    payload = document["components"]["messages"][name]["payload"]
    resolver_root = {"components": document["components"], **payload}

    jsonschema.Draft202012Validator.check_schema(resolver_root)
