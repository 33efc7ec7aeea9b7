"""Environmental management system (EMS) schemes and credential statuses."""

from __future__ import annotations

from enum import StrEnum


class Scheme(StrEnum):
    """EMS credentials, lightest first."""

    SIMPLE_DECLARATION = "simple_declaration"
    LOCAL_SCHEME = "local_scheme"
    ECO_ACTION_21 = "eco_action_21"
    ISO_14001 = "iso_14001"


class CredentialStatus(StrEnum):
    ACTIVE = "active"
    LAPSED = "lapsed"
    RETURNED = "returned"


# Rank of each scheme, 1 (lightest) to 4; used to compare credentials.
SCHEME_LEVEL: dict[Scheme, int] = {
    Scheme.SIMPLE_DECLARATION: 1,
    Scheme.LOCAL_SCHEME: 2,
    Scheme.ECO_ACTION_21: 3,
    Scheme.ISO_14001: 4,
}

SCHEME_LABELS: dict[Scheme, tuple[str, str]] = {
    Scheme.SIMPLE_DECLARATION: ("簡易EMS宣言", "simple EMS declaration"),
    Scheme.LOCAL_SCHEME: ("自治体版EMS", "local EMS scheme"),
    Scheme.ECO_ACTION_21: ("エコアクション21", "Eco Action 21"),
    Scheme.ISO_14001: ("ISO 14001", "ISO 14001"),
}
