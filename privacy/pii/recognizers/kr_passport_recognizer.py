"""Korean passport numbers: ``M12345678`` (before 2021) and ``M123A4567`` (since 2021)."""

from __future__ import annotations

from presidio_analyzer import Pattern

from privacy.pii.recognizers.base import PiiPatternRecognizer


class KrPassportRecognizer(PiiPatternRecognizer):
    """Passport numbers: the old form is the passport type (M, S, R, G, D) and eight digits, the new
    one a letter, three digits, a letter and four digits.

    Nothing in the number can be checked and product codes look alike, so a match is reported only
    next to a context word (여권, passport).
    """

    ENTITY = "KR_PASSPORT"
    DESCRIPTION = "Korean passport number"
    PATTERNS = (
        Pattern("Passport (since 2021)", r"(?<![A-Z0-9])[A-Z]\d{3}[A-Z]\d{4}(?![A-Z0-9])", 0.3),
        Pattern("Passport (before 2021)", r"(?<![A-Z0-9])[MSRGD]\d{8}(?![A-Z0-9])", 0.2),
    )
    CONTEXT = ("여권", "passport")
    PREFILTER = r"\p{L}\d{3}"
    NEEDS_CONTEXT = True
