"""The dataset-aware deny-list: the direct identifiers of the requester's granted datasets, found in outputs.

Patterns catch what looks like an identifier; the deny-list catches the identifiers that *are* in
the data, whatever they look like: a patient's name in Hangul or in Latin letters, an RRN written
with full-width digits, a phone number with ``+82``.

Values and texts are normalised alike (NFKC, lower case, without spaces, hyphens and dashes, dots,
middle dots and underscores) and matched with one Aho-Corasick automaton; a match counts when it
stands as a word in the original text (a Hangul name may carry a particle such as 가, 는, 의, 님).
Latin spellings of Hangul names are matched through the romanised given name, then a spelling of
the family name right before it (also with a comma: "Kim, Minjun") or after it (one automaton entry
per given name, not per spelling).
The values live only in this object's memory: never logged, never written, absent from ``repr``.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import operator
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, NoReturn

import ahocorasick
import numpy as np

from privacy.pii.normalize import DASH_CHARACTERS, SPACE_CHARACTERS, NormalizedText
from privacy.pii.romanize import family_spellings, is_hangul_syllables, name_readings

#: What values and texts lose before matching. Line breaks stay: a value never spans lines.
_DROPPED_CHARACTERS: Final = SPACE_CHARACTERS + DASH_CHARACTERS + "._\u00b7\u2027\u30fb\u318d\u119e"
_DROPPED: Final = re.compile(f"[{re.escape(_DROPPED_CHARACTERS)}]+")
_DROPPED_CODES: Final = np.array([ord(ch) for ch in _DROPPED_CHARACTERS], dtype=np.uint32)
#: Kinds whose Hangul values are personal names, which are also looked for in Latin spellings.
_NAME_KIND: Final = re.compile(r"name|이름|성명|환자명", re.IGNORECASE)
_NOT_SYLLABLES: Final = re.compile(r"[^\uac00-\ud7a3]+")
#: Shorter values would match ordinary words and numbers.
MIN_HANGUL_SYLLABLES: Final = 2
MIN_OTHER_CHARACTERS: Final = 4
#: Digit-only values shorter than this would match counts, years and lab values.
MIN_DIGITS: Final = 6
_MAX_LENGTH: Final = 255
#: A listed phone number: trunk 0 or +82 (not bare 82: an RRN may start so), area code, 7-8
#: digits; group 1 is the number without trunk 0. Looser than the recognizer: a listed value needs
#: no plausibility check.
_PHONE_VALUE: Final = re.compile(r"(?:\+82(?:\(0\))?0?|0)((?:1[016-9]|2|[3-6][1-5]|70)[0-9]{7,8})")
#: A phone number is listed without its trunk 0; a match extends over whichever of these precedes it.
_PHONE_PREFIXES: Final = ("+82(0)", "82(0)", "+820", "+82", "820", "82", "0")

#: What may follow a Hangul name inside the same word: particles, titles, and titles with particles.
_PARTICLES: Final = frozenset(
    (
        "이",
        "가",
        "은",
        "는",
        "을",
        "를",
        "의",
        "에",
        "에게",
        "에게서",
        "께",
        "께서",
        "한테",
        "한테서",
        "와",
        "과",
        "랑",
        "이랑",
        "하고",
        "도",
        "만",
        "로",
        "으로",
        "이나",
        "나",
        "이며",
        "며",
        "이고",
        "고",
        "이다",
        "다",
        "이에요",
        "예요",
        "이야",
        "야",
        "입니다",
        "이지만",
        "처럼",
        "보다",
        "부터",
        "까지",
        "조차",
        "마저",
        "밖에",
        "에서",
        "이라고",
        "라고",
        "이라는",
        "라는",
        "이란",
        "란",
        "이요",
        "요",
    )
)
_TITLES: Final = ("님", "씨", "군", "양", "환자", "선생", "선생님", "교수", "교수님", "박사", "원장", "과장")
_NAME_SUFFIXES: Final = _PARTICLES | {title + particle for title in _TITLES for particle in (*_PARTICLES, "")}


@dataclass(frozen=True, slots=True)
class DenyListHit:
    """A deny-listed value found at ``[start, end)`` of the original text; ``kinds`` are the keys
    (``name``, ``rrn``, a column name...) the value was listed under."""

    start: int
    end: int
    kinds: tuple[str, ...]


def fold(text: str) -> str:
    """Lower-case ``text`` character for character (unlike ``casefold``, never changes its length)."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    return "".join(ch if len(low := ch.lower()) != 1 else low for ch in text)


def normalize_value(value: str) -> str:
    """The matching form of a value: NFKC, folded, without the dropped separators.

    >>> normalize_value("Kim Min-jun"), normalize_value("900101 \u2013 1234568")
    ('kimminjun', '9001011234568')
    """
    return _DROPPED.sub("", fold(unicodedata.normalize("NFKC", value)))


