"""Offline evaluation of supplier suggestions on a real, dated supply network.

The network comes as snapshots: on each date, the set of (supplier, customer)
links then in force. The protocol:

- the *train graph* is the union of every snapshot up to and including
  `train_until`;
- the *positives* are the links of the `test` snapshot never seen in any
  earlier snapshot whose supplier has supplied someone in the train graph and
  whose customer is a node of it; a link of a firm to itself is dropped;
- for each customer with a positive, every *known supplier* (one that supplied
  someone in the train graph) it does not already buy from, itself excepted, is
  a candidate; each recommender ranks the candidates and is scored on its
  first k, by recall, hits and reciprocal rank, averaged over those customers.

The product is the recommender that serves live suggestions,
`matching.ranking.suggest`, on an `AllianceGraph` built from the train links as
``SupplierLinked`` envelopes (customers as buyers). The snapshots carry no
capabilities, wards or credentials, so for the evaluation every firm is in
the same ward and needs one generic capability (`GENERIC`), and every known
supplier offers it: fit, ward, credential and track record are then the same
for every candidate, and the graph features decide. ``suggest`` also lists
firms as buyers (when the member is itself a supplier); the evaluation keeps
the suggestions made in the supplier role, in order. The envelopes are
validated and applied by `AllianceGraph.bulk_load`, which leaves the state
`AllianceGraph.apply` leaves without working out each registration's
audience (quadratic in the number of firms).

The graph records the direction of every supply link, and ``suggest``
excludes only a member's existing suppliers, as the baselines do: a new link
that reverses an existing one (the customer's own customer becoming its
supplier) is within its reach. The exposure cap is not applied (no
`Exposure` is passed), so each customer is ranked on its own, as the
baselines rank. Links carry the date of the snapshot they were first in, which
the recency feature reads.

Ties are broken by one random order of the nodes (seeded), the same for every
recommender: the product's org ids are numbered in that order, as ``suggest``
breaks its ties by id.

The baselines, computed on the train graph in the same run, are popularity,
common neighbours, Adamic-Adar and personalised PageRank; see `popularity`,
`common_neighbours`, `adamic_adar` and `personalised_pagerank`.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, Protocol

import networkx as nx
import numpy as np
import scipy.sparse as sparse

from matching.errors import MatchingError
from matching.graph import AllianceGraph
from matching.ranking import Suggestion, suggest
from schemas.capabilities import Capability
from schemas.envelope import Envelope, new_envelope
from schemas.fiscal import JST

__all__ = [
    "BASELINES",
    "GENERIC",
    "EvaluationError",
    "Metrics",
    "ProductRanker",
    "Report",
    "Split",
    "evaluate",
    "hits_at_k",
    "make_split",
    "personalised_pagerank",
    "recall_at_k",
    "reciprocal_rank_at_k",
]

logger = logging.getLogger(__name__)

# (supplier, customer)
Edge = tuple[str, str]
Progress = Callable[[str, int, int], None]
SuggestFunction = Callable[..., list[Suggestion]]

# What every firm needs and every known supplier offers in the evaluation.
GENERIC = Capability.EMS_CONSULTING
EVALUATION_WARD = "13101"
SOURCE = "evaluation"
# Restart probability of the PageRank baseline (networkx's alpha is 1 - this).
RESTART = 0.15
# Customers scored per block of a matrix baseline: bounds memory to a few
# arrays of (nodes x BLOCK) floats.
BLOCK = 128


class EvaluationError(MatchingError, ValueError):
    """The snapshots or the split asked for cannot be evaluated."""


@dataclass(frozen=True)
class Split:
    """A train graph, and the new links of a later snapshot to predict."""

    train_until: date
    test: date
    train: Mapping[Edge, date]  # each train link, with the snapshot it was first in
    suppliers: frozenset[str]
    nodes: frozenset[str]
    bought: Mapping[str, frozenset[str]]  # customer -> its suppliers in train
    positives: Mapping[str, frozenset[str]]  # customer -> its new suppliers

    def candidates(self, customer: str) -> set[str]:
        """Return the known suppliers the customer does not buy from yet."""
        return set(self.suppliers - self.bought.get(customer, frozenset())) - {customer}


@dataclass(frozen=True)
class Metrics:
    """Recall, hits and reciprocal rank at k, averaged over customers."""

    k: int
    recall: float
    hits: float
    mrr: float
    customers: int
    seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        """Return the metrics keyed as ``recall@k``, ``hits@k``, ``mrr@k``."""
        return {
            f"recall@{self.k}": round(self.recall, 4),
            f"hits@{self.k}": round(self.hits, 4),
            f"mrr@{self.k}": round(self.mrr, 4),
        }


@dataclass(frozen=True)
class Report:
    """What one evaluation run measured."""

    split: Split
    k: int
    customers: list[str]
    product: Metrics
    baselines: dict[str, Metrics] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-able data."""
        positives = sum(len(self.split.positives[c]) for c in self.customers)
        return {
            "train_until": self.split.train_until.isoformat(),
            "test": self.split.test.isoformat(),
            "k": self.k,
            "train_links": len(self.split.train),
            "train_nodes": len(self.split.nodes),
            "known_suppliers": len(self.split.suppliers),
            "customers": len(self.customers),
            "positives": positives,
            **self.product.to_dict(),
            "seconds": round(self.product.seconds, 1),
            "baselines": {
                name: {**m.to_dict(), "seconds": round(m.seconds, 1)}
                for name, m in self.baselines.items()
            },
        }


