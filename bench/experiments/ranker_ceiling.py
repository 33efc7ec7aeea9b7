"""How far a learnt ranker over graph-only features gets on the supply network.

Issue #4 asks for 1.2 times personalised PageRank's recall@10 on the reported
split (train until 2021-06-30, test 2021-12-31). This experiment bounds what a
learnt ranker reaches there when, as in `alliance evaluate`, only the graph is
known: LightGBM lambdarank over 26 graph features per (customer, candidate)
pair, trained on the candidate pools of earlier splits. It exists to say
whether the target is within reach of any ranker built on these signals, not
to be shipped: it is not product code, nothing imports it, the tests do not run
it, and it needs `pip install lightgbm` (with NumPy and SciPy) on top of the
project. From the repository root:

    python bench/experiments/ranker_ceiling.py --data ../shared/data/supply-network-cn

It takes about 10 minutes on 2 cores; figures go to stdout, progress to
stderr, and `bench/results/ranker-ceiling.txt` keeps one run's output.

Protocol (`matching/evaluation.py`'s, reimplemented here in NumPy): train on
the union of the snapshots up to `train_until`; the positives are the links of
the next snapshot never seen before whose supplier supplied someone in train
and whose customer is a train node, self links dropped; every known supplier a
customer does not already buy from is a candidate. Recall@10 is averaged over
the customers with a positive. Two departures from `alliance evaluate`: ties
are broken by node id, not by a seeded random order, and a firm's links to
itself stay in the train graph (25 of 110,548 links on split B).

What it measures, for tuning split B (train until 2020-12-31) and, once, for
the reported split:

- plain personalised PageRank on the undirected train graph (restart 0.15, 30
  steps), over all candidates: the baseline of the 1.2x target;
- odd-walk PageRank (the mass of odd-length walks only), which `suggest` uses;
- the pool's upper bound: each customer's pool is the union of the top
  candidates by odd-walk PageRank (150), even-walk PageRank (60), a
  degree-normalised three-step co-customer walk (60) and supplier-of-supplier
  paths (30), about 210 candidates; the share of positives inside it bounds any
  ranker of the pool;
- LightGBM lambdarank over the pool, trained on the pools of all earlier splits
  (three for B, four for the reported split). Recall counts a positive outside
  the pool as a miss, so all figures are over all of a customer's positives.

Odd-walk PageRank is read on the pool too; that is the same as ranking every
candidate by it, since the pool holds its top 150.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import scipy.sparse as sp

K = 10
RESTART = 0.15
WALK_STEPS = 30
BATCH = 400  # customers per block of PageRank vectors

# (train_until, test): four training splits, tuning split B, the reported split.
SPLITS = (
    ("2019-06-30", "2019-12-31"),
    ("2019-12-31", "2020-06-30"),
    ("2020-06-30", "2020-12-31"),
    ("2020-12-31", "2021-06-30"),
    ("2021-06-30", "2021-12-31"),
)
TUNING = "2020-12-31"
REPORTED = "2021-06-30"

# Pool sources and how many top candidates each contributes.
POOL_SIZES = {"ppr_odd": 150, "ppr_even": 60, "walk3": 60, "sup_of_sup": 30}

LGB_PARAMS = {
    "objective": "lambdarank",
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "seed": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}
ROUNDS = 600

# Features of a (customer C, candidate supplier S) pair, in column order.
# "Last" is the last train snapshot; a "dropped" link is in train but not in it;
# a "gained" link was not in the first snapshot (2015-06-30).
FEATURES = {
    "ppr_odd": "log odd-walk PageRank from C, train graph",
    "ppr_even": "log even-walk PageRank from C, train graph",
    "sup_of_sup": "log1p paths S -> X -> C",
    "shared_customer": "log1p paths S -> X <- C",
    "shared_supplier": "log1p paths X -> S, X -> C",
    "sup_of_peer": "log1p paths S -> Y <- X -> C",
    "walk3": "log 3-step walk C -> suppliers -> their customers -> suppliers",
    "sup_of_last_sup": "log1p paths S -> X -> C, X -> C in the last snapshot",
    "sup_of_peer_last": "log1p paths S -> Y <- X -> C, all in the last snapshot",
    "is_customer_of_c": "1 if C supplies S",
    "s_customers": "log1p S's customers",
    "s_suppliers": "log1p S's suppliers",
    "s_customers_last": "log1p S's customers in the last snapshot",
    "s_new_customers_last": "log1p S's customers first seen in the last snapshot",
    "s_idle_snapshots": "snapshots since S last supplied anyone",
    "s_age_snapshots": "snapshots since S first supplied anyone",
    "c_suppliers": "log1p C's suppliers",
    "c_customers": "log1p C's customers",
    "ppr_odd_recent": "log odd-walk PageRank, links of the last two snapshots",
    "ppr_even_recent": "log even-walk PageRank, links of the last two snapshots",
    "s_gained_share": "share of S's customers gained after the first snapshot",
    "s_gain_rate": "log1p S's gained customers per snapshot it was active",
    "c_gained_suppliers": "log1p C's suppliers gained after the first snapshot",
    "walk3_dropped": "log 3-step walk from C's dropped suppliers",
    "sup_of_dropped_sup": "log1p paths S -> X -> C, X -> C dropped",
    "c_dropped_suppliers": "C's dropped suppliers",
}


@dataclass
class Split:
    """One train/test split, nodes numbered 0..n-1 in id order."""

    train_until: str
    test: str
    adjacency: sp.csr_matrix  # [s, c] = 1 if s supplied c in train
    first_seen: sp.csr_matrix  # [s, c] = train snapshot (1-based) first holding s -> c
    last_seen: sp.csr_matrix  # [s, c] = train snapshot (1-based) last holding s -> c
    n_snapshots: int
    positives: dict[int, set[int]]  # customer -> its new suppliers in test

    @property
    def customers(self) -> np.ndarray:
        return np.array(sorted(self.positives), dtype=np.int64)


@dataclass
class Pools:
    """Candidate pools of one split: features and labels per customer."""

    split: Split
    features: list[np.ndarray]  # per customer, (pool size, len(FEATURES))
    labels: list[np.ndarray]  # per customer, 1 for a positive in the pool
    n_positives: np.ndarray  # per customer, all its positives
    ppr_recall: float  # plain PageRank's recall@K over all candidates

    def recall(self, scores: list[np.ndarray]) -> float:
        """Recall@K of ranking each pool by `scores`; positives outside miss."""
        hits = [
            labels[np.argsort(-s)[:K]].sum()
            for s, labels in zip(scores, self.labels, strict=True)
        ]
        return float(np.mean(np.array(hits) / self.n_positives))

    def upper_bound(self) -> float:
        """Recall of a ranker that puts every positive of the pool first."""
        hits = np.array([labels.sum() for labels in self.labels])
        return float(np.mean(hits / self.n_positives))


def log(message: str) -> None:
    print(f"[ranker_ceiling] {message}", file=sys.stderr, flush=True)


def load_snapshots(data: Path) -> dict[str, set[tuple[int, int]]]:
    """Read A_YYYY_MM_DD.csv (supplier,customer) files, keyed by ISO date."""
    snapshots = {}
    for path in sorted(data.glob("A_*.csv")):
        links = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
        snapshots[path.stem[2:].replace("_", "-")] = set(map(tuple, links.tolist()))
    if not snapshots:
        sys.exit(f"no A_*.csv snapshots in {data}")
    return snapshots


def make_split(
    snapshots: dict[str, set[tuple[int, int]]], train_until: str, test: str
) -> Split:
    """Train graph, link dates and positives of one split (the protocol above)."""
    dates = [d for d in snapshots if d <= train_until]
    train = sorted(set().union(*(snapshots[d] for d in dates)))
    seen = set().union(*(snapshots[d] for d in snapshots if d < test))
    known_suppliers = {s for s, _ in train}
    index = {u: i for i, u in enumerate(sorted({u for link in train for u in link}))}
    positives = defaultdict(set)
    for s, c in snapshots[test]:
        if (s, c) not in seen and s in known_suppliers and c in index and s != c:
            positives[index[c]].add(index[s])
    first: dict[tuple[int, int], int] = {}
    last: dict[tuple[int, int], int] = {}
    for number, d in enumerate(dates, start=1):
        for link in snapshots[d]:
            first.setdefault(link, number)
            last[link] = number
    rows = np.array([index[s] for s, _ in train])
    cols = np.array([index[c] for _, c in train])

    def matrix(values: list[int]) -> sp.csr_matrix:
        data = np.array(values, dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(index), len(index)))

    return Split(
        train_until=train_until,
        test=test,
        adjacency=matrix([1] * len(train)),
        first_seen=matrix([first[link] for link in train]),
        last_seen=matrix([last[link] for link in train]),
        n_snapshots=len(dates),
        positives=dict(positives),
    )


def undirected(links: sp.spmatrix) -> sp.csr_matrix:
    """0/1 symmetric float32 matrix of a directed link matrix."""
    links = (links > 0).astype(np.float32)
    return ((links + links.T) > 0).astype(np.float32).tocsr()


def ppr_parts(graph: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Personalised PageRank from each of `rows`, split into even and odd walks.

    Returns (even, odd), each (len(rows), n); their sum is plain PageRank with
    restart RESTART, truncated after WALK_STEPS steps.
    """
    degree = np.asarray(graph.sum(axis=1)).ravel()
    step = (graph @ sp.diags(1 / np.maximum(degree, 1))).tocsr().astype(np.float32)
    mass = np.zeros((graph.shape[0], len(rows)), np.float32)
    mass[rows, np.arange(len(rows))] = 1
    even, odd = np.zeros_like(mass), np.zeros_like(mass)
    weight = RESTART
    for t in range(WALK_STEPS + 1):
        if t % 2:
            odd += weight * mass
        else:
            even += weight * mass
        mass = step @ mass
        weight *= 1 - RESTART
    return even.T, odd.T


