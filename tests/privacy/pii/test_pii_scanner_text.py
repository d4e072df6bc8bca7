"""PiiScanner.scan_text: findings, locations, excerpts that never show an identifier in clear."""

from __future__ import annotations

import doctest

import pytest

from privacy.findings import Check, Severity
from privacy.pii import DenyList, PiiScanner, scanner
from privacy.pii.matcher import LINE_PREFILTER_FROM
from tests.privacy.pii.helpers import wide

DENY_VALUES = {
    "name": ["김민준"],
    "rrn": ["900101-1234568"],
    "phone": ["010-2345-6789"],
    "mrn": ["HB01234567"],
}
IDENTIFIERS = ("김민준", "Minjun", "900101", "1234568", "2345-6789", "01234567", "minjun.kim", "4111 1111")

TEXT = """Summary of the cohort (n = 1,204).
환자 김민준님의 주민번호는 900101-1234568 입니다.
Contact Minjun Kim at +82 10-2345-6789 or minjun.kim@example.com; MRN HB01234567.
Card 4111 1111 1111 1111. Median Ki-67 was 15% (IQR 8-30)."""


@pytest.fixture(scope="module")
def pii() -> PiiScanner:
    return PiiScanner(deny_list=DenyList.build(DENY_VALUES), mrn_patterns=[r"HB\d{8}"])


def test_findings_name_rule_place_and_severity(pii: PiiScanner) -> None:
    findings = pii.scan_text(TEXT, file="notes.md")
    assert [(f.rule, f.location) for f in findings] == [
        ("DENY_LIST", "line 2, column 4"),
        ("KR_RRN", "line 2, column 16"),
        ("DENY_LIST", "line 3, column 9"),
        ("KR_PHONE", "line 3, column 23"),
        ("DENY_LIST", "line 3, column 43"),
        ("EMAIL_ADDRESS", "line 3, column 43"),
        ("MRN", "line 3, column 71"),
        ("CREDIT_CARD", "line 4, column 6"),
    ]
    assert {f.check for f in findings} == {Check.PII}
    assert {f.severity for f in findings} == {Severity.BLOCK}
    assert all(f.file == "notes.md" and f.suggestion for f in findings)


def test_messages_say_what_without_the_value(pii: PiiScanner) -> None:
    by_rule = {f.rule: f.message for f in pii.scan_text(TEXT, file="notes.md")}
    assert by_rule["DENY_LIST"] == "value from the deny-list of the granted datasets (kind: name)"
    assert (
        by_rule["KR_RRN"] == "Korean resident registration number, listed in the granted datasets (kind: rrn)"
    )
    assert by_rule["CREDIT_CARD"] == "payment card number"


def test_no_identifier_in_clear_anywhere(pii: PiiScanner) -> None:
    for finding in pii.scan_text(TEXT, file="notes.md"):
        shown = " ".join([finding.location, finding.message, finding.excerpt, finding.suggestion])
        assert not any(identifier in shown for identifier in IDENTIFIERS), finding


def test_excerpt_masks_the_identifier_and_shows_context(pii: PiiScanner) -> None:
    rrn = next(f for f in pii.scan_text(TEXT, file="notes.md") if f.rule == "KR_RRN")
    assert "주민번호는 90**********68 입니다." in rrn.excerpt
    assert "\n" not in rrn.excerpt


def test_location_prefix(pii: PiiScanner) -> None:
    findings = pii.scan_text("x\nRRN 900101-1234568", file="analysis.ipynb", location="cell 2 output 1")
    assert [f.location for f in findings] == ["cell 2 output 1, line 2, column 5"]


def test_hidden_forms_map_back_to_the_original_text(pii: PiiScanner) -> None:
    text = "주민번호 " + wide("900101-1234568") + ", 전화 0 1 0 - 2 3 4 5 - 6 7 8 9."
    detections = pii.detect(text)
    assert [(d.entity, text[d.start : d.end]) for d in detections] == [
        ("KR_RRN", wide("900101-1234568")),
        ("KR_PHONE", "0 1 0 - 2 3 4 5 - 6 7 8 9"),
    ]
    assert all(d.kinds for d in detections)


def test_clean_text_has_no_findings(pii: PiiScanner) -> None:
    clean = "Stage II: 54.2 months (95% CI 49.1-59.3); ISBN 978-89-546-3201-4; diagnosed 2015-03-02."
    assert pii.scan_text(clean, file="report.md") == []
    assert pii.scan_text("", file="empty.txt") == []


def test_long_texts_take_the_prefiltered_path_and_find_the_same(pii: PiiScanner) -> None:
    line = "Patient Minjun Kim, RRN 850615-2345562, 생년월일 1985-06-15, tel 010-2345-6789.\n"
    filler = "Median survival 54.2 months; hazard ratio 1.42 (p = 0.003).\n" * 20
    single = pii.detect(line)
    text = (filler + line) * (LINE_PREFILTER_FROM // len(filler + line) + 2)
    assert len(text) > LINE_PREFILTER_FROM
    detections = pii.detect(text)
    copies = text.count(line)
    assert len(detections) == copies * len(single)
    assert {d.entity for d in detections} == {d.entity for d in single} == {
        "DENY_LIST", "KR_RRN", "DATE_OF_BIRTH", "KR_PHONE",
    }  # fmt: skip


def test_lone_surrogates_neither_break_the_scan_nor_the_finding(pii: PiiScanner) -> None:
    text = ("undecodable \udcff byte, RRN " + wide("900101") + "-1234568\n") * 600  # long: Polars path too
    findings = pii.scan_text(text, file="out.txt")
    assert len(findings) == 600
    assert all(finding.excerpt.encode("utf-8") for finding in findings)
    assert findings[0].location == "line 1, column 25"


def test_without_deny_list_only_patterns(pii: PiiScanner) -> None:
    plain = PiiScanner()
    assert {f.rule for f in plain.scan_text(TEXT, file="notes.md")} == {
        "KR_RRN", "KR_PHONE", "EMAIL_ADDRESS", "CREDIT_CARD",
    }  # fmt: skip


def test_ner_adds_person_names_for_review() -> None:
    with_ner = PiiScanner(deny_list=DenyList.build(DENY_VALUES), ner=True)
    findings = with_ner.scan_text("Dr. Emily Clark saw the patient; RRN 900101-1234568.", file="note.txt")
    assert [(f.rule, f.severity) for f in findings] == [
        ("PERSON", Severity.REVIEW),
        ("KR_RRN", Severity.BLOCK),
    ]
    person = findings[0]
    assert "Emily" not in person.excerpt and "Clark" not in person.excerpt
    assert person.message == "possible person name (named-entity recognition)"


def test_doctests() -> None:
    result = doctest.testmod(scanner)
    assert result.attempted > 0
    assert result.failed == 0