def _normalize_all(values: Iterable[str]) -> list[str]:
    """:func:`normalize_value` of each non-empty value, in a few C-level passes over all of them."""
    present = [value for value in values if value]
    joined = "\x00".join(present)
    if joined.count("\x00") != max(len(present) - 1, 0):  # a value holds the joiner itself
        return [normalize_value(value) for value in present]
    return normalize_value(joined).split("\x00") if present else []


def _long_enough(normalized: str) -> bool:
    """Whether a normalised value is specific enough to list (see :meth:`DenyList.build`); every
    value of :data:`MIN_DIGITS` or more characters is."""
    if len(normalized) >= MIN_OTHER_CHARACTERS:
        return not normalized.isdigit() or len(normalized) >= MIN_DIGITS
    return len(_NOT_SYLLABLES.sub("", normalized)) >= MIN_HANGUL_SYLLABLES


class DenyList:
    """An immutable set of normalised identifier values, searchable in texts.

    Build it with :meth:`build`; :attr:`fingerprint` identifies its content for caches.
    """

    __slots__ = (
        "_automaton",
        "_fingerprint",
        "_given_names",
        "_labels",
        "_listed",
        "_phones",
        "kinds",
        "size",
    )

    def __init__(
        self,
        automaton: ahocorasick.Automaton | None,
        labels: list[tuple[str, ...]],
        phones: set[str],
        given_names: dict[str, str],
        listed: dict[str, list[str]],
    ) -> None:
        # Each automaton key (a matching form) stores (label index << 8) | its length; the label is
        # the kinds it is listed under, () for a romanised given name that is no listed value.
        self._automaton = automaton
        self._labels = labels
        self._phones = phones  # listed phone numbers, without trunk 0
        # Romanised given name → the Hangul full names with that given name, as "family<RS>full name"
        # entries joined by <US> (flat strings: a dict of sets per name costs seconds of GC at 100k).
        self._given_names = given_names
        self._listed = listed  # kind → its distinct normalised values
        self._fingerprint: str | None = None
        #: The keys the values were given under.
        self.kinds = frozenset(listed)
        #: How many distinct (kind, normalised value) pairs are listed (before spelling variants).
        self.size = sum(map(len, listed.values()))

    @classmethod
    def build(cls, values: Mapping[str, Iterable[str]]) -> DenyList:
        """Build the deny-list of ``values``: kind (``name``, ``rrn``, ``phone``, ``mrn`` or a column
        name) to the values of that kind.

        Every value is normalised; values too short to be specific (fewer than
        :data:`MIN_HANGUL_SYLLABLES` Hangul syllables, :data:`MIN_OTHER_CHARACTERS` other characters
        or :data:`MIN_DIGITS` digits) are skipped. Hangul values of a name kind (its key contains
        ``name``, ``이름``, ``성명`` or ``환자명``) also yield their Latin spellings; Korean phone
        numbers match in any domestic or ``+82`` notation.
        """
        automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        labels: list[tuple[str, ...]] = [()]
        listed: dict[str, list[str]] = {}
        phones: set[str] = set()
        given_names: dict[str, str] = {}
        keys: set[str] = set()
        for kind, column in values.items():
            unique = list(set(_normalize_all(column)))
            if unique and not MIN_DIGITS <= min(map(len, unique)) <= max(map(len, unique)) <= _MAX_LENGTH:
                unique = [value for value in unique if _long_enough(value) and len(value) <= _MAX_LENGTH]
            listed[kind] = unique
            forms, kind_phones = _phone_forms(unique)
            phones.update(kind_phones)
            # Forms already listed under an earlier kind keep both kinds (rare: one Python step each).
            shared = {form: labels[automaton.get(form) >> 8] for form in keys.intersection(forms)}
            labels.append((kind,))
            _add(automaton, forms, len(labels) - 1)
            for form, earlier in shared.items():
                labels.append(tuple(sorted({*earlier, kind})))
                _add(automaton, [form], len(labels) - 1)
            keys.update(forms)
            if _NAME_KIND.search(kind):
                for family, latin, name in name_readings(unique):
                    entry = f"{family}\x1e{name}"
                    known = given_names.setdefault(latin, entry)
                    if known is not entry and entry not in known.split("\x1f"):
                        given_names[latin] = f"{known}\x1f{entry}"
        _add(automaton, given_names.keys() - keys, 0)
        if len(automaton):
            automaton.make_automaton()
        return cls(automaton if len(automaton) else None, labels, phones, given_names, listed)

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) over each kind and its sorted normalised values: equal for deny-lists built
        from the same values in any order or notation, so callers can cache on it. Computed on
        first use."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for kind in sorted(self._listed):
                values = sorted(self._listed[kind])
                digest.update(f"{kind}\x1f{len(values)}\x1e".encode())
                digest.update("\x1e".join(values).encode())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def __len__(self) -> int:
        return self.size

    def __reduce__(self) -> NoReturn:
        raise TypeError("a DenyList is never serialised: its values live only in memory")

    def __repr__(self) -> str:
        return f"DenyList(size={self.size}, kinds={sorted(self.kinds)}, fingerprint={self.fingerprint[:12]}…)"

    def find_whole(self, values: Sequence[str]) -> list[tuple[str, ...] | None]:
        """For each value, the kinds it is listed under if the whole value is a listed value (in any
        of its notations), else ``None``. One dictionary look-up per value: the quick way through a
        table column of identifiers; :meth:`find` still finds listed values inside the others."""
        normalized = _normalize_all(values)
        if len(normalized) != len(values):  # empty values were skipped
            normalized = [normalize_value(value) for value in values]
        return [self._kinds_of(form) for form in _phone_forms(normalized)[0]]

    def _kinds_of(self, form: str) -> tuple[str, ...] | None:
        """The kinds a matching form is listed under, ``None`` if it is no listed value."""
        payload = self._automaton.get(form, 0) if self._automaton is not None else 0
        return self._labels[payload >> 8] or None

    def find(self, text: str) -> list[DenyListHit]:
        """Every deny-listed value standing as a word in ``text``, with offsets into ``text``."""
        return self.find_in(NormalizedText.of(text))

    def find_in(self, normalized: NormalizedText) -> list[DenyListHit]:
        """:meth:`find` on an already normalised text; offsets are into ``normalized.original``."""
        if self._automaton is None:
            return []
        text = normalized.text
        compact = fold(_DROPPED.sub("", text))
        matches = list(self._automaton.iter(compact))
        if not matches:
            return []
        # Where compact index c is in the NFKC text: the c-th kept character (vectorised: a long
        # text has a dropped space every few characters).
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        kept = np.flatnonzero(~np.isin(codes, _DROPPED_CODES))

        def text_index(compact_index: int) -> int:
            return int(kept[compact_index])

        hits: dict[tuple[int, int], tuple[str, ...]] = {}
        for last, payload in matches:
            end = last + 1
            for start, stop, kinds in self._candidates(
                compact, end - (payload & 0xFF), end, self._labels[payload >> 8]
            ):
                span = normalized.to_original(text_index(start), text_index(stop - 1) + 1)
                if _stands_alone(normalized.original, *span):
                    hits[span] = tuple(sorted({*hits.get(span, ()), *kinds}))
        return [DenyListHit(start, end, kinds) for (start, end), kinds in sorted(hits.items())]

    def _candidates(
        self, compact: str, start: int, end: int, kinds: tuple[str, ...]
    ) -> list[tuple[int, int, tuple[str, ...]]]:
        """The compact spans an automaton match of ``kinds`` at ``[start, end)`` may stand for."""
        variant = compact[start:end]
        candidates = []
        if kinds:
            if variant in self._phones:
                start -= next((len(p) for p in _PHONE_PREFIXES if compact.endswith(p, 0, start)), 0)
            candidates.append((start, end, kinds))
        for entry in self._given_names.get(variant, "").split("\x1f") if variant in self._given_names else ():
            family, full_name = entry.split("\x1e")
            for spelling in family_spellings(family):
                if len(spelling) + len(variant) < MIN_OTHER_CHARACTERS:
                    continue
                for before in (spelling, spelling + ","):  # "Kim Minjun", "Kim, Minjun"
                    if compact.endswith(before, 0, start):
                        candidates.append((start - len(before), end, self._kinds_of(full_name) or ()))
                if compact.startswith(spelling, end):
                    candidates.append((start, end + len(spelling), self._kinds_of(full_name) or ()))
        return candidates


