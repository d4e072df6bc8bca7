"""PII scanning of outputs at egress: Korean and generic identifier patterns, and a deny-list of the
values in the requester's granted datasets.

    deny_list = DenyList.build({"name": names, "rrn": rrns, "phone": phones, "mrn": mrns})
    scanner = PiiScanner(deny_list=deny_list, mrn_patterns=[r"HB\\d{8}"])
    findings = scanner.scan_text(text, file="report.md") + scanner.scan_table(frame, file="table.csv")

The recognizers are Presidio recognizers (:mod:`privacy.pii.recognizers`), listed explicitly in
:mod:`privacy.pii.registry`. :class:`PiiScanner` runs them on a fast path of its own
(:mod:`privacy.pii.matcher`); :func:`build_analyzer` runs them through Presidio's analyzer, with
spaCy NER if asked.
"""

from privacy.pii.analyzer import build_analyzer
from privacy.pii.deny_list import DenyList
from privacy.pii.scanner import PiiScanner

__all__ = ["DenyList", "PiiScanner", "build_analyzer"]
