"""Event payloads of every stream, version 1.

Words: an *event* in a payload (``event_code``) is a meeting that members attend;
``event_id`` in the envelope identifies the change itself.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from schemas.capabilities import Capability
from schemas.ems import CredentialStatus, Scheme
from schemas.fiscal import plausible_date
from schemas.identity import normalise_corporate_number
from schemas.topics import Stream
from schemas.wards import ward_code

# No ':' (it separates the parts of Redis keys and graph node ids).
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
IDENTIFIER_MAX = 128
Identifier = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=IDENTIFIER_MAX,
        pattern=IDENTIFIER_PATTERN,
    ),
]
OrgId = Identifier
Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)
]
WardCode = Annotated[str, AfterValidator(ward_code)]
CorporateNumber = Annotated[str, AfterValidator(normalise_corporate_number)]


# Each capability once, and room for repeats a spreadsheet may hold.
MAX_CAPABILITIES = 2 * len(Capability)


class Payload(BaseModel):
    """Base of every payload: unknown fields are refused, not dropped, and
    every date must fall in EARLIEST_DATE..LATEST_DATE."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _plausible_dates(cls, value: Any) -> Any:
        return plausible_date(value)


# -- membership (keyed by organisation) -------------------------------------------


class OrganisationRegistered(Payload):
    org_id: OrgId
    name: Name
    name_en: Name | None = None
    ward: WardCode
    corporate_number: CorporateNumber | None = None
    industry: str | None = Field(None, max_length=100)
    size: Literal["small", "medium", "large"] | None = None
    offers: list[Capability] = Field(default_factory=list, max_length=MAX_CAPABILITIES)
    needs: list[Capability] = Field(default_factory=list, max_length=MAX_CAPABILITIES)
    capabilities_assumed: bool = Field(
        False, description="offers/needs were derived from the industry, not stated"
    )


class OrganisationProfileUpdated(Payload):
    """A member changes its profile; fields left out keep their value."""

    org_id: OrgId
    name: Name | None = None
    name_en: Name | None = None
    ward: WardCode | None = None
    corporate_number: CorporateNumber | None = None
    industry: str | None = Field(None, max_length=100)
    size: Literal["small", "medium", "large"] | None = None
    offers: list[Capability] | None = Field(None, max_length=MAX_CAPABILITIES)
    needs: list[Capability] | None = Field(None, max_length=MAX_CAPABILITIES)


class MembershipEnded(Payload):
    org_id: OrgId
    ended_on: date
    reason: str | None = Field(None, max_length=500)


class CredentialRecorded(Payload):
    org_id: OrgId
    scheme: Scheme
    status: CredentialStatus = CredentialStatus.ACTIVE
    issued_on: date
    expires_on: date | None = None

    @model_validator(mode="after")
    def _expires_after_issue(self) -> CredentialRecorded:
        if self.expires_on is not None and self.expires_on < self.issued_on:
            raise ValueError("expires_on must not be before issued_on")
        return self


class CredentialLapsed(Payload):
    """A credential was not renewed in time."""

    org_id: OrgId
    scheme: Scheme
    lapsed_on: date


class CredentialReturned(Payload):
    """A member gave a credential back (or it was withdrawn)."""

    org_id: OrgId
    scheme: Scheme
    returned_on: date


# -- attendance (keyed by event) ----------------------------------------------------


class EventKind(StrEnum):
    EXCHANGE = "exchange"
    MATCHING = "matching"
    STUDY = "study"
    SITE_VISIT = "site_visit"


class EventScheduled(Payload):
    event_code: Identifier
    title: Name
    kind: EventKind
    ward: WardCode | None = None
    starts_at: AwareDatetime


class AttendanceLogged(Payload):
    event_code: Identifier
    org_id: OrgId
    attended_at: AwareDatetime
    person_ref: str | None = Field(None, max_length=200)


class AttendanceCorrected(Payload):
    """An organiser corrects the record: the org did (not) attend the event."""

    event_code: Identifier
    org_id: OrgId
    attended: bool
    reason: str | None = Field(None, max_length=500)


class EventCancelled(Payload):
    event_code: Identifier
    reason: str | None = Field(None, max_length=500)


# -- supply chain (keyed by buyer) --------------------------------------------------


