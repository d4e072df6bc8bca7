"""Roles and the identifiers the enclave hands out."""

from __future__ import annotations

import secrets
from enum import StrEnum


class Role(StrEnum):
    RESEARCHER = "researcher"
    CUSTODIAN = "custodian"
    AUDITOR = "auditor"
    ADMIN = "admin"
    #: The JupyterHub service account: logs users in, opens and ends notebook sessions. Never a person.
    HUB = "hub"


def new_id(prefix: str) -> str:
    """A short random identifier such as ``g-5f2c9a1be03d``."""
    return f"{prefix}-{secrets.token_hex(6)}"
