"""The HTTP API: members and programs post events and read their read models."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from redis.exceptions import RedisError

from schemas.contracts import asyncapi_document
from schemas.envelope import Envelope, InvalidMessage, parse_envelope
from schemas.errors import ContractError
from schemas.topics import Stream
from schemas.wards import WARDS, ward_code
from services.api_support import Dependencies, IdPath, accept_events, text
from services.errors import BrokerUnavailable
from services.matches import (
    add_match_routes,
    expire_matches_every,
    record_match_events,
)
from services.settings import Settings
from streams.graph_service import suggestions_status
from streams.readmodels import read_credentials, read_profile

logger = logging.getLogger(__name__)

RETRY_AFTER_S = "5"
MAX_BATCH_LINES = 5000


class Accepted(BaseModel):
    event_id: str
    status: str = Field(description="'accepted', or 'duplicate' when already accepted")


class Problem(BaseModel):
    field: str
    problem: str


class Rejected(BaseModel):
    detail: str
    problems: list[Problem]


def create_app(settings: Settings, deps: Dependencies) -> FastAPI:
    """Build the FastAPI application around its dependencies."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await deps.publisher.start()
        timer = asyncio.create_task(
            expire_matches_every(deps, settings.match_expiry_check_s)
        )
        yield
        timer.cancel()
        await deps.publisher.stop()
        await deps.redis.aclose()

    app = FastAPI(
        title="Green Alliance",
        version="0.1.0",
        summary="Members, events, supply chains and explained supplier-buyer matches.",
        lifespan=lifespan,
    )
    app.state.deps = deps
    _add_error_handlers(app)
    _add_event_routes(app, deps)
    _add_member_routes(app, deps, settings)
    _add_kpi_routes(app, deps)
    _add_firm_routes(app, deps)
    add_match_routes(app, deps)
    _add_contract_routes(app, settings)
    _add_health_routes(app, deps)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BrokerUnavailable)
    async def _broker_down(_: Request, err: BrokerUnavailable) -> JSONResponse:
        logger.warning("answering 503: %s", err)
        body = {"detail": "the event log is unavailable; nothing was lost, retry later"}
        return JSONResponse(
            body, status_code=503, headers={"Retry-After": RETRY_AFTER_S}
        )

    @app.exception_handler(RedisError)
    async def _redis_down(_: Request, err: RedisError) -> JSONResponse:
        logger.warning("answering 503, Redis unavailable: %s", err)
        body = {"detail": "read models are unavailable right now; retry later"}
        return JSONResponse(
            body, status_code=503, headers={"Retry-After": RETRY_AFTER_S}
        )


def _rejected(err: InvalidMessage) -> JSONResponse:
    body = {"detail": "the event does not match its contract", "problems": err.problems}
    return JSONResponse(body, status_code=422)


async def _body_json(request: Request) -> Any:
    return _loads(await request.body(), "(body)")


def _loads(raw: bytes, field: str) -> Any:
    try:
        return json.loads(raw)
    # ValueError: bad JSON, bad UTF-8, or an integer over Python's digit limit;
    # RecursionError: arrays or objects nested too deep.
    except (ValueError, RecursionError) as err:
        problem = {"field": field, "problem": f"not valid JSON: {err}"}
        raise InvalidMessage([problem]) from err


def _with_defaults(data: Any) -> Any:
    """Fill what a client may leave out: the event id and the source."""
    if isinstance(data, dict):
        data = {"schema_version": 1, "source": "api", **data}
        if not data.get("event_id"):
            from uuid import uuid4

            data["event_id"] = str(uuid4())
    return data


