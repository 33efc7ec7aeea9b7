"""The large-firm view of its suppliers' EMS adoption."""

from datetime import UTC, date, datetime

from matching.kpi import KpiLedger, supplier_adoption
from schemas.envelope import new_envelope

WHEN = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


def ledger_of(*events: tuple[str, dict[str, object]]) -> KpiLedger:
    ledger = KpiLedger()
    for n, (event_type, payload) in enumerate(events):
        ledger.apply(
            new_envelope(
                event_type, payload, source="t", occurred_at=WHEN, event_id=f"e{n}"
            )
        )
    return ledger


def link(supplier: str, since: str = "2024-04-01") -> tuple[str, dict[str, object]]:
    return "SupplierLinked", {
        "buyer_id": "big",
        "supplier_id": supplier,
        "since": since,
    }


def credential(org: str, scheme: str, issued: str, expires: str | None = None):
    payload = {
        "org_id": org,
        "scheme": scheme,
        "issued_on": issued,
        "expires_on": expires,
    }
    return "CredentialRecorded", payload


def test_supplier_adoption_groups_suppliers_by_best_credential_in_force() -> None:
    ledger = ledger_of(
        link("s1"), link("s2"), link("s3"),
        credential("s1", "simple_declaration", "2025-01-10"),
        credential("s1", "eco_action_21", "2025-05-01"),
        credential("s2", "iso_14001", "2020-01-01", "2023-01-01"),
    )  # fmt: skip

    view = supplier_adoption(ledger, "big", date(2026, 6, 1))

    assert view["suppliers"] == 3
    assert view["by_level"]["eco_action_21"] == ["s1"]
    assert view["without_credential"] == ["s2", "s3"]
    assert view["obtained_by_fiscal_year"] == {2019: 1, 2024: 1, 2025: 1}


def test_supplier_adoption_shows_what_supported_suppliers_obtained_after() -> None:
    ledger = ledger_of(
        link("s1"), link("s2"),
        ("SupportProvided", {"buyer_id": "big", "supplier_id": "s1", "kind": "training",
                             "provided_on": "2025-02-01"}),
        credential("s1", "eco_action_21", "2025-09-01"),
        credential("s2", "iso_14001", "2025-09-01"),
    )  # fmt: skip

    view = supplier_adoption(ledger, "big", date(2026, 6, 1))

    assert view["supported"] == [
        {
            "org_id": "s1",
            "first_support_on": "2025-02-01",
            "obtained_after": ["eco_action_21"],
        }
    ]


def test_supplier_adoption_warns_of_credentials_expiring_within_90_days() -> None:
    ledger = ledger_of(
        link("s1"), link("s2"), link("gone"),
        credential("s1", "iso_14001", "2024-01-01", "2026-08-30"),
        credential("s2", "iso_14001", "2024-01-01", "2026-09-30"),
        ("SupplierUnlinked", {"buyer_id": "big", "supplier_id": "gone", "until": "2025-01-01"}),
    )  # fmt: skip

    view = supplier_adoption(ledger, "big", date(2026, 6, 1))

    assert view["expiring_within_90_days"] == [
        {"org_id": "s1", "scheme": "iso_14001", "expires_on": "2026-08-30"}
    ]
    assert view["suppliers"] == 2
