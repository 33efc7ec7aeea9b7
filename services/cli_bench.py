"""The ``alliance bench`` and ``alliance evaluate`` commands: measured, offline."""

from __future__ import annotations

import json
import logging
import random
import resource
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

from schemas.fiscal import JST
from services.bench_ingest import bench_ingest

if TYPE_CHECKING:
    from matching.evaluation import Report
    from matching.graph import AllianceGraph
    from matching.synthetic import SyntheticSpec

logger = logging.getLogger(__name__)

# The moment suggestions are computed for in the benchmark.
BENCH_NOW = datetime(2026, 10, 1, 9, 0, tzinfo=JST)
TARGET_RATIO = 20.0
# The names of matching.evaluation.BASELINES, kept here so that the command line
# starts without importing NumPy and SciPy.
DEFAULT_BASELINES = (
    "popularity",
    "common_neighbours",
    "adamic_adar",
    "personalised_pagerank",
)


# -- bench ---------------------------------------------------------------------------


@click.group()
def bench() -> None:
    """Measure the platform's computations on a synthetic alliance."""


bench.add_command(bench_ingest)


@bench.command(name="suggestions")
@click.option("--orgs", default=100_000, show_default=True, help="Organisations.")
@click.option(
    "--edges", default=1_000_000, show_default=True, help="Distinct supply links."
)
@click.option("--seed", default=2026, show_default=True, help="Seed of the alliance.")
@click.option(
    "--sample",
    default=200,
    show_default=True,
    help="Members whose suggestions are timed.",
)
@click.option(
    "--pagerank-runs", default=3, show_default=True, help="Runs of networkx.pagerank."
)
@click.option("--limit", default=10, show_default=True, help="Suggestions per member.")
@click.option(
    "--validate",
    is_flag=True,
    help="Validate and apply every envelope as the graph service does (time "
    "quadratic in --orgs; fine up to about 10,000).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bench_suggestions(
    orgs: int,
    edges: int,
    seed: int,
    sample: int,
    pagerank_runs: int,
    limit: int,
    validate: bool,
    as_json: bool,
) -> None:
    """Time fresh suggestions against networkx.pagerank on a synthetic alliance."""
    from matching.synthetic import SyntheticSpec

    spec = SyntheticSpec(orgs=orgs, supply_links=edges, seed=seed)
    graph, build_s = _build(spec, validate)
    build_rss = _peak_rss_mib()
    members = random.Random(seed).sample(list(graph.orgs()), min(sample, orgs))
    times = _time_suggestions(graph, members, limit)
    pagerank = _time_pagerank(graph, members[: max(pagerank_runs, 1)])
    result = _bench_result(spec, graph, build_s, times, pagerank, build_rss)
    result["validated"] = validate
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(_bench_text(result))


def _build(spec: SyntheticSpec, validate: bool) -> tuple[AllianceGraph, float]:
    """Plan and apply the synthetic log, with a progress bar; return its time."""
    from matching.synthetic import SyntheticLog, build_graph

    started = time.perf_counter()
    log = SyntheticLog(spec)
    path = "validated envelopes" if validate else "fast path"
    with tqdm(
        total=len(log), desc=f"building ({path})", unit=" events", file=sys.stderr
    ) as bar:
        graph = build_graph(log, validate=validate, progress=bar.update)
    return graph, time.perf_counter() - started


def _time_suggestions(
    graph: AllianceGraph, members: list[str], limit: int
) -> list[float]:
    """Return the seconds of one fresh `suggest` call per member."""
    from matching.ranking import suggest

    times = []
    for org_id in tqdm(members, desc="suggest", unit=" members", file=sys.stderr):
        started = time.perf_counter()
        suggest(graph, org_id, limit=limit, now=BENCH_NOW)
        times.append(time.perf_counter() - started)
    return times


def _time_pagerank(graph: AllianceGraph, members: list[str]) -> list[float]:
    """Return the seconds of plain personalised networkx.pagerank per member."""
    import networkx as nx

    from matching.ranking import PPR_ALPHA

    times = []
    for org_id in tqdm(
        members, desc="networkx.pagerank", unit=" runs", file=sys.stderr
    ):
        started = time.perf_counter()
        nx.pagerank(graph.G, alpha=1 - PPR_ALPHA, personalization={org_id: 1.0})
        times.append(time.perf_counter() - started)
    return times


