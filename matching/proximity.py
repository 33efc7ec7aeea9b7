"""Graph proximity: personalised PageRank by local forward push."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Hashable, Iterable

import networkx as nx

logger = logging.getLogger(__name__)


def personalized_pagerank(
    G: nx.Graph,
    source: Hashable,
    alpha: float = 0.15,
    eps: float = 1e-4,
    *,
    weight: str = "weight",
    strength: str | None = None,
) -> dict[Hashable, float]:
    r"""Approximate the personalised PageRank vector of `source` by local push.

    The personalised PageRank vector :math:`pr_\alpha(\chi_s)` is the stationary
    distribution of a walk that, at each step, jumps back to the source with
    probability :math:`\alpha` and otherwise moves to a neighbour chosen in
    proportion to edge weight:

    .. math:: pr = \alpha \chi_s + (1 - \alpha)\, pr\, D^{-1} A

    where :math:`A` is the weighted adjacency matrix and :math:`D` the diagonal
    of weighted degrees :math:`d(u)`. Forward push keeps an estimate :math:`p`
    and a residual :math:`r`, starting from :math:`p = 0, r = \chi_s`, with the
    invariant :math:`p + pr_\alpha(r) = pr_\alpha(\chi_s)`. While a node has
    :math:`r(u) \ge \epsilon d(u)` it is pushed:

    .. math::

        p(u) \mathrel{+}= \alpha r(u), \quad
        r(v) \mathrel{+}= (1 - \alpha) r(u) w(u, v) / d(u) \;\; \forall v \sim u,
        \quad r(u) = 0

    On an undirected graph the result satisfies
    :math:`0 \le pr(u) - p(u) < \epsilon d(u)` for every node. Each push of
    :math:`u` settles at least :math:`\alpha \epsilon d(u)` of the unit mass and
    reads the :math:`\deg(u)` edges of :math:`u`, so with weights of at least 1
    the work is at most :math:`1 / (\alpha \epsilon)` edge reads, whatever the
    size of `G`.

    This is the push of Andersen, Chung and Lang without their lazy half-step,
    so that the vector agrees with
    ``nx.pagerank(G, alpha=1 - alpha, personalization={source: 1})``. A source
    without weighted degree keeps all the mass, as in ``nx.pagerank``, where a
    dangling node's walk restarts at the source.

    Parameters
    ----------
    G : NetworkX graph
        Undirected; edge weights must not be negative.
    source : node
        The node the walk restarts from.
    alpha : float
        Restart probability, in (0, 1].
    eps : float
        Residual tolerance per unit of weighted degree; smaller is more exact.
    weight : str
        Edge attribute holding the weight (1 when missing).
    strength : str, optional
        Node attribute holding the node's weighted degree, if the caller keeps
        one; otherwise it is summed from the node's edges when first needed.

    Returns
    -------
    dict
        Node to approximate PageRank value, for the nodes that were pushed.

    References
    ----------
    .. [1] R. Andersen, F. Chung and K. Lang, "Local graph partitioning using
       PageRank vectors", Proc. 47th IEEE FOCS, 2006, pp. 475-486.

    Examples
    --------
    >>> G = nx.path_graph(3)
    >>> p = personalized_pagerank(G, 0, eps=1e-8)
    >>> round(p[0], 3), round(p[1], 3), round(p[2], 3)
    (0.345, 0.459, 0.195)
    """
    if not 0 < alpha <= 1 or eps <= 0:
        raise ValueError("need 0 < alpha <= 1 and eps > 0")
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} is not in G")
    degree = _degree_lookup(G, weight, strength)
    p: dict[Hashable, float] = {}
    r: dict[Hashable, float] = {source: 1.0}
    # The source is pushed once whatever its degree, so that it always has a value.
    queue, queued = deque([source]), {source}
    while queue:
        u = queue.popleft()
        queued.discard(u)
        for v in _push(G, u, p, r, alpha, weight, degree(u)):
            if v not in queued and r[v] > 0 and eps * degree(v) <= r[v]:
                queue.append(v)
                queued.add(v)
    logger.debug("pushed %d nodes from %s", len(p), source)
    return p


def odd_personalized_pagerank(
    G: nx.Graph,
    source: Hashable,
    alpha: float = 0.15,
    eps: float = 1e-4,
    *,
    weight: str = "weight",
    strength: str | None = None,
    follow: Callable[[Hashable], bool] | None = None,
) -> dict[Hashable, float]:
    r"""Approximate the part of personalised PageRank made by walks of odd length.

    Personalised PageRank sums the walks from the source by length,
    :math:`pr = \alpha \sum_k (1 - \alpha)^k \chi_s P^k`; this keeps the odd
    terms only:

    .. math:: pr^{odd} = \alpha \sum_{k\ odd} (1 - \alpha)^k \chi_s P^k

    In a supply network a firm and a firm it could buy from mostly sit at odd
    distance (its supplier's other customers' suppliers, its customers); the
    even walks lead to its competitors and fellow customers. The vector is the
    ordinary PageRank of the source on the bipartite double cover of `G`
    (each node split by the parity of the walk that reached it), read on the
    odd copies, and is computed by the same forward push as
    `personalized_pagerank`, with the same guarantee and the same bound of
    :math:`1 / (\alpha \epsilon)` edge reads [1]_.

    `follow`, if given, says which neighbours a walk may enter (the others are
    treated as absent; `strength` must then count only the edges it follows).

    References
    ----------
    .. [1] R. Andersen, F. Chung and K. Lang, "Local graph partitioning using
       PageRank vectors", Proc. 47th IEEE FOCS, 2006, pp. 475-486.

    Examples
    --------
    >>> G = nx.path_graph(3)
    >>> p = odd_personalized_pagerank(G, 0, eps=1e-8)
    >>> sorted(p), round(p[1], 3)
    ([1], 0.459)
    """
    return parity_pagerank(
        G, source, alpha, eps, weight=weight, strength=strength, follow=follow
    )[1]


def parity_pagerank(
    G: nx.Graph,
    source: Hashable,
    alpha: float = 0.15,
    eps: float = 1e-4,
    *,
    weight: str = "weight",
    strength: str | None = None,
    follow: Callable[[Hashable], bool] | None = None,
) -> tuple[dict[Hashable, float], dict[Hashable, float]]:
    """Return the even and the odd parts of `odd_personalized_pagerank`'s push.

    Their sum approximates personalised PageRank; see that function.
    """
    if not 0 < alpha <= 1 or eps <= 0:
        raise ValueError("need 0 < alpha <= 1 and eps > 0")
    if source not in G:
        raise nx.NodeNotFound(f"source {source!r} is not in G")
    degree = _degree_lookup(G, weight, strength)
    # p[parity] and r[parity]: estimate and residual of walks of that parity.
    p: tuple[dict[Hashable, float], dict[Hashable, float]] = ({}, {})
    r: tuple[dict[Hashable, float], dict[Hashable, float]] = ({source: 1.0}, {})
    queue, queued = deque([(source, 0)]), {(source, 0)}
    while queue:
        key = queue.popleft()
        queued.discard(key)
        u, parity = key
        d_u = degree(u)
        mass = r[parity].pop(u, 0.0)
        if d_u <= 0:
            p[parity][u] = p[parity].get(u, 0.0) + mass
            continue
        p[parity][u] = p[parity].get(u, 0.0) + alpha * mass
        spread, other = (1 - alpha) * mass / d_u, r[1 - parity]
        for v, attrs in G.adj[u].items():
            if follow is not None and not follow(v):
                continue
            other[v] = other.get(v, 0.0) + spread * attrs.get(weight, 1)
            if (v, 1 - parity) not in queued and eps * degree(v) <= other[v]:
                queue.append((v, 1 - parity))
                queued.add((v, 1 - parity))
    logger.debug("pushed %d nodes on odd walks from %s", len(p[1]), source)
    return p


def _degree_lookup(
    G: nx.Graph, weight: str, strength: str | None
) -> Callable[[Hashable], float]:
    """Return a function giving a node's weighted degree, cached per call."""
    if strength is not None:
        nodes = G.nodes
        return lambda v: float(nodes[v][strength])
    cache: dict[Hashable, float] = {}

    def degree(v: Hashable) -> float:
        if v not in cache:
            cache[v] = float(G.degree(v, weight=weight))
        return cache[v]

    return degree


