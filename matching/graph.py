"""The alliance graph: members, meetings and the ties between them.

The graph is a projection of the log: it is built by applying validated envelopes
in log order and can be rebuilt at any time by replaying them.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import networkx as nx

from matching.errors import UnknownOrganisation
from matching.lifecycle import Match, MatchReplay
from schemas.capabilities import Capability
from schemas.ems import CredentialStatus, Scheme
from schemas.envelope import Envelope
from schemas.events import (
    EVENT_TYPES,
    AttendanceCorrected,
    AttendanceLogged,
    CredentialLapsed,
    CredentialRecorded,
    CredentialReturned,
    DealClosed,
    EventCancelled,
    EventScheduled,
    MatchSuggested,
    MembershipEnded,
    OrganisationProfileUpdated,
    OrganisationRegistered,
    Payload,
    SupplierLinked,
    SupplierUnlinked,
    SupportProvided,
)
from schemas.identity import name_alias
from schemas.topics import Stream
from schemas.wards import WARDS

logger = logging.getLogger(__name__)

EVENT_PREFIX = "event:"

# Name of the node attribute that holds the node's weighted degree, kept up to
# date on every edge change so that a local algorithm reads it in O(1).
STRENGTH = "strength"
# The same over org-org edges only (supply links and deals): the strength of
# the walks that proximity takes, which leave meetings aside.
ORG_STRENGTH = "org_strength"

# Edge weights read by personalised PageRank. An org-org edge weighs the sum of
# its relations: a supply link, plus each deal closed (at most MAX_COUNTED_DEALS
# of them, so that a prolific pair does not swallow the walk).
SUPPLY_WEIGHT = 1.0
DEAL_WEIGHT = 1.0
MAX_COUNTED_DEALS = 3
ATTENDED_WEIGHT = 1.0


Credential = tuple[CredentialStatus, date, date | None]
# Key of the capability indexes: capability, ward, and whether the org is notable.
IndexKey = tuple[Capability, str, bool]
_EMPTY: frozenset[str] = frozenset()
Handler = Callable[[Any, Envelope], set[str]]
MatchEffect = Callable[[Envelope, Match], set[str]]


@dataclass(frozen=True)
class MatchRecord:
    """A suggestion made to a member: to whom, of whom, and when."""

    org_id: str
    candidate_id: str
    created: datetime


def event_node(event_code: str) -> str:
    """Return the node id of a meeting."""
    return f"{EVENT_PREFIX}{event_code}"


class AllianceGraph:
    """The alliance as a NetworkX graph, built by applying envelopes in log order.

    ``G`` holds org nodes (id = org_id, ``kind="org"``) and meeting nodes
    (``event:<code>``, ``kind="event"``). Edges are org-org (``kind="supply"`` or
    ``kind="deal"``) or org-event (``kind="attended"``); each has a ``weight``,
    and every node keeps its weighted degree in ``strength``. A supply edge
    records its direction: ``supplied_by`` maps each end that supplies the other
    to the date the link began (a pair can trade both ways), and
    `suppliers_of` and `buyers_of` read it by org.

    Registered orgs are indexed by the capabilities they offer and need, by ward,
    and by whether they are *notable*: hold a credential of any status, or have
    closed a deal as a candidate. Ranking reads only the index entries it needs.

    `apply` returns the orgs an event directly concerns: one that registers or
    changes its profile, with its partners; both sides of a supply link, a
    decline or a deal; every attendee of a meeting that gains an org or a title;
    the member a suggestion went to. A new member also becomes a candidate for
    others, and a credential or deal moves a candidate in others' lists: those
    orgs (its `audience`) are returned too.

    Attribute dicts returned by the accessors belong to the graph: read them only.

    `bulk_load` applies a whole log without working out any audience, as a
    service does when it starts, and leaves the same state as `apply`.
    """

    def __init__(self) -> None:
        self.G: nx.Graph = nx.Graph()
        self.matches: dict[str, MatchRecord] = {}
        self._applied: set[str] = set()
        self._offered_by: defaultdict[IndexKey, set[str]] = defaultdict(set)
        self._needed_by: defaultdict[IndexKey, set[str]] = defaultdict(set)
        self._declined: defaultdict[str, dict[str, list[datetime]]] = defaultdict(dict)
        # Supply links by direction: org id to the org ids that supply it, and
        # to the org ids it supplies.
        self._suppliers_of: defaultdict[str, set[str]] = defaultdict(set)
        self._buyers_of: defaultdict[str, set[str]] = defaultdict(set)
        self._loading = False
        # Attributes of every org node, placeholders included, by org id: the
        # same dicts as G.nodes[org_id], reachable without NodeView's overhead.
        self._org_attrs: dict[str, dict[str, Any]] = {}
        # Per org and profile field, the precedence of the event that set it
        # (`Envelope.precedence`): a registration that arrives after an update
        # of its org does not undo the update.
        self._field_latest: defaultdict[str, dict[str, str]] = defaultdict(dict)
        # Per (org, meeting node), the latest word on the org's presence: its
        # precedence and whether the org was there.
        self._presence: dict[tuple[str, str], tuple[str, bool]] = {}
        # Per (org, scheme), the certificate recorded last by issue date, and the
        # dated lapses and returns, which apply to a certificate issued before.
        self._credential_records: dict[tuple[str, Scheme], Credential] = {}
        self._credential_order: dict[tuple[str, Scheme], tuple[date, str]] = {}
        self._credential_ends: defaultdict[
            tuple[str, Scheme], list[tuple[date, CredentialStatus]]
        ] = defaultdict(list)
        # Each match put through its lifecycle (steps before its suggestion wait
        # for it): a deal, a withdrawal or a decline changes the graph only if
        # the lifecycle takes the step.
        self._replays: defaultdict[str, MatchReplay] = defaultdict(MatchReplay)
        self._match_effects: dict[str, MatchEffect] = {
            "MatchSuggested": self._on_match_suggested,
            "MatchDeclined": self._on_match_declined,
            "DealClosed": self._on_deal_closed,
            "DealWithdrawn": self._on_deal_withdrawn,
        }
        self._handlers: dict[str, Handler] = {
            "OrganisationRegistered": self._on_registered,
            "CredentialRecorded": self._on_credential,
            "EventScheduled": self._on_event_scheduled,
            "AttendanceLogged": self._on_attendance,
            "SupplierLinked": self._on_supplier_linked,
            "SupportProvided": self._on_support,
            "OrganisationProfileUpdated": self._on_profile_updated,
            "MembershipEnded": self._on_membership_ended,
            "CredentialLapsed": self._on_credential_status,
            "CredentialReturned": self._on_credential_status,
            "AttendanceCorrected": self._on_attendance_corrected,
            "EventCancelled": self._on_event_cancelled,
            "SupplierUnlinked": self._on_supplier_unlinked,
        }
        for event_type, spec in EVENT_TYPES.items():
            if spec.stream is Stream.MATCHES:
                self._handlers[event_type] = self._on_match_event

    # -- applying events ---------------------------------------------------------

    def apply(self, envelope: Envelope, *, audiences: bool = True) -> set[str]:
        """Apply one event; return the org ids whose suggestions it may change.

        Only registered orgs are returned. An event id seen before changes
        nothing and returns an empty set; event types the graph does not use are
        recorded and ignored. With ``audiences=False`` the orgs a new member,
        credential or deal may now be suggested to are not worked out (nor
        returned): the state is the same, at a fraction of the cost, for a
        caller that refreshes everyone afterwards.
        """
        if envelope.event_id in self._applied:
            logger.debug("event %s already applied", envelope.event_id)
            return set()
        handler = self._handlers.get(envelope.type)
        self._loading = not audiences
        try:
            touched = handler(envelope.payload, envelope) if handler else set()
        finally:
            self._loading = False
        self._applied.add(envelope.event_id)
        logger.debug("applied %s %s", envelope.type, envelope.event_id)
        return {org_id for org_id in touched if self.has_org(org_id)}

    def bulk_load(self, envelopes: Iterable[Envelope]) -> int:
        """Apply many envelopes in order, without finding whom each one touches.

        The state left is the one `apply` leaves, event by event; only the
        answers of `apply` are skipped: for a registration or a credential it is
        the whole audience of the org, so a replay through `apply` costs time
        quadratic in the number of orgs, and this one linear. The caller
        refreshes every member's suggestions afterwards. Return how many
        envelopes were applied (repeated event ids excepted).
        """
        applied = 0
        for envelope in envelopes:
            if envelope.event_id not in self._applied:
                self.apply(envelope, audiences=False)
                applied += 1
        logger.info("bulk-loaded %d events", applied)
        return applied

    def is_applied(self, event_id: str) -> bool:
        """Return whether an event id has been applied."""
        return event_id in self._applied

    def _on_registered(self, p: OrganisationRegistered, envelope: Envelope) -> set[str]:
        self._ensure_org(p.org_id)
        attrs = self.G.nodes[p.org_id]
        self._index(p.org_id, attrs, add=False)
        profile = {
            "registered": True,  # unless it ended later (see _on_membership_ended)
            "name": p.name,
            "name_en": p.name_en,
            "ward": p.ward,
            "industry": p.industry,
            "offers": frozenset(p.offers),
            "needs": frozenset(p.needs),
        }
        self._set_latest(p.org_id, profile, envelope.precedence())
        self._index(p.org_id, attrs, add=True)
        alias = name_alias(p.name, p.ward, p.corporate_number)
        merged = self._merge(alias, p.org_id) if alias and alias != p.org_id else set()
        return {p.org_id, *merged, *self.partners(p.org_id), *self.audience(p.org_id)}

    def _merge(self, alias: str, into: str) -> set[str]:
        """Fold the member known by name only into the one with a corporate
        number: its ties move over and it is no longer suggested."""
        if alias not in self.G or self.G.nodes[alias]["kind"] != "org":
            return set()
        touched = set()
        for v, edge in list(self.G.adj[alias].items()):
            moved = v != into and not self.G.has_edge(into, v)
            if moved:
                self.G.add_edge(
                    into, v, **{k: x for k, x in edge.items() if k != "weight"}
                )
                self._set_weight(into, v, edge["weight"])
            self._move_directions(alias, v, into if moved else None)
            self._drop_edge(alias, v)
            touched.add(v)
        attrs = self.G.nodes[alias]
        self._index(alias, attrs, add=False)
        attrs.update(registered=False, merged_into=into)
        return {t for t in touched if not t.startswith(EVENT_PREFIX)}

    def _move_directions(self, alias: str, v: str, into: str | None) -> None:
        """Give the supply directions of the edge (alias, v) to `into`, or drop
        them when the edge is not moved."""
        edge = self.G.edges[alias, v]
        if "supplied_by" not in edge:
            return
        for supplier in edge["supplied_by"]:
            self._index_direction(supplier, v if supplier == alias else alias, False)
        if into is None:
            return
        moved: dict[str, date] = {}
        self.G.edges[into, v]["supplied_by"] = moved
        for supplier, since in edge["supplied_by"].items():
            supplier = into if supplier == alias else supplier
            buyer = v if supplier == into else into
            self._add_direction(moved, supplier, buyer, since)

    def _index_direction(self, supplier: str, buyer: str, add: bool) -> None:
        if add:
            self._suppliers_of[buyer].add(supplier)
            self._buyers_of[supplier].add(buyer)
        else:
            self._suppliers_of[buyer].discard(supplier)
            self._buyers_of[supplier].discard(buyer)

    def _on_profile_updated(
        self, p: OrganisationProfileUpdated, envelope: Envelope
    ) -> set[str]:
        """Change the fields the update gives; the others keep their value."""
        self._ensure_org(p.org_id)
        attrs = self.G.nodes[p.org_id]
        before = self.audience(p.org_id)
        self._index(p.org_id, attrs, add=False)
        changes = p.model_dump(
            exclude_none=True, exclude={"org_id", "corporate_number"}
        )
        for side in ("offers", "needs"):
            if side in changes:
                changes[side] = frozenset(changes[side])
        self._set_latest(p.org_id, changes, envelope.precedence(rank=1))
        self._index(p.org_id, attrs, add=True)
        return {p.org_id, *self.partners(p.org_id), *before, *self.audience(p.org_id)}

    def _set_latest(self, org_id: str, fields: dict[str, Any], precedence: str) -> None:
        """Set each field, unless an event later by `Envelope.precedence` has
        set it already."""
        latest = self._field_latest[org_id]
        attrs = self.G.nodes[org_id]
        for name, value in fields.items():
            if latest.get(name, "") <= precedence:
                attrs[name] = value
                latest[name] = precedence

    def _on_membership_ended(self, p: MembershipEnded, envelope: Envelope) -> set[str]:
        """Stop suggesting an org that left; its history stays in the graph.

        The latest by time of this and the org's registrations holds: an end
        that arrives before its registration still ends it, and a later
        registration brings the org back.
        """
        self._ensure_org(p.org_id)
        touched = set()
        if self.has_org(p.org_id):
            touched = {*self.partners(p.org_id), *self.audience(p.org_id)}
        attrs = self.G.nodes[p.org_id]
        self._index(p.org_id, attrs, add=False)
        ended = {"registered": False, "ended_on": p.ended_on}
        self._set_latest(p.org_id, ended, envelope.precedence())
        self._index(p.org_id, attrs, add=True)
        return touched if not attrs["registered"] else set()

    def _on_credential_status(
        self, p: CredentialLapsed | CredentialReturned, envelope: Envelope
    ) -> set[str]:
        """Lapse or return the credential held on that day; one that arrives
        before its record waits for it."""
        lapsed = isinstance(p, CredentialLapsed)
        status = CredentialStatus.LAPSED if lapsed else CredentialStatus.RETURNED
        on = p.lapsed_on if isinstance(p, CredentialLapsed) else p.returned_on
        self._credential_ends[p.org_id, p.scheme].append((on, status))
        if (p.org_id, p.scheme) not in self._credential_records:
            logger.info("event %s: %s has no %s credential yet; kept for it",
                        envelope.event_id, p.org_id, p.scheme.value)  # fmt: skip
            return set()
        self._set_credential(p.org_id, p.scheme)
        return {p.org_id, *self.audience(p.org_id)}

    def _on_credential(self, p: CredentialRecorded, envelope: Envelope) -> set[str]:
        """Hold the scheme's certificate issued last, whatever the arrival order."""
        self._ensure_org(p.org_id)
        key = (p.org_id, p.scheme)
        order = (p.issued_on, envelope.precedence())
        if key in self._credential_order and self._credential_order[key] > order:
            return set()  # an older certificate (or record of it), arrived late
        self._credential_order[key] = order
        self._credential_records[key] = (p.status, p.issued_on, p.expires_on)
        self._set_credential(p.org_id, p.scheme)
        self._update_notable(p.org_id)
        return {p.org_id, *self.audience(p.org_id)}

    def _set_credential(self, org_id: str, scheme: Scheme) -> None:
        """Give the certificate held the status of its latest lapse or return
        dated on or after its issue, if any."""
        status, issued_on, expires_on = self._credential_records[org_id, scheme]
        ends = self._credential_ends.get((org_id, scheme), [])
        later = [end for end in ends if end[0] >= issued_on]
        if later:
            status = max(later)[1]
        self.G.nodes[org_id]["credentials"][scheme] = (status, issued_on, expires_on)

    def _on_event_scheduled(self, p: EventScheduled, envelope: Envelope) -> set[str]:
        node = self._ensure_event(p.event_code)
        self.G.nodes[node].update(
            scheduled=True,
            title=p.title,
            event_kind=p.kind,
            ward=p.ward,
            starts_at=p.starts_at,
        )
        return self.attendees(node)

    def _on_attendance(
        self, p: AttendanceLogged, envelope: Envelope, rank: int = 0
    ) -> set[str]:
        """Link the org to the meeting once, counting distinct people."""
        self._ensure_org(p.org_id)
        node = self._ensure_event(p.event_code)
        if not self._is_news(p.org_id, node, envelope.precedence(rank), True):
            return set()  # taken back by a later correction, arrived first
        if self.G.nodes[node].get("cancelled"):
            return set()  # attendance of a cancelled meeting creates no tie
        is_new = not self.G.has_edge(p.org_id, node)
        if is_new:
            self.G.add_edge(p.org_id, node, kind="attended", person_refs=set())
            self._set_weight(p.org_id, node, ATTENDED_WEIGHT)
        edge = self.G.edges[p.org_id, node]
        edge["person_refs"].add(p.person_ref)  # None stands for one unnamed person
        edge["people"] = len(edge["person_refs"])
        # Another person of an org already there changes no one's features.
        return self.attendees(node) if is_new else set()

    def _on_attendance_corrected(
        self, p: AttendanceCorrected, envelope: Envelope
    ) -> set[str]:
        """Add or take back an attendance, as the organiser corrects it."""
        node = event_node(p.event_code)
        if p.attended:
            logged = AttendanceLogged(
                event_code=p.event_code,
                org_id=p.org_id,
                attended_at=envelope.occurred_at,
            )
            return self._on_attendance(logged, envelope, rank=1)
        if not self._is_news(p.org_id, node, envelope.precedence(rank=1), False):
            return set()  # a later attendance, arrived first, stands
        if not self.G.has_edge(p.org_id, node):
            return set()
        touched = self.attendees(node)
        self._drop_edge(p.org_id, node)
        return touched

    def _is_news(self, org_id: str, node: str, precedence: str, there: bool) -> bool:
        """Record a word on an org's presence at a meeting; return False if a
        later word contradicts it.

        Attendance of several people of one org, in any order, all counts; an
        attendance taken back by a later correction does not, even when the
        correction arrives first.
        """
        latest = self._presence.get((org_id, node))
        if latest is not None and latest[0] > precedence:
            return latest[1] == there
        self._presence[org_id, node] = (precedence, there)
        return True

    def _on_event_cancelled(self, p: EventCancelled, envelope: Envelope) -> set[str]:
        """A cancelled meeting created no tie: drop its attendance."""
        node = self._ensure_event(p.event_code)
        touched = self.attendees(node)
        for org_id in touched:
            self._drop_edge(org_id, node)
        self.G.nodes[node]["cancelled"] = True
        return touched

    def _on_supplier_unlinked(
        self, p: SupplierUnlinked, envelope: Envelope
    ) -> set[str]:
        """End the link in the direction given; a link the other way stays."""
        if not self.G.has_edge(p.buyer_id, p.supplier_id):
            return set()
        edge = self.G.edges[p.buyer_id, p.supplier_id]
        if p.supplier_id not in edge["supplied_by"]:
            return set()
        del edge["supplied_by"][p.supplier_id]
        self._index_direction(p.supplier_id, p.buyer_id, False)
        self._org_attrs[p.supplier_id]["newest_supply"] = max(
            (self.G.edges[p.supplier_id, b]["supplied_by"][p.supplier_id]
             for b in self._buyers_of[p.supplier_id]),
            default=None,
        )  # fmt: skip
        edge["until"] = p.until
        if not edge["supplied_by"]:
            edge["supply"] = False
        self._reweigh(p.buyer_id, p.supplier_id)
        if edge["weight"] == 0:
            self._drop_edge(p.buyer_id, p.supplier_id)
        return {p.buyer_id, p.supplier_id}

    def _drop_edge(self, u: str, v: str) -> None:
        """Remove an edge, keeping the nodes' strengths right."""
        self._set_weight(u, v, 0.0)
        self.G.remove_edge(u, v)

    def _on_supplier_linked(self, p: SupplierLinked, envelope: Envelope) -> set[str]:
        edge = self._org_edge(p.buyer_id, p.supplier_id)
        edge.update(
            supply=True,
            buyer=p.buyer_id,
            supplier=p.supplier_id,
            category=p.category,
            since=p.since,
            green_procurement_required=p.green_procurement_required,
        )
        self._add_direction(edge["supplied_by"], p.supplier_id, p.buyer_id, p.since)
        return {p.buyer_id, p.supplier_id}

    def _on_support(self, p: SupportProvided, envelope: Envelope) -> set[str]:
        """Record support on the supply link, creating the link if undeclared."""
        edge = self._org_edge(p.buyer_id, p.supplier_id)
        touched: set[str] = set()
        if p.supplier_id not in edge["supplied_by"]:
            logger.warning(
                "support %s names an undeclared supply link %s -> %s; linking them",
                envelope.event_id,
                p.buyer_id,
                p.supplier_id,
            )
            if not edge["supply"]:
                edge.update(supply=True, buyer=p.buyer_id, supplier=p.supplier_id)
                edge.update(category=None, since=p.provided_on)
                edge.update(green_procurement_required=False)
            self._add_direction(
                edge["supplied_by"], p.supplier_id, p.buyer_id, p.provided_on
            )
            touched = {p.buyer_id, p.supplier_id}
        if all(s["event_id"] != envelope.event_id for s in edge["support"]):
            edge["support"].append(_support_entry(p, envelope.event_id))
        return touched

    def _add_direction(
        self, directions: dict[str, date], supplier: str, buyer: str, since: date
    ) -> None:
        """Record that `supplier` supplies `buyer` since a date, and reweigh."""
        directions[supplier] = since
        self._index_direction(supplier, buyer, True)
        attrs = self._org_attrs[supplier]
        if attrs["newest_supply"] is None or attrs["newest_supply"] < since:
            attrs["newest_supply"] = since
        self._reweigh(buyer, supplier)

    def _on_match_event(self, p: Payload, envelope: Envelope) -> set[str]:
        """Put the message through its match's lifecycle; apply the effects of
        the steps taken (events produced straight to the topic skip the API's
        check, so a step may be refused here)."""
        if isinstance(p, MatchSuggested) and p.org_id == p.candidate_id:
            logger.warning("match %s: a self-match, ignored", p.match_id)
            return set()
        replay = self._replays[envelope.key]  # the topic is keyed by match id
        touched: set[str] = set()
        for taken, match in replay.apply(envelope):
            if effect := self._match_effects.get(taken.type):
                touched |= effect(taken, match)
        if replay.match is None:
            logger.info("event %s names match %s, not suggested yet: kept for it",
                        envelope.event_id, envelope.key)  # fmt: skip
        return touched

    def _on_match_suggested(self, envelope: Envelope, match: Match) -> set[str]:
        created = envelope.occurred_at
        self.matches[match.match_id] = MatchRecord(
            match.org_id, match.candidate_id, created
        )
        self._ensure_org(match.candidate_id)
        self._org_attrs[match.candidate_id]["suggested"] += 1
        return {match.org_id}

    def _on_match_declined(self, envelope: Envelope, match: Match) -> set[str]:
        pair = (match.org_id, match.candidate_id)
        for u, v in (pair, pair[::-1]):
            self._declined[u].setdefault(v, []).append(envelope.occurred_at)
        return set(pair)

    def _on_deal_closed(self, envelope: Envelope, match: Match) -> set[str]:
        """Count the deal and strengthen the pair's edge."""
        assert isinstance(envelope.payload, DealClosed)
        self._org_attrs[match.candidate_id]["deals"] += 1
        self._update_notable(match.candidate_id)
        edge = self._org_edge(match.org_id, match.candidate_id)
        edge["deal"] = True
        edge["deals"] += 1
        edge["last_deal_on"] = envelope.payload.closed_on
        self._reweigh(match.org_id, match.candidate_id)
        return {match.org_id, match.candidate_id, *self.audience(match.candidate_id)}

    def _on_deal_withdrawn(self, envelope: Envelope, match: Match) -> set[str]:
        """Take back a deal reported earlier."""
        self._org_attrs[match.candidate_id]["deals"] -= 1
        self._update_notable(match.candidate_id)
        edge = self.G.edges[match.org_id, match.candidate_id]
        edge["deals"] -= 1
        edge["deal"] = edge["deals"] > 0
        self._reweigh(match.org_id, match.candidate_id)
        if edge["weight"] == 0:
            self._drop_edge(match.org_id, match.candidate_id)
        return {match.org_id, match.candidate_id, *self.audience(match.candidate_id)}

    # -- building blocks ---------------------------------------------------------

    def _ensure_org(self, org_id: str) -> None:
        """Add a placeholder org node, filled when the org registers."""
        if org_id in self.G:
            return
        self.G.add_node(
            org_id,
            kind="org",
            registered=False,
            name=org_id,
            name_en=None,
            ward=None,
            industry=None,
            offers=frozenset(),
            needs=frozenset(),
            credentials={},
            suggested=0,
            deals=0,
            notable=False,
            newest_supply=None,
        )
        self._org_attrs[org_id] = self.G.nodes[org_id]
        self._org_attrs[org_id].update({STRENGTH: 0.0, ORG_STRENGTH: 0.0})

    def _ensure_event(self, event_code: str) -> str:
        node = event_node(event_code)
        if node not in self.G:
            self.G.add_node(
                node,
                kind="event",
                scheduled=False,
                event_code=event_code,
                title=event_code,
                event_kind=None,
                ward=None,
                starts_at=None,
            )
            self.G.nodes[node].update({STRENGTH: 0.0, ORG_STRENGTH: 0.0})
        return node

    def _org_edge(self, u: str, v: str) -> dict[str, Any]:
        """Return the attributes of the org-org edge, adding an empty one."""
        self._ensure_org(u)
        self._ensure_org(v)
        if not self.G.has_edge(u, v):
            self.G.add_edge(u, v, kind="deal", supply=False, deal=False, deals=0)
            self.G.edges[u, v].update(support=[], supplied_by={})
            self._set_weight(u, v, 0.0)
        attrs: dict[str, Any] = self.G.edges[u, v]
        return attrs

    def _reweigh(self, u: str, v: str) -> None:
        edge = self.G.edges[u, v]
        edge["kind"] = "supply" if edge["supply"] else "deal"
        deals = min(edge["deals"], MAX_COUNTED_DEALS)
        weight = SUPPLY_WEIGHT * edge["supply"] + DEAL_WEIGHT * deals
        self._set_weight(u, v, weight)

    def _set_weight(self, u: str, v: str, weight: float) -> None:
        edge = self.G.edges[u, v]
        delta = weight - edge.get("weight", 0.0)
        edge["weight"] = weight
        nodes = self.G.nodes
        nodes[u][STRENGTH] += delta
        nodes[v][STRENGTH] += delta
        if edge["kind"] != "attended":
            nodes[u][ORG_STRENGTH] += delta
            nodes[v][ORG_STRENGTH] += delta

    def _index(self, org_id: str, attrs: dict[str, Any], *, add: bool) -> None:
        """Add a registered org to (or remove it from) the capability indexes."""
        if not attrs["registered"]:
            return
        for index, side in ((self._offered_by, "offers"), (self._needed_by, "needs")):
            for capability in attrs[side]:
                key = (capability, attrs["ward"], attrs["notable"])
                if add:
                    index[key].add(org_id)
                else:
                    index[key].discard(org_id)

    def _update_notable(self, org_id: str) -> None:
        """Mark the org notable once it holds a credential or has closed a deal."""
        attrs = self._org_attrs[org_id]
        notable = bool(attrs["credentials"]) or attrs["deals"] > 0
        if notable != attrs["notable"]:
            self._index(org_id, attrs, add=False)
            attrs["notable"] = notable
            self._index(org_id, attrs, add=True)

    # -- reading -----------------------------------------------------------------

    def orgs(self) -> Iterator[str]:
        """Iterate the ids of registered orgs, in the order they were first seen."""
        for org_id, attrs in self._org_attrs.items():
            if attrs["registered"]:
                yield org_id

    def has_org(self, org_id: str) -> bool:
        """Return whether the org is registered (placeholders are not)."""
        attrs = self._org_attrs.get(org_id)
        return attrs is not None and attrs["registered"]

    def org(self, org_id: str) -> dict[str, Any]:
        """Return a registered org's attributes.

        Raises:
            UnknownOrganisation: if the org is unknown or only a placeholder.
        """
        if not self.has_org(org_id):
            raise UnknownOrganisation(org_id)
        attrs: dict[str, Any] = self.G.nodes[org_id]
        return attrs

    @property
    def org_attrs(self) -> Mapping[str, dict[str, Any]]:
        """Return the attributes of every org node by id, placeholders included."""
        return self._org_attrs

    def event(self, node: str) -> dict[str, Any]:
        """Return a meeting node's attributes."""
        attrs: dict[str, Any] = self.G.nodes[node]
        return attrs

    def offering(
        self,
        capability: Capability,
        ward: str | None = None,
        notable: bool | None = None,
    ) -> Set[str]:
        """Return the registered orgs that offer a capability.

        `ward` and `notable` narrow the answer; given both, it is the index's own
        set (read it only), with no copy.
        """
        return _lookup(self._offered_by, capability, ward, notable)

    def needing(
        self,
        capability: Capability,
        ward: str | None = None,
        notable: bool | None = None,
    ) -> Set[str]:
        """Return the registered orgs that need a capability; narrowed as `offering`."""
        return _lookup(self._needed_by, capability, ward, notable)

    def audience(self, org_id: str) -> set[str]:
        """Return the orgs that could be suggested this org (its profile, credentials
        and record change their lists): those needing what it offers, and those
        offering what it needs. No one while `bulk_load` runs."""
        attrs = self.G.nodes.get(org_id)
        if self._loading or attrs is None or attrs["kind"] != "org":
            return set()
        if not attrs.get("registered"):
            return set()
        found: set[str] = set()
        for capability in attrs["offers"]:
            found |= self.needing(capability)
        for capability in attrs["needs"]:
            found |= self.offering(capability)
        found.discard(org_id)
        return found

    def partners(self, org_id: str) -> set[str]:
        """Return the orgs linked to this org by a supply link or a deal."""
        if org_id not in self.G:
            return set()
        return {v for v in self.G.adj[org_id] if self.G.nodes[v]["kind"] == "org"}

    def supply_partners(self, org_id: str) -> set[str]:
        """Return the orgs linked to this org by a supply link, either way."""
        if org_id not in self.G:
            return set()
        adj = self.G.adj[org_id]
        return {v for v, edge in adj.items() if edge.get("supply", False)}

    def suppliers_of(self, org_id: str) -> Set[str]:
        """Return the orgs that supply this org (read only)."""
        return self._suppliers_of.get(org_id, _EMPTY)

    def newest_supply(self, org_id: str) -> date | None:
        """Return when the newest supply link the org supplies in began."""
        attrs = self._org_attrs.get(org_id)
        return attrs["newest_supply"] if attrs else None

    def buyers_of(self, org_id: str) -> Set[str]:
        """Return the orgs this org supplies (read only)."""
        return self._buyers_of.get(org_id, _EMPTY)

    def attendees(self, node: str) -> set[str]:
        """Return the orgs that attended a meeting."""
        if node not in self.G:
            return set()
        return {u for u in self.G.adj[node] if self.G.nodes[u]["kind"] == "org"}

    def shared_events(self, org_id: str) -> dict[str, list[str]]:
        """Return, for every org that met this org, the meetings both attended."""
        shared: defaultdict[str, list[str]] = defaultdict(list)
        for node in self.G.adj[org_id] if org_id in self.G else ():
            if self.G.nodes[node]["kind"] != "event":
                continue
            for other in self.G.adj[node]:
                if other != org_id:
                    shared[other].append(node)
        return dict(shared)

    def declined_between(self, org_id: str, start: datetime, end: datetime) -> set[str]:
        """Return the orgs whose pairing with this org was declined in [start, end]."""
        return {
            other
            for other, moments in self._declined.get(org_id, {}).items()
            if any(start <= moment <= end for moment in moments)
        }

    def record(self, org_id: str) -> tuple[int, int]:
        """Return how often the org was suggested as a candidate, and its deals."""
        attrs = self._org_attrs.get(org_id)
        return (attrs["suggested"], attrs["deals"]) if attrs else (0, 0)

    def credentials(self, org_id: str) -> dict[Scheme, Credential]:
        """Return a registered org's credentials by scheme."""
        credentials: dict[Scheme, Credential] = self.org(org_id)["credentials"]
        return credentials


def _lookup(
    index: dict[IndexKey, set[str]],
    capability: Capability,
    ward: str | None,
    notable: bool | None,
) -> Set[str]:
    if ward is not None and notable is not None:
        return index.get((capability, ward, notable), _EMPTY)
    wards = WARDS if ward is None else (ward,)
    flags = (False, True) if notable is None else (notable,)
    keys = [(capability, w, flag) for w in wards for flag in flags]
    return set().union(*(index.get(key, _EMPTY) for key in keys))


def _support_entry(p: SupportProvided, event_id: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "kind": p.kind,
        "amount_jpy": p.amount_jpy,
        "provided_on": p.provided_on,
    }