def _peak_rss_mib() -> float:
    """Return the process's peak resident memory so far, in MiB (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bench_result(
    spec: SyntheticSpec,
    graph: AllianceGraph,
    build_s: float,
    times: list[float],
    pagerank: list[float],
    build_rss: float,
) -> dict[str, Any]:
    import numpy as np

    p50, p99 = (float(np.percentile(times, q)) for q in (50, 99))
    baseline = statistics.median(pagerank)
    return {
        "orgs": spec.orgs,
        "supply_links": spec.supply_links,
        "seed": spec.seed,
        "nodes": graph.G.number_of_nodes(),
        "edges": graph.G.number_of_edges(),
        "build_s": round(build_s, 1),
        "suggest_samples": len(times),
        "suggest_p50_ms": round(p50 * 1000, 2),
        "suggest_p99_ms": round(p99 * 1000, 2),
        "suggest_max_ms": round(max(times) * 1000, 2),
        "pagerank_runs": len(pagerank),
        "pagerank_median_s": round(baseline, 3),
        "ratio": round(baseline / p99, 1),
        "target_ratio": TARGET_RATIO,
        "peak_rss_after_build_mib": round(build_rss),
        "peak_rss_mib": round(_peak_rss_mib()),
    }


def _bench_text(r: dict[str, Any]) -> str:
    met = "met" if r["ratio"] >= r["target_ratio"] else "NOT met"
    path = "validated envelopes" if r["validated"] else "fast path"
    return "\n".join(
        [
            f"synthetic alliance: {r['orgs']:,} orgs, {r['supply_links']:,} supply "
            f"links, seed {r['seed']}",
            f"graph: {r['nodes']:,} nodes, {r['edges']:,} edges, built in "
            f"{r['build_s']:.1f} s ({path})",
            f"suggest, fresh, {r['suggest_samples']} random members: "
            f"p50 {r['suggest_p50_ms']:.1f} ms, p99 {r['suggest_p99_ms']:.1f} ms, "
            f"max {r['suggest_max_ms']:.1f} ms",
            f"networkx.pagerank, personalised, {r['pagerank_runs']} runs: "
            f"median {r['pagerank_median_s']:.2f} s",
            f"ratio (pagerank median / suggest p99): {r['ratio']:.0f}x "
            f"(target {r['target_ratio']:.0f}x: {met})",
            f"peak memory (max RSS): {r['peak_rss_after_build_mib']:,} MiB after "
            f"the build, {r['peak_rss_mib']:,} MiB in all",
        ]
    )


# -- evaluate ------------------------------------------------------------------------


@click.command(name="evaluate")
@click.option(
    "--snapshots",
    "directory",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of A_YYYY_MM_DD.csv files with the header supplier,customer.",
)
@click.option(
    "--train-until",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Last snapshot of the train graph.",
)
@click.option(
    "--test",
    "test_day",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="The snapshot whose new links are predicted.",
)
@click.option("--k", default=10, show_default=True, help="Length of a scored ranking.")
@click.option("--seed", default=2026, show_default=True, help="Seed of the tie order.")
@click.option(
    "--customers",
    "max_customers",
    type=int,
    default=None,
    help="Score a random sample of this many customers (default: all).",
)
@click.option(
    "--baselines",
    default=",".join(DEFAULT_BASELINES),
    show_default=True,
    help="Comma-separated baselines to compute ('' for none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(
    directory: Path,
    train_until: datetime,
    test_day: datetime,
    k: int,
    seed: int,
    max_customers: int | None,
    baselines: str,
    as_json: bool,
) -> None:
    """Score suggestions and baselines on new links of a dated supply network."""
    from matching import evaluation
    from matching.evaluation import BASELINES, EvaluationError, make_split
    from matching.snapshots import read_snapshots

    names = [name for name in baselines.split(",") if name]
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise click.BadParameter(f"unknown baselines: {', '.join(unknown)}")
    try:
        snapshots = read_snapshots(directory, until=test_day.date())
        split = make_split(snapshots, train_until.date(), test_day.date())
        with _ProgressBars() as bars:
            report = evaluation.evaluate(
                split,
                k=k,
                seed=seed,
                max_customers=max_customers,
                baselines=names,
                progress=bars.update,
            )
    except EvaluationError as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(report.to_dict()) if as_json else _report_text(report))


class _ProgressBars:
    """One progress bar per stage of an evaluation, on stderr."""

    def __init__(self) -> None:
        self._bars: dict[str, tqdm] = {}

    def __enter__(self) -> _ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._bars.values():
            bar.close()

    def update(self, stage: str, done: int, total: int) -> None:
        """Move the stage's bar to `done` of `total`, opening or closing it."""
        bar = self._bars.get(stage)
        if bar is None:
            bar = tqdm(total=total, desc=stage, unit=" customers", file=sys.stderr)
            self._bars[stage] = bar
        bar.update(done - bar.n)
        if done == total:
            self._bars.pop(stage).close()


def _report_text(report: Report) -> str:
    data = report.to_dict()
    k = report.k
    lines = [
        f"train until {data['train_until']} ({data['train_links']:,} links, "
        f"{data['train_nodes']:,} firms, {data['known_suppliers']:,} known "
        f"suppliers); test {data['test']}: {data['positives']:,} new links "
        f"for {data['customers']:,} customers",
        f"{'recommender':<24} {'recall@' + str(k):>10} {'hits@' + str(k):>10} "
        f"{'mrr@' + str(k):>10} {'seconds':>9}",
    ]
    rows: list[tuple[str, dict[str, Any]]] = [("product (suggest)", data)]
    rows += list(data["baselines"].items())
    for name, m in rows:
        lines.append(
            f"{name:<24} {m[f'recall@{k}']:>10.4f} {m[f'hits@{k}']:>10.4f} "
            f"{m[f'mrr@{k}']:>10.4f} {m['seconds']:>9.1f}"
        )
    return "\n".join(lines)
