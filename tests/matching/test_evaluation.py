"""Offline evaluation: the split's rules, the metrics, the baselines, the command."""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from click.testing import CliRunner

from matching.evaluation import (
    BASELINES,
    EvaluationError,
    ProductRanker,
    ScoreRanker,
    TrainMatrices,
    adamic_adar,
    common_neighbours,
    evaluate,
    hits_at_k,
    make_split,
    personalised_pagerank,
    recall_at_k,
    reciprocal_rank_at_k,
    score_rankings,
    tie_order,
)
from matching.snapshots import read_snapshots
from services.cli_bench import evaluate as evaluate_command

SHARED_SNAPSHOTS = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "supply-network-cn"
)
FIRST, SECOND, TEST = date(2020, 6, 30), date(2020, 12, 31), date(2021, 6, 30)

# (supplier, customer). c1 also supplies s3; s4 first supplies in SECOND.
SNAPSHOTS = {
    FIRST: [("s1", "c1"), ("s2", "c1"), ("s1", "c2"), ("s3", "c2"), ("c1", "s3")],
    SECOND: [("s1", "c1"), ("s4", "c3")],
    TEST: [
        ("s2", "c2"),  # new, known supplier, known customer: positive
        ("c1", "c2"),  # c1 supplied s3 before: positive
        ("s4", "c1"),  # s4 supplied c3 in SECOND: positive
        ("s1", "c1"),  # seen before
        ("s9", "c1"),  # s9 never supplied anyone
        ("c3", "c1"),  # c3 only ever bought
        ("s1", "x9"),  # x9 is not in the train graph
        ("c2", "c2"),  # a firm is not its own supplier
    ],
}


def test_make_split_keeps_new_links_of_known_suppliers_to_known_firms():
    split = make_split(SNAPSHOTS, SECOND, TEST)

    positives = split.positives

    assert positives == {"c1": {"s4"}, "c2": {"s2", "c1"}}


def test_make_split_trains_on_every_snapshot_up_to_train_until():
    split = make_split(SNAPSHOTS, SECOND, TEST)

    train = split.train

    assert set(train) == set(SNAPSHOTS[FIRST]) | set(SNAPSHOTS[SECOND])
    assert train["s1", "c1"] == FIRST
    assert train["s4", "c3"] == SECOND
    assert split.suppliers == {"s1", "s2", "s3", "s4", "c1"}


def test_make_split_does_not_count_links_seen_between_train_and_test():
    split = make_split(SNAPSHOTS, FIRST, TEST)

    positives = split.positives

    # s4 supplied no one by FIRST; s1 -> c1 was seen before the test.
    assert positives == {"c2": {"s2", "c1"}}


def test_split_candidates_are_known_suppliers_not_bought_from_nor_itself():
    split = make_split(SNAPSHOTS, SECOND, TEST)

    c1, c2 = split.candidates("c1"), split.candidates("c2")

    assert c1 == {"s3", "s4"}
    assert c2 == {"s2", "s4", "c1"}


@pytest.mark.parametrize(
    "train_until, test",
    [(TEST, TEST), (SECOND, date(2022, 1, 1)), (date(2019, 1, 1), TEST)],
)
def test_make_split_refuses_a_split_it_cannot_build(train_until, test):
    with pytest.raises(EvaluationError):
        make_split(SNAPSHOTS, train_until, test)


def test_metrics_at_k_count_what_the_first_k_hold():
    ranked, relevant = ["a", "b", "c", "d"], {"c", "d", "z"}

    at_2 = (recall_at_k(ranked, relevant, 2), hits_at_k(ranked, relevant, 2))
    at_4 = (recall_at_k(ranked, relevant, 4), hits_at_k(ranked, relevant, 4))

    assert at_2 == (0.0, 0.0)
    assert at_4 == (2 / 3, 1.0)
    assert reciprocal_rank_at_k(ranked, relevant, 2) == 0.0
    assert reciprocal_rank_at_k(ranked, relevant, 3) == 1 / 3


def test_score_rankings_averages_over_customers():
    positives = {"c1": frozenset({"s4"}), "c2": frozenset({"s2", "c1"})}
    rankings = [("c1", ["s3", "s4"]), ("c2", ["s2", "s4", "c1"])]

    metrics = score_rankings(rankings, positives, k=2)

    assert metrics.recall == pytest.approx((1 + 1 / 2) / 2)
    assert metrics.hits == 1.0
    assert metrics.mrr == pytest.approx((1 / 2 + 1) / 2)
    assert metrics.to_dict() == {"recall@2": 0.75, "hits@2": 1.0, "mrr@2": 0.75}