def _phone_forms(normalized: list[str]) -> tuple[list[str], list[str]]:
    """The matching forms of normalised values (a phone number without its trunk 0 or +82), and
    those phone numbers."""
    numbers = {
        value: match[1]
        for value in normalized
        if value.startswith(("0", "+")) and (match := _PHONE_VALUE.fullmatch(value))
    }
    if not numbers:
        return normalized, []
    return [numbers.get(value, value) for value in normalized], list(numbers.values())


def _add(automaton: ahocorasick.Automaton, forms: Iterable[str], label: int) -> None:
    """Add ``forms`` with the value ``(label << 8) | len(form)``, looping in C."""
    forms = list(forms)
    payloads = map(operator.or_, map(len, forms), itertools.repeat(label << 8))
    collections.deque(map(automaton.add_word, forms, payloads), maxlen=0)


def _stands_alone(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is a whole word: digits not continued by digits, letters not by
    letters or digits; a Hangul end may be followed by a particle or title (김민준님의)."""
    if start > 0 and _continues(text[start], text[start - 1]):
        return False
    if end >= len(text):
        return True
    last = text[end - 1]
    if is_hangul_syllables(last):
        suffix_end = end
        while suffix_end < len(text) and is_hangul_syllables(text[suffix_end]):
            suffix_end += 1
        return suffix_end == end or text[end:suffix_end] in _NAME_SUFFIXES
    return not _continues(last, text[end])


def _continues(edge: str, neighbour: str) -> bool:
    if edge.isdigit():
        return neighbour.isdigit()
    if edge.isalpha():
        return neighbour.isalnum()
    return False
