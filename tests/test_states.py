"""The access-request and egress state machines, exhaustively."""

from __future__ import annotations

import itertools

import pytest

from enclave_api.errors import Conflict
from enclave_api.states import (
    ACCESS_REQUEST_TRANSITIONS,
    EGRESS_TRANSITIONS,
    AccessRequestStatus,
    EgressStatus,
    check_transition,
)

ALLOWED = {
    (AccessRequestStatus.PENDING, AccessRequestStatus.APPROVED),
    (AccessRequestStatus.PENDING, AccessRequestStatus.DENIED),
    (AccessRequestStatus.PENDING, AccessRequestStatus.WITHDRAWN),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(AccessRequestStatus, repeat=2)))
def test_every_transition(current: AccessRequestStatus, target: AccessRequestStatus) -> None:
    if (current, target) in ALLOWED:
        check_transition(current, target, "request")
    else:
        with pytest.raises(Conflict):
            check_transition(current, target, "request")


def test_table_covers_every_state() -> None:
    assert set(ACCESS_REQUEST_TRANSITIONS) == set(AccessRequestStatus)


E = EgressStatus
EGRESS_ALLOWED = {
    (E.DRAFT, E.SUBMITTED),
    (E.DRAFT, E.WITHDRAWN),
    (E.SUBMITTED, E.CHECKING),
    (E.SUBMITTED, E.WITHDRAWN),
    (E.CHECKING, E.CHECKING),
    (E.CHECKING, E.BLOCKED),
    (E.CHECKING, E.IN_REVIEW),
    (E.BLOCKED, E.WITHDRAWN),
    (E.IN_REVIEW, E.APPROVED),
    (E.IN_REVIEW, E.CHANGES_REQUESTED),
    (E.IN_REVIEW, E.REJECTED),
    (E.IN_REVIEW, E.WITHDRAWN),
    (E.CHANGES_REQUESTED, E.SUBMITTED),
    (E.CHANGES_REQUESTED, E.WITHDRAWN),
    (E.APPROVED, E.RELEASED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(EgressStatus, repeat=2)))
def test_every_egress_transition(current: EgressStatus, target: EgressStatus) -> None:
    if (current, target) in EGRESS_ALLOWED:
        check_transition(current, target, "egress request")
    else:
        with pytest.raises(Conflict):
            check_transition(current, target, "egress request")


def test_egress_table_covers_every_state_and_released_is_final() -> None:
    assert set(EGRESS_TRANSITIONS) == set(EgressStatus)
    for final in (E.RELEASED, E.REJECTED, E.WITHDRAWN):
        assert EGRESS_TRANSITIONS[final] == frozenset()
