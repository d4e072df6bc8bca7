"""HTML and SVG: their text, attributes, comments, code, tables and embedded ``data:`` URIs.

Nothing is rendered or executed. Script and style code is not visible text, but it leaves with the
file, so it is returned separately to be scanned too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Final
from xml.parsers import expat

from privacy.files._collector import Collector, sublocation
from privacy.files._embedded import add_data_uris
from privacy.files._tables import frame_from_rows
from privacy.files.errors import BombDetected, ForbiddenFileType, UnreadableFile

# Upper bounds the HTML standard itself puts on spans.
MAX_COLSPAN: Final = 1000
MAX_ROWSPAN: Final = 65534

_BLOCK_TAGS: Final = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot", "thead", "tr",
        "ul",
    }
)  # fmt: skip
# Attributes whose value a reader sees (tooltips, alternative text, form values).
_TEXT_ATTRIBUTES: Final = frozenset(
    {
        "abbr", "alt", "aria-description", "aria-label", "aria-placeholder", "content", "download",
        "label", "placeholder", "summary", "title", "value",
    }
)  # fmt: skip
_URL_ATTRIBUTES: Final = frozenset(
    {
        "action", "archive", "background", "cite", "codebase", "data", "formaction", "href", "longdesc",
        "manifest", "ping", "poster", "src", "srcset", "xlink:href",
    }
)  # fmt: skip
_EMBEDDING_TAGS: Final = frozenset({"applet", "embed", "frame", "iframe", "object"})
_NOTEWORTHY_TAGS: Final = _EMBEDDING_TAGS | {"script", "style", "base", "meta"}
_CELL_TAGS: Final = frozenset({"td", "th"})
_TABLE_TAGS: Final = _CELL_TAGS | {"table", "thead", "tbody", "tfoot", "tr"}
_EXTERNAL_URL: Final = re.compile(
    r"^\s*(?:[a-z][a-z0-9+.-]*:)?//|url\(\s*['\"]?\s*(?:https?:)?//|@import", re.I
)
_SCRIPT_URL: Final = re.compile(r"^\s*(?:javascript|vbscript)\s*:", re.I)
_XML_DECLARATIONS: Final = re.compile(r"<!DOCTYPE|<!ENTITY", re.I)
# Elements that continue the text around them rather than start a new line.
_SVG_INLINE: Final = frozenset({"a", "altGlyph", "textPath", "tref", "tspan"})
_SVG_TEXT_ATTRIBUTES: Final = frozenset({"aria-label", "aria-description", "title", "alt"})


@dataclass(slots=True)
class Markup:
    """What one HTML or SVG document holds, grouped for scanning."""

    text: str = ""
    attributes: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    code: list[str] = field(default_factory=list)
    data_uris: list[str] = field(default_factory=list)
    #: Each table as (header, rows), cells whitespace-normalised, spans expanded.
    tables: list[tuple[list[str], list[list[str | None]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        if message not in self.notes:
            self.notes.append(message)


@dataclass(slots=True)
class _Cell:
    header: bool
    colspan: int
    rowspan: int
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    head: bool
    cells: list[_Cell] = field(default_factory=list)


@dataclass(slots=True)
class _Table:
    rows: list[_Row] = field(default_factory=list)
    in_head: bool = False
    row_open: bool = False
    cell: _Cell | None = None


def add_html(collector: Collector, location: str, html: str) -> None:
    """Add an HTML document found at ``location``: its visible text, reader-visible attributes,
    comments, script/style code, tables (all-string) and ``data:`` payloads."""
    markup = read_html(html, max_cells=collector.limits.max_cells)
    add_markup(collector, location, markup)
    for number, (header, rows) in enumerate(markup.tables, start=1):
        frame, renamed = frame_from_rows(header, rows)
        if renamed:
            collector.note("repeated column names in HTML tables were given suffixes (_2, _3 ...)")
        collector.table(sublocation(location, f"table {number}"), frame)


def add_svg(collector: Collector, location: str, svg: str) -> None:
    """Add an SVG document found at ``location`` (see :func:`read_svg` for what is refused)."""
    add_markup(collector, location, read_svg(svg))


def add_markup(collector: Collector, location: str, markup: Markup) -> None:
    """Add the text parts, embedded payloads and notes of parsed HTML or SVG."""
    collector.text(location, markup.text)
    collector.text(sublocation(location, "attributes"), "\n".join(markup.attributes))
    collector.text(sublocation(location, "comments"), "\n".join(markup.comments))
    collector.text(sublocation(location, "script and style code"), "\n".join(markup.code))
    add_data_uris(collector, location, markup.data_uris)
    for note in markup.notes:
        collector.note(note)


def read_html(html: str, *, max_cells: int) -> Markup:
    """Parse ``html`` with the standard library's tolerant parser; tables beyond ``max_cells`` cells
    (after expanding spans) raise :class:`BombDetected`."""
    reader = _HtmlReader()
    reader.feed(html)
    reader.close()
    markup = reader.markup
    markup.text = _tidy("".join(reader.text_parts))
    cells = 0
    for table in reader.tables:
        header, rows = _table_grid(table, max_cells - cells)
        cells += len(rows) * max(len(header), 1)
        if header or rows:
            markup.tables.append((header, rows))
    return markup


class _HtmlReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.markup = Markup()
        self.text_parts: list[str] = []
        self.tables: list[_Table] = []
        self._open_tables: list[_Table] = []
        self._code_tag: str | None = None
        self._code_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is not None:
                self._attribute(tag, name, value)
        if tag in _BLOCK_TAGS:
            self.text_parts.append("\n")
        elif tag in _CELL_TAGS:
            self.text_parts.append("\t")
        if tag in _TABLE_TAGS:
            self._table_start(tag, attrs)
        elif tag in _NOTEWORTHY_TAGS:
            self._noteworthy(tag, attrs)

    def _noteworthy(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._code_tag = tag
            self.markup.note(
                f"HTML contains <{tag}> elements; not executed, not rendered (their code is scanned)"
            )
        elif tag in _EMBEDDING_TAGS:
            self.markup.note(f"HTML contains <{tag}> elements that would load other content if rendered")
        elif tag == "base" or any(name == "http-equiv" for name, _ in attrs):
            self.markup.note(f"HTML contains a <{tag}> element that changes how links load")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._code_tag:
            self.markup.code.append("".join(self._code_parts))
            self._code_tag, self._code_parts = None, []
        if tag in _BLOCK_TAGS:
            self.text_parts.append("\n")
        if not self._open_tables:
            return
        table = self._open_tables[-1]
        if tag in _CELL_TAGS:
            table.cell = None
        elif tag == "tr":
            table.cell, table.row_open = None, False
        elif tag == "thead":
            table.in_head = False
        elif tag == "table":
            self._open_tables.pop()

    def handle_data(self, data: str) -> None:
        if self._code_tag is not None:
            self._code_parts.append(data)
            return
        self.text_parts.append(data)
        if self._open_tables and self._open_tables[-1].cell is not None:
            self._open_tables[-1].cell.parts.append(data)

    def handle_comment(self, data: str) -> None:
        self.markup.comments.append(data)

    def unknown_decl(self, data: str) -> None:  # <![CDATA[...]]>
        self.handle_data(data.removeprefix("CDATA["))

    def handle_pi(self, data: str) -> None:
        self.markup.comments.append(data)

    def _attribute(self, tag: str, name: str, value: str) -> None:
        markup = self.markup
        if name.startswith("on"):
            markup.note(
                "HTML contains event handler attributes (on...=); not executed (their code is scanned)"
            )
            markup.code.append(value)
        elif name in _URL_ATTRIBUTES:
            if value.strip().lower().startswith("data:"):
                markup.data_uris.append(value.strip())
                return
            if _SCRIPT_URL.match(value):
                markup.note("HTML contains javascript: links; not executed (their code is scanned)")
                markup.code.append(value)
                return
            if _EXTERNAL_URL.match(value):
                markup.note(f"HTML references external resources (<{tag} {name}=...) fetched if rendered")
            markup.attributes.append(value)
        elif name == "style":
            if _EXTERNAL_URL.search(value):
                markup.note("HTML styles reference external resources that would be fetched if rendered")
            markup.code.append(value)
        elif name in _TEXT_ATTRIBUTES or name.startswith("data-"):
            markup.attributes.append(value)

    def _table_start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            table = _Table()
            self.tables.append(table)
            self._open_tables.append(table)
            return
        if not self._open_tables:
            return
        table = self._open_tables[-1]
        if tag == "thead":
            table.in_head = True
        elif tag in {"tbody", "tfoot"}:
            table.in_head = False
        elif tag == "tr":
            table.rows.append(_Row(head=table.in_head))
            table.cell, table.row_open = None, True
        else:  # td, th
            if not table.row_open:  # a cell without <tr> opens a row, as browsers do
                table.rows.append(_Row(head=table.in_head))
                table.row_open = True
            spans = dict(attrs) if attrs else {}
            table.cell = _Cell(
                header=tag == "th",
                colspan=_span(spans.get("colspan"), MAX_COLSPAN),
                rowspan=_span(spans.get("rowspan"), MAX_ROWSPAN),
            )
            table.rows[-1].cells.append(table.cell)


def _span(value: str | None, limit: int) -> int:
    if value is None:
        return 1
    try:
        return min(max(int(value or "1"), 1), limit)
    except ValueError:
        return 1


def _table_grid(table: _Table, max_cells: int) -> tuple[list[str], list[list[str | None]]]:
    """Header names and rows of ``table``, with row and column spans repeated into every cell they
    cover (pandas writes index levels as row spans). Raises :class:`BombDetected` past ``max_cells``."""
    grid: list[list[str | None]] = []
    heads: list[bool] = []
    pending: dict[int, tuple[str, int]] = {}  # column → (text, further rows it covers)
    cells = 0
    for row in table.rows:
        out: list[str | None] = []

        def take_pending(column: int, out: list[str | None] = out) -> None:
            text, remaining = pending.pop(column)
            if remaining > 1:
                pending[column] = (text, remaining - 1)
            out.append(text)

        for cell in row.cells:
            while len(out) in pending:
                take_pending(len(out))
            text = " ".join("".join(cell.parts).split())
            for _ in range(cell.colspan):
                if cell.rowspan > 1:
                    pending[len(out)] = (text, cell.rowspan - 1)
                out.append(text)
        for column in sorted(c for c in pending if c >= len(out)):
            out.extend([None] * (column - len(out)))
            take_pending(column)
        cells += len(out)
        if cells > max_cells:
            raise BombDetected(f"the HTML tables have more than {max_cells:,} cells")
        grid.append(out)
        heads.append(row.head or (bool(row.cells) and all(cell.header for cell in row.cells)))
    header_count = 0
    while header_count < len(grid) and heads[header_count]:
        header_count += 1
    width = max((len(cells_of_row) for cells_of_row in grid), default=0)
    names = []
    for column in range(width):
        parts: list[str] = []
        for header_row in grid[:header_count]:
            value = header_row[column] if column < len(header_row) else None
            if value and value not in parts:
                parts.append(value)
        names.append(" / ".join(parts) or f"column {column + 1}")
    rows = [data_row + [None] * (width - len(data_row)) for data_row in grid[header_count:]]
    return names, rows


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def read_svg(svg: str) -> Markup:
    """Parse ``svg`` with expat, refusing what could run or expand when it is opened.

    DOCTYPE and ENTITY declarations (entity-expansion bombs, external entities), ``<script>``
    elements, ``on...=`` event handlers and ``javascript:`` URLs raise :class:`ForbiddenFileType`;
    malformed XML or a root other than ``<svg>`` raise :class:`UnreadableFile`.
    """
    if _XML_DECLARATIONS.search(svg):
        raise ForbiddenFileType("the SVG has a DOCTYPE or ENTITY declaration (entity-expansion risk)")
    reader = _SvgReader()
    parser = expat.ParserCreate(encoding="utf-8", namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = reader.refuse_declaration
    parser.EntityDeclHandler = reader.refuse_declaration
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.data
    parser.CommentHandler = reader.markup.comments.append
    parser.ProcessingInstructionHandler = reader.processing_instruction
    try:
        parser.Parse(svg.encode("utf-8"), True)
    except expat.ExpatError as error:
        raise UnreadableFile(f"the SVG is not well-formed XML: {error}") from None
    reader.markup.text = _tidy("".join(reader.text_parts))
    return reader.markup


class _SvgReader:
    def __init__(self) -> None:
        self.markup = Markup()
        self.text_parts: list[str] = []
        self._elements: list[str] = []
        self._style_parts: list[str] = []

    def refuse_declaration(self, *_: object) -> None:
        raise ForbiddenFileType("the SVG has a DOCTYPE or ENTITY declaration (entity-expansion risk)")

    def start(self, name: str, attributes: dict[str, str]) -> None:
        tag = _local(name)
        if not self._elements and tag != "svg":
            raise UnreadableFile(f"the root element is <{tag}>, not <svg>")
        if tag == "script":
            raise ForbiddenFileType("the SVG contains a <script> element")
        if tag in _EMBEDDING_TAGS:
            raise ForbiddenFileType(f"the SVG contains an <{tag}> element that would load other content")
        if tag == "foreignObject":
            self.markup.note("SVG contains <foreignObject> (embedded HTML); its text is scanned")
        self._elements.append(tag)
        if tag not in _SVG_INLINE:
            self.text_parts.append("\n")
        for qualified, value in attributes.items():
            attribute = _local(qualified)
            if attribute.lower().startswith("on"):
                raise ForbiddenFileType(f"the SVG has an event handler attribute ({attribute}=)")
            if _SCRIPT_URL.match(value):
                raise ForbiddenFileType("the SVG contains a javascript: URL")
            if attribute == "href":
                if value.strip().lower().startswith("data:"):
                    self.markup.data_uris.append(value.strip())
                    continue
                if _EXTERNAL_URL.match(value):
                    self.markup.note("SVG references external resources that would be fetched if rendered")
                self.markup.attributes.append(value)
            elif attribute in _SVG_TEXT_ATTRIBUTES:
                self.markup.attributes.append(value)
            elif attribute == "style" and _EXTERNAL_URL.search(value):
                self.markup.note("SVG styles reference external resources that would be fetched if rendered")

    def end(self, name: str) -> None:
        tag = self._elements.pop()
        if tag == "style":
            style = "".join(self._style_parts)
            self._style_parts = []
            self.markup.code.append(style)
            if _EXTERNAL_URL.search(style):
                self.markup.note("SVG styles reference external resources that would be fetched if rendered")
        if tag not in _SVG_INLINE:
            self.text_parts.append("\n")

    def data(self, data: str) -> None:
        if self._elements and self._elements[-1] == "style":
            self._style_parts.append(data)
        else:
            self.text_parts.append(data)

    def processing_instruction(self, target: str, data: str) -> None:
        self.markup.note(f"SVG contains a processing instruction <?{target} ...?>")
        self.markup.comments.append(data)


def _local(name: str) -> str:
    return name.rpartition(" ")[2]
