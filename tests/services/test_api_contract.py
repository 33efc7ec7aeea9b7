"""The API under generated requests: no input earns a 5xx answer.

Schemathesis drives every operation of the OpenAPI document in-process (ASGI,
with the lifespan running, so the publisher talks to the real embedded broker).
The OpenAPI document has no request body schema for the event routes (they read
the raw body), so hypothesis-generated JSON is posted to them separately.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from schemas.events import EVENT_TYPES
from services.api import MAX_BATCH_LINES, Dependencies, create_app
from services.kafka import ensure_topics
from services.producer import Publisher
from services.settings import Settings
from streams.readmodels import Keys

pytestmark = pytest.mark.integration

NOW = "2026-12-04T10:00:00+09:00"
EVENT_ANSWERS = {202, 413, 422}
# Generated examples share one app; the fixture is set up once per test, on purpose.
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# -- the app, built on the real broker and Redis -----------------------------------


@pytest.fixture
def api_app(
    broker: str, redis_url: str, unique_prefix: str, redis_client: Any
) -> FastAPI:
    """The API on its own topics and keys; redis_client deletes the keys after."""
    asyncio.run(ensure_topics(broker, unique_prefix, partitions=1))
    app_settings = Settings(
        kafka_bootstrap=broker,
        redis_url=redis_url,
        topic_prefix=unique_prefix,
        redis_prefix=unique_prefix,
        partitions=1,
    )
    deps = Dependencies(
        Publisher(broker, unique_prefix),
        Redis.from_url(redis_url),
        Keys(unique_prefix),
    )
    return create_app(app_settings, deps)


@pytest.fixture
def api_schema(api_app: FastAPI) -> schemathesis.BaseSchema:
    """The app's OpenAPI document; loading it starts the app's lifespan.

    Schemathesis's pytest plugin ends that lifespan when the test tears down.
    """
    return schemathesis.openapi.from_asgi("/openapi.json", api_app)


@pytest.fixture
def api(api_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(api_app) as client:
        yield client


# -- strategies ---------------------------------------------------------------------

ENVELOPE_FIELDS = ["event_id", "type", "schema_version", "occurred_at", "source"]
# Values a field may plausibly hold, so some generated events get accepted.
PLAUSIBLE = st.sampled_from(
    [
        NOW,
        "2026-04-01",
        "13103",
        "港区",
        "Minato",
        "org-1",
        "org-2",
        "fair-1",
        "match-1",
        "緑化株式会社",
        "led_lighting",
        "matching",
        "iso_14001",
        "active",
        "training",
        "small",
        "5835678256246",
        2026,
        0,
        1.5,
        True,
        [],
        ["led_lighting", "energy_audit"],
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinities too: json.loads accepts them
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def random_objects() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects with any keys, envelope field names among them."""
    keys = st.sampled_from([*ENVELOPE_FIELDS, "payload"]) | st.text(max_size=10)
    return st.dictionaries(keys, PLAUSIBLE | JSON_VALUES, max_size=7)


