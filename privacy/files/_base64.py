"""Finding text hidden in base64 runs and ``data:`` URIs."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

#: Shortest base64 run (without line breaks) worth decoding.
MIN_RUN: Final = 24

# A run of 24+ characters of the standard or URL-safe alphabet, optionally continued on further lines
# (MIME and notebooks wrap base64 at 76 characters).
_RUN: Final = re.compile(
    r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{24,}={0,2}(?:\r?\n[A-Za-z0-9+/_-]+={0,2})*(?![A-Za-z0-9+/=_-])"
)
#: Cheap filter (no look-around) for table cells that may hold a run.
RUN_CANDIDATE: Final = r"[A-Za-z0-9+/_-]{24}"
_LINE_BREAK: Final = re.compile(r"\r?\n")
_WHITESPACE: Final = re.compile(r"\s+")
# data:[<type>][;<parameter>=<value>]*[;base64],<payload>; base64 payloads may be wrapped over lines.
_DATA_URI: Final = re.compile(
    r"(?<![A-Za-z0-9])data:(?P<mime>[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)(?:;[A-Za-z0-9.+-]+=[^;,\s\"')]*)*"
    r"(?:;base64,(?P<base64>[A-Za-z0-9+/=%\s]*)|,(?P<payload>[A-Za-z0-9+/=%._~!$&*:@-]*))",
    re.IGNORECASE,
)


def decoded_texts(text: str) -> Iterator[str]:
    """Yield the printable UTF-8 text encoded in each base64 run of ``text`` (runs that decode to
    binary or to nothing readable are skipped). A run wrapped over several lines counts as one."""
    for match in _RUN.finditer(text):
        lines = _LINE_BREAK.split(match.group())
        joined = decode_base64_text("".join(lines)) if len(lines) > 1 else None
        if joined is not None:
            yield joined
            continue
        for line in lines:
            if len(line) >= MIN_RUN:
                decoded = decode_base64_text(line)
                if decoded is not None:
                    yield decoded


def decode_base64_text(run: str) -> str | None:
    """The printable UTF-8 text that ``run`` (standard or URL-safe base64, padded or not) encodes,
    else ``None``."""
    urlsafe = "-" in run or "_" in run
    if urlsafe and ("+" in run or "/" in run):
        return None
    if "=" in run:
        if len(run) % 4:
            return None
    elif len(run) % 4 == 1:
        return None
    padded = run + "=" * (-len(run) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_" if urlsafe else None, validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not decoded.strip() or not all(char.isprintable() or char in "\t\n\r" for char in decoded):
        return None
    return decoded


def decode_base64_payload(payload: str) -> bytes:
    """The bytes of a base64 payload that may be wrapped over lines; raises :class:`ValueError`."""
    try:
        return base64.b64decode(_WHITESPACE.sub("", payload), validate=True)
    except binascii.Error as error:
        raise ValueError(f"invalid base64: {error}") from None


@dataclass(frozen=True, slots=True)
class DataUri:
    """One ``data:`` URI: its media type (lower case) and its decoded bytes."""

    mime: str
    data: bytes


def data_uris(text: str) -> Iterator[DataUri]:
    """Yield every ``data:`` URI in ``text``, decoded; raises :class:`ValueError` on a bad payload."""
    for match in _DATA_URI.finditer(text):
        mime = match.group("mime").lower()
        encoded = match.group("base64")
        if encoded is not None:
            encoded = unquote_to_bytes(encoded).decode("ascii", "replace").rstrip()
            try:
                yield DataUri(mime, decode_base64_payload(encoded))
            except ValueError:
                # Unwrapped payloads end at the first space: the run may have taken in the next word.
                yield DataUri(mime, decode_base64_payload(encoded.split(maxsplit=1)[0] if encoded else ""))
        else:
            yield DataUri(mime, unquote_to_bytes(match.group("payload")))
