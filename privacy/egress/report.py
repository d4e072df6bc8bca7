"""The result of the automatic checks on one egress submission: per file, the findings and an outcome.

A request with any ``block`` finding is blocked; every other request goes to custodian review (no
output leaves on automatic checks alone), with the ``review`` findings highlighted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from privacy.findings import Check, Finding, Severity


@dataclass(frozen=True, slots=True)
class FileReport:
    name: str
    kind: str | None
    findings: tuple[Finding, ...]
    #: The DP release whose signed numbers this file carries, when its provenance was verified.
    dp_release: str | None = None

    @property
    def outcome(self) -> str:
        """``block`` when any finding blocks, ``review`` when any asks for attention, else ``pass``."""
        severities = {f.severity for f in self.findings}
        if Severity.BLOCK in severities:
            return "block"
        return "review" if Severity.REVIEW in severities else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "outcome": self.outcome,
            "dp_release": self.dp_release,
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileReport:
        return cls(
            name=data["name"],
            kind=data["kind"],
            findings=tuple(Finding.from_dict(f) for f in data["findings"]),
            dp_release=data.get("dp_release"),
        )


@dataclass(frozen=True, slots=True)
class CheckReport:
    files: tuple[FileReport, ...]
    checks_run: tuple[str, ...] = tuple(str(c) for c in Check)
    notes: tuple[str, ...] = field(default=())

    @property
    def blocked(self) -> bool:
        return any(f.outcome == "block" for f in self.files)

    @property
    def findings(self) -> list[Finding]:
        return [finding for report in self.files for finding in report.findings]

    def summary(self) -> dict[str, Any]:
        """Counts for the audit log: no excerpts, no values — only rules, checks and severities."""
        findings = self.findings
        return {
            "outcome": "blocked" if self.blocked else "in_review",
            "files": len(self.files),
            "findings": dict(sorted(Counter(f"{f.check}:{f.severity}" for f in findings).items())),
            "blocking_rules": sorted(
                {f"{f.check}:{f.rule}" for f in findings if f.severity is Severity.BLOCK}
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": [f.to_dict() for f in self.files],
            "checks_run": list(self.checks_run),
            "notes": list(self.notes),
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckReport:
        return cls(
            files=tuple(FileReport.from_dict(f) for f in data["files"]),
            checks_run=tuple(data["checks_run"]),
            notes=tuple(data.get("notes", ())),
        )
