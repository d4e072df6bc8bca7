"""Automatic checks of egress submissions: file intake, PII, DP provenance, disclosure control."""

from privacy.egress.isolation import CheckWorker
from privacy.egress.provenance import MANIFEST_SUFFIX, ReleaseEvidence, manifest_release_id
from privacy.egress.report import CheckReport, FileReport
from privacy.egress.runner import CheckContext, SubmittedFile, run_checks

__all__ = [
    "MANIFEST_SUFFIX",
    "CheckContext",
    "CheckReport",
    "CheckWorker",
    "FileReport",
    "ReleaseEvidence",
    "SubmittedFile",
    "manifest_release_id",
    "run_checks",
]
