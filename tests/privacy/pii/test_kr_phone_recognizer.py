"""KrPhoneRecognizer: Korean mobile and landline numbers in any notation."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import KrPhoneRecognizer
from privacy.pii.recognizers.kr_phone_recognizer import phone_number
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = KrPhoneRecognizer()

CASES = [
    ("연락처 010-2345-6789", "010-2345-6789", "mobile"),
    ("01023456789", "01023456789", "mobile without separators"),
    ("010 2345 6789", "010 2345 6789", "spaces"),
    ("010.2345.6789", "010.2345.6789", "dots"),
    ("010\u20132345\u20136789", "010\u20132345\u20136789", "en dashes"),
    ("010\u20102345\u20106789", "010\u20102345\u20106789", "Unicode hyphens"),
    (wide("010-2345-6789"), wide("010-2345-6789"), "full-width"),
    ("0 1 0 - 2 3 4 5 - 6 7 8 9", "0 1 0 - 2 3 4 5 - 6 7 8 9", "one digit at a time"),
    ("tel +82 10-2345-6789", "+82 10-2345-6789", "country code"),
    ("+82-10-2345-6789", "+82-10-2345-6789", "country code with hyphens"),
    ("+82 (0)10 2345 6789", "+82 (0)10 2345 6789", "country code with (0)"),
    ("(010) 2345-6789", "(010) 2345-6789", "area code in parentheses"),
    ("011-234-5678", "011-234-5678", "legacy mobile prefix, seven digits"),
    ("02-2345-6789", "02-2345-6789", "Seoul landline"),
    ("031-234-5678", "031-234-5678", "Gyeonggi landline"),
    ("064)123", None, "too short"),
    ("070-2345-6789", "070-2345-6789", "internet telephony"),
    ("+82 2 2345 6789", "+82 2 2345 6789", "Seoul with country code"),
    ("010-1234-5678", None, "exchange starting with 1"),
    ("02-0123-4567", None, "exchange starting with 0"),
    ("012-2345-6789", None, "not a prefix"),
    ("010-234-5678", None, "010 needs an eight-digit subscriber number"),
    ("1010-2345-67890", None, "inside a longer number"),
    ("p = 0.023456789", None, "decimal fraction"),
    ("2024-01-05 12:30:45", None, "timestamp"),
    ("Hb 12.5 g/dL, PLT 250 x10^3/uL, order 0120-3456-7890", None, "lab values and an order number"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_kr_phone_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)


def test_phone_number_strips_the_country_code() -> None:
    assert phone_number("+82 (0)10-2345-6789") == "01023456789"
    assert phone_number("+82 2 2345 6789") == "0223456789"
    assert phone_number("010-2345-6789") == "01023456789"
