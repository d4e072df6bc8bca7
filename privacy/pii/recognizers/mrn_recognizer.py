"""Medical record numbers (환자번호), in the formats the datasets declare."""

from __future__ import annotations

import re
from collections.abc import Sequence

from presidio_analyzer import Pattern

from privacy.pii.recognizers.base import PiiPatternRecognizer


class MrnRecognizer(PiiPatternRecognizer):
    """Medical record numbers matching any of the regular expressions declared by the datasets the
    requester holds grants for (for example ``HB\\d{8}``).

    Each expression is matched as a whole token: not preceded or followed by a letter or digit. A
    declared format is specific to its hospital, so a match is reported without context.
    """

    ENTITY = "MRN"
    DESCRIPTION = "medical record number"
    CONTEXT = ("mrn", "환자번호", "병록번호", "등록번호", "chart", "record")

    def __init__(self, patterns: Sequence[str], supported_language: str = "en") -> None:
        """Build the recognizer from the declared expressions (Python ``re`` syntax, no flags);
        raises ``ValueError`` for none, an invalid one, or one that matches the empty string."""
        if not patterns:
            raise ValueError("an MRN recognizer needs at least one declared pattern")
        for declared in patterns:
            try:
                compiled = re.compile(declared)
            except re.error as exc:
                raise ValueError(f"invalid MRN pattern {declared!r}: {exc}") from None
            if compiled.fullmatch(""):
                raise ValueError(f"MRN pattern {declared!r} matches the empty string")
        super().__init__(
            supported_language,
            patterns=[
                Pattern(f"MRN {index}", rf"(?<![A-Z0-9])(?:{declared})(?![A-Z0-9])", 0.85)
                for index, declared in enumerate(patterns, 1)
            ],
        )
        # The declared expressions are usually valid Rust regexes too; the table scanner looks at
        # every value when Polars rejects one.
        self.prefilter = "(?i)" + "|".join(f"(?:{declared})" for declared in patterns)
