"""Korean business registration numbers (사업자등록번호): ``NNN-NN-NNNNN`` with a check digit."""

from __future__ import annotations

from presidio_analyzer import Pattern

from privacy.identifiers.korea import is_valid_brn
from privacy.pii.normalize import GROUP_SEPARATOR, digits_of
from privacy.pii.recognizers.base import PiiPatternRecognizer


class KrBrnRecognizer(PiiPatternRecognizer):
    """Business registration numbers (of sole proprietors too, hence personal data).

    A right check digit confirms the written form ``NNN-NN-NNNNN``; ten bare digits pass one time in
    ten by chance, so they are reported only next to a context word.
    """

    ENTITY = "KR_BRN"
    DESCRIPTION = "Korean business registration number"
    PATTERNS = (
        Pattern("BRN", rf"(?<!\d)\d{{3}}{GROUP_SEPARATOR}\d{{2}}{GROUP_SEPARATOR}\d{{5}}(?!\d)", 0.3),
        Pattern("BRN (digits only)", r"(?<!\d)\d{10}(?!\d)", 0.15),
    )
    CONTEXT = ("사업자", "business", "brn", "tax")
    PREFILTER = r"(?:^|\D)\d{3}\D{0,3}\d{2}\D{0,3}\d{5}(?:\D|$)"

    def validate_result(self, pattern_text: str) -> bool | None:
        """``False`` for a wrong check digit; ``True`` for a right one in the written form; ``None``
        (score kept, context decides) for a right one in ten bare digits."""
        digits = digits_of(pattern_text)
        if not is_valid_brn(digits):
            return False
        return True if len(pattern_text) > len(digits) else None
