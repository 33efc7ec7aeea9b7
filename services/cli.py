"""The ``alliance`` command line."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import click

from schemas.errors import AllianceError
from services.client import AllianceClient, ApiError
from services.errors import StartupError
from services.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_API = "http://127.0.0.1:8000"


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("aiokafka", "faust", "mode", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.group()
def main() -> None:
    """Green Alliance: members, events, supply chains and explained matches."""
    _configure_logging(Settings().log_level)


@main.command()
def up() -> None:
    """Start the platform (embedded broker and Redis unless configured) and serve."""
    from services.runtime import Platform

    platform = Platform(Settings())
    try:
        platform.start()
        click.echo(
            f"Green Alliance is running: API {platform.api_url}, "
            f"docs {platform.api_url}/docs"
        )
        click.echo("Press Ctrl-C to stop.")
        platform.serve_forever()
    except StartupError as err:  # the reason, not a traceback
        raise click.ClickException(str(err)) from err


@main.command()
@click.option("--once", is_flag=True, help="Exit after printing the suggestions.")
@click.option(
    "--shared-data",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder with data the repository does not ship (default: ../shared/data).",
)
def demo(once: bool, shared_data: Path | None) -> None:
    """Run the platform on real data and show suggestions for three members."""
    from services.demo import run_demo

    try:
        code = run_demo(Settings(), once=once, shared_data=shared_data)
    except StartupError as err:  # the reason, not a traceback
        raise click.ClickException(str(err)) from err
    sys.exit(code)


@main.command()
def topics() -> None:
    """Create the platform's topics on ALLIANCE_KAFKA_BOOTSTRAP if missing."""
    from services.kafka import ensure_topics

    settings = Settings()
    if not settings.kafka_bootstrap:
        raise click.UsageError("set ALLIANCE_KAFKA_BOOTSTRAP to the broker's host:port")
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap, settings.topic_prefix, settings.partitions
        )
    )
    click.echo(f"topics ready on {settings.kafka_bootstrap}")


@main.group(name="schemas")
def schemas_() -> None:
    """Published event contracts."""