def build_pools(split: Split) -> Pools:
    """Pool, features and labels for every customer of `split`; plain PPR recall."""
    A = split.adjacency
    AT = A.T.tocsr()
    n = A.shape[0]
    last_n = split.n_snapshots
    last_links = (split.last_seen == last_n).astype(np.float32).tocsr()
    dropped = (A - last_links).tocsr()
    dropped.eliminate_zeros()
    gained = (split.first_seen > 1).astype(np.float32)
    graph = undirected(A)
    graph_recent = undirected(split.last_seen >= last_n - 1)

    out_degree = np.asarray(A.sum(axis=1)).ravel()
    in_degree = np.asarray(A.sum(axis=0)).ravel()
    is_supplier = out_degree > 0
    out_last = np.asarray(last_links.sum(axis=1)).ravel()
    out_new_last = np.asarray((split.first_seen == last_n).sum(axis=1)).ravel()
    gained_out = np.asarray(gained.sum(axis=1)).ravel()
    gained_in = np.asarray(gained.sum(axis=0)).ravel()
    seen_first = np.full(n, np.inf)
    seen_last = np.zeros(n)
    coo = split.first_seen.tocoo()
    np.minimum.at(seen_first, coo.row, coo.data)
    coo = split.last_seen.tocoo()
    np.maximum.at(seen_last, coo.row, coo.data)
    active = np.where(is_supplier, seen_last - seen_first + 1, 1)
    # Walk steps: customer -> its suppliers (1/in-degree), supplier -> its
    # customers (1/out-degree).
    to_supplier = (A @ sp.diags(1 / np.maximum(in_degree, 1))).astype(np.float32)
    to_customer = (AT @ sp.diags(1 / np.maximum(out_degree, 1))).astype(np.float32)

    customers = split.customers
    features, labels, n_positives, ppr_hits = [], [], [], []
    started = time.monotonic()
    for start in range(0, len(customers), BATCH):
        rows = customers[start : start + BATCH]
        even, odd = ppr_parts(graph, rows)
        even_recent, odd_recent = ppr_parts(graph_recent, rows)
        pick = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))),
            shape=(n, len(rows)),
        )
        # Column j of each product: paths ending at customer rows[j].
        sups = A @ pick  # X -> C
        sups_dropped = dropped @ pick
        customers_of_c = AT @ pick  # C -> X
        first_step = sups @ sp.diags(
            (1 / np.maximum(in_degree[rows], 1)).astype(np.float32)
        )
        sup_of_sup = (A @ sups).toarray().T
        shared_customer = (A @ customers_of_c).toarray().T
        shared_supplier = (AT @ sups).toarray().T
        sup_of_peer = (A @ (AT @ sups)).toarray().T
        walk3 = (to_supplier @ (to_customer @ first_step)).toarray().T
        sup_of_last_sup = (A @ (last_links @ pick)).toarray().T
        sup_of_peer_last = (
            (last_links @ (last_links.T @ (last_links @ pick))).toarray().T
        )
        is_customer_of_c = customers_of_c.toarray().T
        walk3_dropped = (to_supplier @ (to_customer @ sups_dropped)).toarray().T
        sup_of_dropped_sup = (A @ sups_dropped).toarray().T
        n_dropped = np.asarray(sups_dropped.sum(axis=0)).ravel()

        for j, c in enumerate(rows):
            allowed = is_supplier.copy()
            allowed[c] = False
            allowed[AT[c].indices] = False
            positives = split.positives[c]
            ppr = np.where(allowed, even[j].astype(np.float64) + odd[j], -np.inf)
            ppr_hits.append(len(positives & set(np.argpartition(-ppr, K)[:K].tolist())))

            pool: set[int] = set()
            sources = {
                "ppr_odd": odd[j],
                "ppr_even": even[j],
                "walk3": walk3[j],
                "sup_of_sup": sup_of_sup[j],
            }
            for name, size in POOL_SIZES.items():
                score = np.where(allowed, sources[name], -np.inf)
                top = np.argpartition(-score, size)[:size]
                pool.update(top[score[top] > 0].tolist())
            cand = np.array(sorted(pool), dtype=np.int64)

            per_customer = np.ones(len(cand))  # a constant column
            columns = {
                "ppr_odd": np.log(odd[j, cand] + 1e-12),
                "ppr_even": np.log(even[j, cand] + 1e-12),
                "sup_of_sup": np.log1p(sup_of_sup[j, cand]),
                "shared_customer": np.log1p(shared_customer[j, cand]),
                "shared_supplier": np.log1p(shared_supplier[j, cand]),
                "sup_of_peer": np.log1p(sup_of_peer[j, cand]),
                "walk3": np.log(walk3[j, cand] + 1e-9),
                "sup_of_last_sup": np.log1p(sup_of_last_sup[j, cand]),
                "sup_of_peer_last": np.log1p(sup_of_peer_last[j, cand]),
                "is_customer_of_c": is_customer_of_c[j, cand],
                "s_customers": np.log1p(out_degree[cand]),
                "s_suppliers": np.log1p(in_degree[cand]),
                "s_customers_last": np.log1p(out_last[cand]),
                "s_new_customers_last": np.log1p(out_new_last[cand]),
                "s_idle_snapshots": last_n - seen_last[cand],
                "s_age_snapshots": last_n - seen_first[cand],
                "c_suppliers": per_customer * np.log1p(in_degree[c]),
                "c_customers": per_customer * np.log1p(out_degree[c]),
                "ppr_odd_recent": np.log(odd_recent[j, cand] + 1e-12),
                "ppr_even_recent": np.log(even_recent[j, cand] + 1e-12),
                "s_gained_share": gained_out[cand] / np.maximum(out_degree[cand], 1),
                "s_gain_rate": np.log1p(gained_out[cand] / active[cand]),
                "c_gained_suppliers": per_customer * np.log1p(gained_in[c]),
                "walk3_dropped": np.log(walk3_dropped[j, cand] + 1e-9),
                "sup_of_dropped_sup": np.log1p(sup_of_dropped_sup[j, cand]),
                "c_dropped_suppliers": per_customer * n_dropped[j],
            }
            features.append(
                np.column_stack([columns[name] for name in FEATURES]).astype(np.float32)
            )
            labels.append(np.isin(cand, list(positives)).astype(np.int32))
            n_positives.append(len(positives))
        log(
            f"split {split.train_until} -> {split.test}: "
            f"{start + len(rows)}/{len(customers)} customers, "
            f"{time.monotonic() - started:.0f} s"
        )
    n_positives_array = np.array(n_positives)
    return Pools(
        split=split,
        features=features,
        labels=labels,
        n_positives=n_positives_array,
        ppr_recall=float(np.mean(np.array(ppr_hits) / n_positives_array)),
    )