# -- the protocol --------------------------------------------------------------------


def make_split(
    snapshots: Mapping[date, Iterable[Edge]], train_until: date, test: date
) -> Split:
    """Return the train graph and the positives of a split (see the module).

    Raises:
        EvaluationError: if no snapshot is dated `test` or none is on or before
            `train_until`, or if `test` is not after `train_until`.
    """
    if test <= train_until:
        raise EvaluationError(f"test {test} must come after train-until {train_until}")
    if test not in snapshots:
        raise EvaluationError(f"no snapshot is dated {test}")
    earlier = sorted(d for d in snapshots if d < test)
    train: dict[Edge, date] = {}
    seen: set[Edge] = set()
    for day in earlier:
        links = _links(snapshots[day])
        seen |= links
        if day <= train_until:
            for edge in links:
                train.setdefault(edge, day)
    if not train:
        raise EvaluationError(f"no snapshot on or before {train_until}")
    return _split(train, seen, _links(snapshots[test]), train_until, test)


def _links(edges: Iterable[Edge]) -> set[Edge]:
    """Return the links of a snapshot, without a firm's links to itself."""
    return {(s, c) for s, c in edges if s != c}


def _split(
    train: dict[Edge, date],
    seen: set[Edge],
    tested: set[Edge],
    train_until: date,
    test: date,
) -> Split:
    suppliers = frozenset(s for s, _ in train)
    nodes = suppliers | {c for _, c in train}
    bought: defaultdict[str, set[str]] = defaultdict(set)
    for s, c in train:
        bought[c].add(s)
    positives: defaultdict[str, set[str]] = defaultdict(set)
    for s, c in tested - seen:
        if s in suppliers and c in nodes:
            positives[c].add(s)
    return Split(
        train_until=train_until,
        test=test,
        train=train,
        suppliers=suppliers,
        nodes=nodes,
        bought={c: frozenset(v) for c, v in bought.items()},
        positives={c: frozenset(v) for c, v in positives.items()},
    )


def tie_order(nodes: Iterable[str], seed: int) -> list[str]:
    """Return the nodes in one random order, the same for a seed."""
    ordered = sorted(nodes)
    rng = np.random.default_rng(seed)
    return [ordered[i] for i in rng.permutation(len(ordered))]


# -- metrics -------------------------------------------------------------------------


def recall_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    r"""Return the share of the relevant items found in the first k.

    .. math:: \mathrm{recall@}k = |R_k \cap P| \,/\, |P|

    where :math:`R_k` is the first k of the ranking and :math:`P` the relevant
    set (not empty) [1]_.

    References
    ----------
    .. [1] C. D. Manning, P. Raghavan and H. Schütze, *Introduction to
       Information Retrieval*, Cambridge University Press, 2008, ch. 8.
    """
    relevant = set(relevant)
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def hits_at_k(ranked: Sequence[str], relevant: Iterable[str], k: int) -> float:
    r"""Return 1 if a relevant item is in the first k, else 0.

    .. math:: \mathrm{hits@}k = \mathbb{1}[R_k \cap P \neq \emptyset]
    """
    return float(not set(relevant).isdisjoint(ranked[:k]))


