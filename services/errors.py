"""Errors of the services layer."""

from schemas.errors import AllianceError


class ServiceError(AllianceError):
    """Root of the services layer's errors."""


class BrokerUnavailable(ServiceError):
    """The Kafka broker did not accept a message in time; retrying may succeed."""

    retriable = True


class StartupError(ServiceError):
    """A part of the platform (broker, Redis, a worker) failed to start."""
