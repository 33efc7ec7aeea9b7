"""Personalised PageRank by local push, against exact PageRank."""

from __future__ import annotations

import networkx as nx
import pytest

from matching.proximity import bfs_parents, path_to, personalized_pagerank

ALPHA = 0.15


def exact_ppr(G, source, alpha=ALPHA, weight="weight", steps=400):
    """Power iteration of pr = alpha*e_s + (1-alpha)*pr*W; dangling mass restarts."""
    pr = {v: float(v == source) for v in G}
    for _ in range(steps):
        nxt = dict.fromkeys(G, 0.0)
        nxt[source] += alpha
        for u, mass in pr.items():
            d = G.degree(u, weight=weight)
            if d == 0:
                nxt[source] += (1 - alpha) * mass
                continue
            for v, attrs in G.adj[u].items():
                nxt[v] += (1 - alpha) * mass * attrs.get(weight, 1) / d
        pr = nxt
    return pr


def top(values, k=5):
    ranked = sorted(values.items(), key=lambda kv: (-round(kv[1], 6), kv[0]))
    return [v for v, _ in ranked[:k]]


def karate(weighted):
    G = nx.karate_club_graph()
    return G if weighted else nx.Graph(G.edges())


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("source", [0, 16, 33])
def test_personalized_pagerank_is_within_eps_times_degree_of_exact(source, weighted):
    G = karate(weighted)
    eps = 1e-4

    approx = personalized_pagerank(G, source, ALPHA, eps)

    exact = exact_ppr(G, source)
    for v in G:
        gap = exact[v] - approx.get(v, 0.0)
        assert -1e-12 <= gap < eps * G.degree(v, weight="weight")


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("source", [0, 16, 33])
def test_personalized_pagerank_ranks_like_exact(source, weighted):
    G = karate(weighted)

    approx = personalized_pagerank(G, source, ALPHA, eps=1e-9)

    assert top(approx) == top(exact_ppr(G, source))


@pytest.mark.parametrize("source", [0, 33])
def test_personalized_pagerank_matches_networkx_pagerank(source):
    pytest.importorskip("scipy", reason="nx.pagerank needs scipy")
    G = karate(weighted=True)

    approx = personalized_pagerank(G, source, ALPHA, eps=1e-7)

    expected = nx.pagerank(
        G, alpha=1 - ALPHA, personalization={source: 1}, tol=1e-12, max_iter=2000
    )
    assert approx == pytest.approx(expected, abs=1e-5)
    assert top(approx) == top(expected)


def test_personalized_pagerank_isolated_source_keeps_all_mass():
    G = nx.path_graph(3)
    G.add_node("alone")

    approx = personalized_pagerank(G, "alone")

    assert approx == {"alone": 1.0}


def test_personalized_pagerank_work_does_not_grow_with_the_graph():
    small, large = nx.cycle_graph(1_000), nx.cycle_graph(200_000)

    near_small = personalized_pagerank(small, 0, ALPHA, eps=1e-3)
    near_large = personalized_pagerank(large, 0, ALPHA, eps=1e-3)

    assert len(near_small) == len(near_large) < 100


def test_personalized_pagerank_reads_strength_attribute_when_given():
    G = karate(weighted=True)
    for v in G:
        G.nodes[v]["strength"] = G.degree(v, weight="weight")

    with_strength = personalized_pagerank(G, 0, strength="strength")

    assert with_strength == personalized_pagerank(G, 0)


def test_personalized_pagerank_rejects_bad_arguments():
    G = nx.path_graph(3)

    with pytest.raises(ValueError):
        personalized_pagerank(G, 0, alpha=0.0)
    with pytest.raises(nx.NodeNotFound):
        personalized_pagerank(G, 99)


def test_path_to_follows_a_shortest_path_within_the_pushed_nodes():
    G = nx.Graph([("s", "a"), ("a", "b"), ("s", "c"), ("c", "d"), ("d", "b")])

    parents = bfs_parents(G, "s", within={"s", "a", "b", "c"})

    assert path_to(parents, "b") == ["s", "a", "b"]
    assert path_to(parents, "d") == ["s", "c", "d"]
    assert path_to(parents, "nowhere") == []
