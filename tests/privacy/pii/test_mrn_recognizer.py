"""MrnRecognizer: built from the formats the datasets declare."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import MrnRecognizer
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = MrnRecognizer([r"HB\d{8}", r"DS-\d{6}"])

CASES = [
    ("MRN HB01234567", "HB01234567", "first declared format"),
    ("chart DS-123456 reviewed", "DS-123456", "second declared format"),
    ("hb01234567", "hb01234567", "case-insensitive, as all patterns"),
    ("(HB01234567)", "HB01234567", "in parentheses"),
    (wide("HB01234567"), wide("HB01234567"), "full-width"),
    ("XHB01234567", None, "inside a longer code"),
    ("HB012345678", None, "one digit too many"),
    ("HB0123456", None, "one digit short"),
    ("MR01234567", None, "another hospital's prefix (not declared)"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_mrn_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected and text.isascii()])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)


@pytest.mark.parametrize(
    ("patterns", "message"),
    [([], "at least one"), ([r"HB(\d{8}"], "invalid MRN pattern"), ([r"\d*"], "empty string")],
)
def test_declared_patterns_are_checked(patterns: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MrnRecognizer(patterns)


def test_a_prefilter_polars_rejects_means_no_prefilter() -> None:
    from privacy.pii.matcher import PatternMatcher

    recognizer = MrnRecognizer([r"(?<!X)HB\d{8}"])
    assert PatternMatcher([recognizer]).prefilter("MRN") is None
    assert found(recognizer, "HB01234567") == ["HB01234567"]