@schemas_.command(name="export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def schemas_export(directory: Path) -> None:
    """Write a JSON Schema per event type, and the AsyncAPI document, to DIRECTORY."""
    import json

    from schemas.contracts import all_event_json_schemas, asyncapi_document

    directory.mkdir(parents=True, exist_ok=True)
    for name, schema in all_event_json_schemas().items():
        path = directory / f"{name}.schema.json"
        path.write_text(
            json.dumps(schema, ensure_ascii=False, indent=2) + "\n", "utf-8"
        )
    document = asyncapi_document(Settings().topic_prefix, version="0.1.0")
    (directory / "asyncapi.json").write_text(
        json.dumps(document, ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    click.echo(
        f"wrote {len(all_event_json_schemas())} event schemas and asyncapi.json to {directory}"
    )


@main.command(hidden=True)
@click.argument("role", type=click.Choice(["worker", "graph", "api"]))
def serve(role: str) -> None:
    """Run one part of the platform (started by 'alliance up')."""
    settings = Settings()
    if role == "worker":
        _serve_worker(settings)
    elif role == "graph":
        asyncio.run(_serve_graph(settings))
    else:
        _serve_api(settings)


def _required(settings: Settings) -> tuple[str, str]:
    if not settings.kafka_bootstrap or not settings.redis_url:
        raise click.UsageError(
            "ALLIANCE_KAFKA_BOOTSTRAP and ALLIANCE_REDIS_URL must be set; "
            "'alliance up' sets them for the parts it starts"
        )
    return settings.kafka_bootstrap, settings.redis_url


def _serve_worker(settings: Settings) -> None:
    from streams.worker import create_app, run_worker

    bootstrap, redis_url = _required(settings)
    app = create_app(
        bootstrap=bootstrap,
        redis_url=redis_url,
        topic_prefix=settings.topic_prefix,
        redis_prefix=settings.redis_prefix,
        partitions=settings.partitions,
        data_dir=settings.data_dir,
    )
    run_worker(app, settings.log_level)


async def _serve_graph(settings: Settings) -> None:
    from redis.asyncio import Redis

    from streams.graph_service import GraphService
    from streams.readmodels import Keys

    bootstrap, redis_url = _required(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis = Redis.from_url(redis_url)
    service = GraphService(
        bootstrap=bootstrap,
        redis=redis,
        keys=Keys(settings.redis_prefix),
        topic_prefix=settings.topic_prefix,
        limit=settings.suggestion_limit,
    )
    try:
        await service.run(stop)
    finally:
        await redis.aclose()


def _serve_api(settings: Settings) -> None:
    import uvicorn
    from redis.asyncio import Redis

    from services.api import Dependencies, create_app
    from services.producer import Journal, Publisher
    from streams.readmodels import Keys

    bootstrap, redis_url = _required(settings)
    journal = Journal(settings.journal_path) if settings.journal_path else None
    publisher = Publisher(
        bootstrap,
        settings.topic_prefix,
        journal=journal,
        timeout_s=settings.request_timeout_s,
    )
    deps = Dependencies(
        publisher, Redis.from_url(redis_url), Keys(settings.redis_prefix)
    )
    uvicorn.run(
        create_app(settings, deps),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
    )


# -- imports ------------------------------------------------------------------------

api_option = click.option(
    "--api",
    "api_url",
    default=None,
    help=f"The platform's API (default: the one 'alliance up' started here, else {DEFAULT_API}).",
)


def _running() -> dict[str, str]:
    from services.runtime import running_platform

    data_dir = Settings().data_dir
    for folder in (data_dir, data_dir / "demo"):
        info = running_platform(folder)
        if info is not None:
            return info
    return {}


def _api(api_url: str | None) -> str:
    return api_url or _running().get("api_url", DEFAULT_API)


def _bootstrap() -> str:
    bootstrap = Settings().kafka_bootstrap or _running().get("bootstrap")
    if not bootstrap:
        raise click.ClickException(
            "no running platform found here; start it with 'alliance up' "
            "or set ALLIANCE_KAFKA_BOOTSTRAP"
        )
    return bootstrap


encoding_option = click.option(
    "--encoding",
    default=None,
    help="The file's encoding (default: detect UTF-8/CP932).",
)
seed_option = click.option(
    "--seed", default=2026, show_default=True, help="Seed of the re-keying rule."
)
file_argument = click.argument(
    "path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


@main.group(name="import")
def import_() -> None:
    """Import real files through the API, as live events."""


@import_.command(name="members")
@file_argument
@api_option
@encoding_option
def import_members_command(
    path: Path, api_url: str | None, encoding: str | None
) -> None:
    """Import members: the EDINET filer list as published (those in the 23 wards),
    or a spreadsheet with a header such as 企業名/name, 所在地/address, 法人番号."""
    from services.importers import read_members_file

    _run_import(api_url, lambda _: read_members_file(path, encoding=encoding), path)


@import_.command(name="supply-links")
@file_argument
@api_option
@encoding_option
@seed_option
def import_supply_links_command(
    path: Path, api_url: str | None, encoding: str | None, seed: int
) -> None:
    """Import supply links from the City of Toronto awarded-contracts format."""
    from services.importers.toronto import import_supply_links

    _run_import(
        api_url,
        lambda members: import_supply_links(
            path, members, seed=seed, encoding=encoding
        ),
        path,
    )


@import_.command(name="attendance")
@file_argument
@api_option
@encoding_option
@seed_option
def import_attendance_command(
    path: Path, api_url: str | None, encoding: str | None, seed: int
) -> None:
    """Import attendance: conference check-ins, or a CSV of organisation,event,time."""
    from services.imports import read_attendance_file

    _run_import(
        api_url,
        lambda members: read_attendance_file(
            path, members, seed=seed, encoding=encoding
        ),
        path,
    )


def _run_import(api_url: str | None, read, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Read a file, send its rows, report. Exit 0 when every row went in, 1 when
    some rows were rejected (the others are in), 2 when the file is unusable or
    the platform cannot be reached."""
    from services.imports import send_import

    client = AllianceClient(_api(api_url))
    try:
        members = client.members()
        result = read(members)
        outcome = send_import(client, result, label=path.name)
    except ApiError as err:
        click.echo(f"Error: {err}. Rows sent before stay in; importing the file "
                   "again is safe (each row is taken once).", err=True)  # fmt: skip
        sys.exit(2)
    except AllianceError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    finally:
        client.close()
    click.echo(outcome.report())
    if outcome.rejected_total:
        sys.exit(1)


@main.command()
@click.option("--fiscal-year", type=int, default=None, help="Default: the current one.")
@click.option("--ward", default=None, help="A ward's JIS code or name; default: all.")
@api_option
def kpi(fiscal_year: int | None, ward: str | None, api_url: str | None) -> None:
    """Show the wards' KPIs against the policy's targets, as a table."""
    from datetime import UTC, datetime

    from schemas.fiscal import fiscal_year as fiscal_year_of
    from schemas.fiscal import fiscal_year_label

    year = fiscal_year or fiscal_year_of(datetime.now(UTC))
    client = AllianceClient(_api(api_url))
    try:
        snapshot = client.kpis(year, ward)
    except ApiError as err:
        raise click.ClickException(str(err)) from err
    finally:
        client.close()
    click.echo(f"KPIs of {fiscal_year_label(year)}, computed {snapshot['computed_at']}")
    for name, values in snapshot["wards"].items():
        click.echo(format_kpi_table(name, values))


def format_kpi_table(ward: str, values: list[dict[str, Any]]) -> str:
    """Render one ward's KPIs as aligned rows: KPI, value, target, on track."""
    from schemas.wards import WARDS

    title = (
        f"{WARDS[ward].name_ja} {WARDS[ward].name_en}"
        if ward in WARDS
        else "全体 whole alliance"
    )
    lines = [f"\n{title}"]
    for v in values:
        shown = "-" if v["value"] is None else f"{v['value']:g}"
        mark = "on track" if v["on_track"] else "behind"
        if v["value"] is None:
            mark = "no data"
        lines.append(
            f"  {v['label_en'][:56]:<56} {shown:>8} {v['unit']:<15}"
            f" target {v['target']:>5g}  {mark:<8}  ({v['evidence']} events)"
        )
    return "\n".join(lines)


@main.command()
def replay() -> None:
    """Rebuild the read models from the log (after Redis was lost, say)."""
    from redis.asyncio import Redis

    from services.replay import replay_read_models
    from streams.readmodels import Keys

    settings = Settings()
    redis_url = settings.redis_url or _running().get("redis_url")
    if not redis_url:
        raise click.ClickException("set ALLIANCE_REDIS_URL, or start the platform here")

    async def run() -> tuple[int, int]:
        redis = Redis.from_url(redis_url)
        try:
            keys = Keys(settings.redis_prefix)
            return await replay_read_models(
                _bootstrap(), redis, keys, settings.topic_prefix
            )
        finally:
            await redis.aclose()

    applied, skipped = asyncio.run(run())
    click.echo(f"{applied} events applied, {skipped} already applied or invalid")


@main.group(name="dead-letters")
def dead_letters() -> None:
    """Messages the platform could not apply, kept with their reasons."""


@dead_letters.command(name="list")
@click.option("--limit", default=50, show_default=True, help="Show at most this many.")
def dead_letters_list(limit: int) -> None:
    """List dead letters: when, where from, and why."""
    from services.deadletters import read_dead_letters

    letters = asyncio.run(read_dead_letters(_bootstrap(), Settings().topic_prefix))
    click.echo(f"{len(letters)} dead letters")
    for stored in letters[-limit:]:
        d = stored.letter
        click.echo(
            f"- {d.rejected_at:%Y-%m-%d %H:%M:%S} from {d.topic} partition {d.partition} "
            f"offset {d.offset}: {d.reason}"
        )


@dead_letters.command(name="replay")
@api_option
def dead_letters_replay(api_url: str | None) -> None:
    """Send dead letters that are valid now back through the API (once their cause
    is fixed, e.g. by a new contract version); the rest stay where they are."""
    from services.deadletters import read_dead_letters, replayable
    from services.importers.common import ImportResult
    from services.imports import ImportOutcome, count_answers

    letters = asyncio.run(read_dead_letters(_bootstrap(), Settings().topic_prefix))
    fixed, still_bad = replayable(letters)
    outcome = ImportOutcome("dead letters", ImportResult())
    client = AllianceClient(_api(api_url))
    try:
        for answers in client.post_all(fixed):
            count_answers(outcome, answers)
    except ApiError as err:
        raise click.ClickException(str(err)) from err
    finally:
        client.close()
    click.echo(
        f"{outcome.accepted} sent back, {outcome.duplicates} already applied, "
        f"{len(still_bad)} still invalid (see 'alliance dead-letters list')"
    )


@main.command()
@click.argument("org_id")
@api_option
@click.option("--limit", default=5, show_default=True)
def suggestions(org_id: str, api_url: str | None, limit: int) -> None:
    """Show a member's suggestions with their reasons."""
    from services.demo import format_suggestions

    client = AllianceClient(_api(api_url))
    try:
        member = client.member(org_id)
        found = client.suggestions(org_id, limit)
    except ApiError as err:
        raise click.ClickException(str(err)) from err
    finally:
        client.close()
    click.echo(format_suggestions(member, found))


from services.cli_bench import bench, evaluate  # noqa: E402

main.add_command(bench)
main.add_command(evaluate)

if __name__ == "__main__":
    main()
