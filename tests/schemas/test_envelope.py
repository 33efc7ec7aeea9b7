import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.envelope import InvalidMessage, content_event_id, decode, new_envelope
from schemas.events import EVENT_TYPES, OrganisationRegistered
from schemas.topics import Stream

WHEN = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)


def registration(**payload: object) -> dict[str, object]:
    return {"org_id": "org-1", "name": "緑化株式会社", "ward": "港区", **payload}


def test_envelope_round_trips_through_bytes() -> None:
    env = new_envelope(
        "OrganisationRegistered", registration(), source="t", occurred_at=WHEN
    )

    again = decode(env.to_bytes())

    assert again == env
    assert isinstance(again.payload, OrganisationRegistered)
    assert again.payload.ward == "13103"


def test_envelope_knows_its_stream_and_key() -> None:
    env = new_envelope(
        "SupplierLinked",
        {"buyer_id": "b", "supplier_id": "s", "since": "2024-01-01"},
        source="t",
        occurred_at=WHEN,
    )

    assert (env.stream, env.key) == (Stream.SUPPLY_CHAIN, "b")


def test_decode_names_every_bad_field() -> None:
    raw = (
        b'{"event_id":"e1","type":"CredentialRecorded","occurred_at":"2026-01-01T00:00:00",'
        b'"source":"s","payload":{"org_id":"o","scheme":"iso9001","issued_on":"2026-02-30"}}'
    )

    with pytest.raises(InvalidMessage) as caught:
        decode(raw)

    fields = [p["field"] for p in caught.value.problems]
    assert fields == ["occurred_at", "payload.scheme", "payload.issued_on"]


def test_decode_refuses_unknown_type_listing_known_ones() -> None:
    with pytest.raises(InvalidMessage, match=r"unknown event type 'Nope'.*DealClosed"):
        decode(b'{"type":"Nope"}')


def test_decode_refuses_unknown_payload_field() -> None:
    with pytest.raises(InvalidMessage, match=r"payload\.colour"):
        new_envelope(
            "OrganisationRegistered",
            registration(colour="green"),
            source="t",
            occurred_at=WHEN,
        )


def test_supplier_cannot_be_its_own_buyer() -> None:
    with pytest.raises(InvalidMessage, match="different organisations"):
        new_envelope(
            "SupplierLinked",
            {"buyer_id": "a", "supplier_id": "a", "since": "2024-01-01"},
            source="t",
            occurred_at=WHEN,
        )


def test_every_event_type_has_a_key_field_in_its_payload() -> None:
    for name, spec in EVENT_TYPES.items():
        assert spec.key_field in spec.payload.model_fields, name


@given(st.binary(max_size=200))
def test_decode_of_arbitrary_bytes_raises_only_invalid_message(raw: bytes) -> None:
    try:
        decode(raw)
    except InvalidMessage as err:
        assert err.problems


def test_content_event_id_is_stable_and_distinguishes_rows() -> None:
    assert content_event_id("f", 1, "a") == content_event_id("f", 1, "a")
    assert content_event_id("f", 1, "a") != content_event_id("f", 2, "a")


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b'{"n":' + b"9" * 5000 + b"}",
        b"[" * 50_000 + b"]" * 50_000,
        b'{"type": ["OrganisationRegistered"]}',
        b'{"type": {"a": 1}}',
    ],
    ids=["tombstone", "huge-integer", "deep-nesting", "list-type", "object-type"],
)
def test_decode_of_hostile_messages_raises_only_invalid_message(
    raw: bytes | None,
) -> None:
    with pytest.raises(InvalidMessage):
        decode(raw)


def test_decode_refuses_a_newer_schema_version_than_known() -> None:
    env = new_envelope(
        "OrganisationRegistered", registration(), source="t", occurred_at=WHEN
    )
    newer = env.to_dict() | {"schema_version": 2}

    with pytest.raises(InvalidMessage, match="version 2"):
        decode(json.dumps(newer).encode())


def test_org_id_with_a_colon_is_refused() -> None:
    with pytest.raises(InvalidMessage, match=r"payload\.org_id"):
        new_envelope(
            "OrganisationRegistered",
            registration(org_id="a:events"),
            source="t",
            occurred_at=WHEN,
        )


@pytest.mark.parametrize(
    ("type_", "payload", "occurred_at", "field"),
    [
        ("CredentialRecorded",
         {"org_id": "d1", "scheme": "iso_14001", "issued_on": "2026-04-01",
          "expires_on": "9999-12-31"},
         "2026-05-01T10:00:00+09:00", "payload.expires_on"),
        ("OrganisationRegistered", {"org_id": "d1", "name": "n", "ward": "13101"},
         "9999-12-31T20:00:00+00:00", "occurred_at"),
        ("AttendanceLogged",
         {"event_code": "e1", "org_id": "d1", "attended_at": "0001-01-01T00:00:00+09:00"},
         "2026-05-01T10:00:00+09:00", "payload.attended_at"),
    ],
)  # fmt: skip
def test_far_off_dates_are_refused_naming_the_field(
    type_: str, payload: dict[str, object], occurred_at: str, field: str
) -> None:
    message = {"event_id": "far", "type": type_, "occurred_at": occurred_at,
               "source": "t", "payload": payload}  # fmt: skip

    with pytest.raises(InvalidMessage) as refused:
        decode(json.dumps(message).encode())

    assert [p["field"] for p in refused.value.problems] == [field]
    assert "2199-12-31" in refused.value.problems[0]["problem"]


def test_an_oversized_list_is_refused_before_it_can_reach_the_log() -> None:
    message = {"event_id": "big", "type": "OrganisationRegistered", "source": "t",
               "occurred_at": "2026-05-01T10:00:00+09:00",
               "payload": registration(needs=["led_lighting"] * 300_000)}  # fmt: skip

    with pytest.raises(InvalidMessage) as refused:
        decode(json.dumps(message).encode())

    assert [p["field"] for p in refused.value.problems] == ["payload.needs"]
