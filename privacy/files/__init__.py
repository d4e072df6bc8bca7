"""File intake of the egress airlock: what a file really is, and everything in it that must be checked.

Pure library (no web framework, no database). The airlock calls, for each file of a request::

    validate_name(name)                      # BadFileName
    kind = sniff(name, data, limits=limits)  # FileTooLarge, ForbiddenFileType, UnreadableFile
    extracted = extract(name, data, kind, limits=limits)

and hands ``extracted.texts``/``tables`` to the PII scanner and disclosure control, ``images`` to
:func:`~privacy.files.ocr.ocr_text`, and ``notes`` to the reviewers. Every refusal is a
:class:`FileRejected` whose ``rule`` names the blocking finding (DESIGN §4.6 ``blocked``).
"""

from privacy.files.errors import (
    BadFileName,
    BombDetected,
    FileRejected,
    FileTooLarge,
    ForbiddenFileType,
    OcrUnavailable,
    UnreadableFile,
)
from privacy.files.extract import extract
from privacy.files.kinds import EXTENSIONS, FileKind, sniff
from privacy.files.limits import Limits
from privacy.files.names import validate_name
from privacy.files.ocr import ocr_available, ocr_text
from privacy.files.segments import Extracted, ImageSegment, TableSegment, TextSegment

__all__ = [
    "EXTENSIONS",
    "BadFileName",
    "BombDetected",
    "Extracted",
    "FileKind",
    "FileRejected",
    "FileTooLarge",
    "ForbiddenFileType",
    "ImageSegment",
    "Limits",
    "OcrUnavailable",
    "TableSegment",
    "TextSegment",
    "UnreadableFile",
    "extract",
    "ocr_available",
    "ocr_text",
    "sniff",
    "validate_name",
]
