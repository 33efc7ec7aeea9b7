"""Errors of the streams layer."""

from schemas.errors import AllianceError


class StreamError(AllianceError):
    """Root of the streams layer's errors."""
