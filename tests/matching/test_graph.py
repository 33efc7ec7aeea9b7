"""AllianceGraph: applying the log, idempotence, out-of-order events, indexes."""

from __future__ import annotations

from datetime import date

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.errors import UnknownOrganisation
from matching.graph import STRENGTH, AllianceGraph, event_node
from schemas.capabilities import Capability


def snapshot(graph: AllianceGraph) -> tuple:
    nodes = sorted(
        (n, sorted(map(str, a.items()))) for n, a in graph.G.nodes(data=True)
    )
    edges = sorted(
        (tuple(sorted((u, v))), sorted(map(str, a.items())))
        for u, v, a in graph.G.edges(data=True)
    )
    return nodes, edges, dict(graph.matches)


def test_apply_same_event_twice_changes_nothing(log):
    graph = AllianceGraph()
    envelopes = [
        log.register("a", offers=["led_lighting"]),
        log.register("b", needs=["led_lighting"]),
        log.attend("a", "fair"),
        log.link("b", "a"),
        log.suggested("m1", "b", "a"),
        *log.steps_to_deal("m1", "b", "a"),
        log.closed("m1"),
    ]
    for envelope in envelopes:
        graph.apply(envelope)
    before = snapshot(graph)

    touched = [graph.apply(envelope) for envelope in envelopes]

    assert touched == [set()] * len(envelopes)
    assert snapshot(graph) == before
    assert graph.record("a") == (1, 1)


def test_apply_returns_the_orgs_directly_concerned(log):
    graph = log.build([log.register("a"), log.register("b")])

    touched = graph.apply(log.link("a", "b"))

    assert touched == {"a", "b"}


def test_apply_attendance_before_registration_fills_placeholder(log):
    graph = AllianceGraph()
    graph.apply(log.attend("late", "fair"))
    assert not graph.has_org("late")

    touched = graph.apply(log.register("late", name="Late Kogyo", offers=["solar"]))

    assert touched == {"late"}
    assert graph.has_org("late")
    assert graph.org("late")["name"] == "Late Kogyo"
    assert graph.G.has_edge("late", event_node("fair"))
    assert graph.offering(Capability.SOLAR) == {"late"}


def test_apply_placeholder_is_never_a_registered_org(log):
    graph = log.build([log.register("buyer"), log.link("buyer", "ghost")])

    orgs = list(graph.orgs())

    assert orgs == ["buyer"]
    assert "ghost" in graph.G
    with pytest.raises(UnknownOrganisation):
        graph.org("ghost")


def test_apply_attendance_touches_every_registered_attendee(log):
    graph = log.build(
        [log.register(o) for o in "abc"]
        + [log.attend("a", "fair"), log.attend("b", "fair"), log.attend("x", "fair")]
    )

    touched = graph.apply(log.attend("c", "fair"))

    assert touched == {"a", "b", "c"}


def test_apply_second_person_of_an_org_keeps_one_edge(log):
    graph = log.build([log.register("a"), log.attend("a", "fair", person="p1")])

    touched = graph.apply(log.attend("a", "fair", person="p2"))

    assert touched == set()
    assert graph.G.number_of_edges() == 1
    assert graph.G.edges["a", event_node("fair")]["people"] == 2


def test_apply_event_scheduled_after_attendance_fills_the_meeting(log):
    graph = log.build([log.register("a"), log.attend("a", "fair")])

    touched = graph.apply(log.schedule("fair", "Chiyoda matching fair 2026"))

    assert touched == {"a"}
    assert graph.event(event_node("fair"))["title"] == "Chiyoda matching fair 2026"


def test_apply_profile_update_reindexes_capabilities(log):
    graph = log.build([log.register("a", offers=["solar"], needs=["hvac"])])

    graph.apply(log.register("a", offers=["insulation"], needs=[]))

    assert graph.offering(Capability.SOLAR) == set()
    assert graph.offering(Capability.INSULATION) == {"a"}
    assert graph.needing(Capability.HVAC) == set()


def test_apply_profile_update_touches_the_org_and_its_partners(log):
    graph = log.build([log.register("a"), log.register("b"), log.link("a", "b")])

    touched = graph.apply(log.register("a", offers=["solar"]))

    assert touched == {"a", "b"}