def payloads(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    fields = sorted(EVENT_TYPES[event_type].payload.model_fields)
    keys = st.sampled_from(fields) | st.text(max_size=10)
    values = PLAUSIBLE | JSON_VALUES
    required = st.fixed_dictionaries({f: values for f in fields})
    return required | st.dictionaries(keys, values, max_size=len(fields) + 2)


def envelopes() -> st.SearchStrategy[dict[str, Any]]:
    """Envelopes of every event type, with random payload values."""

    def of_type(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
        optional = {f: PLAUSIBLE | JSON_VALUES for f in ("schema_version", "source")}
        return st.fixed_dictionaries(
            {
                "type": st.just(event_type),
                "occurred_at": st.just(NOW) | JSON_VALUES,
                "payload": payloads(event_type),
            },
            optional={"event_id": st.uuids().map(str) | JSON_VALUES, **optional},
        )

    return st.sampled_from(sorted(EVENT_TYPES)).flatmap(of_type)


def as_json(body: object) -> bytes:
    """Encode as Python's json does, NaN and Infinity included."""
    return json.dumps(body, ensure_ascii=False).encode()


BATCH_LINES = st.lists(
    envelopes().map(as_json)
    | random_objects().map(as_json)
    | JSON_VALUES.map(as_json)
    | st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b),
    max_size=6,
)

# Bodies that once made the API answer 500.
MALFORMED_BODIES = {
    "type_is_a_list": as_json({"type": [], "payload": {}}),
    "type_is_an_object": as_json({"type": {"a": 1}, "occurred_at": NOW}),
    "nested_too_deep": b"[" * 100_000 + b"]" * 100_000,
    "integer_too_long": b'{"schema_version": ' + b"9" * 5000 + b"}",
}

# -- helpers ------------------------------------------------------------------------


def ndjson(text: str) -> list[dict[str, Any]]:
    """Split on newlines only: str.splitlines also splits on U+2028 and kin."""
    return [json.loads(line) for line in text.split("\n") if line]


def problems_are_named(problems: object) -> bool:
    return (
        isinstance(problems, list)
        and len(problems) > 0
        and all(
            isinstance(p, dict)
            and isinstance(p.get("field"), str)
            and isinstance(p.get("problem"), str)
            for p in problems
        )
    )


def answer_is_sound(status: int, body: dict[str, Any]) -> bool:
    """A 202 carries an event id; a 422 names each problem."""
    if status == 202:
        return body.get("status") in {"accepted", "duplicate"} and "event_id" in body
    if status == 422:
        return problems_are_named(body.get("problems"))
    return status == 413


def line_is_sound(line: dict[str, Any]) -> bool:
    if line.get("status") == "rejected":
        return problems_are_named(line.get("problems"))
    return line.get("status") in {"accepted", "duplicate"} and "event_id" in line


# -- schemathesis over the OpenAPI document ------------------------------------------


def fuzz(operation: schemathesis.APIOperation) -> int:
    """Call one operation with valid and invalid generated requests; count them."""
    calls = 0
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @settings(max_examples=40, deadline=None, database=None)
    @given(case=cases)
    def call(case: schemathesis.Case) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(checks=[not_a_server_error])

    call()
    return calls


def test_api_operations_answer_no_server_error(
    api_schema: schemathesis.BaseSchema,
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    ready = api_schema["/readyz"]["GET"].Case().call()

    calls = {op.label: fuzz(op) for op in operations}

    assert ready.status_code == 200, ready.text  # the lifespan started the publisher
    assert {"POST /v1/events", "GET /v1/members/{org_id}"} <= set(calls)
    assert all(n > 0 for n in calls.values())


# -- generated bodies for the event routes -----------------------------------------


@FUZZ
@given(body=random_objects())
def test_post_event_answers_202_or_named_problems_to_any_object(
    api: TestClient, body: dict[str, Any]
) -> None:
    answer = api.post("/v1/events", content=as_json(body))

    assert answer.status_code in EVENT_ANSWERS
    assert answer_is_sound(answer.status_code, answer.json())


@FUZZ
@given(body=envelopes())
# Regression: a list as the type got 500.
@example(body={"type": [], "occurred_at": NOW, "payload": {}})
def test_post_event_answers_202_or_named_problems_to_any_envelope(
    api: TestClient, body: dict[str, Any]
) -> None:
    answer = api.post("/v1/events", content=as_json(body))

    assert answer.status_code in EVENT_ANSWERS
    assert answer_is_sound(answer.status_code, answer.json())


@FUZZ
@given(lines=BATCH_LINES)
# Regressions: a line of bad UTF-8, or an integer past Python's digit limit, got 500.
@example(lines=[b"\xff"])
@example(lines=[b"9" * 5000])
def test_post_batch_answers_each_line_to_any_lines(
    api: TestClient, lines: list[bytes]
) -> None:
    answer = api.post("/v1/events/batch", content=b"\n".join(lines))

    results = ndjson(answer.text)
    assert answer.status_code == 200
    assert len(results) == sum(1 for line in lines if line.strip())
    assert all(line_is_sound(r) for r in results)


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES)
def test_post_event_refuses_malformed_body_naming_problems(
    api: TestClient, body: bytes
) -> None:
    answer = api.post("/v1/events", content=body)

    assert answer.status_code == 422
    assert problems_are_named(answer.json()["problems"])


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES)
def test_post_batch_rejects_malformed_line_naming_problems(
    api: TestClient, body: bytes
) -> None:
    answer = api.post("/v1/events/batch", content=body)

    (result,) = ndjson(answer.text)
    assert answer.status_code == 200
    assert result["status"] == "rejected"
    assert problems_are_named(result["problems"])


def test_post_batch_refuses_too_many_lines_with_413(api: TestClient) -> None:
    body = b"{}\n" * (MAX_BATCH_LINES + 1)

    answer = api.post("/v1/events/batch", content=body)

    assert answer.status_code == 413