def reciprocal_rank_at_k(
    ranked: Sequence[str], relevant: Iterable[str], k: int
) -> float:
    r"""Return 1 / the rank of the first relevant item, 0 if not in the first k.

    .. math:: \mathrm{RR@}k = 1 / \min\{i \le k : r_i \in P\}

    averaged over queries it is the mean reciprocal rank, MRR@k [1]_.

    References
    ----------
    .. [1] E. M. Voorhees, "The TREC-8 question answering track report",
       Proc. TREC-8, NIST, 1999, pp. 77-82.
    """
    relevant = set(relevant)
    for rank, item in enumerate(ranked[:k], start=1):
        if item in relevant:
            return 1.0 / rank
    return 0.0


def score_rankings(
    rankings: Iterable[tuple[str, Sequence[str]]],
    positives: Mapping[str, frozenset[str]],
    k: int,
) -> Metrics:
    """Average recall, hits and reciprocal rank at k over (customer, ranking)."""
    totals, count = [0.0, 0.0, 0.0], 0
    for customer, ranked in rankings:
        relevant = positives[customer]
        totals[0] += recall_at_k(ranked, relevant, k)
        totals[1] += hits_at_k(ranked, relevant, k)
        totals[2] += reciprocal_rank_at_k(ranked, relevant, k)
        count += 1
    if count == 0:
        raise EvaluationError("no customer to evaluate")
    recall, hits, mrr = (total / count for total in totals)
    return Metrics(k=k, recall=recall, hits=hits, mrr=mrr, customers=count)


# -- the product ---------------------------------------------------------------------


class Ranker(Protocol):
    """Ranks candidate suppliers for customers, best first."""

    def rank(self, customers: Sequence[str], k: int) -> Iterator[list[str]]:
        """Yield the first k candidates of each customer, in order."""
        ...


def alliance_log(split: Split, order: Sequence[str]) -> Iterator[Envelope]:
    """Yield the envelopes that build the train graph as an alliance.

    Every node registers (in `order`, as ``firm-<position>``), needing
    `GENERIC` and offering it if it is a known supplier; then each train link
    is a ``SupplierLinked`` with the customer as buyer, dated by the snapshot
    it was first in, in date order.
    """
    org_id = org_ids(order)
    start = min(split.train.values())
    for n, node in enumerate(order):
        registered: dict[str, Any] = {
            "org_id": org_id[node],
            "name": f"firm {node}",
            "ward": EVALUATION_WARD,
            "offers": [GENERIC] if node in split.suppliers else [],
            "needs": [GENERIC],
        }
        yield _envelope("OrganisationRegistered", registered, start, f"org-{n}")
    links = sorted(split.train.items(), key=lambda item: (item[1], item[0]))
    for n, ((s, c), since) in enumerate(links):
        linked = {"buyer_id": org_id[c], "supplier_id": org_id[s], "since": since}
        yield _envelope("SupplierLinked", linked, since, f"link-{n}")


def org_ids(order: Sequence[str]) -> dict[str, str]:
    """Return the org id of each node: ids sort as the nodes do in `order`."""
    width = len(str(len(order)))
    return {node: f"firm-{i:0{width}d}" for i, node in enumerate(order)}


def _envelope(
    event_type: str, payload: dict[str, Any], day: date, key: str
) -> Envelope:
    at = datetime(day.year, day.month, day.day, 9, tzinfo=JST)
    return new_envelope(
        event_type, payload, source=SOURCE, occurred_at=at, event_id=f"eval-{key}"
    )


