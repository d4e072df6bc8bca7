"""Egress files prepared for a reviewer's eyes: shown as what they are, never executed or rendered.

What a file *is* comes from the airlock's own intake (:func:`privacy.files.sniff`: by content, the name
must agree), and tables from :func:`privacy.files.extract` — the same all-string tables the automatic
checks read, so a finding's ``row 12, column 'n'`` points at the cell shown here. Nothing in this module
produces markup: the results are plain data for the autoescaped templates. Images become ``data:`` URLs
only of bytes that start like PNG or JPEG; HTML, SVG, Markdown and notebook HTML outputs are shown as
their source text. Invisible and bidirectional control characters are made visible (``⟨U+202E⟩``) so
that text cannot read differently from what it is.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from privacy.files import FileKind, FileRejected, Limits, extract, sniff
from privacy.files.kinds import JPEG_SIGNATURE, PNG_SIGNATURE, decode_text

#: What one page shows of a table (the rest is counted, and flagged rows are always shown).
MAX_ROWS: Final = 200
MAX_COLUMNS: Final = 40
MAX_CELL_CHARS: Final = 300
#: What one page shows of a text file or a notebook.
MAX_LINES: Final = 3000
MAX_LINE_CHARS: Final = 2000
MAX_NOTEBOOK_CELLS: Final = 300
MAX_OUTPUT_CHARS: Final = 20_000

IMAGE_MIME: Final = {FileKind.PNG: "image/png", FileKind.JPEG: "image/jpeg"}
_SIGNATURES: Final = {"image/png": PNG_SIGNATURE, "image/jpeg": JPEG_SIGNATURE}
#: Kinds shown as source text; the note says why they are not rendered.
_SOURCE_NOTES: Final = {
    FileKind.HTML: "HTML is shown as its source text; it is never rendered.",
    FileKind.SVG: "SVG is shown as its source text; it is never rendered.",
    FileKind.MARKDOWN: "Markdown is shown as its source text.",
}

# Terminal colour/cursor sequences (notebook streams and tracebacks) carry nothing a reviewer reads.
_ANSI: Final = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# Control, zero-width and bidirectional formatting characters: shown by their code point.
_INVISIBLE: Final = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
    "\ufff9-\ufffb]"
)
_LINE: Final = re.compile(r"line (\d+)\b")
_ROW: Final = re.compile(r"row (\d+)\b")
_POSITIONAL_COLUMN: Final = re.compile(r"row \d+(?: \(.*\))?, column (\d+)(?:$|[ ,])")
_HEADER: Final = re.compile(r"header of column (\d+)\b")
_CELL: Final = re.compile(r"cell (\d+)\b")
#: The location of the (first) table of a CSV, TSV or Parquet file, before the place in it.
_TABLE_PREFIXES: Final = ("table, ", "table ")


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""


@dataclass(frozen=True)
class TableRow:
    """One shown row; ``number`` counts data rows from 1, as findings do."""

    number: int
    cells: list[Cell]
    css: str = ""
    #: Rows not shown between the previous shown row and this one.
    gap_before: int = 0


@dataclass(frozen=True)
class TableView:
    header: list[Cell]
    rows: list[TableRow]
    total_rows: int
    total_columns: int
    hidden_rows: int
    hidden_columns: int


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    css: str = ""


@dataclass(frozen=True)
class Output:
    """One notebook output entry: ``view`` is ``text``, ``image`` (``image`` holds a data: URL) or
    ``source`` (markup shown as text)."""

    label: str
    view: str
    text: str = ""
    image: str = ""


@dataclass(frozen=True)
class NotebookCell:
    number: int
    cell_type: str
    source: str
    outputs: list[Output]
    css: str = ""


@dataclass
class RenderedFile:
    """What the review page shows of one file. ``view`` selects the presentation: ``table``, ``image``,
    ``notebook``, ``lines`` or ``unavailable`` (``problem`` says why)."""

    name: str
    size: int
    kind: str | None = None
    view: str = "unavailable"
    table: TableView | None = None
    image: str = ""
    cells: list[NotebookCell] = field(default_factory=list)
    hidden_cells: int = 0
    lines: list[Line] = field(default_factory=list)
    hidden_lines: int = 0
    note: str = ""
    problem: str = ""


def visible(text: str, limit: int | None = None) -> str:
    """``text`` with invisible and direction-changing characters spelled out, cut at ``limit``."""
    cut = text if limit is None or len(text) <= limit else text[:limit] + " … (cut)"
    return _INVISIBLE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", cut)


def severity_class(severity: str) -> str:
    """The CSS class that highlights a place with a finding of ``severity`` (none for ``info``)."""
    return {"block": "finding blocking", "review": "finding"}.get(severity, "")


def _strongest(current: str, new: str) -> str:
    return current if current == "finding blocking" or not new else new


def render_file(
    name: str, data: bytes, checked_kind: str | None, findings: Sequence[Mapping[str, Any]], limits: Limits
) -> RenderedFile:
    """Prepare ``data`` (the quarantined bytes of ``name``) for display, with ``findings`` (the report's
    finding dicts for this file) marked where they point. Never raises for a bad file: it is
    ``unavailable`` with the reason.

    Only a file the automatic checks read completely in their isolated worker (``checked_kind``, the
    kind their report gives) is parsed here; a file they refused or could not read (a parser crash, a
    bomb) is never opened in this process.
    """
    shown = RenderedFile(name=name, size=len(data), kind=checked_kind)
    if checked_kind is None:
        shown.problem = (
            "the automatic checks did not read it completely (see its findings), so it is not opened"
        )
        return shown
    try:
        kind = sniff(name, data, limits=limits)
        if kind != checked_kind:
            shown.problem = f"its content is {kind}, but the automatic checks read it as {checked_kind}"
            return shown
        if kind in IMAGE_MIME:
            shown.view, shown.image = "image", _data_url(IMAGE_MIME[kind], data)
        elif kind in {FileKind.CSV, FileKind.TSV, FileKind.PARQUET}:
            tables = extract(name, data, kind, limits=limits).tables
            if not tables:
                shown.problem = "the file has no header and no rows"
                return shown
            shown.view, shown.table = "table", _table(tables[0].table, findings)
        elif kind is FileKind.NOTEBOOK:
            shown.view = "notebook"
            shown.cells, shown.hidden_cells = _notebook(json.loads(decode_text(data)), findings)
        else:
            shown.view, shown.note = "lines", _SOURCE_NOTES.get(kind, "")
            shown.lines, shown.hidden_lines = _lines(decode_text(data), findings)
    except FileRejected as exc:
        shown.view, shown.problem = "unavailable", f"it cannot be shown: {exc}"
    except (ValueError, KeyError, TypeError) as exc:  # a notebook whose structure is not as expected
        shown.view, shown.problem = "unavailable", f"it cannot be shown: {type(exc).__name__}"
    return shown


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# ---------------------------------------------------------------------------------------------------
# Tables


def _table_place(location: str, columns: Sequence[str]) -> tuple[int | None, int | None] | None:
    """(row number from 1 or None, column index or None) of a finding in a file's table, if any."""
    rest = next((location[len(p) :] for p in _TABLE_PREFIXES if location.startswith(p)), None)
    if rest is None:
        return None
    header = _HEADER.match(rest)
    if header:
        return None, int(header[1]) - 1
    row_match = _ROW.match(rest)
    row = int(row_match[1]) if row_match else None
    # A named column: the rightmost mention wins (labels before it may quote other values).
    best: tuple[int, int] | None = None
    for index, name in enumerate(columns):
        at = rest.rfind(f"column {name!r}")
        if at >= 0 and (best is None or at > best[0]):
            best = (at, index)
    if best is not None:
        return row, best[1]
    positional = _POSITIONAL_COLUMN.match(rest)
    if positional:
        return row, int(positional[1]) - 1
    return (row, None) if row is not None else None


