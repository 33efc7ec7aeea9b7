"""Builders of real envelopes for the matching tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from matching.graph import AllianceGraph
from schemas.envelope import Envelope, new_envelope
from schemas.fiscal import JST

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=JST)


class Log:
    """Make envelopes as the services would publish them, one method per type."""

    now = NOW

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def ago(self, days: int) -> datetime:
        """Return the moment that many days before `now`."""
        return NOW - timedelta(days=days)

    @staticmethod
    def build(envelopes: Iterable[Envelope]) -> AllianceGraph:
        """Return a graph with the envelopes applied in order."""
        graph = AllianceGraph()
        for envelope in envelopes:
            graph.apply(envelope)
        return graph

    def make(
        self, event_type: str, payload: dict[str, Any], at: datetime = NOW
    ) -> Envelope:
        event_id = f"evt-{next(self._ids):05d}"
        return new_envelope(
            event_type, payload, source="tests", occurred_at=at, event_id=event_id
        )

    def register(
        self,
        org_id: str,
        *,
        name: str | None = None,
        name_en: str | None = None,
        ward: str = "13101",
        offers: Sequence[str] = (),
        needs: Sequence[str] = (),
    ) -> Envelope:
        payload = {
            "org_id": org_id,
            "name": name or f"Org {org_id}",
            "name_en": name_en,
            "ward": ward,
            "offers": list(offers),
            "needs": list(needs),
        }
        return self.make("OrganisationRegistered", payload)

    def credential(
        self,
        org_id: str,
        scheme: str,
        *,
        status: str = "active",
        issued_on: date = date(2025, 4, 1),
        expires_on: date | None = None,
    ) -> Envelope:
        payload = {
            "org_id": org_id,
            "scheme": scheme,
            "status": status,
            "issued_on": issued_on,
            "expires_on": expires_on,
        }
        return self.make("CredentialRecorded", payload)

    def schedule(
        self, event_code: str, title: str, starts_at: datetime = NOW
    ) -> Envelope:
        payload = {
            "event_code": event_code,
            "title": title,
            "kind": "matching",
            "starts_at": starts_at,
        }
        return self.make("EventScheduled", payload)

    def attend(self, org_id: str, event_code: str, person: str = "p1") -> Envelope:
        payload = {
            "event_code": event_code,
            "org_id": org_id,
            "attended_at": NOW,
            "person_ref": person,
        }
        return self.make("AttendanceLogged", payload)

    def link(self, buyer_id: str, supplier_id: str) -> Envelope:
        payload = {
            "buyer_id": buyer_id,
            "supplier_id": supplier_id,
            "since": date(2024, 4, 1),
        }
        return self.make("SupplierLinked", payload)

    def support(self, buyer_id: str, supplier_id: str) -> Envelope:
        payload = {
            "buyer_id": buyer_id,
            "supplier_id": supplier_id,
            "kind": "training",
            "provided_on": date(2025, 6, 1),
        }
        return self.make("SupportProvided", payload)

    def suggested(
        self, match_id: str, org_id: str, candidate_id: str, at: datetime = NOW
    ) -> Envelope:
        payload = {
            "match_id": match_id,
            "org_id": org_id,
            "candidate_id": candidate_id,
            "score": 0.5,
            "model_version": "heuristic-1",
        }
        return self.make("MatchSuggested", payload, at)

    def declined(self, match_id: str, org_id: str, at: datetime = NOW) -> Envelope:
        payload = {"match_id": match_id, "org_id": org_id}
        return self.make("MatchDeclined", payload, at)

    def steps_to_deal(
        self, match_id: str, org_id: str, candidate_id: str, at: datetime = NOW
    ) -> list[Envelope]:
        """Return the steps the lifecycle needs before a deal: both sides
        accept, the introduction, the meeting."""
        return [
            self.make("MatchAccepted", {"match_id": match_id, "org_id": org_id}, at),
            self.make(
                "MatchAccepted", {"match_id": match_id, "org_id": candidate_id}, at
            ),
            self.make("MatchIntroduced", {"match_id": match_id}, at),
            self.make("MeetingHeld", {"match_id": match_id, "held_on": at.date()}, at),
        ]

    def closed(self, match_id: str, at: datetime = NOW) -> Envelope:
        payload = {"match_id": match_id, "closed_on": at.date()}
        return self.make("DealClosed", payload, at)


@pytest.fixture
def log() -> Log:
    return Log()
