"""Tests of the Toronto awarded-contracts importer."""

from __future__ import annotations

import pytest

from schemas.capabilities import Capability
from services.importers import MemberRef, import_supply_links
from services.importers.common import ImporterError
from services.importers.toronto import infer_category

HEADER = (
    "_id,unique_id,Document Number,RFx (Solicitation) Type,High Level Category,"
    "Successful Supplier,Awarded Amount,Award Date,Division,"
    "Solicitation Document Description"
)


def award(
    n: int, supplier: str, date: str, division: str, description: str = ""
) -> str:
    cells = [str(n), f"u{n}", f"Doc{n}", "RFQ", "Goods and Services", supplier]
    cells += ["0", date, division, description]
    return ",".join(f'"{c}"' for c in cells)


def toronto_text(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


def links(result):
    return [e.payload for e in result.envelopes]


def test_import_supply_links_counts_real_awards(toronto_path, real_members):
    result = import_supply_links(toronto_path, real_members)

    assert len(result.envelopes) == 692
    assert len(result.rejected) == 22
    assert result.duplicates == 21
    assert all(link.buyer_id != link.supplier_id for link in links(result))


def test_import_supply_links_maps_real_file_deterministically(
    toronto_path, real_members
):
    first = import_supply_links(toronto_path, real_members, seed=2026)
    again = import_supply_links(toronto_path, list(reversed(real_members)), seed=2026)
    other = import_supply_links(toronto_path, real_members, seed=7)

    assert [e.to_dict() for e in first.envelopes] == [
        e.to_dict() for e in again.envelopes
    ]
    pairs = {(p.buyer_id, p.supplier_id) for p in links(first)}
    assert pairs != {(p.buyer_id, p.supplier_id) for p in links(other)}


def test_import_supply_links_keeps_buyers_and_suppliers_apart(
    toronto_path, real_members
):
    result = import_supply_links(toronto_path, real_members)

    buyers = {p.buyer_id for p in links(result)}
    suppliers = {p.supplier_id for p in links(result)}

    assert buyers.isdisjoint(suppliers)
    large = {m.org_id for m in real_members if m.size == "large"}
    assert buyers <= large


def test_import_supply_links_maps_each_party_to_one_member(write_file, small_members):
    text = toronto_text(
        award(1, "Acme HVAC Ltd.", "2023-01-05", "Toronto Water", "HVAC repairs"),
        award(2, "ACME HVAC LTD", "2023-02-05", "Fleet Services", "Fleet trucks"),
        award(3, "Bright Lights", "2023-03-05", "Toronto Water", "LED lighting"),
    )

    result = import_supply_links(write_file(text), small_members)

    first, second, third = links(result)
    assert first.supplier_id == second.supplier_id
    assert first.buyer_id == third.buyer_id
    assert first.buyer_id != second.buyer_id


def test_import_supply_links_picks_supplier_offering_the_category(
    write_file, small_members
):
    text = toronto_text(
        award(1, "Acme", "2023-01-05", "Toronto Water", "HVAC replacement"),
        award(2, "Glow", "2023-01-06", "Toronto Water", "Park lighting upgrade"),
    )

    hvac, lighting = links(import_supply_links(write_file(text), small_members))

    assert (hvac.category, hvac.supplier_id) == (Capability.HVAC, "edinet-E00003")
    assert (lighting.category, lighting.supplier_id) == (
        Capability.LED_LIGHTING,
        "edinet-E00004",
    )


def test_import_supply_links_never_links_member_to_itself(write_file):
    members = [MemberRef("a", "A", "13101", size="large"), MemberRef("b", "B", "13102")]
    text = toronto_text(
        *(award(i, f"S{i}", "2023-01-05", f"D{i % 3}") for i in range(12))
    )

    result = import_supply_links(write_file(text), members)

    assert len(result.envelopes) == 12
    assert {(p.buyer_id, p.supplier_id) for p in links(result)} == {("a", "b")}


def test_import_supply_links_counts_repeated_award_once(write_file, small_members):
    line = award(1, "Acme", "2023-01-05", "Toronto Water", "Pumps")
    text = toronto_text(
        line,
        line.replace('"u1"', '"u9"'),
        award(2, "Acme", "2023-01-05", "Toronto Water"),
    )

    result = import_supply_links(write_file(text), small_members)

    assert len(result.envelopes) == 2
    assert result.duplicates == 1


def test_import_supply_links_rejects_rows_without_party_or_date(
    write_file, small_members
):
    text = toronto_text(
        award(1, "Acme", "2023-01-05", ""),
        award(2, "Acme", "", "Toronto Water"),
        award(3, "Acme", "2023-02-30", "Toronto Water"),
        award(4, "Acme", "2023-01-05", "Toronto Water"),
    )

    result = import_supply_links(write_file(text), small_members)

    assert [p.since.isoformat() for p in links(result)] == ["2023-01-05"]
    assert [(r.line, r.column) for r in result.rejected] == [
        (2, "Division"),
        (3, "Award Date"),
        (4, "Award Date"),
    ]


def test_import_supply_links_gives_one_link_per_listed_division(
    write_file, small_members
):
    text = toronto_text(
        award(1, "Acme", "2023-01-05", "Fire Services,Parks, Forestry & Recreation"),
    )

    result = import_supply_links(write_file(text), small_members)

    assert len({p.buyer_id for p in links(result)}) == 2


def test_import_supply_links_repairs_mojibake_and_bounds_description(
    write_file, small_members
):
    garbled = "the \u00e2\u0080\u009cCity\u00e2\u0080\u009d " + "x" * 600
    text = toronto_text(award(1, "Acme", "2023-01-05", "Toronto Water", garbled))

    [link] = links(import_supply_links(write_file(text), small_members))

    assert link.description.startswith("the \u201cCity\u201d x")
    assert len(link.description) == 500


def test_import_supply_links_refuses_without_members(write_file):
    path = write_file(toronto_text(award(1, "Acme", "2023-01-05", "Toronto Water")))

    with pytest.raises(ImporterError, match="no members"):
        import_supply_links(path, [])


@pytest.mark.parametrize(
    ("description", "category"),
    [
        ("Supply of LED fixtures", Capability.LED_LIGHTING),
        ("Design teams led by an architect", None),
        ("Roof replacement at the arena", Capability.INSULATION),
        ("Heating, ventilation and air conditioning", Capability.HVAC),
        ("Collection of organics and recycling", Capability.RECYCLING),
        ("Solid waste transfer", Capability.WASTE_MANAGEMENT),
        ("Energy audit of pools", Capability.ENERGY_AUDIT),
        ("Heavy duty vehicles repair", Capability.EV_AND_LOGISTICS),
        ("Consulting services for a study", Capability.EMS_CONSULTING),
        ("Watermain replacement", None),
        ("Solar panels", Capability.SOLAR),
        ("Security guard services", None),
    ],
)
def test_infer_category_follows_keyword_table(description, category):
    assert infer_category(description) == category


def test_import_supply_links_keeps_event_ids_when_the_member_list_changes(
    toronto_path, real_members
):
    first = import_supply_links(toronto_path, real_members)

    again = import_supply_links(toronto_path, real_members[: len(real_members) // 2])

    assert [e.event_id for e in again.envelopes] == [
        e.event_id for e in first.envelopes
    ]
