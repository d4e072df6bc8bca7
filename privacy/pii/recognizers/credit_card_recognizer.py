"""Payment card numbers (Luhn)."""

from __future__ import annotations

from typing import Final

from presidio_analyzer import Pattern

from privacy.pii.normalize import DASHES, SPACES, digits_of
from privacy.pii.recognizers.base import PiiPatternRecognizer

_SEPARATOR: Final = rf"[{SPACES}{DASHES}]"


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` pass the Luhn check (ISO/IEC 7812).

    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    """
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def plausible_issuer(digits: str) -> bool:
    """Whether the number starts like a card of a known scheme: Amex, Diners and JCB (3), Visa (4),
    Mastercard and Maestro (5, 2221-2720), Discover and UnionPay (6), Korean domestic cards (9)."""
    return digits[0] in "34569" or 2221 <= int(digits[:4]) <= 2720


class CreditCardRecognizer(PiiPatternRecognizer):
    """Card numbers of 14 to 19 digits, grouped or not; valid with a known issuer prefix and a right
    Luhn digit. (Thirteen-digit cards are no longer issued; that length belongs to RRNs.)"""

    ENTITY = "CREDIT_CARD"
    DESCRIPTION = "payment card number"
    PATTERNS = (
        Pattern(
            "Card",
            # Not the fraction digits of a decimal number (DP releases are full of long floats).
            rf"(?<!\d)(?<!\d\.)(?<!\d{_SEPARATOR})\d(?:{_SEPARATOR}?\d){{13,18}}(?!{_SEPARATOR}?\d)",
            0.3,
        ),
    )
    CONTEXT = ("card", "카드", "visa", "mastercard", "amex")
    PREFILTER = r"\d(?:\D{0,3}\d){13}"

    def validate_result(self, pattern_text: str) -> bool:
        """``True`` for 14-19 digits with a known issuer prefix and a right Luhn digit."""
        digits = digits_of(pattern_text)
        return 14 <= len(digits) <= 19 and plausible_issuer(digits) and luhn_valid(digits)