def _table(frame: pl.DataFrame, findings: Sequence[Mapping[str, Any]]) -> TableView:
    columns = frame.columns
    cells: dict[tuple[int, int], str] = {}
    header_marks: dict[int, str] = {}
    row_marks: dict[int, str] = {}
    for finding in findings:
        css = severity_class(str(finding.get("severity", "")))
        place = _table_place(str(finding.get("location", "")), columns) if css else None
        if place is None:
            continue
        row, column = place
        if row is None and column is not None:
            header_marks[column] = _strongest(header_marks.get(column, ""), css)
        elif row is not None and column is not None:
            cells[(row, column)] = _strongest(cells.get((row, column), ""), css)
        elif row is not None:
            row_marks[row] = _strongest(row_marks.get(row, ""), css)
    shown_columns = min(len(columns), MAX_COLUMNS)
    # A flagged cell beyond the shown columns makes its whole row stand out.
    for (row, column), css in cells.items():
        if column >= shown_columns:
            row_marks[row] = _strongest(row_marks.get(row, ""), css)
    flagged = {row for row, _ in cells} | set(row_marks)
    numbers = sorted(
        set(range(1, min(frame.height, MAX_ROWS) + 1)) | {n for n in flagged if n <= frame.height}
    )
    narrow = frame.select(columns[:shown_columns])
    shown: list[TableRow] = []
    previous = 0
    for number in numbers:
        values = narrow.row(number - 1)
        shown.append(
            TableRow(
                number=number,
                cells=[
                    Cell(
                        "" if value is None else visible(str(value), MAX_CELL_CHARS),
                        cells.get((number, i), ""),
                    )
                    for i, value in enumerate(values)
                ],
                css=row_marks.get(number, ""),
                gap_before=number - previous - 1,
            )
        )
        previous = number
    header = [Cell(visible(name, MAX_CELL_CHARS), header_marks.get(i, "")) for i, name in enumerate(columns)]
    return TableView(
        header=header[:shown_columns],
        rows=shown,
        total_rows=frame.height,
        total_columns=len(columns),
        hidden_rows=frame.height - len(shown),
        hidden_columns=len(columns) - shown_columns,
    )


