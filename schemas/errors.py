"""The root of every error the platform raises on purpose."""


class AllianceError(Exception):
    """Root of the platform's errors; each layer has its own branch."""


class ContractError(AllianceError, ValueError):
    """A message or value does not satisfy an event contract.

    It is a ``ValueError`` so that pydantic validators report it as a field error.

    ``field`` names the offending field (dotted path) when one is known.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
