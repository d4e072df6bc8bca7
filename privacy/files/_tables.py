"""Delimited text and Parquet files as all-string tables."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Final

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from privacy.files._collector import Collector
from privacy.files.errors import BombDetected, UnreadableFile

# Comment ('#') and blank lines before the header.
_PREAMBLE: Final = re.compile(r"(?:(?:#[^\n]*|[^\S\n]*)(?:\n|\Z))*")
# Leading characters that make spreadsheet software evaluate a cell as a formula.
_FORMULA_PREFIXES: Final = ("=", "@")


def frame_from_rows(header: Sequence[str], rows: Sequence[Sequence[str | None]]) -> tuple[pl.DataFrame, bool]:
    """An all-string DataFrame; repeated column names get a suffix (``n``, ``n_2``). Returns the frame
    and whether any name was changed."""
    names: list[str] = []
    seen: set[str] = set()
    for name in header:
        unique, suffix = name, 1
        while unique in seen:
            suffix += 1
            unique = f"{name}_{suffix}"
        seen.add(unique)
        names.append(unique)
    frame = pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String), orient="row")
    return frame, names != list(header)


def add_delimited(collector: Collector, text: str, delimiter: str) -> None:
    """Add CSV/TSV ``text`` as one table with its header; every field stays the string written.

    Leading ``#`` comment lines (a preamble) are skipped for the table but added as a text segment.
    Rows with a different number of fields than the header and malformed quoting raise
    :class:`UnreadableFile`; more than ``max_cells`` cells raise :class:`BombDetected`.
    """
    match = _PREAMBLE.match(text)
    preamble = match.group() if match else ""
    skipped = preamble.count("\n")
    if preamble.strip():
        collector.text(f"preamble (lines 1-{skipped})", preamble)
        collector.note(f"{skipped} comment/blank line(s) before the header were not read as table rows")
    body = io.StringIO(text[len(preamble) :], newline="")
    reader = csv.reader(body, delimiter=delimiter, strict=True)
    max_cells = collector.limits.max_cells
    try:
        header = next(reader, None)
        if header is None:
            collector.note("the file has no header and no rows")
            return
        rows: list[list[str]] = []
        blank_lines = 0
        for row in reader:
            if not row:
                blank_lines += 1
                continue
            if len(row) != len(header):
                raise UnreadableFile(
                    f"line {reader.line_num + skipped} has {len(row)} fields but the header has "
                    f"{len(header)}; every row must have as many fields as the header"
                )
            rows.append(row)
            if len(rows) * len(header) > max_cells:
                raise BombDetected(f"the table has more than {max_cells:,} cells")
    except csv.Error as error:
        raise UnreadableFile(f"malformed CSV at line {reader.line_num + skipped}: {error}") from None
    if blank_lines:
        collector.note(f"{blank_lines} blank line(s) between rows were skipped")
    frame, renamed = frame_from_rows(header, rows)
    if renamed:
        collector.note("repeated column names were given suffixes (_2, _3 ...)")
    if _has_formula_cells(frame):
        collector.note("some cells start with '=' or '@' and may run as formulas in spreadsheet software")
    collector.table("table", frame)


def add_parquet(collector: Collector, data: bytes) -> None:
    """Add a Parquet file as one all-string table, plus its key-value metadata as text.

    The footer is checked first: more than ``max_cells`` cells or an uncompressed size above
    ``max_decoded_bytes`` raise :class:`BombDetected` before any data page is read. Nested columns
    (lists, structs, maps) and undecodable files raise :class:`UnreadableFile`.
    """
    limits = collector.limits
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        metadata = parquet.metadata
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as error:
        raise UnreadableFile(f"the Parquet footer cannot be read: {error}") from None
    cells = metadata.num_rows * metadata.num_columns
    if cells > limits.max_cells:
        raise BombDetected(f"the Parquet file declares {cells:,} cells; the limit is {limits.max_cells:,}")
    uncompressed = sum(
        max(
            group.total_byte_size,
            sum(group.column(i).total_uncompressed_size for i in range(group.num_columns)),
        )
        for group in (metadata.row_group(i) for i in range(metadata.num_row_groups))
    )
    if uncompressed > limits.max_decoded_bytes:
        raise BombDetected(
            f"the Parquet data expands to {uncompressed:,} bytes; the limit is {limits.max_decoded_bytes:,}"
        )
    nested = [field.name for field in schema if pa.types.is_nested(field.type)]
    if nested:
        raise UnreadableFile(
            f"the Parquet file has {len(nested)} nested column(s) (list, struct or map); flatten them first"
        )
    for key, value in (metadata.metadata or {}).items():
        collector.text(f"metadata {_label(key)}", value.decode("utf-8", "replace"))
    for field in schema:
        for key, value in (field.metadata or {}).items():
            collector.text(
                f"metadata of column {field.name!r} {_label(key)}", value.decode("utf-8", "replace")
            )
    _refuse_prefix_encoding(metadata)
    # Text columns are read dictionary-encoded, so a small dictionary repeated over many rows is measured
    # before it is expanded.
    text_columns = [field.name for field in schema if _is_text(field.type)]
    try:
        table = pq.ParquetFile(pa.BufferReader(data), read_dictionary=text_columns).read()
        expanded = sum(_expanded_size(column) for column in table.columns)
        if expanded > limits.max_decoded_bytes:
            raise BombDetected(
                f"the Parquet data expands to {expanded:,} bytes; the limit is {limits.max_decoded_bytes:,}"
            )
        frame = pl.from_arrow(table)
        if not isinstance(frame, pl.DataFrame):
            raise UnreadableFile("the Parquet data is not a table")
        frame = frame.select(pl.all().cast(pl.String))
    except (pa.ArrowException, OSError, pl.exceptions.PolarsError) as error:
        raise UnreadableFile(f"the Parquet data cannot be read as text columns: {error}") from None
    if frame.height != metadata.num_rows:
        raise UnreadableFile("the Parquet data has a different number of rows than its footer declares")
    collector.table("table", frame)


def _refuse_prefix_encoding(metadata: pq.FileMetaData) -> None:
    """DELTA_BYTE_ARRAY stores each value as a prefix of the previous one plus a suffix, so a few bytes
    can decode to very long values; no common writer uses it by default."""
    for group in (metadata.row_group(index) for index in range(metadata.num_row_groups)):
        for column in (group.column(index) for index in range(group.num_columns)):
            if "DELTA_BYTE_ARRAY" in column.encodings:
                raise BombDetected(
                    f"column {column.path_in_schema!r} uses DELTA_BYTE_ARRAY encoding, whose decoded size "
                    "cannot be bounded before reading; save the file with default settings"
                )


def _is_text(data_type: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_binary(data_type)
        or pa.types.is_large_binary(data_type)
    )


def _expanded_size(column: pa.ChunkedArray) -> int:
    """Bytes ``column`` takes once dictionary-encoded chunks are expanded (computed without expanding)."""
    size = 0
    for chunk in column.chunks:
        if isinstance(chunk, pa.DictionaryArray):
            lengths = pc.binary_length(chunk.dictionary)
            size += (pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) + chunk.indices.nbytes
        else:
            size += chunk.nbytes
    return size


def _label(key: bytes) -> str:
    return repr(key.decode("utf-8", "replace"))


def _has_formula_cells(frame: pl.DataFrame) -> bool:
    if any(name.startswith(_FORMULA_PREFIXES) for name in frame.columns):
        return True
    if frame.is_empty():
        return False
    starts = [
        pl.col(name).str.starts_with(prefix).any() for name in frame.columns for prefix in _FORMULA_PREFIXES
    ]
    return bool(frame.select(pl.any_horizontal(starts)).item())
