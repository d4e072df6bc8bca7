"""KrRrnRecognizer: resident registration numbers, their hidden forms and their look-alikes."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import KrRrnRecognizer
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = KrRrnRecognizer()

# (text, the piece reported or None, why)
CASES = [
    ("주민등록번호 900101-1234568", "900101-1234568", "canonical form"),
    ("RRN 9001011234568 on file", "9001011234568", "without hyphen"),
    ("850615-2345562", "850615-2345562", "woman born 1985"),
    ("id 050315-3123569.", "050315-3123569", "man born 2005"),
    ("991231-9123563", "991231-9123563", "born 1899 (sex digit 9)"),
    ("210315-3987654", "210315-3987654", "born 2021: no check digit to verify"),
    ("201001-4000001", "201001-4000001", "born on 2020-10-01: no check digit"),
    ("900101 1234568", "900101 1234568", "space between the groups"),
    ("900101.1234568", "900101.1234568", "dot between the groups"),
    ("900101 - 1234568", "900101 - 1234568", "spaced hyphen"),
    ("900101\u20131234568", "900101\u20131234568", "en dash"),
    ("900101\u20141234568", "900101\u20141234568", "em dash"),
    ("900101\u20101234568", "900101\u20101234568", "Unicode hyphen"),
    (wide("900101-1234568"), wide("900101-1234568"), "full-width digits and hyphen"),
    ("9 0 0 1 0 1 - 1 2 3 4 5 6 8", "9 0 0 1 0 1 - 1 2 3 4 5 6 8", "one digit at a time"),
    ("9 0 0 1 0 1 1 2 3 4 5 6 8", "9 0 0 1 0 1 1 2 3 4 5 6 8", "one digit at a time, no hyphen"),
    ("900101-1234569", None, "wrong check digit"),
    ("200930-4000002", None, "born before October 2020 without a valid check digit"),
    ("901301-1234567", None, "month 13"),
    ("900230-1234560", None, "30 February"),
    ("880307-5123564", None, "a foreign resident's number (FRN recognizer)"),
    ("order 1900101-12345689", None, "inside a longer digit run"),
    ("19001011234568", None, "14 digits"),
    ("p = 0.9001011234568", None, "decimal fraction"),
    ("ISBN 9788954632014", None, "ISBN-13"),
    ("Hb 12.5 g/dL, WBC 6.2 x10^3/uL, CA 15-3 22.1 U/mL", None, "lab values"),
    ("9 0 0 1 0 1 1 2 3 4 5 6 8 9", None, "spaced digits continuing"),
    ("350101-3123456", None, "born in the future (sex digit 3: 2035)"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_kr_rrn_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)


def test_validate_result_is_true_or_false() -> None:
    assert RECOGNIZER.validate_result("900101-1234568") is True
    assert RECOGNIZER.validate_result("900101-1234569") is False
    assert RECOGNIZER.validate_result("12345") is False
