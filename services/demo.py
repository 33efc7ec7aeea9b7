"""``alliance demo``: the platform on real data, with explained suggestions."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click
from redis.asyncio import Redis
from tqdm import tqdm

from schemas.capabilities import CAPABILITY_LABELS, Capability
from schemas.events import AttendanceLogged, SupplierLinked
from schemas.topics import topic_name
from schemas.wards import WARDS
from services.client import AllianceClient
from services.errors import ServiceError
from services.importers.common import ImportResult
from services.importers.edinet import import_members
from services.imports import read_attendance_file, send_import
from services.kafka import end_offsets
from services.runtime import Platform
from services.settings import Settings
from streams.graph_service import CONSUMED_STREAMS, GRAPH, suggestions_status
from streams.readmodels import WORKER, Keys
from streams.worker import PROJECTED_STREAMS

logger = logging.getLogger(__name__)

EDINET_FILE = "edinet-codelist-2025-12-24.csv"
TORONTO_FILE = "toronto-awarded-contracts-2022-2024.csv"
CONFERENCE_FILE = "sbrc2019-session-attendance.csv"
PROCESS_TIMEOUT_S = 240.0


def shipped_data() -> Path:
    """Return the folder of the data files this package ships (with attributions)."""
    return Path(__file__).resolve().parent / "demo_data"


def default_shared_data() -> Path:
    return Path(os.environ.get("ALLIANCE_SHARED_DATA", "../shared/data"))


def run_demo(settings: Settings, *, once: bool, shared_data: Path | None) -> int:
    """Start, import, wait, print; then serve until Ctrl-C unless ``once``."""
    if settings.data_dir == Path(".alliance"):
        settings = settings.model_copy(update={"data_dir": Path(".alliance/demo")})
    platform = Platform(settings)
    platform.start()
    try:
        chosen = _import_everything(platform, shared_data or default_shared_data())
        asyncio.run(wait_until_processed(platform, settings))
        _show(platform, chosen)
    except BaseException:
        platform.stop()
        raise
    if once:
        platform.stop()
        return 0
    click.echo(
        f"\nThe platform keeps serving: API {platform.api_url}, docs {platform.api_url}/docs"
    )
    click.echo("Press Ctrl-C to stop.")
    platform.serve_forever()
    return 0


def _import_everything(platform: Platform, shared: Path) -> list[str]:
    client = AllianceClient(platform.api_url)
    try:
        members_result = import_members(shipped_data() / EDINET_FILE)
        click.echo(send_import(client, members_result, label=EDINET_FILE).report())
        # The other files are re-keyed onto members as the platform knows them.
        asyncio.run(wait_until_processed(platform, platform.settings))
        members = client.members()
        from services.importers.toronto import import_supply_links

        links = import_supply_links(shipped_data() / TORONTO_FILE, members)
        click.echo(send_import(client, links, label=TORONTO_FILE).report())
        attendance = _conference(client, shared, members)
    finally:
        client.close()
    return choose_members(members_result, links, attendance)


def _conference(
    client: AllianceClient, shared: Path, members: list[Any]
) -> ImportResult | None:
    path = shared / CONFERENCE_FILE
    if not path.exists():
        click.echo(
            f"{CONFERENCE_FILE} not found in {shared}: attendance skipped (it is not shipped)"
        )
        return None
    result = read_attendance_file(path, members, seed=2026, encoding=None)
    click.echo(send_import(client, result, label=CONFERENCE_FILE).report())
    return result


def choose_members(
    members: ImportResult, links: ImportResult, attendance: ImportResult | None
) -> list[str]:
    """Pick three members worth showing: the busiest buyer, the most active
    attendee (without attendance, the busiest supplier), and a firm with no
    links yet (cold start)."""
    supply = [
        e.payload for e in links.envelopes if isinstance(e.payload, SupplierLinked)
    ]
    buyers = Counter(p.buyer_id for p in supply)
    suppliers = Counter(p.supplier_id for p in supply)
    attendees = Counter(
        e.payload.org_id
        for e in (attendance.envelopes if attendance else [])
        if isinstance(e.payload, AttendanceLogged)
    )
    chosen = [org for org, _ in buyers.most_common(1)]
    second = attendees or suppliers
    chosen += [org for org, _ in second.most_common() if org not in chosen][:1]
    linked = set(buyers) | set(suppliers) | set(attendees)
    loners = sorted(e.key for e in members.envelopes if e.key not in linked)
    return chosen + loners[:1]


async def wait_until_processed(platform: Platform, settings: Settings) -> None:
    """Wait until the worker and the graph service have read every message and
    the graph service has refreshed every suggestion they change."""
    prefix = settings.topic_prefix
    worker_topics = [topic_name(prefix, s) for s in PROJECTED_STREAMS]
    graph_topics = {topic_name(prefix, s) for s in CONSUMED_STREAMS}
    ends = await end_offsets(platform.bootstrap, worker_topics)
    total = sum(ends.values())
    redis = Redis.from_url(platform.redis_url)
    keys = Keys(settings.redis_prefix)
    deadline = time.monotonic() + PROCESS_TIMEOUT_S
    try:
        with tqdm(total=total, desc="Processing events", unit=" events") as bar:
            while True:
                platform.check_children()
                done = await _done(redis, keys, ends, graph_topics)
                bar.update(done - bar.n)
                status = await suggestions_status(redis, keys)
                if done >= total and status is not None and status[0]:
                    return
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"events not processed after {PROCESS_TIMEOUT_S:.0f} s"
                    )
                await asyncio.sleep(0.3)
    finally:
        await redis.aclose()


async def _done(
    redis: Redis, keys: Keys, ends: dict[str, int], graph_topics: set[str]
) -> int:
    worker = await redis.hgetall(keys.progress(WORKER))
    graph = await redis.hgetall(keys.progress(GRAPH))
    done = 0
    for part, end in ends.items():
        reached = int(worker.get(part.encode(), 0))
        if part.rsplit(":", 1)[0] in graph_topics:
            reached = min(reached, int(graph.get(part.encode(), 0)))
        done += min(reached, end)
    return done


def _show(platform: Platform, chosen: list[str]) -> None:
    client = AllianceClient(platform.api_url)
    try:
        for org_id in chosen:
            click.echo()
            click.echo(
                format_suggestions(client.member(org_id), client.suggestions(org_id, 5))
            )
    finally:
        client.close()


def _labels(values: list[str]) -> str:
    return ", ".join(CAPABILITY_LABELS[Capability(v)][1] for v in values) or "nothing"


def format_suggestions(member: dict[str, Any], found: dict[str, Any]) -> str:
    """Render a member and its suggestions for the terminal, reasons included."""
    ward = WARDS[member["ward"]]
    name_en = f" ({member['name_en']})" if member.get("name_en") else ""
    lines = [
        f"== {member['name']}{name_en}  [org id {member['org_id']}]",
        f"   {ward.name_en} / {ward.name_ja}; industry: {member.get('industry') or 'not stated'};"
        f" {len(member['suppliers'])} suppliers, {len(member['buyers'])} buyers,"
        f" {len(member['events_attended'])} events",
        f"   needs: {_labels(member['needs'])}; offers: {_labels(member['offers'])}"
        + (
            " (assumed from its industry)" if member.get("capabilities_assumed") else ""
        ),
    ]
    if found.get("status") != "ready" or not found["suggestions"]:
        lines.append("   no suggestions yet")
        return "\n".join(lines)
    for rank, s in enumerate(found["suggestions"], start=1):
        lines.append(_format_one(rank, s))
    return "\n".join(lines)


def _format_one(rank: int, s: dict[str, Any]) -> str:
    role = "could supply you" if s["role"] == "supplier" else "could buy from you"
    head = (
        f"  {rank}. {s['candidate_name']} {role}: {_labels(s['categories'])}"
        f" (score {s['score']:.3f}; org id {s['candidate_id']})"
    )
    reasons = [f"     - {r['text_en']}\n       {r['text_ja']}" for r in s["reasons"]]
    return "\n".join([head, *reasons])