class ProductRanker:
    """Ranks with the live recommender on the train graph built as an alliance.

    Parameters
    ----------
    split : Split
        The split whose train graph to build.
    order : sequence of str
        The tie order of the nodes (see `tie_order`).
    suggest_function : callable
        ``suggest(graph, org_id, *, limit, now)``; the live `suggest` unless a
        prototype is being compared.
    """

    def __init__(
        self,
        split: Split,
        order: Sequence[str],
        suggest_function: SuggestFunction = suggest,
    ) -> None:
        self.graph = AllianceGraph()
        self.graph.bulk_load(alliance_log(split, order))
        self._org_id = org_ids(order)
        self._node = {org: node for node, org in self._org_id.items()}
        self._suggest = suggest_function
        day = split.train_until + timedelta(days=1)
        self.now = datetime(day.year, day.month, day.day, tzinfo=JST)

    def rank(self, customers: Sequence[str], k: int) -> Iterator[list[str]]:
        """Yield the first k suppliers suggested to each customer."""
        for customer in customers:
            yield [self._node[v] for v in self.suppliers(self._org_id[customer], k)]

    def suppliers(self, org_id: str, k: int) -> list[str]:
        """Return the first k candidates suggested as suppliers to a member.

        Suggestions in the buyer role are skipped, so the list asked of
        ``suggest`` grows until it holds k suppliers or every candidate.
        """
        limit = 2 * k
        while True:
            found = self._suggest(self.graph, org_id, limit=limit, now=self.now)
            chosen = [s.candidate_id for s in found if s.role == "supplier"]
            # `found` is shorter than `limit` once every candidate is in it.
            if len(chosen) >= k or len(found) < limit:
                return chosen[:k]
            limit *= 4


# -- baselines -----------------------------------------------------------------------


class TrainMatrices:
    """The train graph as sparse matrices, nodes numbered in tie order.

    ``A`` is the undirected adjacency (1 per linked pair), ``buys`` the
    directed one (customer row, supplier column); ``suppliers`` the known
    suppliers' columns, ascending, so that a stable sort breaks ties in the
    tie order.
    """

    def __init__(self, split: Split, order: Sequence[str]) -> None:
        self.order = list(order)
        self.position = {node: i for i, node in enumerate(self.order)}
        n = len(self.order)
        rows = np.array([self.position[c] for _, c in split.train], dtype=np.int64)
        cols = np.array([self.position[s] for s, _ in split.train], dtype=np.int64)
        ones = np.ones(len(rows))
        self.buys = sparse.csr_array((ones, (rows, cols)), shape=(n, n))
        both = self.buys + self.buys.T
        self.A = sparse.csr_array((both > 0).astype(float))
        self.degree = np.asarray(self.A.sum(axis=1)).ravel()
        self.suppliers = np.array(sorted(self.position[s] for s in split.suppliers))
        self.customers_of = np.asarray(self.buys.sum(axis=0)).ravel()

    def rows(self, customers: Sequence[str]) -> np.ndarray:
        """Return the row numbers of customers."""
        return np.array([self.position[c] for c in customers], dtype=np.int64)


ScoreFunction = Callable[[TrainMatrices, np.ndarray], np.ndarray]


def popularity(m: TrainMatrices, rows: np.ndarray) -> np.ndarray:
    r"""Score each known supplier by its number of customers in the train graph.

    .. math:: \mathrm{pop}(c, s) = |\{u : (s, u) \in E\}|

    the in-degree of preferential attachment [1]_, the same for every customer.

    References
    ----------
    .. [1] A.-L. Barabási and R. Albert, "Emergence of scaling in random
       networks", Science 286 (5439), 1999, pp. 509-512.
    """
    scores = m.customers_of[m.suppliers]
    return np.broadcast_to(scores, (len(rows), len(scores))).copy()


def common_neighbours(m: TrainMatrices, rows: np.ndarray) -> np.ndarray:
    r"""Score by the neighbours customer and supplier share, links undirected.

    .. math:: \mathrm{CN}(c, s) = |\Gamma(c) \cap \Gamma(s)|

    References
    ----------
    .. [1] D. Liben-Nowell and J. Kleinberg, "The link-prediction problem for
       social networks", J. Am. Soc. Inf. Sci. Technol. 58 (7), 2007,
       pp. 1019-1031.
    """
    return (m.A[rows] @ m.A[:, m.suppliers]).toarray()


