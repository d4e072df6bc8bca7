"""KrFrnRecognizer: registration numbers of foreign residents (seventh digit 5-8)."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import KrFrnRecognizer
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = KrFrnRecognizer()

CASES = [
    ("외국인등록번호 880307-5123566", "880307-5123566", "foreigners' check digit"),
    ("880307-5123564", "880307-5123564", "citizens' check digit (as the demo data issue them)"),
    ("120815-8123566", "120815-8123566", "woman born 2012"),
    ("210701-7123450", "210701-7123450", "born 2021: no check digit"),
    (wide("880307-5123566"), wide("880307-5123566"), "full-width"),
    ("8 8 0 3 0 7 - 5 1 2 3 5 6 6", "8 8 0 3 0 7 - 5 1 2 3 5 6 6", "one digit at a time"),
    ("880307 5123566", "880307 5123566", "space between the groups"),
    ("880307-5123565", None, "neither check digit"),
    ("900101-1234568", None, "a citizen's number (RRN recognizer)"),
    ("881307-5123566", None, "month 13"),
    ("1880307-51235669", None, "inside a longer digit run"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_kr_frn_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)
