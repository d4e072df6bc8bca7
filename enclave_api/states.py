"""State machines as data: each status enum with its allowed transitions."""

from __future__ import annotations

from enum import StrEnum

from enclave_api.errors import Conflict


class AccessRequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    WITHDRAWN = "withdrawn"


ACCESS_REQUEST_TRANSITIONS: dict[AccessRequestStatus, frozenset[AccessRequestStatus]] = {
    AccessRequestStatus.PENDING: frozenset(
        {AccessRequestStatus.APPROVED, AccessRequestStatus.DENIED, AccessRequestStatus.WITHDRAWN}
    ),
    AccessRequestStatus.APPROVED: frozenset(),
    AccessRequestStatus.DENIED: frozenset(),
    AccessRequestStatus.WITHDRAWN: frozenset(),
}


def check_transition(current: AccessRequestStatus, target: AccessRequestStatus, what: str) -> None:
    """Raise :class:`Conflict` unless ``current → target`` is in the transitions table."""
    if target not in ACCESS_REQUEST_TRANSITIONS[current]:
        raise Conflict(f"{what} is {current}; it cannot become {target}")
