"""KPI snapshots and the match funnel, written to Redis for the API to serve."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from typing import Any

from redis.asyncio import Redis

from matching.funnel import DIMENSIONS, Funnel
from matching.kpi import KpiLedger, buyers, buyers_of, supplier_adoption
from schemas.envelope import Envelope
from schemas.events import (
    AttendanceCorrected,
    DealWithdrawn,
    EventCancelled,
    MatchClosedWithoutDeal,
    OrganisationProfileUpdated,
)
from schemas.fiscal import as_japan_time, fiscal_year
from schemas.wards import WARDS
from streams.readmodels import Keys

logger = logging.getLogger(__name__)

ALL_WARDS = "all"
# Events that undo an earlier one, whose year they do not carry.
_UNDOING = (DealWithdrawn, EventCancelled, AttendanceCorrected, MatchClosedWithoutDeal)
MAX_YEARS = 15


class KpiProjection:
    """Keep a KPI ledger of the log and the fiscal years it speaks of."""

    def __init__(self, *, window_months: int = 24) -> None:
        self.ledger = KpiLedger(window_months=window_months)
        self.funnel = Funnel()
        self.years: set[int] = set()
        self.changed = False
        # Buyers whose supplier view an event may have changed since the last
        # write; every buyer's is rewritten once a day (expiry warnings move).
        self._dirty_buyers: set[str] = set()
        self._views_as_of: date | None = None
        # The earliest fiscal year whose KPIs may have changed since the last
        # write (None: none); every year is rewritten once a day.
        self._dirty_from: int | None = None

    def apply(self, env: Envelope) -> None:
        if self.ledger.is_applied(env.event_id):
            return
        self.ledger.apply(env)
        self.funnel.apply(env)
        if (buyer_id := getattr(env.payload, "buyer_id", None)) is not None:
            self._dirty_buyers.add(buyer_id)  # a link or support changes its view
        if (org_id := getattr(env.payload, "org_id", None)) is not None:
            # a member's credentials show in the view of every buyer it supplies
            self._dirty_buyers.add(org_id)
            self._dirty_buyers |= buyers_of(self.ledger, org_id)
        years = {fiscal_year(env.occurred_at)}
        for value in env.payload.model_dump().values():
            if isinstance(value, date):  # datetimes are dates too
                years.add(fiscal_year(value))
        if isinstance(reported := getattr(env.payload, "fiscal_year", None), int):
            years.add(reported)
        self.years |= years
        # An event changes the KPIs of its own years and the later ones (counts
        # accumulate, changes compare with earlier years); one that undoes an
        # earlier event (or merges a member) may change any year.
        # A ward move also changes every year: a member counts in its latest ward.
        reaches_back = (
            isinstance(env.payload, _UNDOING)
            or bool(getattr(env.payload, "corporate_number", None))
            or (
                isinstance(env.payload, OrganisationProfileUpdated)
                and env.payload.ward is not None
            )
        )
        earliest = min(self.years) if reaches_back else min(years)
        self._dirty_from = min(self._dirty_from or earliest, earliest)
        self.changed = True

    def fiscal_years(self) -> list[int]:
        """Return the fiscal years to report: those the log speaks of, to now
        (and the next year, for what is already planned), at most MAX_YEARS.

        Dates far ahead (a credential that expires in 2099) are no year to
        report; counting up to them would crowd out the years that matter.
        """
        if not self.years:
            return []
        now = fiscal_year(datetime.now(UTC))
        last = min(max(max(self.years), now), now + 1)
        return list(range(max(min(self.years), last - MAX_YEARS + 1), last + 1))

    async def write(self, redis: Redis, keys: Keys) -> None:
        """Write every ward's KPIs (and the alliance's) of every fiscal year."""
        computed_at = datetime.now(UTC).isoformat()
        today = as_japan_time(datetime.now(UTC)).date()
        new_day = self._views_as_of != today
        since = self._dirty_from if self._dirty_from is not None else 10_000
        async with redis.pipeline(transaction=False) as pipe:
            for year in self.fiscal_years():
                if not new_day and year < since:
                    continue  # nothing that could change it came in
                snapshot = self._snapshot(year, pipe, keys)
                snapshot["computed_at"] = computed_at
                pipe.set(keys.kpis(year), json.dumps(snapshot, ensure_ascii=False))
            funnel = {by: self.funnel.report(by) for by in DIMENSIONS}
            pipe.set(keys.funnel, json.dumps(funnel | {"computed_at": computed_at}))
            deadlines = {
                match_id: at.timestamp()
                for match_id, at in self.funnel.awaiting_answers().items()
            }
            pipe.delete(keys.match_deadlines)
            if deadlines:
                pipe.zadd(keys.match_deadlines, deadlines)
            every = buyers(self.ledger)
            due = every if new_day else self._dirty_buyers & every
            for buyer_id in sorted(due):
                view = supplier_adoption(self.ledger, buyer_id, today)
                pipe.set(
                    keys.adoption(buyer_id),
                    json.dumps(view | {"computed_at": computed_at}),
                )
            await pipe.execute()
        self.changed = False
        self._dirty_buyers.clear()  # written (or not buyers at all)
        self._views_as_of, self._dirty_from = today, None

    def _snapshot(self, year: int, pipe: Any, keys: Keys) -> dict[str, Any]:
        wards: dict[str, list[dict[str, Any]]] = {}
        for ward in [None, *WARDS]:
            name = ward or ALL_WARDS
            values = self.ledger.report(year, ward)
            wards[name] = [v.to_dict() | {"evidence": len(v.evidence)} for v in values]
            for v in values:
                pipe.set(keys.kpi_evidence(year, name, v.kpi), json.dumps(v.evidence))
        return {"fiscal_year": year, "wards": wards}
