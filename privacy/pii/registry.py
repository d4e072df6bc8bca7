"""Which recognizers the scanner and the Presidio analyzer use: an explicit list, no discovery.

Adding a recognizer means writing its file under :mod:`privacy.pii.recognizers` and naming its class
here; nothing is registered by importing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from privacy.pii.recognizers import (
    CreditCardRecognizer,
    DateOfBirthRecognizer,
    EmailRecognizer,
    KrBrnRecognizer,
    KrDriverLicenseRecognizer,
    KrFrnRecognizer,
    KrPassportRecognizer,
    KrPhoneRecognizer,
    KrRrnRecognizer,
    MrnRecognizer,
    PiiPatternRecognizer,
)

#: The pattern recognizers that need no configuration, in reporting order.
PATTERN_RECOGNIZERS: Final[tuple[type[PiiPatternRecognizer], ...]] = (
    KrRrnRecognizer,
    KrFrnRecognizer,
    KrPhoneRecognizer,
    KrPassportRecognizer,
    KrDriverLicenseRecognizer,
    KrBrnRecognizer,
    EmailRecognizer,
    CreditCardRecognizer,
    DateOfBirthRecognizer,
)


def pattern_recognizers(mrn_patterns: Sequence[str] = ()) -> list[PiiPatternRecognizer]:
    """New instances of every pattern recognizer, plus an MRN recognizer when formats are declared."""
    recognizers = [recognizer() for recognizer in PATTERN_RECOGNIZERS]
    if mrn_patterns:
        recognizers.append(MrnRecognizer(mrn_patterns))
    return recognizers
