"""Payloads embedded in other files: ``data:`` URIs and notebook MIME bundles."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from privacy.files._base64 import data_uris
from privacy.files._collector import Collector, sublocation
from privacy.files._images import add_image
from privacy.files.errors import ForbiddenFileType, UnreadableFile
from privacy.files.kinds import JPEG_SIGNATURE, PNG_SIGNATURE, FileKind

IMAGE_TYPES: Final = {"image/png": FileKind.PNG, "image/jpeg": FileKind.JPEG, "image/jpg": FileKind.JPEG}
_TEXT_TYPES: Final = frozenset(
    {"image/svg+xml", "application/json", "application/javascript", "application/xml"}
)


def is_text_type(mime: str) -> bool:
    """Whether content of media type ``mime`` is text to scan as it is."""
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


def add_payload(collector: Collector, location: str, mime: str, data: bytes) -> None:
    """Add decoded bytes declared as ``mime``: PNG/JPEG as checked images, anything that is UTF-8 text
    as text. Other binary data cannot be checked and raises :class:`ForbiddenFileType`."""
    kind = IMAGE_TYPES.get(mime)
    if kind is not None:
        signature = PNG_SIGNATURE if kind is FileKind.PNG else JPEG_SIGNATURE
        if not data.startswith(signature):
            raise ForbiddenFileType(f"{location} is declared as {mime} but is not a {kind.name} image")
        add_image(collector, location, data, kind)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if is_text_type(mime):
            raise UnreadableFile(f"{location} is declared as {mime} but is not UTF-8 text") from None
        raise ForbiddenFileType(
            f"{location} holds binary {mime} data, which cannot be checked (only PNG and JPEG images are)"
        ) from None
    collector.text(location, text)


def add_data_uris(collector: Collector, location: str, texts: Iterable[str]) -> None:
    """Add the payload of every ``data:`` URI in ``texts``, numbered in order (see :func:`add_payload`)."""
    uris = (uri for text in texts for uri in data_uris(text))
    try:
        for number, uri in enumerate(uris, start=1):
            add_payload(
                collector, sublocation(location, f"data URI {number} ({uri.mime})"), uri.mime, uri.data
            )
    except ValueError as error:
        raise UnreadableFile(f"{location} has a data: URI whose payload cannot be decoded: {error}") from None
