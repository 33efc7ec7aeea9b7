"""Errors raised by the matching layer."""

from __future__ import annotations

from schemas.errors import AllianceError


class MatchingError(AllianceError):
    """Root of the errors raised while building the graph or ranking on it."""


class UnknownOrganisation(MatchingError, LookupError):
    """The organisation is not a registered member of the graph."""

    def __init__(self, org_id: str) -> None:
        super().__init__(f"organisation {org_id!r} is not a registered member")
        self.org_id = org_id
