"""Why a file was refused at intake: one exception class per rule.

Every refusal is a :class:`FileRejected`; its :attr:`~FileRejected.rule` becomes the ``rule`` of the
blocking :class:`~privacy.findings.Finding`, its message tells the researcher what to change. Messages
never quote file content, so they are safe to log.
"""

from __future__ import annotations


class FileRejected(Exception):
    """A file cannot leave through the airlock as it is; ``str(error)`` says why."""

    rule: str = "rejected"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadFileName(FileRejected):
    """The name is not a safe, plain, unambiguous file name."""

    rule = "bad_name"


class ForbiddenFileType(FileRejected):
    """The content is of a type the airlock does not accept, or does not match the extension."""

    rule = "forbidden_type"


class UnreadableFile(FileRejected):
    """The file claims an accepted type but cannot be parsed completely, so it cannot be checked."""

    rule = "unreadable"


class BombDetected(FileRejected):
    """Parsing the file would exceed a resource limit (decompression, nesting, expansion)."""

    rule = "bomb"


class FileTooLarge(FileRejected):
    """The file is larger than the configured maximum."""

    rule = "too_large"


class OcrUnavailable(FileRejected):
    """Text in images cannot be read because the OCR engine or its English model is missing."""

    rule = "ocr_unavailable"
