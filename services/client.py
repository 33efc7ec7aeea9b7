"""A small HTTP client of the platform's API, used by the importers and the demo."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from schemas.capabilities import Capability
from schemas.envelope import Envelope
from services.errors import ServiceError
from services.importers.common import MemberRef

logger = logging.getLogger(__name__)

BATCH_LINES = 500


class ApiError(ServiceError):
    """The API answered with an error or could not be reached."""


class AllianceClient:
    """Talk to a running platform's API."""

    def __init__(self, base_url: str, *, timeout_s: float = 60.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as err:
            raise ApiError(
                f"the platform's API at {self._http.base_url} cannot be reached ({err}); "
                "is it running? Start it with 'alliance up'"
            ) from err
        if response.status_code >= 400:
            raise ApiError(
                f"{method} {path} answered {response.status_code}: {response.text}"
            )
        return response

    def post_batch(self, envelopes: Sequence[Envelope]) -> list[dict[str, Any]]:
        """Send events as one NDJSON batch; return the answer of each line."""
        body = b"\n".join(e.to_bytes() for e in envelopes)
        response = self._call(
            "POST",
            "/v1/events/batch",
            content=body,
            headers={"Content-Type": "application/x-ndjson"},
        )
        return [json.loads(line) for line in response.text.split("\n") if line]

    def post_all(self, envelopes: Sequence[Envelope]) -> Iterator[list[dict[str, Any]]]:
        """Send events in batches, yielding each batch's answers as it arrives."""
        for start in range(0, len(envelopes), BATCH_LINES):
            yield self.post_batch(envelopes[start : start + BATCH_LINES])

    def members(self) -> list[MemberRef]:
        """Return every registered member, page by page."""
        refs: list[MemberRef] = []
        while True:
            page = self._call(
                "GET", "/v1/members", params={"offset": len(refs), "limit": 1000}
            )
            members = page.json()["members"]
            refs += [_member_ref(m) for m in members]
            if not members:
                return refs

    def member(self, org_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/members/{org_id}").json())

    def kpis(self, fiscal_year: int, ward: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"fiscal_year": fiscal_year}
        if ward is not None:
            params["ward"] = ward
        return dict(self._call("GET", "/v1/kpis", params=params).json())

    def suggestions(self, org_id: str, limit: int = 5) -> dict[str, Any]:
        response = self._call(
            "GET", f"/v1/members/{org_id}/suggestions", params={"limit": limit}
        )
        return dict(response.json())


def _member_ref(profile: dict[str, Any]) -> MemberRef:
    return MemberRef(
        org_id=profile["org_id"],
        name=profile["name"],
        ward=profile["ward"],
        industry=profile.get("industry"),
        offers=frozenset(Capability(c) for c in profile.get("offers", [])),
        needs=frozenset(Capability(c) for c in profile.get("needs", [])),
        size=profile.get("size"),
        corporate_number=profile.get("corporate_number"),
    )
