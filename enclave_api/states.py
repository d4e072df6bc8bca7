"""State machines as data: each status enum with its allowed transitions."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from enclave_api.errors import Conflict

StatusT = TypeVar("StatusT", bound=StrEnum)


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


class EgressStatus(StrEnum):
    """Contract 4.6. ``draft`` is reserved for staged uploads; the API submits in one call."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    CHECKING = "checking"
    BLOCKED = "blocked"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    RELEASED = "released"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


_E = EgressStatus
EGRESS_TRANSITIONS: dict[EgressStatus, frozenset[EgressStatus]] = {
    _E.DRAFT: frozenset({_E.SUBMITTED, _E.WITHDRAWN}),
    _E.SUBMITTED: frozenset({_E.CHECKING, _E.WITHDRAWN}),
    # A crash during checking leaves the request here; recovery runs the checks again.
    _E.CHECKING: frozenset({_E.BLOCKED, _E.IN_REVIEW, _E.CHECKING}),
    _E.BLOCKED: frozenset({_E.WITHDRAWN}),
    _E.IN_REVIEW: frozenset({_E.APPROVED, _E.CHANGES_REQUESTED, _E.REJECTED, _E.WITHDRAWN}),
    _E.CHANGES_REQUESTED: frozenset({_E.SUBMITTED, _E.WITHDRAWN}),
    _E.APPROVED: frozenset({_E.RELEASED}),
    _E.RELEASED: frozenset(),
    _E.REJECTED: frozenset(),
    _E.WITHDRAWN: frozenset(),
}

_TABLES: dict[type[StrEnum], dict[Any, frozenset[Any]]] = {
    AccessRequestStatus: ACCESS_REQUEST_TRANSITIONS,
    EgressStatus: EGRESS_TRANSITIONS,
}


def check_transition(current: StatusT, target: StatusT, what: str) -> None:
    """Raise :class:`Conflict` unless ``current → target`` is in its machine's transitions table."""
    if target not in _TABLES[type(current)][current]:
        raise Conflict(f"{what} is {current}; it cannot become {target}")
