"""Domain exceptions. Services raise these; the API turns them into RFC 9457 problems in one place."""

from __future__ import annotations

from typing import Any


class EnclaveError(Exception):
    """Base of every error the enclave reports to a caller."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class Unauthenticated(EnclaveError):
    status, title = 401, "Unauthenticated"


class LoginFailed(Unauthenticated):
    """A password login was refused (already audited as ``auth.login_failed``)."""


class Forbidden(EnclaveError):
    status, title = 403, "Forbidden"


class NotFound(EnclaveError):
    status, title = 404, "Not found"


class Conflict(EnclaveError):
    status, title = 409, "Conflict"


class TooLarge(EnclaveError):
    status, title = 413, "Payload too large"


class Invalid(EnclaveError):
    """Input that cannot be accepted; ``field`` names the offending field or column."""

    status, title = 422, "Invalid input"

    def __init__(self, detail: str, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **({"field": field} if field else {}), **extra)
        self.field = field


class IntegrityFailure(EnclaveError):
    """Stored data failed authentication (tampering or corruption); never return its bytes."""

    status, title = 500, "Integrity check failed"


class ConfigurationError(Exception):
    """The service cannot start with this configuration (e.g. a missing secret in production)."""
