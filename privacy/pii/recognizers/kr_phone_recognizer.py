"""Korean telephone numbers: mobile (010, 011, 016-019) and landline (02, 031-064, 070), with +82 forms."""

from __future__ import annotations

import unicodedata
from typing import Final

from presidio_analyzer import Pattern

from privacy.identifiers.korea import is_korean_landline, is_korean_mobile
from privacy.pii.normalize import DASHES, GROUP_SEPARATOR, SPACED_GROUP_SEPARATOR, SPACES, digits_of
from privacy.pii.recognizers.base import PiiPatternRecognizer

# Area codes after the trunk 0: mobile 1[016-9], Seoul 2, provinces 31-64, internet telephony 70.
_AREA: Final = r"(?:1[016-9]|2|[3-6][1-5]|70)"
_INTERNATIONAL: Final = rf"\+[{SPACES}]?82{GROUP_SEPARATOR}?(?:\(0\)[{SPACES}]?)?"
#: Not continuing a number, a sign or a decimal fraction (p = 0.023456789 is no Seoul number).
_NOT_IN_NUMBER: Final = r"(?<![\d+])(?<!\d\.)"
_SUBSCRIBER: Final = rf"{GROUP_SEPARATOR}?\d{{3,4}}{GROUP_SEPARATOR}?\d{{4}}(?!\d)"


def phone_number(text: str) -> str:
    """The domestic digits of a matched number: ``+82 (0)10 …`` becomes ``010…``.

    >>> phone_number("+82 (0)10-2345-6789")
    '01023456789'
    """
    digits = digits_of(text)
    if "+" in unicodedata.normalize("NFKC", text) and digits.startswith("82"):
        digits = "0" + digits[2:].removeprefix("0")
    return digits


class KrPhoneRecognizer(PiiPatternRecognizer):
    """Korean mobile and landline numbers; valid when prefix, length and exchange are plausible."""

    ENTITY = "KR_PHONE"
    DESCRIPTION = "Korean phone number"
    PATTERNS = (
        Pattern("Phone", rf"{_NOT_IN_NUMBER}(?:{_INTERNATIONAL}|0){_AREA}{_SUBSCRIBER}", 0.4),
        Pattern(
            "Phone (area code in parentheses)", rf"{_NOT_IN_NUMBER}\(0{_AREA}\)[{SPACES}]?{_SUBSCRIBER}", 0.4
        ),
        Pattern(
            "Phone (spaced digits)",
            rf"{_NOT_IN_NUMBER}(?<!\d[{SPACES}])0[{SPACES}]?(?:1[{SPACES}]?[016-9]|2|[3-6][{SPACES}]?[1-5]|7[{SPACES}]?0)"
            rf"(?:{SPACED_GROUP_SEPARATOR}\d){{7,8}}(?![{SPACES}{DASHES}]?\d)",
            0.4,
        ),
    )
    CONTEXT = ("전화", "휴대폰", "핸드폰", "연락처", "phone", "mobile", "tel", "cell")
    # A 0 or + not inside a number, then eight more digits with at most three other characters
    # between any two.
    PREFILTER = r"(?:^|\D)(?:\+|[0\x{FF10}])\D{0,4}\d(?:\D{0,3}\d){7}"

    def validate_result(self, pattern_text: str) -> bool:
        """``True`` for a plausible Korean mobile or landline number, ``False`` otherwise."""
        number = phone_number(pattern_text)
        return is_korean_mobile(number) or is_korean_landline(number)
