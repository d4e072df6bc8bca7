"""The access-request state machine, exhaustively."""

from __future__ import annotations

import itertools

import pytest

from enclave_api.errors import Conflict
from enclave_api.states import ACCESS_REQUEST_TRANSITIONS, AccessRequestStatus, check_transition

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
