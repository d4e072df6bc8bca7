"""E-mail addresses."""

from __future__ import annotations

from typing import Final

from presidio_analyzer import Pattern

from privacy.pii.recognizers.base import PiiPatternRecognizer

#: Image names such as ``logo@2x.png`` look like addresses; these "top-level domains" are file types.
_FILE_EXTENSIONS: Final = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "tif", "tiff"})


class EmailRecognizer(PiiPatternRecognizer):
    """E-mail addresses ``local@domain.tld``; valid when the local part and domain are well formed."""

    ENTITY = "EMAIL_ADDRESS"
    DESCRIPTION = "e-mail address"
    PATTERNS = (
        Pattern(
            "Email",
            r"(?<![A-Z0-9._%+\-])[A-Z0-9._%+\-]+@[A-Z0-9\-]+(?:\.[A-Z0-9\-]+)*\.[A-Z]{2,24}(?![A-Z0-9\-])",
            0.5,
        ),
    )
    CONTEXT = ("email", "e-mail", "mail", "이메일", "메일")
    PREFILTER = r"[@\x{FF20}\x{FE6B}]"  # also the full-width and small at signs

    def validate_result(self, pattern_text: str) -> bool:
        """``True`` unless the local part has empty dot-separated pieces, a domain label starts or
        ends with a hyphen, or the "top-level domain" is an image file type."""
        local, _, domain = pattern_text.lower().rpartition("@")
        labels = domain.split(".")
        if "" in local.split(".") or any(label.startswith("-") or label.endswith("-") for label in labels):
            return False
        return labels[-1] not in _FILE_EXTENSIONS
