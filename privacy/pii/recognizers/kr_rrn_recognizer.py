"""Korean resident registration numbers (주민등록번호), ``YYMMDD-SBBBBBC``."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Final

from presidio_analyzer import Pattern

from privacy.identifiers.korea import parse_rrn, rrn_check_digit
from privacy.pii.normalize import GROUP_SEPARATOR, SPACED_GROUP_SEPARATOR, SPACES, digits_of
from privacy.pii.recognizers.base import PiiPatternRecognizer

#: Numbers issued from this day on end in random digits: no check digit to verify.
NO_CHECK_DIGIT_SINCE: Final = date(2020, 10, 1)

_BIRTH_DATE: Final = r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"


def registration_number_patterns(label: str, sex_digits: str) -> list[Pattern]:
    """Patterns of a 13-digit registration number whose seventh digit is one of ``sex_digits``
    (a character-class body): written together, with any separator between the two groups, or one
    spaced digit at a time; never inside a longer number or after a decimal point."""
    spaced = rf"[{SPACES}]"
    return [
        Pattern(label, rf"(?<!\d)(?<!\d\.){_BIRTH_DATE}{GROUP_SEPARATOR}?[{sex_digits}]\d{{6}}(?!\d)", 0.5),
        Pattern(
            f"{label} (spaced digits)",
            rf"(?<!\d)(?<!\d{spaced})\d(?:{spaced}\d){{5}}{SPACED_GROUP_SEPARATOR}"
            rf"[{sex_digits}](?:{spaced}\d){{6}}(?!{spaced}?\d)",
            0.5,
        ),
    ]


class KrRrnRecognizer(PiiPatternRecognizer):
    """Resident registration numbers of Korean citizens (seventh digit 1-4, or 9/0 for the 1800s).

    Valid when the birth date exists and is not in the future and the check digit is right; numbers
    of people born on or after :data:`NO_CHECK_DIGIT_SINCE` need no check digit.
    """

    ENTITY = "KR_RRN"
    DESCRIPTION = "Korean resident registration number"
    SEX_DIGITS: ClassVar[str] = "0-49"
    PATTERNS = registration_number_patterns("RRN", SEX_DIGITS)
    CONTEXT = ("주민등록번호", "주민번호", "주민", "rrn", "resident", "registration")
    # Thirteen digits with at most three other characters between any two.
    PREFILTER = r"\d(?:\D{0,3}\d){12}"

    def validate_result(self, pattern_text: str) -> bool:
        """``True`` for a registration number with a real past birth date and a valid check digit
        (or none needed), ``False`` otherwise."""
        digits = digits_of(pattern_text)
        if len(digits) != 13:
            return False
        try:
            birth_date = parse_rrn(digits, verify_check_digit=False).birth_date
        except ValueError:
            return False
        if birth_date >= NO_CHECK_DIGIT_SINCE:
            return birth_date <= date.today()
        return self.check_digit_matches(digits)

    def check_digit_matches(self, digits: str) -> bool:
        """Whether the thirteenth digit is the check digit of the first twelve."""
        return rrn_check_digit(digits[:12]) == int(digits[12])
