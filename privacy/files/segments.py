"""What extraction hands to the checks: text, tables and images, each with a human-readable location."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from privacy.files.kinds import FileKind


@dataclass(frozen=True, slots=True)
class TextSegment:
    """Text to scan. ``location`` names the place in the file (``cell 3 (markdown) source``,
    ``/results/0/name``, ``table 1 row 2, column 'id' (base64-decoded)``); ``""`` is the whole file.
    The PII scanner adds line and column within ``text``."""

    location: str
    text: str


@dataclass(frozen=True, slots=True, eq=False)
class TableSegment:
    """A table whose columns are all strings, exactly as written in the file (numbers included)."""

    location: str
    table: pl.DataFrame


@dataclass(frozen=True, slots=True)
class ImageSegment:
    """An image (PNG or JPEG bytes, already checked against bombs and corruption) for OCR."""

    location: str
    data: bytes
    kind: FileKind


@dataclass(slots=True)
class Extracted:
    """Everything the checks must see in one file, and what a reviewer should know about it."""

    texts: list[TextSegment] = field(default_factory=list)
    tables: list[TableSegment] = field(default_factory=list)
    images: list[ImageSegment] = field(default_factory=list)
    #: Facts for the reviewer (skipped preamble lines, scripts present, metadata found...).
    notes: list[str] = field(default_factory=list)
