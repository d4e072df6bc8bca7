"""Every automatic check on the files of one egress submission, in one pure function.

For each file: its name and type (by content), a bounded parse into text, table and image segments,
the PII scanner on all of them (images through OCR), DP provenance for tables exported with a release
manifest, and disclosure control for tables and model outputs that are not DP releases. Anything the
checks cannot read is a blocking finding: deny by default. :mod:`privacy.egress.isolation` runs this in
a separate, resource-limited process so that a parser or scanner crash blocks instead of releasing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from privacy.egress.context import CheckContext, SubmittedFile
from privacy.egress.provenance import (
    MANIFEST_SUFFIX,
    ReleaseEvidence,
    check_against_release,
    manifest_release_id,
)
from privacy.egress.report import CheckReport, FileReport
from privacy.files import (
    Extracted,
    FileKind,
    FileRejected,
    Limits,
    OcrUnavailable,
    extract,
    ocr_available,
    ocr_text,
    sniff,
    validate_name,
)
from privacy.findings import Check, Finding, Severity
from privacy.pii import PiiScanner
from privacy.sdc import SIDECAR_SUFFIX, TableStats, check_model_output, check_table

#: Findings kept per file and rule; beyond this one summary finding says how many more there were.
MAX_FINDINGS_PER_RULE = 50
TABULAR = frozenset({FileKind.CSV, FileKind.TSV, FileKind.PARQUET})


def run_checks(files: Sequence[SubmittedFile], context: CheckContext, scanner: PiiScanner) -> CheckReport:
    """Check every file; never raises for a bad file (that becomes a blocking finding)."""
    by_name = {f.name: f for f in files}
    reports = [_check_file(f, by_name, context, scanner) for f in files]
    notes = () if ocr_available() else ("OCR is not installed: text inside images was not scanned",)
    return CheckReport(files=tuple(reports), notes=notes)


def _intake(name: str, data: bytes, limits: Limits) -> tuple[FileKind, Extracted] | Finding:
    """Name, type by content and a bounded parse — or the blocking finding that refuses the file."""
    try:
        validate_name(name)
        kind = sniff(name, data, limits=limits)
        return kind, extract(name, data, kind, limits=limits)
    except FileRejected as exc:
        return Finding(Check.FILE, exc.rule, Severity.BLOCK, name, "file", str(exc))


def _pii(name: str, extracted: Extracted, scanner: PiiScanner) -> list[Finding]:
    """The PII scanner over every text, table and image (through OCR) of a file."""
    findings = [Finding(Check.FILE, "note", Severity.REVIEW, name, "file", note) for note in extracted.notes]
    for text in extracted.texts:
        findings.extend(scanner.scan_text(text.text, file=name, location=text.location))
    for table in extracted.tables:
        findings.extend(_prefixed(scanner.scan_table(table.table, file=name), table.location))
    for image in extracted.images:
        try:
            recognised = ocr_text(image.data)
        except OcrUnavailable as exc:
            findings.append(Finding(Check.FILE, exc.rule, Severity.REVIEW, name, image.location, str(exc)))
        except FileRejected as exc:
            findings.append(Finding(Check.FILE, exc.rule, Severity.BLOCK, name, image.location, str(exc)))
        else:
            location = f"{image.location} (OCR)".strip()
            findings.extend(scanner.scan_text(recognised, file=name, location=location))
    return findings


def scan_pii(name: str, data: bytes, scanner: PiiScanner, limits: Limits | None = None) -> FileReport:
    """Only the file intake and the PII scanner (``enclave pii scan``)."""
    intake = _intake(name, data, limits or Limits())
    if isinstance(intake, Finding):
        return FileReport(name, None, (intake,))
    kind, extracted = intake
    return FileReport(name, str(kind), _capped(_pii(name, extracted, scanner)))


def _check_file(
    submitted: SubmittedFile, by_name: Mapping[str, SubmittedFile], context: CheckContext, scanner: PiiScanner
) -> FileReport:
    name = submitted.name
    intake = _intake(name, submitted.data, context.limits)
    if isinstance(intake, Finding):
        return FileReport(name, None, (intake,))
    kind, extracted = intake
    findings = _pii(name, extracted, scanner)

    dp_release: str | None = None
    manifest = by_name.get(name + MANIFEST_SUFFIX) if kind in TABULAR else None
    if manifest is not None:
        dp_release = _provenance(name, manifest, extracted, context, findings)
    if dp_release is None:
        # Disclosure control, for everything that is not a verified DP release.
        stats = _sidecar_stats(by_name.get(name + SIDECAR_SUFFIX), name, findings)
        for text in extracted.texts:
            findings.extend(
                check_model_output(text.text, file=name, location=text.location, rules=context.sdc_rules)
            )
        for table in extracted.tables:
            checked = check_table(table.table, file=name, stats=stats, rules=context.sdc_rules)
            findings.extend(_prefixed(checked, table.location))
    return FileReport(name, str(kind), _capped(findings), dp_release)


def _provenance(
    name: str, manifest: SubmittedFile, extracted: Extracted, context: CheckContext, findings: list[Finding]
) -> str | None:
    """Check a table against the release its manifest names; the release id when it holds."""
    parsed = manifest_release_id(manifest.data)
    if parsed is None:
        message = f"{manifest.name} is not a release manifest"
        findings.append(
            Finding(Check.DP_PROVENANCE, "bad_manifest", Severity.BLOCK, name, "manifest", message)
        )
        return None
    release_id = parsed[0]
    evidence = context.releases.get(release_id) or ReleaseEvidence(release_id, False, False, False, False)
    problems = [
        problem
        for segment in extracted.tables
        for problem in check_against_release(segment.table, evidence, file=name)
    ]
    if problems or not extracted.tables:
        findings.extend(problems)
        return None
    message = (
        f"numbers identical to the signed DP release {release_id}; disclosure control is satisfied by "
        "the release's differential privacy"
    )
    findings.append(Finding(Check.DP_PROVENANCE, "verified", Severity.INFO, name, "file", message))
    return release_id


def _sidecar_stats(sidecar: SubmittedFile | None, name: str, findings: list[Finding]) -> TableStats | None:
    if sidecar is None:
        return None
    try:
        return TableStats.from_json(sidecar.data)
    except ValueError as exc:
        findings.append(
            Finding(
                Check.SDC,
                "bad_stats",
                Severity.BLOCK,
                name,
                sidecar.name,
                f"unreadable SDC statistics: {exc}",
            )
        )
        return None


def _capped(findings: list[Finding]) -> tuple[Finding, ...]:
    """At most :data:`MAX_FINDINGS_PER_RULE` per (check, rule); the rest summarised, never dropped."""
    kept: list[Finding] = []
    counts: Counter[tuple[str, str]] = Counter()
    for finding in findings:
        key = (finding.check, finding.rule)
        counts[key] += 1
        if counts[key] <= MAX_FINDINGS_PER_RULE:
            kept.append(finding)
    for (check, rule), count in counts.items():
        if count > MAX_FINDINGS_PER_RULE:
            sample = next(f for f in findings if (f.check, f.rule) == (check, rule))
            more = count - MAX_FINDINGS_PER_RULE
            message = f"{more} more {rule} finding(s) in this file are not listed individually"
            kept.append(replace(sample, location="file", message=message, excerpt="", suggestion=""))
    return tuple(kept)


def _prefixed(findings: list[Finding], location: str) -> list[Finding]:
    """Tables inside documents (a notebook's HTML output) name where the table is."""
    if not location:
        return findings
    return [replace(f, location=f"{location}, {f.location}") for f in findings]
