"""Extraction: a checked file taken apart into the text, tables and images the checks scan."""

from __future__ import annotations

from privacy.files._collector import Collector
from privacy.files._embedded import add_data_uris
from privacy.files._images import add_image
from privacy.files._json_document import add_json
from privacy.files._markup import add_html, add_svg
from privacy.files._notebook import add_notebook
from privacy.files._tables import add_delimited, add_parquet
from privacy.files.errors import ForbiddenFileType
from privacy.files.kinds import FileKind, decode_text, sniff
from privacy.files.limits import Limits
from privacy.files.segments import Extracted


def extract(name: str, data: bytes, kind: FileKind, *, limits: Limits = Limits()) -> Extracted:
    """Take ``data`` apart into segments for the PII, disclosure and provenance checks.

    ``kind`` must be what :func:`sniff` says about ``name`` and ``data`` (checked again here, so no
    caller can skip sniffing). Every byte that leaves with the file is covered by some segment or
    refused: text of every kind is also searched for base64-encoded text (two levels deep), embedded
    images are checked like image files, tables keep every value as the string written.

    Raises :class:`UnreadableFile` for content that cannot be parsed completely,
    :class:`BombDetected` when a limit of ``limits`` would be exceeded, and :class:`ForbiddenFileType`
    for active or uncheckable content (SVG scripts, binary payloads of unknown type, unknown image
    chunks, data after the end of an image).
    """
    actual = sniff(name, data, limits=limits)
    if actual is not kind:
        raise ForbiddenFileType(f"the file was declared as {kind} but its content is {actual}")
    collector = Collector(limits)
    if kind in {FileKind.PNG, FileKind.JPEG}:
        add_image(collector, "", data, kind)
    elif kind is FileKind.PARQUET:
        add_parquet(collector, data)
    else:
        text = decode_text(data)
        if kind in {FileKind.TEXT, FileKind.MARKDOWN}:
            collector.text("", text)
            if kind is FileKind.MARKDOWN:
                add_data_uris(collector, "", [text])
        elif kind in {FileKind.CSV, FileKind.TSV}:
            add_delimited(collector, text, "," if kind is FileKind.CSV else "\t")
        elif kind is FileKind.JSON:
            add_json(collector, text)
        elif kind is FileKind.NOTEBOOK:
            add_notebook(collector, text)
        elif kind is FileKind.HTML:
            add_html(collector, "", text)
        elif kind is FileKind.SVG:
            add_svg(collector, "", text)
    return collector.extracted
