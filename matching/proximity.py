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
