"""Dates of birth: a date is personal data when the words before it say it is a birth date."""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from presidio_analyzer import Pattern

from privacy.pii.normalize import DASHES, GROUP_SEPARATOR, SPACES, digits_of
from privacy.pii.recognizers.base import PiiPatternRecognizer

_YEAR: Final = r"(?:19|20)\d{2}"
_MONTH: Final = r"(?:0?[1-9]|1[0-2])"
_DAY: Final = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH_2: Final = r"(?:0[1-9]|1[0-2])"
_DAY_2: Final = r"(?:0[1-9]|[12]\d|3[01])"
_SEPARATOR: Final = rf"[{SPACES}]?[{DASHES}/.][{SPACES}]?"
_SPACE: Final = rf"[{SPACES}]"
_MONTH_NAMES: Final = (
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
)  # fmt: skip
_MONTH_NAME: Final = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_ORDINAL: Final = r"(?:st|nd|rd|th)?"
_EARLIEST_YEAR: Final = 1900
_WORD: Final = re.compile(r"[a-z]+")


def parse_dates(text: str) -> list[date]:
    """Every real calendar date a matched text can denote (day-first and month-first readings).

    >>> parse_dates("03/04/1990")
    [datetime.date(1990, 4, 3), datetime.date(1990, 3, 4)]
    >>> parse_dates("1990년 2월 30일")
    []
    """
    lowered = text.lower()
    numbers = [int(number) for number in re.findall(r"\d+", lowered)]  # int() reads full-width digits
    months = [_MONTH_NAMES.index(word[:3]) + 1 for word in _WORD.findall(lowered) if word[:3] in _MONTH_NAMES]
    if months:
        day, year = (numbers[0], numbers[1]) if numbers[0] < 100 else (numbers[1], numbers[0])
        readings = [(year, months[0], day)]
    elif len(numbers) == 1:  # YYYYMMDD or YYMMDD
        digits = digits_of(text)
        if len(digits) == 8:
            readings = [(int(digits[:4]), int(digits[4:6]), int(digits[6:]))]
        else:
            yy, month, day = int(digits[:2]), int(digits[2:4]), int(digits[4:])
            readings = [(1900 + yy, month, day), (2000 + yy, month, day)]
    elif numbers[0] >= 100:
        readings = [(numbers[0], numbers[1], numbers[2])]
    else:
        readings = [(numbers[2], numbers[1], numbers[0]), (numbers[2], numbers[0], numbers[1])]
    dates = []
    for year, month, day in readings:
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if year >= _EARLIEST_YEAR and candidate <= date.today() and candidate not in dates:
            dates.append(candidate)
    return dates


class DateOfBirthRecognizer(PiiPatternRecognizer):
    """Dates in the usual numeric, Korean and English forms, reported only after a birth word
    (DOB, date of birth, born, birth date, 생년월일, 출생일, 생일)."""

    ENTITY = "DATE_OF_BIRTH"
    DESCRIPTION = "date of birth"
    PATTERNS = (
        Pattern(
            "Date (year first)", rf"(?<!\d){_YEAR}{_SEPARATOR}{_MONTH}{_SEPARATOR}{_DAY}(?!\d)(?!\.\d)", 0.15
        ),
        Pattern(
            "Date (year last)",
            rf"(?<!\d)(?<!\d\.)\d{{1,2}}{_SEPARATOR}\d{{1,2}}{_SEPARATOR}{_YEAR}(?!\d)",
            0.15,
        ),
        Pattern(
            "Date (Korean)",
            rf"(?<!\d){_YEAR}{_SPACE}?년{_SPACE}?{_MONTH}{_SPACE}?월{_SPACE}?{_DAY}{_SPACE}?일",
            0.15,
        ),
        Pattern(
            "Date (month name first)",
            rf"(?<![A-Z]){_MONTH_NAME}{_SPACE}{{1,2}}{_DAY}{_ORDINAL},?{_SPACE}{{1,2}}{_YEAR}(?!\d)",
            0.15,
        ),
        Pattern(
            "Date (day first, month name)",
            rf"(?<!\d){_DAY}{_ORDINAL}{_SPACE}{{1,2}}{_MONTH_NAME},?{_SPACE}{{1,2}}{_YEAR}(?!\d)",
            0.15,
        ),
        Pattern("Date (YYYYMMDD)", rf"(?<!\d){_YEAR}{_MONTH_2}{_DAY_2}(?!\d)", 0.15),
        # Six digits: the birth date of Korean forms; not when a registration number's second group
        # follows.
        Pattern("Date (YYMMDD)", rf"(?<!\d)\d{{2}}{_MONTH_2}{_DAY_2}(?!\d)(?!{GROUP_SEPARATOR}?\d)", 0.15),
    )
    CONTEXT = ("birth", "dob", "born", "생년월일", "출생", "생일")
    # Two digits at most twelve other characters apart ("3 March 1985"), or six digits.
    PREFILTER = r"\d\D{1,12}\d|\d{6}"
    NEEDS_CONTEXT = True

    def validate_result(self, pattern_text: str) -> bool | None:
        """``False`` unless the text denotes a real date from 1900 to today; ``None`` otherwise (no
        date is a birth date by its form: the context decides)."""
        return None if parse_dates(pattern_text) else False
