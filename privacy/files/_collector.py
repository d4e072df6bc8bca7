"""Collects segments for one file while enforcing the expansion limits."""

from __future__ import annotations

import polars as pl

from privacy.files._base64 import RUN_CANDIDATE, decoded_texts
from privacy.files.errors import BombDetected, UnreadableFile
from privacy.files.kinds import FileKind
from privacy.files.limits import Limits
from privacy.files.segments import Extracted, ImageSegment, TableSegment, TextSegment

#: How many times text encoded in base64 inside base64 is unwrapped.
MAX_BASE64_LEVELS = 2


def sublocation(parent: str, child: str) -> str:
    """``child`` placed within ``parent`` (``""`` is the whole file)."""
    return f"{parent} {child}" if parent else child


class Collector:
    """Accumulates the segments of one file. Every text, including each table cell, is searched for
    base64-encoded text; raises :class:`BombDetected` past ``max_segments``, ``max_cells`` or
    ``max_decoded_bytes``."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.extracted = Extracted()
        self._notes: dict[str, None] = {}
        self._segments = 0
        self._cells = 0
        self._decoded_bytes = 0

    def text(self, location: str, text: str, *, base64_level: int = 0) -> None:
        """Add ``text`` found at ``location`` (nothing if blank), and any base64-encoded text in it."""
        if not text.strip():
            return
        self._count(len(text.encode("utf-8")))
        self.extracted.texts.append(TextSegment(location, text))
        self._decode_base64(location, text, base64_level)

    def table(self, location: str, table: pl.DataFrame) -> None:
        """Add an all-string table; its header and cells are searched for base64-encoded text."""
        self._cells += table.height * max(table.width, 1)
        if self._cells > self.limits.max_cells:
            raise BombDetected(f"the tables have more than {self.limits.max_cells:,} cells")
        self._count(int(table.estimated_size()))
        self.extracted.tables.append(TableSegment(location, table))
        for number, column in enumerate(table.columns, start=1):
            self._decode_base64(sublocation(location, f"header of column {number}"), column, 0)
            values = table.get_column(column)
            hits = values.str.contains(RUN_CANDIDATE).fill_null(value=False)
            for row, value in zip(hits.arg_true().to_list(), values.filter(hits).to_list(), strict=True):
                where = sublocation(location, f"row {row + 1}, column {column!r}")
                self._decode_base64(where, value, 0)

    def image(self, location: str, data: bytes, kind: FileKind) -> None:
        """Add an image that has already been checked."""
        self._count(len(data))
        self.extracted.images.append(ImageSegment(location, data, kind))

    def note(self, message: str) -> None:
        """Tell the reviewer something (each message once)."""
        if message not in self._notes:
            self._notes[message] = None
            self.extracted.notes.append(message)

    def charge(self, size: int) -> None:
        """Count ``size`` bytes decoded or decompressed outside any segment against the limit."""
        self._decoded_bytes += size
        if self._decoded_bytes > self.limits.max_decoded_bytes:
            raise BombDetected(f"extraction would produce more than {self.limits.max_decoded_bytes:,} bytes")

    def _count(self, size: int) -> None:
        self._segments += 1
        if self._segments > self.limits.max_segments:
            raise BombDetected(f"the file has more than {self.limits.max_segments:,} parts to check")
        self.charge(size)

    def _decode_base64(self, location: str, text: str, level: int) -> None:
        decoded_location = f"{location} (base64-decoded)" if location else "(base64-decoded)"
        for decoded in decoded_texts(text):
            if level == MAX_BASE64_LEVELS:
                raise UnreadableFile(
                    f"{decoded_location} holds base64 nested more than {MAX_BASE64_LEVELS} levels "
                    "deep, which is not unwrapped and so cannot be checked"
                )
            self.text(decoded_location, decoded, base64_level=level + 1)
