"""KrBrnRecognizer: business registration numbers with their check digit."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import KrBrnRecognizer
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = KrBrnRecognizer()

CASES = [
    ("사업자등록번호 124-81-00998", "124-81-00998", "canonical form"),
    ("BRN 220-81-02765", "220-81-02765", "another company"),
    ("124 81 00998", "124 81 00998", "spaces: written form, no context needed"),
    ("124\u201381\u201300998", "124\u201381\u201300998", "en dashes"),
    (wide("124-81-00998"), wide("124-81-00998"), "full-width"),
    ("사업자번호 1248100998", "1248100998", "ten digits with context"),
    ("1248100998", None, "ten bare digits without context"),
    ("124-81-00997", None, "wrong check digit"),
    ("1124-81-00998", None, "inside a longer number"),
    ("ISBN 978-89-546-3201-4", None, "ISBN"),
    ("order 2024-01-123456, lab 120-80-65432 mmHg", None, "order number, lab values"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_kr_brn_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


def test_validate_result_leaves_bare_digits_to_context() -> None:
    assert RECOGNIZER.validate_result("124-81-00998") is True
    assert RECOGNIZER.validate_result("1248100998") is None
    assert RECOGNIZER.validate_result("124-81-00997") is False


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)
