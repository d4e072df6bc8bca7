"""CreditCardRecognizer: Luhn and issuer prefixes."""

from __future__ import annotations

import doctest

import pytest

from privacy.pii.recognizers import CreditCardRecognizer, credit_card_recognizer
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = CreditCardRecognizer()

CASES = [
    ("card 4111 1111 1111 1111", "4111 1111 1111 1111", "Visa, spaces"),
    ("5500-0055-5555-5559", "5500-0055-5555-5559", "Mastercard, hyphens"),
    ("3782 822463 10005", "3782 822463 10005", "Amex grouping"),
    ("6011111111111117", "6011111111111117", "Discover, no separators"),
    (wide("4111 1111 1111 1111"), wide("4111 1111 1111 1111"), "full-width"),
    ("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "one digit at a time"),
    ("4111 1111 1111 1112", None, "Luhn fails"),
    ("1111 1111 1111 1117", None, "no issuer starts with 1"),
    ("4111 1111 1111 1111 2222 3333", None, "part of a longer digit run"),
    ("900101-1234568", None, "thirteen digits: an RRN's length"),
    ("order 12345678901234567890", None, "twenty digits"),
    ("ISBN 978-89-546-3201-4, Hb 12.5 g/dL", None, "ISBN, lab value"),
    ("mean,2.427245561971488", None, "fraction digits of a DP float"),
    ('{"accuracy": 0.4111111111111111}', None, "fraction digits that pass Luhn"),
    ("paid with 4111111111111111.", "4111111111111111", "a card before a full stop"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_credit_card_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)


def test_doctests() -> None:
    result = doctest.testmod(credit_card_recognizer)
    assert result.attempted > 0
    assert result.failed == 0