def train_ranker(training: list[Pools]) -> lgb.Booster:
    """LightGBM lambdarank on the non-empty pools of `training`, one query each."""
    features = [x for p in training for x in p.features if len(x)]
    labels = [y for p in training for y in p.labels if len(y)]
    log(f"training LightGBM on {len(training)} splits, {sum(map(len, labels))} pairs")
    data = lgb.Dataset(
        np.vstack(features),
        np.concatenate(labels),
        group=[len(x) for x in features],
        feature_name=list(FEATURES),
    )
    return lgb.train(LGB_PARAMS, data, num_boost_round=ROUNDS)


def predict(model: lgb.Booster, pools: Pools) -> list[np.ndarray]:
    """Model scores of every pool of `pools`, one array per customer."""
    scores = model.predict(np.vstack(pools.features))
    return np.split(scores, np.cumsum([len(x) for x in pools.features])[:-1])


def report(title: str, pools: Pools, model: lgb.Booster) -> None:
    """Print recall@K of the four rankers on `pools`, and each over plain PPR."""
    ppr = pools.ppr_recall
    odd_column = list(FEATURES).index("ppr_odd")
    rows = [
        ("plain personalised PageRank", ppr),
        ("odd-walk PageRank", pools.recall([x[:, odd_column] for x in pools.features])),
        ("pool upper bound", pools.upper_bound()),
        ("LightGBM lambdarank", pools.recall(predict(model, pools))),
    ]
    print(title)
    for name, value in rows:
        print(f"  {name:<30} {value:.4f}  {value / ppr:.3f}x PPR")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data/supply-network-cn"),
        help="directory of the A_YYYY_MM_DD.csv snapshots",
    )
    args = parser.parse_args()
    started = time.monotonic()
    snapshots = load_snapshots(args.data)
    pools = {}
    for train_until, test in SPLITS:
        pools[train_until] = build_pools(make_split(snapshots, train_until, test))

    print(f"recall@{K} over all positives of each customer (outside the pool: a miss)")
    print()
    print("split (train until -> test)  customers  positives  mean pool  in pool")
    for p in pools.values():
        print(
            f"  {p.split.train_until} -> {p.split.test}"
            f"  {len(p.features):9,}  {p.n_positives.sum():9,}"
            f"  {np.mean([len(x) for x in p.features]):9.1f}  {p.upper_bound():7.4f}"
        )
    print()

    order = list(pools)
    models = {}
    for split_at, title in (
        (TUNING, "tuning split B"),
        (REPORTED, "reported split, measured once"),
    ):
        earlier = [pools[t] for t in order[: order.index(split_at)]]
        models[split_at] = train_ranker(earlier)
        p = pools[split_at]
        report(
            f"{title} (train until {p.split.train_until}, test {p.split.test}); "
            f"LightGBM trained on the {len(earlier)} earlier splits",
            p,
            models[split_at],
        )

    gains = {t: m.feature_importance("gain") for t, m in models.items()}
    shares = {t: g / g.sum() for t, g in gains.items()}
    print("top features by gain (share of total gain), by the reported split's model")
    print(f"  {'feature':<22} {'reported':>8} {'split B':>8}  meaning")
    for i in np.argsort(-shares[REPORTED])[:12]:
        name = list(FEATURES)[i]
        print(
            f"  {name:<22} {shares[REPORTED][i]:8.3f} {shares[TUNING][i]:8.3f}"
            f"  {FEATURES[name]}"
        )
    print()
    print(f"run time {(time.monotonic() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