# ---------------------------------------------------------------------------------------------------
# Text


def _lines(text: str, findings: Sequence[Mapping[str, Any]]) -> tuple[list[Line], int]:
    marks: dict[int, str] = {}
    for finding in findings:
        css = severity_class(str(finding.get("severity", "")))
        match = _LINE.match(str(finding.get("location", "")))
        if css and match:
            marks[int(match[1])] = _strongest(marks.get(int(match[1]), ""), css)
    all_lines = text.splitlines() or [""]
    lines = [
        Line(number, visible(line, MAX_LINE_CHARS), marks.get(number, ""))
        for number, line in enumerate(all_lines[:MAX_LINES], start=1)
    ]
    return lines, max(len(all_lines) - MAX_LINES, 0)


# ---------------------------------------------------------------------------------------------------
# Notebooks


def _joined(value: Any) -> str:
    """A notebook multiline string (a string or a list of lines); anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(part, str) for part in value):
        return "".join(value)
    return json.dumps(value, ensure_ascii=False, indent=1)


def _output_text(text: str) -> str:
    return visible(_ANSI.sub("", text), MAX_OUTPUT_CHARS)


def _image_output(mime: str, value: Any) -> Output:
    try:
        payload = base64.b64decode("".join(_joined(value).split()), validate=True)
    except (binascii.Error, ValueError):
        payload = b""
    if payload.startswith(_SIGNATURES[mime]):
        return Output(mime, "image", image=_data_url(mime, payload))
    return Output(mime, "text", text="(not a valid image; not shown)")


def _outputs(output: Mapping[str, Any]) -> list[Output]:
    output_type = output.get("output_type")
    if output_type == "stream":
        return [
            Output(str(output.get("name", "stream")), "text", _output_text(_joined(output.get("text", ""))))
        ]
    if output_type == "error":
        lines = [
            f"{output.get('ename', '')}: {output.get('evalue', '')}",
            *map(str, output.get("traceback", [])),
        ]
        return [Output("error", "text", _output_text("\n".join(lines)))]
    shown = []
    for mime, value in dict(output.get("data") or {}).items():
        if mime in _SIGNATURES:
            shown.append(_image_output(mime, value))
        elif mime == "text/plain":
            shown.append(Output(mime, "text", _output_text(_joined(value))))
        else:
            # HTML, SVG, Markdown, JavaScript, widgets: their source, as text.
            label = f"{mime} (shown as source, not rendered)"
            shown.append(Output(label, "source", visible(_joined(value), MAX_OUTPUT_CHARS)))
    return shown


def _notebook(
    document: Mapping[str, Any], findings: Sequence[Mapping[str, Any]]
) -> tuple[list[NotebookCell], int]:
    marks: dict[int, str] = {}
    for finding in findings:
        css = severity_class(str(finding.get("severity", "")))
        match = _CELL.match(str(finding.get("location", "")))
        if css and match:
            marks[int(match[1])] = _strongest(marks.get(int(match[1]), ""), css)
    cells = list(document.get("cells", []))
    shown = []
    for number, cell in enumerate(cells[:MAX_NOTEBOOK_CELLS], start=1):
        outputs = [entry for output in cell.get("outputs", []) for entry in _outputs(output)]
        shown.append(
            NotebookCell(
                number=number,
                cell_type=str(cell.get("cell_type", "")),
                source=visible(_joined(cell.get("source", "")), MAX_OUTPUT_CHARS),
                outputs=outputs,
                css=marks.get(number, ""),
            )
        )
    return shown, max(len(cells) - MAX_NOTEBOOK_CELLS, 0)