def adamic_adar(m: TrainMatrices, rows: np.ndarray) -> np.ndarray:
    r"""Score by the shared neighbours, each weighted by its rarity.

    .. math:: \mathrm{AA}(c, s) = \sum_{w \in \Gamma(c) \cap \Gamma(s)}
        \frac{1}{\log |\Gamma(w)|}

    A shared neighbour has at least two neighbours, so the logarithm is
    positive.

    References
    ----------
    .. [1] L. A. Adamic and E. Adar, "Friends and neighbors on the Web",
       Social Networks 25 (3), 2003, pp. 211-230.
    """
    rarity = sparse.diags_array(1.0 / np.log(np.maximum(m.degree, 2.0)))
    return (m.A[rows] @ rarity @ m.A[:, m.suppliers]).toarray()


def pagerank_scores(m: TrainMatrices, rows: np.ndarray) -> np.ndarray:
    """Score by each customer's personalised PageRank (see the function below)."""
    return personalised_pagerank(m.A, rows, restart=RESTART)[:, m.suppliers]


def personalised_pagerank(
    A: sparse.csr_array,
    sources: np.ndarray,
    *,
    restart: float = RESTART,
    tol: float = 1.0e-6,
    max_iter: int = 100,
) -> np.ndarray:
    r"""Return the personalised PageRank of several sources, as networkx does.

    For a source :math:`s`, the vector :math:`x` solves

    .. math:: x = (1 - \beta) (x P + x_D \chi_s) + \beta \chi_s

    where :math:`\beta` is the restart probability, :math:`P = D^{-1} A` the
    random walk's transition matrix and :math:`x_D` the mass on nodes without
    links, sent back to the source [1]_ [2]_. It is the power iteration of
    ``networkx.pagerank(G, alpha=1 - restart, personalization={s: 1})``, run
    for a block of sources at once: the same start (uniform), the same update
    and the same stopping rule per source (an l1 change below ``N * tol``), so
    each row equals networkx's answer.

    Parameters
    ----------
    A : sparse array
        Weighted adjacency, N x N; symmetric for an undirected graph.
    sources : array of int
        The source of each row of the answer.

    Returns
    -------
    array
        One row per source, one column per node.

    Raises
    ------
    networkx.PowerIterationFailedConvergence
        If a row has not converged in `max_iter` iterations.

    References
    ----------
    .. [1] L. Page, S. Brin, R. Motwani and T. Winograd, "The PageRank citation
       ranking: bringing order to the Web", Stanford InfoLab, 1999.
    .. [2] T. H. Haveliwala, "Topic-sensitive PageRank", Proc. 11th WWW
       conference, 2002, pp. 517-526.
    """
    n, alpha = A.shape[0], 1.0 - restart
    strength = np.asarray(A.sum(axis=1)).ravel()
    inverse = np.divide(1.0, strength, out=np.zeros(n), where=strength != 0)
    P_T = sparse.csr_array((sparse.diags_array(inverse) @ A).T)
    dangling = strength == 0
    chi = np.zeros((n, len(sources)))
    chi[sources, np.arange(len(sources))] = 1.0
    x = np.full((n, len(sources)), 1.0 / n)
    done = np.zeros((n, len(sources)))
    active = np.arange(len(sources))
    for _ in range(max_iter):
        last = x
        x = alpha * (P_T @ x + x[dangling].sum(axis=0) * chi) + restart * chi
        converged = np.abs(x - last).sum(axis=0) < n * tol
        done[:, active[converged]] = x[:, converged]
        active, x, chi = active[~converged], x[:, ~converged], chi[:, ~converged]
        if len(active) == 0:
            return done.T
    raise nx.PowerIterationFailedConvergence(max_iter)


BASELINES: dict[str, ScoreFunction] = {
    "popularity": popularity,
    "common_neighbours": common_neighbours,
    "adamic_adar": adamic_adar,
    "personalised_pagerank": pagerank_scores,
}


