"""The reasons behind a suggestion, each with one sentence in English and Japanese.

Sentences are written for a busy small-business owner: they name the real
organisations, meetings, wards and credentials, and say "you" for the member.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from matching.graph import AllianceGraph
from schemas.capabilities import CAPABILITY_LABELS, Capability
from schemas.ems import SCHEME_LABELS, SCHEME_LEVEL, Scheme
from schemas.wards import WARDS, ward_distance

logger = logging.getLogger(__name__)

ReasonKind = Literal[
    "fit",
    "proximity",
    "co_customers",
    "shared_events",
    "ward",
    "credential",
    "track_record",
    "recency",
]
Role = Literal["supplier", "buyer"]

# How many meetings a shared-events sentence names before it counts the rest.
MAX_NAMED_EVENTS = 3
# How many firms a co-customers sentence names.
MAX_NAMED_FIRMS = 2


@dataclass(frozen=True)
class Reason:
    """One reason for a suggestion: its share of the score and its evidence."""

    kind: ReasonKind
    contribution: float
    evidence: dict[str, Any]
    text_en: str
    text_ja: str

    def to_dict(self) -> dict[str, Any]:
        """Return the reason as JSON-able data."""
        return {
            "kind": self.kind,
            "contribution": self.contribution,
            "evidence": self.evidence,
            "text_en": self.text_en,
            "text_ja": self.text_ja,
        }


def fit_reason(
    role: Role, categories: Sequence[Capability], contribution: float
) -> Reason:
    """Explain which needs and offers fit together."""
    en = join_en([CAPABILITY_LABELS[c][1] for c in categories])
    ja = "、".join(CAPABILITY_LABELS[c][0] for c in categories)
    if role == "supplier":
        text_en = f"Offers {en}, which you need."
        text_ja = f"貴社が必要とする{ja}を提供しています。"
    else:
        text_en = f"Needs {en}, which you offer."
        text_ja = f"貴社が提供する{ja}を必要としています。"
    evidence = {"role": role, "categories": [c.value for c in categories]}
    return Reason("fit", contribution, evidence, text_en, text_ja)


def proximity_reason(
    graph: AllianceGraph, path: Sequence[str], contribution: float
) -> Reason:
    """Explain how the candidate is reached from the member in the graph."""
    via = list(path[1:-1])
    evidence = {"path": list(path), "via": [node_label(graph, n, "en") for n in via]}
    if via:
        text_en = _end(f"Connected to you through {join_en(_labels(graph, via, 'en'))}")
        text_ja = (
            f"{'、'.join(_labels(graph, via, 'ja'))}を通じて貴社とつながっています。"
        )
    elif path:
        text_en = "Has closed a deal with you through the platform before."
        text_ja = "以前にプラットフォームを通じて貴社と成約しています。"
    else:
        text_en = "Close to you in the alliance's network of partners and meetings."
        text_ja = "アライアンスの取引と交流のつながりの中で、貴社の近くにいます。"
    return Reason("proximity", contribution, evidence, text_en, text_ja)


def co_customers_reason(
    graph: AllianceGraph, org_id: str, candidate_id: str, contribution: float
) -> Reason:
    """Explain which firms buy from the candidate and from the member's suppliers."""
    mine = graph.suppliers_of(org_id)
    peers = sorted(
        c
        for c in graph.buyers_of(candidate_id)
        if c != org_id and not mine.isdisjoint(graph.suppliers_of(c))
    )
    named = peers[:MAX_NAMED_FIRMS]
    evidence = {"co_customers": len(peers), "named": named}
    if named:
        en, ja = _labels(graph, named, "en"), _labels(graph, named, "ja")
        more_en = f" and {len(peers) - len(named)} more" if len(peers) > 2 else ""
        more_ja = f"など{len(peers)}社" if len(peers) > 2 else ""
        text_en = _end(
            f"Supplies {join_en(en)}{more_en}, which "
            f"{'buys' if len(peers) == 1 else 'buy'} from your suppliers too"
        )
        text_ja = f"貴社の仕入先から同じく仕入れている{'、'.join(ja)}{more_ja}に供給しています。"
    else:
        text_en = "Supplies firms that buy from the same suppliers as you."
        text_ja = "貴社と同じ仕入先から仕入れている企業に供給しています。"
    return Reason("co_customers", contribution, evidence, text_en, text_ja)


def recency_reason(newest: date, contribution: float) -> Reason:
    """Explain that the candidate began supplying someone lately."""
    day = newest.isoformat()
    text_en = f"Its newest supply relationship began on {day}."
    text_ja = f"直近の新たな取引は{day}に始まりました。"
    evidence = {"newest_supply": day}
    return Reason("recency", contribution, evidence, text_en, text_ja)


