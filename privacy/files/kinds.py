"""What a file really is: its kind, decided by content, with the extension required to agree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from privacy.files._json import load_json
from privacy.files.errors import FileTooLarge, ForbiddenFileType, UnreadableFile
from privacy.files.limits import Limits


class FileKind(StrEnum):
    """The file types the airlock accepts."""

    TEXT = "text"
    MARKDOWN = "markdown"
    CSV = "csv"
    TSV = "tsv"
    JSON = "json"
    NOTEBOOK = "notebook"
    PARQUET = "parquet"
    HTML = "html"
    SVG = "svg"
    PNG = "png"
    JPEG = "jpeg"


#: Accepted extensions (lower case) and the kind each one claims.
EXTENSIONS: Final[Mapping[str, FileKind]] = MappingProxyType(
    {
        ".txt": FileKind.TEXT,
        ".log": FileKind.TEXT,
        ".md": FileKind.MARKDOWN,
        ".csv": FileKind.CSV,
        ".tsv": FileKind.TSV,
        ".json": FileKind.JSON,
        ".ipynb": FileKind.NOTEBOOK,
        ".parquet": FileKind.PARQUET,
        ".html": FileKind.HTML,
        ".htm": FileKind.HTML,
        ".svg": FileKind.SVG,
        ".png": FileKind.PNG,
        ".jpg": FileKind.JPEG,
        ".jpeg": FileKind.JPEG,
    }
)

#: Kinds whose content is UTF-8 text.
TEXT_KINDS: Final = frozenset(
    {
        FileKind.TEXT,
        FileKind.MARKDOWN,
        FileKind.CSV,
        FileKind.TSV,
        FileKind.JSON,
        FileKind.NOTEBOOK,
        FileKind.HTML,
        FileKind.SVG,
    }
)

UTF8_BOM: Final = b"\xef\xbb\xbf"
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE: Final = b"\xff\xd8\xff"
PARQUET_MAGIC: Final = b"PAR1"

_ZIP = "a ZIP archive (this includes .docx, .xlsx, .pptx, .odt, .jar and .whl files)"
_EXECUTABLE = "a Mach-O executable or Java class file"

# Matched at the start of the file. Some types never reach the text check (they are refused even where
# they would decode as UTF-8: a shebang script, a PDF with leading bytes); the rest get a precise name
# instead of "binary data".
_FORBIDDEN_SIGNATURES: Final[tuple[tuple[re.Pattern[bytes], str], ...]] = tuple(
    (re.compile(pattern, re.DOTALL), description)
    for pattern, description in (
        (rb"PK(?:\x03\x04|\x05\x06|\x07\x08)", _ZIP),
        (rb"\x1f\x8b", "gzip-compressed data"),
        (rb"\x1f[\x9d\xa0]", "compress/LZH-compressed data"),
        (rb"BZh[1-9](?:1AY&SY|\x17rE8P\x90)", "bzip2-compressed data"),
        (rb"\xfd7zXZ\x00", "xz-compressed data"),
        (rb"\x28\xb5\x2f\xfd", "zstd-compressed data"),
        (rb"\x04\x22\x4d\x18", "LZ4-compressed data"),
        (rb"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (rb"Rar!\x1a\x07", "a RAR archive"),
        (rb"MSCF\x00\x00\x00\x00", "a Microsoft Cabinet archive"),
        (rb"!<arch>\n", "an ar archive (.deb, static library)"),
        (rb"\xed\xab\xee\xdb", "an RPM package"),
        (rb".{257}ustar", "a tar archive"),
        (rb".{0,1019}%PDF-", "a PDF document"),
        (rb"\x7fELF", "an ELF executable or library"),
        (rb"MZ.{0,62}\x00", "a Windows (PE/MZ) executable"),
        (rb"\xfe\xed\xfa[\xce\xcf]|[\xce\xcf]\xfa\xed\xfe|\xca\xfe\xba\xbe", _EXECUTABLE),
        (rb"\x00asm", "a WebAssembly module"),
        (rb"(?:\xef\xbb\xbf)?#!", "an executable script (starts with '#!')"),
        (rb"\x80[\x02-\x05]", "a Python pickle"),
        (rb"\xac\xed\x00\x05", "a serialized Java object"),
        (rb"\x93NUMPY", "a NumPy array file"),
        (rb"\x89HDF\r\n\x1a\n", "an HDF5 file"),
        (rb"SQLite format 3\x00", "an SQLite database"),
        (rb"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 compound document (.doc, .xls, .msg)"),
        (rb"ARROW1", "an Arrow IPC/Feather file"),
        (rb"Obj\x01", "an Avro data file"),
        (rb"RDX[23]\n", "an R data file"),
        (rb"PARE", "an encrypted Parquet file"),
        (rb"GIF8[79]a", "a GIF image (only PNG and JPEG images are accepted)"),
        (rb"II\x2a\x00|MM\x00\x2a", "a TIFF image (only PNG and JPEG images are accepted)"),
        (rb"RIFF.{4}WEBP", "a WebP image (only PNG and JPEG images are accepted)"),
        (rb".{4}ftyp", "an MP4/QuickTime/HEIF media file"),
    )
)
_SIGNATURE_WINDOW: Final = 1024
_UTF16_BOMS: Final = (b"\xff\xfe", b"\xfe\xff")
# In undecodable data, more than this share of control bytes means binary rather than legacy-encoded text.
_BINARY_CONTROL_SHARE: Final = 0.005
_CONTROL_BYTES: Final = re.compile(rb"[\x01-\x08\x0e-\x1a\x1c-\x1f\x7f]")
_SVG_ROOT: Final = re.compile(r"<svg[\s/>]")


def sniff(name: str, data: bytes, *, limits: Limits = Limits()) -> FileKind:
    """Return the kind of ``data``, decided by its content; the extension of ``name`` must agree.

    Raises :class:`FileTooLarge` beyond ``limits.max_file_bytes``; :class:`ForbiddenFileType` (naming
    what the content really is) for archives, compressed data, executables, scripts, pickles,
    databases, PDFs, other binary data, unknown extensions and extensions that do not match the content;
    :class:`UnreadableFile` for text that is not UTF-8 (a UTF-8 byte order mark is fine) and for
    notebooks that are not valid JSON. The name itself is checked by :func:`validate_name`.
    """
    if len(data) > limits.max_file_bytes:
        raise FileTooLarge(f"the file has {len(data):,} bytes; the limit is {limits.max_file_bytes:,}")
    head = data[:_SIGNATURE_WINDOW]
    for pattern, description in _FORBIDDEN_SIGNATURES:
        if pattern.match(head):
            raise ForbiddenFileType(f"the content is {description}, which the airlock does not accept")
    if data.startswith(_UTF16_BOMS):
        raise UnreadableFile("the file is UTF-16 or UTF-32 text; save it as UTF-8")
    extension = _extension(name)
    claimed = EXTENSIONS.get(extension)
    if claimed is None:
        accepted = " ".join(sorted(EXTENSIONS))
        shown = f"'{extension}'" if extension else "no extension"
        raise ForbiddenFileType(f"the name has {shown}; accepted extensions are {accepted}")
    binary_kind = _binary_kind(data, claimed)
    if binary_kind is not None:
        if binary_kind is not claimed:
            raise ForbiddenFileType(
                f"the content is a {binary_kind.name} file but the name ends in '{extension}'"
            )
        return binary_kind
    text = decode_text(data)
    if claimed not in TEXT_KINDS:
        raise ForbiddenFileType(f"the content is text, not a {claimed.name} file as '{extension}' claims")
    if claimed is FileKind.NOTEBOOK:
        document = load_json(text, max_depth=limits.max_json_depth)
        if not (isinstance(document, dict) and "cells" in document and "nbformat" in document):
            raise ForbiddenFileType(
                "the content is a Jupyter file that is not a notebook (JSON with 'cells' and 'nbformat')"
            )
    if claimed is FileKind.SVG and not _SVG_ROOT.search(text):
        raise ForbiddenFileType("the content has no <svg> element, so it is not an SVG image")
    return claimed


def decode_text(data: bytes) -> str:
    """``data`` decoded as UTF-8 (without a byte order mark), or refused.

    Data with NUL bytes, or undecodable data with many control bytes, is binary
    (:class:`ForbiddenFileType`); other undecodable data is text in a legacy encoding
    (:class:`UnreadableFile`).
    """
    body = data.removeprefix(UTF8_BOM)
    if b"\x00" in body:
        raise ForbiddenFileType("the content is binary data (it contains NUL bytes), not text")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        sample = body[:65536]
        if len(_CONTROL_BYTES.findall(sample)) > _BINARY_CONTROL_SHARE * len(sample):
            raise ForbiddenFileType("the content is binary data, not UTF-8 text") from None
        raise UnreadableFile(
            f"the text is not valid UTF-8 (at byte {error.start + len(data) - len(body)}); save it as "
            "UTF-8 — legacy encodings such as CP949/EUC-KR or Latin-1 are not accepted"
        ) from None


def _extension(name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f".{suffix.lower()}" if dot and stem else ""


def _binary_kind(data: bytes, claimed: FileKind) -> FileKind | None:
    if data.startswith(PNG_SIGNATURE):
        return FileKind.PNG
    if data.startswith(JPEG_SIGNATURE):
        return FileKind.JPEG
    if data.startswith(PARQUET_MAGIC):
        if len(data) < 12 or not data.endswith(PARQUET_MAGIC):
            if claimed is FileKind.PARQUET:
                raise UnreadableFile("the Parquet file is truncated (it has no footer)")
            raise ForbiddenFileType("the content is a truncated Parquet file")
        return FileKind.PARQUET
    return None
