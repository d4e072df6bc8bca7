"""DateOfBirthRecognizer: dates only after a birth word."""

from __future__ import annotations

import doctest
from datetime import date

import pytest

from privacy.pii.recognizers import DateOfBirthRecognizer, date_of_birth_recognizer
from privacy.pii.recognizers.date_of_birth_recognizer import parse_dates
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = DateOfBirthRecognizer()

CASES = [
    ("Date of birth: 1990-01-01", "1990-01-01", "ISO date"),
    ("DOB 01/02/1985", "01/02/1985", "day or month first"),
    ("born on 3 March 1985", "3 March 1985", "day and month name"),
    ("Born March 3rd, 1985 in Busan", "March 3rd, 1985", "month name first, ordinal"),
    ("birth date 1985.03.03", "1985.03.03", "dotted"),
    ("생년월일: 1990년 1월 1일", "1990년 1월 1일", "Korean date"),
    ("출생일 19900101", "19900101", "eight digits"),
    ("생년월일 900101", "900101", "six digits"),
    ("생년월일은 " + wide("1990-01-01"), wide("1990-01-01"), "full-width"),
    ("dob: 1990. 1. 1.", "1990. 1. 1", "Korean dotted style with spaces"),
    ("diagnosed 2015-03-02", None, "no birth context"),
    ("Born 1990-01-01, diagnosed 2015-03-02", "1990-01-01", "the second date is not the birth date"),
    ("Date of birth: 1990-02-30", None, "30 February"),
    ("DOB 2099-01-01", None, "in the future"),
    ("DOB 1850-01-01", None, "before 1900"),
    ("생년월일 및 주민번호 900101-1234568", None, "the six digits start a registration number"),
    ("follow-up 2023.11.02 and 12/05/2021", None, "visit dates"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_date_of_birth_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


def test_a_birth_column_name_is_context() -> None:
    assert found(RECOGNIZER, "1990-01-01", context=["birth_date"]) == ["1990-01-01"]
    assert found(RECOGNIZER, "1990-01-01", context=["diagnosis_date"]) == []


def test_parse_dates_reads_both_orders() -> None:
    assert parse_dates("12/31/1990") == [date(1990, 12, 31)]
    assert parse_dates("900101") == [date(1990, 1, 1)]
    assert parse_dates("1 Jan 1990") == [date(1990, 1, 1)]


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)


def test_doctests() -> None:
    result = doctest.testmod(date_of_birth_recognizer)
    assert result.attempted > 0
    assert result.failed == 0