def shared_events_reason(
    graph: AllianceGraph, nodes: Sequence[str], contribution: float
) -> Reason:
    """Explain which meetings both organisations attended, most recent first."""
    events = sorted((graph.event(n) for n in nodes), key=_recent_first)
    titles = [e["title"] for e in events]
    named, others = titles[:MAX_NAMED_EVENTS], len(titles) - MAX_NAMED_EVENTS
    quoted_ja = "".join(f"「{t}」" for t in named)
    if others > 0:
        more = "meeting" if others == 1 else "meetings"
        quoted_en = ", ".join(f"'{t}'" for t in named)
        text_en = f"Both took part in {quoted_en} and {others} other {more}."
        text_ja = f"{quoted_ja}など{len(titles)}件の会合に両社とも参加しました。"
    else:
        quoted_en = join_en([f"'{t}'" for t in named])
        text_en = f"Both took part in {quoted_en}."
        text_ja = f"{quoted_ja}に両社とも参加しました。"
    evidence = {"count": len(titles), "events": [_event_evidence(e) for e in events]}
    return Reason("shared_events", contribution, evidence, text_en, text_ja)


def ward_reason(member_ward: str, candidate_ward: str, contribution: float) -> Reason:
    """Explain how near the candidate's ward is to the member's."""
    mine, theirs = WARDS[member_ward], WARDS[candidate_ward]
    distance = ward_distance(member_ward, candidate_ward)
    if distance == 0:
        text_en = f"Also based in {theirs.name_en}."
        text_ja = f"貴社と同じ{theirs.name_ja}にあります。"
    else:
        text_en = f"Based in {theirs.name_en}, next to your ward, {mine.name_en}."
        text_ja = f"貴社のある{mine.name_ja}に隣接する{theirs.name_ja}にあります。"
    evidence = {
        "member_ward": member_ward,
        "candidate_ward": candidate_ward,
        "distance": distance,
    }
    return Reason("ward", contribution, evidence, text_en, text_ja)


def credential_reason(
    scheme: Scheme, expires_on: date | None, contribution: float
) -> Reason:
    """Explain which EMS credential the candidate holds."""
    label_ja, label_en = SCHEME_LABELS[scheme]
    until_en = f", valid until {expires_on.isoformat()}" if expires_on else ""
    until_ja = f"（{expires_on.isoformat()}まで）" if expires_on else ""
    text_en = f"Holds an active EMS credential: {label_en}{until_en}."
    text_ja = f"{label_ja}の認証・登録が有効です{until_ja}。"
    evidence = {
        "scheme": scheme.value,
        "level": SCHEME_LEVEL[scheme],
        "expires_on": expires_on.isoformat() if expires_on else None,
    }
    return Reason("credential", contribution, evidence, text_en, text_ja)


def track_record_reason(suggested: int, deals: int, contribution: float) -> Reason:
    """Explain how often the candidate's past introductions led to a deal."""
    if suggested == 0:
        text_en = (
            "New to introductions here: rated as a newcomer until deals are reported."
        )
        text_ja = "プラットフォームでの紹介はまだなく、新規参加者として評価しています。"
    else:
        noun = "introduction" if suggested == 1 else "introductions"
        text_en = f"{deals} of {suggested} {noun} through the platform led to a deal."
        text_ja = (
            f"プラットフォームでの紹介{suggested}件のうち{deals}件が成約しました。"
        )
    evidence = {"suggested": suggested, "deals": deals}
    return Reason("track_record", contribution, evidence, text_en, text_ja)


def node_label(graph: AllianceGraph, node: str, lang: Literal["en", "ja"]) -> str:
    """Return how a sentence names a node: an org's name or a quoted meeting title."""
    attrs = graph.G.nodes[node]
    if attrs["kind"] == "event":
        return f"'{attrs['title']}'" if lang == "en" else f"「{attrs['title']}」"
    if lang == "en" and attrs.get("name_en"):
        return str(attrs["name_en"])
    return str(attrs["name"])


def join_en(items: Sequence[str]) -> str:
    """Join words as English does: 'a', 'a and b', 'a, b and c'."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _end(sentence: str) -> str:
    """End a sentence with one full stop, even after a name like 'Co.,Ltd.'."""
    return sentence if sentence.endswith(".") else f"{sentence}."


def _labels(
    graph: AllianceGraph, nodes: Sequence[str], lang: Literal["en", "ja"]
) -> list[str]:
    return [node_label(graph, n, lang) for n in nodes]


def _recent_first(event: dict[str, Any]) -> tuple[bool, float, str]:
    starts_at = event["starts_at"]
    moment = -starts_at.timestamp() if starts_at is not None else 0.0
    return (starts_at is None, moment, event["event_code"])


def _event_evidence(event: dict[str, Any]) -> dict[str, Any]:
    starts_at = event["starts_at"]
    return {
        "event_code": event["event_code"],
        "title": event["title"],
        "starts_at": starts_at.isoformat() if starts_at is not None else None,
    }