class ScoreRanker:
    """Ranks the candidates by a score, ties in the tie order."""

    def __init__(self, matrices: TrainMatrices, score: ScoreFunction) -> None:
        self.m = matrices
        self.score = score

    def rank(self, customers: Sequence[str], k: int) -> Iterator[list[str]]:
        """Yield the first k candidates of each customer, a block at a time."""
        for start in range(0, len(customers), BLOCK):
            block = customers[start : start + BLOCK]
            rows = self.m.rows(block)
            scores = self.score(self.m, rows).astype(float)
            scores[self._excluded(rows)] = -np.inf
            for row in scores:
                yield [self.m.order[self.m.suppliers[j]] for j in top_k(row, k)]

    def _excluded(self, rows: np.ndarray) -> np.ndarray:
        """Mark, per customer, the suppliers it buys from and itself."""
        columns = self.m.suppliers
        excluded = self.m.buys[rows][:, columns].toarray() > 0
        excluded |= rows[:, None] == columns[None, :]
        return excluded


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Return the indices of the k best finite scores, ties by index."""
    k = min(k, len(scores))
    if k == 0:
        return np.empty(0, dtype=np.int64)
    threshold = -np.partition(-scores, k - 1)[k - 1]
    pool = np.flatnonzero((scores >= threshold) & np.isfinite(scores))
    best = pool[np.argsort(-scores[pool], kind="stable")]
    return best[:k]


# -- running -------------------------------------------------------------------------


def evaluate(
    split: Split,
    *,
    k: int = 10,
    seed: int = 2026,
    max_customers: int | None = None,
    baselines: Sequence[str] = tuple(BASELINES),
    suggest_function: SuggestFunction = suggest,
    progress: Progress | None = None,
) -> Report:
    """Score the product and the baselines on a split.

    Parameters
    ----------
    split : Split
        From `make_split`.
    k : int
        Length of the ranking that is scored.
    seed : int
        Seed of the tie order and of the sample of customers.
    max_customers : int, optional
        Score a random sample of this many customers (all when None).
    baselines : sequence of str
        Names in `BASELINES` to compute.
    suggest_function : callable
        The recommender under test, `matching.ranking.suggest` by default.
    progress : callable, optional
        Called as ``progress(stage, done, total)`` as customers are ranked.
    """
    order = tie_order(split.nodes, seed)
    customers = _customers(split, seed, max_customers)
    logger.info(
        "split %s/%s: %d train links, %d customers to rank for",
        split.train_until,
        split.test,
        len(split.train),
        len(customers),
    )

    def run(stage: str, make: Callable[[], Ranker]) -> Metrics:
        return _run(split, customers, k, stage, make, progress)

    product = run("product", lambda: ProductRanker(split, order, suggest_function))
    scored: dict[str, Metrics] = {}
    if baselines:
        matrices = TrainMatrices(split, order)
        for name in baselines:
            scored[name] = run(name, partial(ScoreRanker, matrices, BASELINES[name]))
    return Report(split, k, customers, product, scored)


def _customers(split: Split, seed: int, limit: int | None) -> list[str]:
    customers = sorted(split.positives)
    if limit is None or limit >= len(customers):
        return customers
    rng = np.random.default_rng(seed)
    return sorted(
        customers[i] for i in rng.choice(len(customers), limit, replace=False)
    )


def _run(
    split: Split,
    customers: list[str],
    k: int,
    stage: str,
    make: Callable[[], Ranker],
    progress: Progress | None,
) -> Metrics:
    """Build a ranker, rank for every customer, and score the rankings."""
    started = time.perf_counter()
    ranked: Iterable[tuple[str, list[str]]]
    ranked = zip(customers, make().rank(customers, k), strict=True)
    if progress is not None:
        ranked = _reporting(ranked, stage, len(customers), progress)
    metrics = score_rankings(ranked, split.positives, k)
    seconds = time.perf_counter() - started
    logger.info("%s: recall@%d %.4f in %.1f s", stage, k, metrics.recall, seconds)
    return replace(metrics, seconds=seconds)


def _reporting(
    items: Iterable[tuple[str, list[str]]], stage: str, total: int, progress: Progress
) -> Iterator[tuple[str, list[str]]]:
    """Yield the items, calling `progress` every 50 and at the last one."""
    for done, item in enumerate(items, start=1):
        yield item
        if done % 50 == 0 or done == total:
            progress(stage, done, total)