def _add_event_routes(app: FastAPI, deps: Dependencies) -> None:
    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        responses={
            422: {"model": Rejected},
            503: {"description": "broker unavailable"},
        },
        tags=["events"],
    )
    async def post_event(
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> Any:
        """Accept one event; answer 202 once it is durable in the event log.

        Posting the same ``event_id`` again (or the same ``Idempotency-Key``)
        returns the same answer and changes nothing.
        """
        try:
            data = _with_defaults(await _body_json(request))
            if idempotency_key and isinstance(data, dict):
                data["event_id"] = _key_event_id(idempotency_key)
            envelope = parse_envelope(data)
        except InvalidMessage as err:
            return _rejected(err)
        if envelope.stream is Stream.MATCHES:  # checked like the match routes
            status = await record_match_events(deps, [envelope])
        else:
            (status,) = await accept_events(deps, [envelope])
        return Accepted(event_id=envelope.event_id, status=status)

    @app.post(
        "/v1/events/batch",
        tags=["events"],
        response_class=Response,
        responses={200: {"content": {"application/x-ndjson": {}}}},
    )
    async def post_batch(request: Request) -> Response:
        """Accept events as NDJSON, one per line; answer one JSON line per line.

        Good lines are accepted even when others are rejected.
        """
        lines = (await request.body()).splitlines()
        if sum(1 for line in lines if line.strip()) > MAX_BATCH_LINES:
            raise HTTPException(413, f"at most {MAX_BATCH_LINES} lines per batch")
        results, good = _validate_lines(lines)
        plain = [(i, e) for i, e in good if e.stream is not Stream.MATCHES]
        statuses = await accept_events(deps, [e for _, e in plain])
        for (index, env), status in zip(plain, statuses, strict=True):
            results[index] = {
                "line": index + 1,
                "event_id": env.event_id,
                "status": status,
            }
        for index, env in good:  # match steps, one by one, checked in order
            if env.stream is Stream.MATCHES:
                results[index] = await _match_line(deps, index, env)
        # ASCII-escaped, so that no answer line holds a character that some
        # readers take for a line break (U+2028 and the like).
        body = "".join(json.dumps(r) + "\n" for r in results if r)
        return Response(body, media_type="application/x-ndjson")


async def _match_line(deps: Dependencies, index: int, env: Envelope) -> dict[str, Any]:
    try:
        status = await record_match_events(deps, [env])
    except HTTPException as err:
        problem = {"field": "type", "problem": str(err.detail)}
        return {"line": index + 1, "status": "rejected", "problems": [problem]}
    return {"line": index + 1, "event_id": env.event_id, "status": status}


def _key_event_id(idempotency_key: str) -> str:
    from uuid import NAMESPACE_URL, uuid5

    return str(uuid5(NAMESPACE_URL, f"idempotency-key:{idempotency_key}"))


def _validate_lines(
    lines: list[bytes],
) -> tuple[list[dict[str, Any] | None], list[tuple[int, Envelope]]]:
    results: list[dict[str, Any] | None] = [None] * len(lines)
    good: list[tuple[int, Envelope]] = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            data = _loads(line, "(line)")
            good.append((index, parse_envelope(_with_defaults(data))))
        except InvalidMessage as err:
            results[index] = {
                "line": index + 1,
                "status": "rejected",
                "problems": err.problems,
            }
    return results, good


def _add_member_routes(app: FastAPI, deps: Dependencies, settings: Settings) -> None:
    keys = deps.keys

    @app.get("/v1/members", tags=["members"])
    async def list_members(
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """List members (id, name, ward, industry, offers, needs), by org id."""
        ids = sorted(text(m) for m in await deps.redis.smembers(keys.members))
        page = ids[offset : offset + limit]
        profiles = await _profiles(deps, page)
        return {"total": len(ids), "offset": offset, "members": profiles}

    @app.get("/v1/members/{org_id}", tags=["members"])
    async def get_member(org_id: IdPath) -> dict[str, Any]:
        """Return a member's profile, credentials, events and supply links."""
        return await _member(deps, org_id)

    @app.get("/v1/members/{org_id}/suggestions", tags=["members"])
    async def get_suggestions(
        org_id: IdPath,
        limit: Annotated[int, Query(ge=1, le=100)] = 5,
    ) -> dict[str, Any]:
        """Return the member's ranked suggestions, each with its reasons.

        At most ``ALLIANCE_SUGGESTION_LIMIT`` suggestions are kept per member.
        """
        ended_on, merged_into = await deps.redis.hmget(
            keys.member(org_id), ["ended_on", "merged_into"]
        )
        if merged_into is not None:
            raise HTTPException(
                410, f"{org_id!r} is now {text(merged_into)!r}: ask for its suggestions"
            )
        if ended_on is not None:
            raise HTTPException(
                410, f"{org_id!r} left the alliance on {text(ended_on)}: no suggestions"
            )
        if not await deps.redis.exists(keys.member(org_id)):
            raise HTTPException(404, f"no member with org_id {org_id!r}")
        raw = await deps.redis.get(keys.suggestions(org_id))
        if raw is None:
            return {"org_id": org_id, "status": "pending", "suggestions": []}
        document = json.loads(raw)
        document["suggestions"] = document["suggestions"][:limit]
        return {"status": "ready", **document}


async def _profiles(deps: Dependencies, org_ids: list[str]) -> list[dict[str, Any]]:
    async with deps.redis.pipeline(transaction=False) as pipe:
        for org_id in org_ids:
            pipe.hgetall(deps.keys.member(org_id))
        members = await pipe.execute()
    return [read_profile(m) for m in members if b"registered_at" in m]


async def _member(deps: Dependencies, org_id: str) -> dict[str, Any]:
    k = deps.keys
    async with deps.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(k.member(org_id))
        pipe.hgetall(k.credentials(org_id))
        pipe.smembers(k.member_events(org_id))
        pipe.smembers(k.suppliers(org_id))
        pipe.smembers(k.buyers(org_id))
        pipe.hgetall(k.reports(org_id))
        member, credentials, events, suppliers, buyers, reports = await pipe.execute()
    if not member:
        raise HTTPException(404, f"no member with org_id {org_id!r}")
    if b"registered_at" not in member:
        raise HTTPException(
            404, f"{org_id!r} is not registered: events about it came before its "
            "registration",
        )  # fmt: skip
    return {
        **read_profile(member),
        "registered_at": member[b"registered_at"].decode(),
        "ended_on": member[b"ended_on"].decode() if b"ended_on" in member else None,
        "merged_into": text(member[b"merged_into"])
        if b"merged_into" in member
        else None,
        "credentials": read_credentials(credentials),
        "events_attended": sorted(e.decode() for e in events),
        "suppliers": sorted(s.decode() for s in suppliers),
        "buyers": sorted(b.decode() for b in buyers),
        "reports": sorted((json.loads(v) for v in reports.values()), key=_fiscal_year),
    }


def _fiscal_year(report: dict[str, Any]) -> int:
    return int(report["fiscal_year"])


KPI_CSV_COLUMNS = (
    "fiscal_year", "ward", "ward_name_ja", "ward_name_en", "kpi", "label_ja",
    "label_en", "value", "unit", "target", "on_track", "evidence", "note",
)  # fmt: skip


def _add_kpi_routes(app: FastAPI, deps: Dependencies) -> None:
    @app.get("/v1/kpis", tags=["kpis"])
    async def get_kpis(
        fiscal_year: Annotated[int, Query(ge=2000, le=2100)],
        ward: Annotated[str | None, Query(description="JIS code or name")] = None,
    ) -> dict[str, Any]:
        """Return each ward's KPIs (or one ward's) against the policy's targets."""
        snapshot = await _kpi_snapshot(deps, fiscal_year)
        if ward is not None:
            code = _ward_or_422(ward)
            snapshot["wards"] = {code: snapshot["wards"][code]}
        return snapshot

    @app.get("/v1/kpis.csv", tags=["kpis"], response_class=Response)
    async def get_kpis_csv(
        fiscal_year: Annotated[int, Query(ge=2000, le=2100)],
        ward: Annotated[str | None, Query(description="JIS code or name")] = None,
    ) -> Response:
        """Return every ward's KPIs (or one ward's) as a CSV that Excel opens with
        the Japanese intact."""
        snapshot = await _kpi_snapshot(deps, fiscal_year)
        if ward is not None:
            code = _ward_or_422(ward)
            snapshot["wards"] = {code: snapshot["wards"][code]}
        body = "\ufeff" + _kpi_csv(snapshot)
        headers = {
            "Content-Disposition": f'attachment; filename="kpis-fy{fiscal_year}.csv"'
        }
        return Response(
            body.encode("utf-8"), media_type="text/csv; charset=utf-8", headers=headers
        )

    @app.get("/v1/kpis/{kpi}/evidence", tags=["kpis"])
    async def get_kpi_evidence(
        kpi: str,
        fiscal_year: Annotated[int, Query(ge=2000, le=2100)],
        ward: Annotated[
            str | None, Query(description="JIS code or name; none: all")
        ] = None,
    ) -> dict[str, Any]:
        """Return the event ids that make a KPI's number."""
        name = _ward_or_422(ward) if ward is not None else "all"
        raw = await deps.redis.get(deps.keys.kpi_evidence(fiscal_year, name, kpi))
        if raw is None:
            raise HTTPException(
                404, f"no KPI {kpi!r} for FY{fiscal_year} and ward {name}"
            )
        event_ids = json.loads(raw)
        return {"kpi": kpi, "fiscal_year": fiscal_year, "ward": name,
                "count": len(event_ids), "event_ids": event_ids}  # fmt: skip


def _add_firm_routes(app: FastAPI, deps: Dependencies) -> None:
    @app.get("/v1/firms/{org_id}/suppliers/ems-adoption", tags=["kpis"])
    async def get_ems_adoption(org_id: IdPath) -> dict[str, Any]:
        """Return a firm's suppliers by EMS level, adoption by fiscal year, the
        suppliers it supported and what they obtained after, credentials expiring
        within 90 days, and suppliers with none."""
        raw = await deps.redis.get(deps.keys.adoption(org_id))
        if raw is None:
            if not await deps.redis.exists(deps.keys.member(org_id)):
                raise HTTPException(404, f"no member with org_id {org_id!r}")
            raise HTTPException(404, f"{org_id} has declared no suppliers yet")
        view: dict[str, Any] = json.loads(raw)
        return view


async def _kpi_snapshot(deps: Dependencies, fiscal_year: int) -> dict[str, Any]:
    raw = await deps.redis.get(deps.keys.kpis(fiscal_year))
    if raw is None:
        raise HTTPException(
            404, f"no KPIs for FY{fiscal_year}: no event in the log concerns it"
        )
    snapshot: dict[str, Any] = json.loads(raw)
    return snapshot


def _ward_or_422(ward: str) -> str:
    try:
        return ward_code(ward)
    except ContractError as err:
        raise HTTPException(422, str(err)) from err


def _kpi_csv(snapshot: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(KPI_CSV_COLUMNS)
    for ward, values in snapshot["wards"].items():
        names = WARDS.get(ward)
        for v in values:
            writer.writerow([
                v["fiscal_year"], ward, names.name_ja if names else "全体",
                names.name_en if names else "whole alliance", v["kpi"], v["label_ja"],
                v["label_en"], v["value"], v["unit"], v["target"],
                "yes" if v["on_track"] else "no",
                v["evidence"], v["note"] or "",
            ])  # fmt: skip
    return out.getvalue()


def _add_contract_routes(app: FastAPI, settings: Settings) -> None:
    document = asyncapi_document(settings.topic_prefix, version=app.version)

    @app.get("/asyncapi.json", tags=["contracts"])
    async def asyncapi() -> dict[str, Any]:
        """Return the AsyncAPI document of the topics and their messages."""
        return document


def _add_health_routes(app: FastAPI, deps: Dependencies) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Answer while the process is alive."""
        return {"status": "ok", "time": datetime.now(UTC).isoformat()}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """Answer 200 when Redis and the broker can be reached, else 503; say
        too whether suggestions reflect the whole log yet ("current") or the
        graph service is still reading it after a start ("catching up")."""
        checks = {"redis": "ok", "broker": "ok"}
        try:
            await deps.redis.ping()
        except (RedisError, OSError) as err:
            checks["redis"] = f"unavailable: {err}"
        if not await deps.publisher.connected():
            checks["broker"] = "unavailable"
        ok = all(v == "ok" for v in checks.values())
        suggestions = await _suggestions_status(deps) if ok else "unknown"
        return JSONResponse(
            {"status": "ready" if ok else "not ready", **checks,
             "suggestions": suggestions},
            200 if ok else 503,
        )  # fmt: skip


async def _suggestions_status(deps: Dependencies) -> str:
    status = await suggestions_status(deps.redis, deps.keys)
    if status is None:
        return "graph service not started"
    current, since = status
    return "current" if current else f"catching up with the log since {since}"
