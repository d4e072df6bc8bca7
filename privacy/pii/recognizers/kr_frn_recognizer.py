"""Korean foreign resident registration numbers (외국인등록번호): the RRN format, seventh digit 5-8."""

from __future__ import annotations

from typing import ClassVar

from privacy.identifiers.korea import frn_check_digit
from privacy.pii.recognizers.kr_rrn_recognizer import KrRrnRecognizer, registration_number_patterns


class KrFrnRecognizer(KrRrnRecognizer):
    """Registration numbers of foreign residents.

    The check digit is the foreigners' one (:func:`~privacy.identifiers.korea.frn_check_digit`) or
    the citizens' one, which some issuers (and the demo data) use; birth dates as for RRNs.
    """

    ENTITY = "KR_FRN"
    DESCRIPTION = "Korean foreign resident registration number"
    SEX_DIGITS: ClassVar[str] = "5-8"
    PATTERNS = registration_number_patterns("FRN", SEX_DIGITS)
    CONTEXT = ("외국인등록번호", "외국인번호", "외국인", "frn", "foreign", "registration")

    def check_digit_matches(self, digits: str) -> bool:
        """Whether the thirteenth digit is the FRN or the RRN check digit of the first twelve."""
        return int(digits[12]) == frn_check_digit(digits[:12]) or super().check_digit_matches(digits)
