"""Text normalisation that keeps track of where every character came from.

Identifiers hide behind compatibility forms (full-width digits, ideographic spaces,
decomposed Hangul from macOS). The scanner matches on the NFKC form of a text and reports offsets in
the original: :class:`NormalizedText` holds both and maps spans back.

The regex fragments below are shared by the recognizers' patterns. They are written for both Python's
``re`` (the scanner's fast path, on NFKC text) and the ``regex`` module (Presidio, on original text),
so they also list the separators NFKC would have folded.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

#: Hyphen look-alikes: hyphen-minus, U+2010..U+2015 (hyphen, non-breaking hyphen, figure dash, en and
#: em dash, horizontal bar), minus sign, small and full-width hyphen-minus.
DASH_CHARACTERS: Final = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
#: Horizontal spaces (no line breaks: an identifier never spans lines).
SPACE_CHARACTERS: Final = " \t\u00a0\u2007\u202f\u3000"
#: The same as regex character-class bodies.
DASHES: Final = re.escape(DASH_CHARACTERS)
SPACES: Final = re.escape(SPACE_CHARACTERS)
#: Between two digit groups: one dash or dot with optional spaces around it, or 1-3 spaces (patterns
#: add ``?`` where the groups may also be written together).
GROUP_SEPARATOR: Final = rf"(?:[{SPACES}]*[{DASHES}.][{SPACES}]*|[{SPACES}]{{1,3}})"
#: Between two digit groups written one spaced digit at a time (``9 0 0 1 0 1 - 1 2 ...``).
SPACED_GROUP_SEPARATOR: Final = rf"(?:[{SPACES}]?[{DASHES}.][{SPACES}]?|[{SPACES}])"

#: Every character in one of the Unicode Hangul jamo blocks that attaches to the syllable before it
#: when composed (medial vowels and final consonants): a decomposed syllable is one cluster.
_CONJOINING_JAMO: Final = re.compile(r"[\u1160-\u11ff\ud7b0-\ud7ff]")
_NOT_ASCII_DIGITS: Final = re.compile(r"[^0-9]+")
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
#: NFKC of the full-width ASCII forms and of the spaces NFKC turns into one space, as a translation
#: table: each maps to exactly one character.
_ONE_FOR_ONE: Final = {
    code: unicodedata.normalize("NFKC", chr(code))
    for code in (*range(0xFF01, 0xFF5F), 0x00A0, 0x2007, 0x202F, 0x3000)
}


def digits_of(text: str) -> str:
    """Return the ASCII digits of ``text`` after NFKC (full-width digits count), in order.

    >>> digits_of("\uff19\uff10\uff10\uff11\uff10\uff11\uff0d1234568")  # full-width 900101-
    '9001011234568'
    """
    return _NOT_ASCII_DIGITS.sub("", text if text.isascii() else unicodedata.normalize("NFKC", text))


@dataclass(frozen=True, slots=True)
class NormalizedText:
    """A text and its NFKC form, with the map from NFKC offsets back to the original.

    The map is piecewise: ``segments`` holds ``(normalized_start, original_start, normalized_length,
    original_length)``; segments of equal lengths map character by character, the others (a
    composed or expanded cluster) map as a whole.
    """

    original: str
    text: str
    segments: tuple[tuple[int, int, int, int], ...]

    @classmethod
    def of(cls, original: str) -> NormalizedText:
        """Normalise ``original``; cheap for ASCII or already-normalised text (one C-level check).

        Lone surrogates (undecodable bytes smuggled through JSON) become U+FFFD, one for one, so that
        the text can be encoded and searched.
        """
        if original.isascii():
            return cls(original, original, ((0, 0, len(original), len(original)),))
        text = _LONE_SURROGATE.sub("\ufffd", original) if _has_lone_surrogates(original) else original
        if unicodedata.is_normalized("NFKC", text):
            return cls(original, text, ((0, 0, len(original), len(original)),))
        pieces: list[str] = []
        segments: list[tuple[int, int, int, int]] = []
        normalized_at = original_at = 0

        def add(piece: str, original_length: int) -> None:
            nonlocal normalized_at, original_at
            if len(piece) == original_length and segments and segments[-1][2] == segments[-1][3]:
                # One character for one: extend the running one-to-one segment.
                n_start, o_start, n_len, _ = segments[-1]
                segments[-1] = (n_start, o_start, n_len + len(piece), n_len + len(piece))
            else:
                segments.append((normalized_at, original_at, len(piece), original_length))
            pieces.append(piece)
            normalized_at += len(piece)
            original_at += original_length

        for line in text.splitlines(keepends=True):
            if not unicodedata.is_normalized("NFKC", line):
                # Full-width forms and odd spaces, the usual disguise, fold one for one at C speed.
                folded = line.translate(_ONE_FOR_ONE)
                if not unicodedata.is_normalized("NFKC", folded):
                    for cluster in _clusters(line):
                        add(unicodedata.normalize("NFKC", cluster), len(cluster))
                    continue
                line = folded
            add(line, len(line))
        return cls(original, "".join(pieces), tuple(segments))

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the span ``[start, end)`` of :attr:`text` to the span of :attr:`original` it came from."""
        if len(self.segments) == 1 and self.segments[0][2] == self.segments[0][3]:
            return start, end
        return self._original_start(start), self._original_end(end)

    def _segment(self, index: int) -> tuple[int, int, int, int]:
        position = bisect.bisect_right(self.segments, (index, len(self.original) + 1)) - 1
        return self.segments[max(position, 0)]

    def _original_start(self, index: int) -> int:
        if index >= len(self.text):
            return len(self.original)
        n_start, o_start, n_len, o_len = self._segment(index)
        return o_start + (index - n_start) if n_len == o_len else o_start

    def _original_end(self, index: int) -> int:
        if index <= 0:
            return 0
        n_start, o_start, n_len, o_len = self._segment(index - 1)
        return o_start + (index - n_start) if n_len == o_len else o_start + o_len


def _has_lone_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clusters(line: str) -> list[str]:
    """Split ``line`` into a base character and whatever combines with it (NFKC works per cluster)."""
    clusters: list[str] = []
    for ch in line:
        if clusters and (unicodedata.combining(ch) or _CONJOINING_JAMO.match(ch)):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    return clusters
