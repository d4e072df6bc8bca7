"""PNG and JPEG checks: structure walked by hand, size checked before decoding, then a full decode."""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

from PIL import Image, UnidentifiedImageError

from privacy.files._collector import Collector, sublocation
from privacy.files.errors import BombDetected, ForbiddenFileType, UnreadableFile
from privacy.files.kinds import JPEG_SIGNATURE, PNG_SIGNATURE, FileKind

#: Largest decompressed PNG text chunk (Pillow's own bound, ``PngImagePlugin.MAX_TEXT_CHUNK``).
MAX_TEXT_CHUNK: Final = 1024 * 1024

# Chunks of the PNG-3 specification for still images, plus Apple's iDOT (macOS screenshots). Any other
# chunk could carry arbitrary bytes that nothing here can check.
_PNG_CHUNKS: Final = frozenset(
    {
        b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"cHRM", b"gAMA", b"iCCP", b"sBIT", b"sRGB",
        b"cICP", b"mDCv", b"cLLI", b"tEXt", b"zTXt", b"iTXt", b"bKGD", b"hIST", b"pHYs", b"sPLT",
        b"eXIf", b"tIME", b"iDOT",
    }
)  # fmt: skip
# Animation chunks (APNG): OCR and review see only the first frame, so the others could hide content.
_APNG_CHUNKS: Final = frozenset({b"acTL", b"fcTL", b"fdAT"})
# JFIF, Exif/XMP, ICC profile, Adobe colour transform; other application segments (IPTC, vendor data)
# carry content nothing here reads.
_JPEG_APP_SEGMENTS: Final = frozenset({0xE0, 0xE1, 0xE2, 0xEE})
_JPEG_SOF: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE: Final = frozenset({0x01, *range(0xD0, 0xD8)})
_JPEG_SOS, _JPEG_EOI, _JPEG_COM = 0xDA, 0xD9, 0xFE
# The next marker after entropy-coded data: 0xFF not followed by a stuffed zero, a restart marker or fill.
_JPEG_NEXT_MARKER: Final = re.compile(rb"\xff+[^\x00\xd0-\xd7\xff]")
_XMP_PREFIX: Final = b"http://ns.adobe.com/xap/1.0/\x00"
_GPS_IFD: Final = 0x8825
# Windows' XPTitle, XPComment, XPAuthor, XPKeywords and XPSubject hold UTF-16 text.
_EXIF_UTF16_TAGS: Final = frozenset(range(0x9C9B, 0x9CA0))
_EXIF_POINTER_TAGS: Final = {0x8769: "Exif", _GPS_IFD: "GPS", 0xA005: "Interoperability"}


@dataclass(slots=True)
class _Layout:
    """What the structure walk found: pixel size and metadata texts by label."""

    width: int = 0
    height: int = 0
    metadata: list[tuple[str, str]] = field(default_factory=list)


def add_image(collector: Collector, location: str, data: bytes, kind: FileKind) -> None:
    """Check a PNG or JPEG and add it, and the text of its metadata, to ``collector``.

    Refuses trailing data after the image end and unknown chunks/segments (:class:`ForbiddenFileType`),
    more pixels than ``max_image_pixels`` before decoding anything (:class:`BombDetected`), and images
    that do not decode completely (:class:`UnreadableFile`).
    """
    if kind is FileKind.PNG:
        layout = _walk_png(data, collector)
    elif kind is FileKind.JPEG:
        layout = _walk_jpeg(data)
    else:
        raise ForbiddenFileType(f"{kind} is not an image kind")
    if layout.width <= 0 or layout.height <= 0:
        raise UnreadableFile("the image declares no size")
    if layout.width * layout.height > collector.limits.max_image_pixels:
        raise BombDetected(
            f"the image declares {layout.width}x{layout.height} pixels; the limit is "
            f"{collector.limits.max_image_pixels:,} pixels"
        )
    exif_texts = _decode(data, kind, collector)
    collector.image(location, data, kind)
    for label, text in [*layout.metadata, *exif_texts]:
        collector.text(sublocation(location, f"metadata {label}"), text)
    if layout.metadata or exif_texts:
        collector.note("an image carries text metadata; it was extracted for checking")


def _decode(data: bytes, kind: FileKind, collector: Collector) -> list[tuple[str, str]]:
    """Verify and fully decode the image with Pillow; return the text values of its EXIF tags."""
    image_format = "PNG" if kind is FileKind.PNG else "JPEG"
    with pillow_errors(image_format) as caught:
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            image.verify()
        with Image.open(io.BytesIO(data), formats=[image_format]) as image:
            image.load()
            exif = image.getexif()
            exif_texts = _exif_texts(exif)
            if exif.get_ifd(_GPS_IFD):
                collector.note("an image carries GPS location data in its EXIF metadata")
    for warning in caught:
        collector.note(f"the image decoder warned: {warning.message}")
    return exif_texts