class SupplierLinked(Payload):
    buyer_id: OrgId
    supplier_id: OrgId
    category: Capability | None = None
    description: str | None = Field(None, max_length=500)
    since: date
    green_procurement_required: bool = False

    @model_validator(mode="after")
    def _two_parties(self) -> SupplierLinked:
        if self.buyer_id == self.supplier_id:
            raise ValueError("buyer_id and supplier_id must be different organisations")
        return self


class SupplierUnlinked(Payload):
    buyer_id: OrgId
    supplier_id: OrgId
    until: date


class SupportKind(StrEnum):
    TRAINING = "training"
    FUNDING = "funding"
    AUDIT = "audit"
    CONSULTING = "consulting"
    EQUIPMENT = "equipment"
    OTHER = "other"


class SupportProvided(Payload):
    buyer_id: OrgId
    supplier_id: OrgId
    kind: SupportKind
    amount_jpy: int | None = Field(None, ge=0)
    provided_on: date


# -- matches (keyed by match) -------------------------------------------------------


class ReasonRef(Payload):
    """One reason of a suggestion: its share of the score and, where recorded,
    the feature's own value (the share divided by the model's weight), which
    is what weights are learnt from."""

    kind: str = Field(min_length=1, max_length=50)
    contribution: float
    value: float | None = Field(None, ge=0)


class MatchSuggested(Payload):
    match_id: Identifier
    org_id: OrgId
    candidate_id: OrgId
    score: float = Field(ge=0)
    model_version: str = Field(min_length=1, max_length=50)
    reasons: list[ReasonRef] = Field(default_factory=list, max_length=20)


class MatchAccepted(Payload):
    match_id: Identifier
    org_id: OrgId


class MatchDeclined(Payload):
    match_id: Identifier
    org_id: OrgId
    reason: str | None = Field(None, max_length=500)


class MatchIntroduced(Payload):
    """The secretariat introduced the two sides after both accepted."""

    match_id: Identifier


class MatchExpired(Payload):
    """Thirty days passed without both answers."""

    match_id: Identifier


class MeetingHeld(Payload):
    match_id: Identifier
    held_on: date


class DealClosed(Payload):
    match_id: Identifier
    closed_on: date
    amount_jpy: int | None = Field(None, ge=0)


class MatchClosedWithoutDeal(Payload):
    match_id: Identifier
    reason: str | None = Field(None, max_length=500)


class DealWithdrawn(Payload):
    """A deal reported earlier did not happen after all."""

    match_id: Identifier
    reason: str | None = Field(None, max_length=500)


# -- environmental reports (keyed by organisation) -----------------------------------


class EnvironmentReported(Payload):
    org_id: OrgId
    fiscal_year: int = Field(ge=2000, le=2100)
    co2_t: float = Field(ge=0)
    waste_t: float = Field(ge=0)
    electricity_kwh: float = Field(ge=0)


class EventSpec(BaseModel):
    """Where an event type goes: its payload model, stream and key field."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    payload: type[Payload]
    stream: Stream
    key_field: str
    version: int = 1


_STREAM_OF: dict[Stream, tuple[str, tuple[type[Payload], ...]]] = {
    Stream.MEMBERSHIP: (
        "org_id",
        (
            OrganisationRegistered,
            OrganisationProfileUpdated,
            MembershipEnded,
            CredentialRecorded,
            CredentialLapsed,
            CredentialReturned,
        ),
    ),
    Stream.ATTENDANCE: (
        "event_code",
        (EventScheduled, AttendanceLogged, AttendanceCorrected, EventCancelled),
    ),
    Stream.SUPPLY_CHAIN: (
        "buyer_id",
        (SupplierLinked, SupplierUnlinked, SupportProvided),
    ),
    Stream.MATCHES: (
        "match_id",
        (
            MatchSuggested,
            MatchAccepted,
            MatchDeclined,
            MatchIntroduced,
            MatchExpired,
            MeetingHeld,
            DealClosed,
            MatchClosedWithoutDeal,
            DealWithdrawn,
        ),
    ),
    Stream.REPORTS: ("org_id", (EnvironmentReported,)),
}

# Every event type by name: its payload, topic and key field.
EVENT_TYPES: dict[str, EventSpec] = {
    payload.__name__: EventSpec(payload=payload, stream=stream, key_field=key_field)
    for stream, (key_field, payloads) in _STREAM_OF.items()
    for payload in payloads
}