def _push(
    G: nx.Graph,
    u: Hashable,
    p: dict[Hashable, float],
    r: dict[Hashable, float],
    alpha: float,
    weight: str,
    d_u: float,
) -> Iterable[Hashable]:
    """Push u's residual: keep alpha of it, spread the rest; return receivers."""
    mass = r.pop(u, 0.0)
    if d_u <= 0:
        # Only the source can be dangling: mass reaches any other node through
        # an edge of positive weight. Its walk restarts at itself for ever.
        p[u] = p.get(u, 0.0) + mass
        return ()
    p[u] = p.get(u, 0.0) + alpha * mass
    spread = (1 - alpha) * mass / d_u
    for v, attrs in G.adj[u].items():
        r[v] = r.get(v, 0.0) + spread * attrs.get(weight, 1)
    return G.adj[u].keys()


def bfs_parents(
    G: nx.Graph, source: Hashable, within: Collection[Hashable]
) -> dict[Hashable, Hashable]:
    """Return breadth-first parents from `source`, expanding only nodes in `within`.

    Expanding only the nodes that a push reached keeps the search as local as
    the push itself.
    """
    parents: dict[Hashable, Hashable] = {source: source}
    frontier = deque([source])
    while frontier:
        u = frontier.popleft()
        for v in G.adj[u]:
            if v not in parents:
                parents[v] = u
                if v in within:
                    frontier.append(v)
    return parents


def path_to(parents: dict[Hashable, Hashable], target: Hashable) -> list[Hashable]:
    """Return the path from the search's source to `target`, or [] if unreached."""
    if target not in parents:
        return []
    path = [target]
    while parents[path[-1]] != path[-1]:
        path.append(parents[path[-1]])
    return path[::-1]