@contextmanager
def pillow_errors(image_format: str) -> Iterator[list[warnings.WarningMessage]]:
    """Run Pillow code with its errors mapped to refusals: decompression bombs (error or warning) to
    :class:`BombDetected`, corrupt data to :class:`UnreadableFile`. Yields the list of other warnings
    raised, recorded rather than raised (Pillow warns about odd metadata)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # Raised where Pillow warns, before it decodes anything.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield caught
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BombDetected(f"the image decoder flagged a decompression bomb: {error}") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, UnidentifiedImageError) as error:
            raise UnreadableFile(f"the {image_format} image is corrupt or truncated: {error}") from None


def _exif_texts(exif: Image.Exif) -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    directories: list[tuple[str, dict[int, object]]] = [("EXIF", dict(exif))]
    directories += [(f"EXIF {name}", dict(exif.get_ifd(tag))) for tag, name in _EXIF_POINTER_TAGS.items()]
    for label, tags in directories:
        for tag, value in tags.items():
            if isinstance(value, bytes):
                encoding = "utf-16-le" if tag in _EXIF_UTF16_TAGS else "utf-8"
                value = value.decode(encoding, "replace").replace("\x00", " ")
            if isinstance(value, str) and value.strip():
                texts.append((f"{label} tag {tag:#06x}", value))
    return texts


def _walk_png(data: bytes, collector: Collector) -> _Layout:
    layout = _Layout()
    position = len(PNG_SIGNATURE)
    first = True
    while True:
        if position + 12 > len(data):
            raise UnreadableFile("the PNG image is truncated (it has no IEND chunk)")
        length, chunk_type = struct.unpack_from(">I4s", data, position)
        body_start = position + 8
        position = body_start + length + 4
        if position > len(data):
            raise UnreadableFile("the PNG image is truncated inside a chunk")
        body = data[body_start : body_start + length]
        if first != (chunk_type == b"IHDR"):
            raise UnreadableFile("the PNG image does not start with an IHDR chunk")
        first = False
        if chunk_type in _APNG_CHUNKS:
            raise ForbiddenFileType("the PNG image is animated (APNG); only still images can be checked")
        if chunk_type not in _PNG_CHUNKS:
            name = chunk_type.decode("latin-1")
            raise ForbiddenFileType(f"the PNG image has an unknown chunk {name!r} that cannot be checked")
        if chunk_type == b"IHDR":
            if length != 13:
                raise UnreadableFile("the PNG image has a malformed IHDR chunk")
            layout.width, layout.height = struct.unpack_from(">II", body)
        elif chunk_type in {b"tEXt", b"zTXt", b"iTXt"}:
            layout.metadata.append(_png_text(chunk_type, body, collector))
        elif chunk_type == b"IEND":
            if position != len(data):
                raise ForbiddenFileType(
                    f"the PNG image has {len(data) - position:,} bytes after its end (IEND), which could "
                    "hide another file"
                )
            return layout


def _png_text(chunk_type: bytes, body: bytes, collector: Collector) -> tuple[str, str]:
    keyword, _, rest = body.partition(b"\x00")
    label = repr(keyword.decode("latin-1"))
    if chunk_type == b"tEXt":
        return label, rest.decode("latin-1")
    if chunk_type == b"zTXt":
        return label, _inflate_text(rest[1:], collector).decode("latin-1")
    if len(rest) < 2:
        raise UnreadableFile("the PNG image has a malformed iTXt chunk")
    compressed = rest[0] == 1
    _language, _, rest = rest[2:].partition(b"\x00")
    translated, _, text = rest.partition(b"\x00")
    raw = _inflate_text(text, collector) if compressed else text
    try:
        return label, "\n".join(filter(None, (translated.decode("utf-8"), raw.decode("utf-8"))))
    except UnicodeDecodeError:
        raise UnreadableFile("the PNG image has an iTXt chunk that is not UTF-8") from None


def _inflate_text(compressed: bytes, collector: Collector) -> bytes:
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, MAX_TEXT_CHUNK)
    except zlib.error:
        raise UnreadableFile("the PNG image has a corrupt compressed text chunk") from None
    if inflater.unconsumed_tail:
        raise BombDetected(f"a compressed PNG text chunk expands beyond {MAX_TEXT_CHUNK:,} bytes")
    collector.charge(len(text))
    return text


def _walk_jpeg(data: bytes) -> _Layout:
    layout = _Layout()
    position = len(JPEG_SIGNATURE) - 1  # the 0xFF of the first marker after SOI
    while True:
        if position + 2 > len(data) or data[position] != 0xFF:
            raise UnreadableFile("the JPEG image is truncated or has a malformed marker")
        while position + 1 < len(data) and data[position + 1] == 0xFF:  # fill bytes
            position += 1
        if position + 2 > len(data):
            raise UnreadableFile("the JPEG image is truncated")
        marker = data[position + 1]
        position += 2
        if marker == _JPEG_EOI:
            if position != len(data):
                raise ForbiddenFileType(
                    f"the JPEG image has {len(data) - position:,} bytes after its end (EOI), which could "
                    "hide another file"
                )
            return layout
        if marker in _JPEG_STANDALONE:
            continue
        if position + 2 > len(data):
            raise UnreadableFile("the JPEG image is truncated")
        (length,) = struct.unpack_from(">H", data, position)
        body = data[position + 2 : position + length]
        if length < 2 or len(body) != length - 2:
            raise UnreadableFile("the JPEG image is truncated inside a segment")
        position += length
        if marker in _JPEG_SOF and len(body) >= 5:
            layout.height, layout.width = struct.unpack_from(">HH", body, 1)
        elif marker == _JPEG_COM:
            layout.metadata.append(("comment", body.decode("utf-8", "replace")))
        elif 0xE0 <= marker <= 0xEF:
            if marker not in _JPEG_APP_SEGMENTS:
                raise ForbiddenFileType(
                    f"the JPEG image has an APP{marker - 0xE0} segment that cannot be checked; save it "
                    "without extra metadata"
                )
            if marker == 0xE1 and body.startswith(_XMP_PREFIX):
                layout.metadata.append(("XMP", body[len(_XMP_PREFIX) :].decode("utf-8", "replace")))
        elif marker == _JPEG_SOS:
            following = _JPEG_NEXT_MARKER.search(data, position)
            if following is None:
                raise UnreadableFile("the JPEG image is truncated (it has no EOI marker)")
            position = following.end() - 2