def test_apply_deal_on_supply_link_marks_the_link(log):
    graph = log.build(
        [
            log.register("a"),
            log.register("b"),
            log.link("a", "b"),
            log.suggested("m1", "a", "b"),
            *log.steps_to_deal("m1", "a", "b"),
        ]
    )

    touched = graph.apply(log.closed("m1"))

    edge = graph.G.edges["a", "b"]
    assert touched == {"a", "b"}
    assert (edge["kind"], edge["deal"], edge["buyer"]) == ("supply", True, "a")
    assert edge["weight"] == 2.0


def test_apply_deal_without_link_adds_a_deal_edge(log):
    graph = log.build(
        [
            log.register("a"),
            log.register("b"),
            log.suggested("m1", "a", "b"),
            *log.steps_to_deal("m1", "a", "b"),
        ]
    )

    graph.apply(log.closed("m1"))

    assert graph.G.edges["a", "b"]["kind"] == "deal"
    assert graph.supply_partners("a") == set()
    assert graph.partners("a") == {"b"}


def test_apply_deal_counts_once_per_match(log):
    graph = log.build(
        [
            log.register("a"),
            log.register("b"),
            log.suggested("m1", "a", "b"),
            *log.steps_to_deal("m1", "a", "b"),
        ]
    )

    graph.apply(log.closed("m1"))
    graph.apply(log.closed("m1"))

    assert graph.record("b") == (1, 1)
    assert graph.G.edges["a", "b"]["deals"] == 1


def test_apply_decline_before_its_suggestion_is_kept_until_suggested(log):
    graph = log.build([log.register("a"), log.register("b")])
    decline = log.declined("m1", "a", at=log.ago(3))
    assert graph.apply(decline) == set()

    touched = graph.apply(log.suggested("m1", "a", "b", at=log.ago(5)))

    assert touched == {"a", "b"}
    assert graph.declined_between("b", log.ago(10), log.now) == {"a"}
    assert graph.is_applied(decline.event_id)


def test_apply_support_is_recorded_once_on_the_link(log):
    graph = log.build([log.register("a"), log.register("b"), log.link("a", "b")])
    support = log.support("a", "b")

    graph.apply(support)
    graph.apply(support)

    entries = graph.G.edges["a", "b"]["support"]
    assert [e["event_id"] for e in entries] == [support.event_id]
    assert entries[0]["provided_on"] == date(2025, 6, 1)


def test_apply_support_without_declared_link_creates_the_link(log):
    graph = log.build([log.register("a"), log.register("b")])

    touched = graph.apply(log.support("a", "b"))

    assert touched == {"a", "b"}
    assert graph.supply_partners("b") == {"a"}


def test_apply_unused_event_type_is_recorded_and_ignored(log):
    graph = log.build([log.register("a")])
    report = log.make(
        "EnvironmentReported",
        {
            "org_id": "a",
            "fiscal_year": 2025,
            "co2_t": 1.0,
            "waste_t": 0.5,
            "electricity_kwh": 1000.0,
        },
    )

    touched = graph.apply(report)

    assert touched == set()
    assert graph.is_applied(report.event_id)
    assert graph.G.number_of_nodes() == 1


def test_apply_credential_replaces_the_same_scheme(log):
    graph = log.build([log.register("a"), log.credential("a", "iso_14001")])

    graph.apply(log.credential("a", "iso_14001", status="lapsed"))

    assert [str(c[0]) for c in graph.credentials("a").values()] == ["lapsed"]


def _random_log(log, steps):
    """Turn drawn steps into envelopes over a handful of orgs and meetings."""
    makers = {
        "register": lambda a, b: log.register(a, offers=["solar"], needs=["hvac"]),
        "attend": lambda a, b: log.attend(a, f"ev{b}"),
        "link": lambda a, b: log.link(a, b) if a != b else log.register(a),
        "support": lambda a, b: log.support(a, b) if a != b else log.register(b),
        "suggest": lambda a, b: log.suggested(f"m{a}{b}", a, b),
        "close": lambda a, b: [
            *log.steps_to_deal(f"m{a}{b}", a, b),
            log.closed(f"m{a}{b}"),
        ],
        "decline": lambda a, b: log.declined(f"m{a}{b}", a),
    }
    made = [makers[kind](a, b) for kind, a, b in steps]
    return [e for m in made for e in (m if isinstance(m, list) else [m])]


STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            ["register", "attend", "link", "support", "suggest", "close", "decline"]
        ),
        st.sampled_from("abcd"),
        st.sampled_from("abcd"),
    ),
    max_size=30,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=STEPS)
def test_apply_replaying_the_log_changes_nothing_and_keeps_strength(log, steps):
    envelopes = _random_log(log, steps)
    graph = log.build(envelopes)
    before = snapshot(graph)

    replayed = [graph.apply(envelope) for envelope in envelopes]

    assert all(touched == set() for touched in replayed)
    assert snapshot(graph) == before
    for node, strength in graph.G.nodes(data=STRENGTH):
        assert strength == pytest.approx(graph.G.degree(node, weight="weight"))
    assert nx.number_of_selfloops(graph.G) == 0


def test_apply_new_supplier_touches_members_that_need_what_it_offers(log):
    graph = log.build(
        [
            log.register("needs-led", needs=["led_lighting"]),
            log.register("needs-solar", needs=["solar"]),
        ]
    )

    touched = graph.apply(log.register("led-seller", offers=["led_lighting"]))

    assert touched == {"led-seller", "needs-led"}


def test_apply_credential_touches_members_that_could_be_suggested_it(log):
    graph = log.build(
        [
            log.register("buyer", needs=["hvac"]),
            log.register("seller", offers=["hvac"]),
        ]
    )

    touched = graph.apply(
        log.make(
            "CredentialRecorded",
            {"org_id": "seller", "scheme": "iso_14001", "issued_on": "2025-01-01"},
        )
    )

    assert touched == {"seller", "buyer"}


def test_apply_supply_link_records_its_direction(log):
    graph = log.build(
        [log.register("a"), log.register("b"), log.register("c"), log.link("a", "b")]
    )

    graph.apply(log.link("c", "a"))  # a supplies c and buys from b

    assert graph.suppliers_of("a") == {"b"}
    assert graph.buyers_of("a") == {"c"}
    assert graph.supply_partners("a") == {"b", "c"}
    assert graph.G.edges["a", "b"]["supplied_by"] == {"b": date(2024, 4, 1)}


def test_unlink_ends_one_direction_of_a_pair_trading_both_ways(log):
    graph = log.build(
        [log.register("a"), log.register("b"), log.link("a", "b"), log.link("b", "a")]
    )
    unlinked = {"buyer_id": "a", "supplier_id": "b", "until": date(2026, 3, 31)}

    touched = graph.apply(log.make("SupplierUnlinked", unlinked))

    assert touched == {"a", "b"}
    assert graph.suppliers_of("a") == set()
    assert graph.suppliers_of("b") == {"a"}
    assert graph.G.edges["a", "b"]["supply"] is True


def test_bulk_load_leaves_the_state_of_apply_one_by_one(log):
    envelopes = [
        log.register("a", offers=["solar"]),
        log.register("b", needs=["solar"]),
        log.register("c", offers=["hvac"], needs=["solar"]),
        log.link("b", "a"),
        log.link("a", "c"),
        log.credential("a", "iso_14001"),
        log.attend("a", "fair"),
        log.attend("b", "fair"),
        log.suggested("m1", "b", "c"),
        *log.steps_to_deal("m1", "b", "c"),
        log.closed("m1"),
    ]
    one_by_one = log.build(envelopes)
    bulk = AllianceGraph()

    applied = bulk.bulk_load([*envelopes, envelopes[3]])

    assert applied == len(envelopes)
    assert dict(bulk.G.nodes(data=True)) == dict(one_by_one.G.nodes(data=True))
    assert list(bulk.G.edges(data=True)) == list(one_by_one.G.edges(data=True))
    assert bulk.suppliers_of("a") == one_by_one.suppliers_of("a") == {"c"}
    assert bulk.audience("a") == one_by_one.audience("a") == {"b", "c"}
    assert bulk.apply(log.register("d", needs=["solar"])) >= {"d", "a"}
