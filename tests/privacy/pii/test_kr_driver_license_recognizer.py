"""KrDriverLicenseRecognizer: region code 11-28, reported only next to a context word."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import KrDriverLicenseRecognizer
from privacy.pii.recognizers.base import REPORT_THRESHOLD
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = KrDriverLicenseRecognizer()

CASES = [
    ("운전면허번호 11-23-456789-01", "11-23-456789-01", "Seoul"),
    ("driver's license 28-05-123456-78", "28-05-123456-78", "region 28"),
    ("면허번호: 112345678901", "112345678901", "digits only"),
    ("licence 13 23 456789 01", "13 23 456789 01", "spaces"),
    ("운전면허 " + wide("11-23-456789-01"), wide("11-23-456789-01"), "full-width"),
    ("운전면허 서울 12-345678-90", "서울 12-345678-90", "region name"),
    ("lot 11-23-456789-01", None, "no context"),
    ("운전면허 10-23-456789-01", None, "region code 10"),
    ("운전면허 29-23-456789-01", None, "region code 29"),
    ("운전면허 111-23-456789-01", None, "inside a longer number"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_kr_driver_license_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


def test_needs_context_is_declared_truthfully() -> None:
    assert RECOGNIZER.NEEDS_CONTEXT
    assert all(pattern.score < REPORT_THRESHOLD for pattern in RECOGNIZER.patterns)


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)
