"""File names that are safe to store, show to a reviewer and hand to a researcher's machine."""

from __future__ import annotations

import unicodedata
from typing import Final

from privacy.files.errors import BadFileName

MAX_NAME_BYTES: Final = 255

# Control, format (bidi overrides, zero-width characters), surrogate, private-use and unassigned code
# points, and line/paragraph separators: all can make a name display differently from what it is.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Scripts with letters that look like Latin ones (Cyrillic a and o, Greek rho as p ...).
_LATIN_CONFUSABLE_SCRIPTS: Final = frozenset({"CYRILLIC", "GREEK"})


def validate_name(name: str) -> str:
    """Return ``name`` unchanged if it is a safe plain file name, else raise :class:`BadFileName`.

    A safe name is one path component (no separators, not ``.``/``..``, no drive or stream colon) of at
    most 255 UTF-8 bytes, free of control and format characters (U+202E and friends), stable under
    NFC and NFKC normalisation (no decomposed, full-width or compatibility characters), not hidden
    (leading dot), without a trailing dot or leading/trailing space, and not mixing Latin letters with
    Cyrillic or Greek ones (look-alikes). Hangul, CJK, Latin letters and digits mix freely.
    """
    if not name:
        raise BadFileName("the file name is empty")
    for char in name:
        category = unicodedata.category(char)
        if category in _FORBIDDEN_CATEGORIES:
            raise BadFileName(
                f"the file name contains the invisible or control character U+{ord(char):04X} "
                f"(category {category})"
            )
    if "/" in name or "\\" in name:
        raise BadFileName("the file name contains a path separator ('/' or '\\'); give a plain name")
    if ":" in name:
        raise BadFileName("the file name contains ':' (a drive letter or alternate data stream on Windows)")
    if name in {".", ".."}:
        raise BadFileName(f"'{name}' is not a file name")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise BadFileName(f"the file name is longer than {MAX_NAME_BYTES} bytes in UTF-8")
    if unicodedata.normalize("NFC", name) != name:
        raise BadFileName("the file name has decomposed characters; save it in composed form (NFC)")
    if unicodedata.normalize("NFKC", name) != name:
        odd = next((char for char in name if unicodedata.normalize("NFKC", char) != char), name[0])
        raise BadFileName(
            f"the file name contains the full-width or compatibility character U+{ord(odd):04X}; "
            "use its plain form"
        )
    if name.startswith("."):
        raise BadFileName("the file name starts with a dot (a hidden file)")
    if name.endswith((".", " ")) or name.startswith(" "):
        raise BadFileName("the file name starts with a space or ends with a dot or space")
    scripts = _letter_scripts(name)
    if "LATIN" in scripts and scripts & _LATIN_CONFUSABLE_SCRIPTS:
        other = " and ".join(sorted(scripts & _LATIN_CONFUSABLE_SCRIPTS)).lower()
        raise BadFileName(f"the file name mixes Latin with {other} letters, which look alike")
    return name


def _letter_scripts(name: str) -> set[str]:
    """The scripts of the letters in ``name``, from the first word of each letter's Unicode name."""
    return {
        unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
        for char in name
        if unicodedata.category(char).startswith("L")
    }
