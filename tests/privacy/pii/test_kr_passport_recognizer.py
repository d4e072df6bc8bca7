"""KrPassportRecognizer: reported only next to a context word."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import KrPassportRecognizer
from privacy.pii.recognizers.base import REPORT_THRESHOLD
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = KrPassportRecognizer()

CASES = [
    ("여권번호 M123A4567", "M123A4567", "current format, Korean context"),
    ("passport no. M12345678", "M12345678", "previous format"),
    ("Passport: s98765432", "s98765432", "lower case"),
    ("여권 " + wide("MT23A4567") + " M987B6543", "M987B6543", "current format among other text"),
    ("Passport " + wide("m123a4567"), wide("m123a4567"), "full-width"),
    ("part number M12345678", None, "no context"),
    ("여권 X12345678", None, "previous format needs a passport type letter"),
    ("passport M1234567", None, "seven digits"),
    ("passport AM12345678", None, "inside a longer code"),
    ("passport M123A45678", None, "five trailing digits"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_kr_passport_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


def test_a_context_column_name_counts() -> None:
    assert found(RECOGNIZER, "M123A4567", context=["passport_no"]) == ["M123A4567"]
    assert found(RECOGNIZER, "M123A4567", context=["sample_id"]) == []


def test_needs_context_is_declared_truthfully() -> None:
    assert RECOGNIZER.NEEDS_CONTEXT
    assert all(pattern.score < REPORT_THRESHOLD for pattern in RECOGNIZER.patterns)


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)
