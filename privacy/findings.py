"""What every automatic output check reports: a finding names the file, the place, the rule and why.

The egress airlock collects findings from the file checks (type, size, parse), the PII scanner
(:mod:`privacy.pii`), disclosure control (:mod:`privacy.sdc`) and DP provenance. A finding of
severity :attr:`Severity.BLOCK` stops the request (state ``blocked``); :attr:`Severity.REVIEW`
findings are highlighted to the custodians who review it; :attr:`Severity.INFO` records what passed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    BLOCK = "block"
    REVIEW = "review"
    INFO = "info"


class Check(StrEnum):
    FILE = "file"
    PII = "pii"
    SDC = "sdc"
    DP_PROVENANCE = "dp_provenance"


@dataclass(frozen=True, slots=True)
class Finding:
    """One result of one check on one place of one file.

    ``rule`` is the entity for PII findings (``KR_RRN``, ``EMAIL_ADDRESS``, ``DENY_LIST``...) and the
    rule name for the other checks (``threshold``, ``p_ratio``, ``forbidden_type``...). ``location``
    is human readable and precise (``line 3, column 14``, ``row 12, column 'n'``, ``cell 4, output 1``).
    ``excerpt`` shows context with any identifier partly masked, never an identifier in clear.
    """

    check: Check
    rule: str
    severity: Severity
    file: str
    location: str
    message: str
    excerpt: str = ""
    suggestion: str = ""
    score: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["check"] = str(self.check)
        data["severity"] = str(self.severity)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(**{**data, "check": Check(data["check"]), "severity": Severity(data["severity"])})


def mask(value: str, keep: int = 2) -> str:
    """``value`` with all but ``keep`` characters at each end replaced by ``*`` (whole if short).

    >>> mask("900101-1234568")
    '90**********68'
    >>> mask("kim")
    '***'
    """
    if len(value) <= 2 * keep + 1:
        return "*" * len(value)
    return value[:keep] + "*" * (len(value) - 2 * keep) + value[-keep:]
