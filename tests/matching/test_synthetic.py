"""The synthetic alliance: sizes, determinism, shape, and its two build paths."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from click.testing import CliRunner

from matching.graph import AllianceGraph
from matching.synthetic import SyntheticLog, SyntheticSpec, build_graph
from services.cli_bench import bench

SMALL = SyntheticSpec(orgs=300, supply_links=1_500, seed=7)


def state(graph: AllianceGraph) -> tuple[object, ...]:
    """Return everything an AllianceGraph holds, in comparable form."""
    return (
        dict(graph.G.nodes(data=True)),
        {frozenset((u, v)): data for u, v, data in graph.G.edges(data=True)},
        {key: orgs for key, orgs in graph._offered_by.items() if orgs},
        {key: orgs for key, orgs in graph._needed_by.items() if orgs},
        graph._applied,
        graph.matches,
        dict(graph._declined),
        dict(graph._replays),
        dict(graph._field_latest),
        graph._presence,
        graph._credential_records,
        graph._credential_order,
        dict(graph._credential_ends),
    )


def test_synthetic_log_has_the_sizes_asked_for():
    log = SyntheticLog(SMALL)

    entries = list(log)
    graph = build_graph(log)

    types = Counter(event_type for event_type, _, _ in entries)
    assert len(entries) == len(log)
    assert types["OrganisationRegistered"] == 300
    assert types["SupplierLinked"] == 1_500
    assert types["CredentialRecorded"] > 0
    assert types["AttendanceLogged"] > 0
    assert sum(1 for _ in graph.orgs()) == 300
    supply = [e for _, _, e in graph.G.edges(data=True) if e.get("supply")]
    assert len(supply) == 1_500


def test_synthetic_log_is_the_same_for_the_same_seed():
    again = SyntheticSpec(orgs=300, supply_links=1_500, seed=7)
    other = SyntheticSpec(orgs=300, supply_links=1_500, seed=8)

    first, second, third = (list(SyntheticLog(s)) for s in (SMALL, again, other))

    assert first == second
    assert first != third


def test_synthetic_links_have_a_heavy_tailed_degree_distribution():
    spec = SyntheticSpec(orgs=2_000, supply_links=10_000, seed=1)

    entries = list(SyntheticLog(spec))

    customers = Counter(
        p["supplier_id"] for t, p, _ in entries if t == "SupplierLinked"
    )
    counts = sorted(customers.values())
    assert counts[-1] >= 20 * counts[len(counts) // 2]
    assert counts[len(counts) // 2] <= 5


def test_synthetic_links_join_distinct_pairs_of_distinct_orgs():
    entries = list(SyntheticLog(SMALL))

    pairs = [
        frozenset((p["supplier_id"], p["buyer_id"]))
        for t, p, _ in entries
        if t == "SupplierLinked"
    ]

    assert all(len(pair) == 2 for pair in pairs)
    assert len(set(pairs)) == len(pairs)


def test_build_graph_fast_path_leaves_the_state_of_the_envelope_path():
    log = SyntheticLog(SMALL)

    fast = build_graph(log)
    validated = build_graph(log, validate=True)

    assert state(fast) == state(validated)


def test_build_graph_fast_path_finds_audiences_once_loaded():
    log = SyntheticLog(SMALL)
    fast, validated = build_graph(log), build_graph(log, validate=True)
    org_id = log.org_id(0)

    audience = fast.audience(org_id)

    assert audience
    assert audience == validated.audience(org_id)


def test_build_graph_reports_progress_for_every_entry():
    log = SyntheticLog(SMALL)
    reported: list[int] = []

    build_graph(log, progress=reported.append)

    assert sum(reported) == len(log)


@pytest.mark.parametrize("orgs, links", [(1, 0), (10, 23), (10, -1)])
def test_synthetic_spec_refuses_sizes_it_cannot_draw(orgs, links):
    with pytest.raises(ValueError):
        SyntheticSpec(orgs=orgs, supply_links=links)


def test_bench_suggestions_prints_its_figures_as_json():
    args = ["--orgs", "200", "--edges", "600", "--sample", "5", "--pagerank-runs", "1"]

    result = CliRunner().invoke(bench, ["suggestions", *args, "--json"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["orgs"] == 200
    assert figures["suggest_samples"] == 5
    assert figures["suggest_p99_ms"] > 0
    assert figures["pagerank_median_s"] > 0
    assert figures["peak_rss_mib"] > 0
