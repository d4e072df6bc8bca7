"""Automatic checks of egress submissions: file intake, PII, DP provenance, disclosure control.

The API process imports only :mod:`.isolation`, :mod:`.provenance` and :mod:`.report`; the scanners
themselves (:mod:`.runner`) load in the isolated worker process.
"""

from privacy.egress.context import CheckContext, SubmittedFile
from privacy.egress.isolation import CheckWorker
from privacy.egress.provenance import MANIFEST_SUFFIX, ReleaseEvidence, manifest_release_id
from privacy.egress.report import CheckReport, FileReport

__all__ = [
    "MANIFEST_SUFFIX",
    "CheckContext",
    "CheckReport",
    "CheckWorker",
    "FileReport",
    "ReleaseEvidence",
    "SubmittedFile",
    "manifest_release_id",
]