def test_personalised_pagerank_equals_networkx_row_by_row():
    G = nx.karate_club_graph()
    G.add_node(34)  # without links: its walk restarts at the source
    A = nx.to_scipy_sparse_array(G, nodelist=range(35), weight=None, format="csr")
    sources = np.array([0, 5, 33, 34])

    rows = personalised_pagerank(A, sources, restart=0.15)

    for row, s in zip(rows, sources, strict=True):
        expected = nx.pagerank(G, alpha=0.85, personalization={s: 1}, weight=None)
        assert np.allclose(row, [expected[v] for v in range(35)], rtol=0, atol=1e-12)


def test_common_neighbours_and_adamic_adar_equal_networkx():
    split = make_split(SNAPSHOTS, SECOND, TEST)
    m = TrainMatrices(split, tie_order(split.nodes, seed=1))
    G = nx.Graph(list(split.train))
    rows = m.rows(["c1", "c2"])

    cn, aa = common_neighbours(m, rows), adamic_adar(m, rows)

    for r, c in enumerate(["c1", "c2"]):
        for j, col in enumerate(m.suppliers):
            if (s := m.order[col]) == c:
                continue  # a customer is never its own candidate
            assert cn[r, j] == len(list(nx.common_neighbors(G, c, s)))
            ((*_, expected),) = nx.adamic_adar_index(G, [(c, s)])
            assert math.isclose(aa[r, j], expected)


@pytest.mark.parametrize("name", list(BASELINES))
def test_baseline_ranks_only_candidates(name):
    split = make_split(SNAPSHOTS, SECOND, TEST)
    m = TrainMatrices(split, tie_order(split.nodes, seed=1))

    ranked = list(ScoreRanker(m, BASELINES[name]).rank(["c1", "c2"], k=10))

    assert set(ranked[0]) == split.candidates("c1")
    assert set(ranked[1]) == split.candidates("c2")


def test_product_ranker_suggests_candidates_closest_in_the_graph_first():
    split = make_split(SNAPSHOTS, SECOND, TEST)
    ranker = ProductRanker(split, tie_order(split.nodes, seed=1))

    (c2,) = ranker.rank(["c2"], k=10)

    # s4 is in another component; c1 and s2 are reached through s1.
    assert set(c2[:2]) == {"c1", "s2"}
    assert c2[2:] == ["s4"]


def test_evaluate_scores_the_product_and_each_baseline():
    split = make_split(SNAPSHOTS, SECOND, TEST)

    report = evaluate(split, k=2, seed=3)

    data = report.to_dict()
    assert data["customers"] == 2
    assert data["positives"] == 3
    assert {"recall@2", "hits@2", "mrr@2"} <= data.keys()
    assert set(data["baselines"]) == set(BASELINES)
    assert all(0 <= m["recall@2"] <= 1 for m in data["baselines"].values())


def write_snapshots(folder: Path) -> None:
    for day, links in SNAPSHOTS.items():
        lines = ["supplier,customer", *(f"{s},{c}" for s, c in links)]
        (folder / f"A_{day:%Y_%m_%d}.csv").write_text("\n".join(lines) + "\n")


def test_read_snapshots_reads_dated_files_up_to_a_date(tmp_path):
    write_snapshots(tmp_path)
    (tmp_path / "notes.txt").write_text("not a snapshot")

    snapshots = read_snapshots(tmp_path, until=SECOND)

    assert snapshots == {FIRST: SNAPSHOTS[FIRST], SECOND: SNAPSHOTS[SECOND]}


def test_evaluate_command_prints_one_json_object(tmp_path):
    write_snapshots(tmp_path)
    args = ["--snapshots", str(tmp_path), "--train-until", "2020-12-31"]

    result = CliRunner().invoke(
        evaluate_command, [*args, "--test", "2021-06-30", "--k", "2", "--json"]
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["positives"] == 3
    assert set(data["baselines"]["personalised_pagerank"]) >= {"recall@2", "mrr@2"}


def test_evaluate_command_refuses_a_snapshot_without_its_header(tmp_path):
    write_snapshots(tmp_path)
    (tmp_path / "A_2020_06_30.csv").write_text("a,b\ns1,c1\n")
    args = ["--snapshots", str(tmp_path), "--train-until", "2020-12-31"]

    result = CliRunner().invoke(evaluate_command, [*args, "--test", "2021-06-30"])

    assert result.exit_code == 1
    assert "header" in result.output


@pytest.mark.skipif(
    not SHARED_SNAPSHOTS.is_dir(), reason="supply-network-cn is not in ../shared/data"
)
def test_evaluate_runs_on_the_real_network():
    snapshots = read_snapshots(SHARED_SNAPSHOTS, until=date(2015, 12, 31))
    split = make_split(snapshots, date(2015, 6, 30), date(2015, 12, 31))

    report = evaluate(split, k=5, max_customers=40)

    assert len(report.customers) == 40
    assert 0 < report.baselines["personalised_pagerank"].recall <= 1
    assert 0 <= report.product.recall <= 1


def test_evaluate_command_offers_every_baseline_by_default():
    from services.cli_bench import DEFAULT_BASELINES

    names = DEFAULT_BASELINES

    assert names == tuple(BASELINES)
