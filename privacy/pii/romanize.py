"""Latin spellings of Korean personal names, for the deny-list.

A name written ``김민준`` in the data may leave as ``Kim Minjun``, ``Min-jun Kim`` or ``Gim Min Jun``.
The deny-list looks for the given name in Revised Romanization (:func:`romanize`, syllable by
syllable, as the official rules prescribe for given names) next to any of the family name's
spellings (:func:`family_spellings`: Revised Romanization and the common conventional ones such as
Lee, Park, Choi), before or after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

_FIRST_SYLLABLE: Final = 0xAC00
_LAST_SYLLABLE: Final = 0xD7A3

# Revised Romanization of the 19 initial consonants, 21 vowels and 28 finals (index 0: none).
_INITIALS: Final = (
    "g",
    "kk",
    "n",
    "d",
    "tt",
    "r",
    "m",
    "b",
    "pp",
    "s",
    "ss",
    "",
    "j",
    "jj",
    "ch",
    "k",
    "t",
    "p",
    "h",
)
_VOWELS: Final = (
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi", "yu",
    "eu", "ui", "i",
)  # fmt: skip
_FINALS: Final = (
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p", "t", "t",
    "ng", "t", "t", "k", "t", "p", "t",
)  # fmt: skip

#: Conventional spellings of family names (besides their Revised Romanization), from passports and
#: common usage.
FAMILY_NAME_SPELLINGS: Final[dict[str, tuple[str, ...]]] = {
    "김": ("kim",), "이": ("lee", "yi", "rhee", "rhie"), "박": ("park", "pak"), "최": ("choi", "choe"),
    "정": ("jung", "chung", "jeong"), "강": ("kang",), "조": ("cho", "jo"), "윤": ("yoon", "yun"),
    "장": ("jang", "chang"), "임": ("lim", "im", "rim"), "한": ("han",), "오": ("oh",),
    "서": ("seo", "suh"), "신": ("shin", "sin"), "권": ("kwon",), "황": ("hwang",), "안": ("ahn", "an"),
    "송": ("song",), "류": ("ryu", "yoo", "yu", "ryoo"), "유": ("yoo", "yu"), "전": ("jeon", "jun", "chun"),
    "홍": ("hong",), "고": ("ko", "go"), "문": ("moon", "mun"), "양": ("yang",), "손": ("son", "sohn"),
    "배": ("bae", "pae"), "백": ("baek", "paik", "paek"), "허": ("heo", "huh", "hur"), "남": ("nam",),
    "심": ("shim", "sim"), "노": ("noh", "roh"), "하": ("ha",), "곽": ("kwak",), "성": ("sung", "seong"),
    "차": ("cha",), "주": ("joo", "ju", "chu"), "우": ("woo",), "구": ("koo", "ku", "gu"), "민": ("min",),
    "진": ("jin", "chin"), "나": ("na", "ra"), "지": ("ji", "chi"), "엄": ("eom", "um", "uhm"),
    "채": ("chae",), "원": ("won",), "천": ("cheon", "chun"), "방": ("bang",), "공": ("kong", "gong"),
    "현": ("hyun", "hyeon"), "함": ("ham",), "변": ("byun", "byeon"), "염": ("yeom", "yum"),
    "여": ("yeo", "yuh"), "추": ("choo", "chu"), "도": ("do", "doh"), "소": ("so",), "석": ("seok", "suk"),
    "선": ("sun", "seon"), "설": ("seol", "sul"), "마": ("ma",), "길": ("gil", "kil"), "연": ("yeon", "yun"),
    "위": ("wi", "wee"), "표": ("pyo",), "명": ("myung", "myeong"), "기": ("ki", "gi"), "반": ("ban", "pan"),
    "남궁": ("namgung", "namkung"), "황보": ("hwangbo",), "제갈": ("jegal",), "선우": ("sunwoo", "seonu"),
    "독고": ("dokgo",), "동방": ("dongbang",),
}  # fmt: skip
_COMPOUND_FAMILY_NAMES: Final = frozenset(name for name in FAMILY_NAME_SPELLINGS if len(name) == 2)


_SYLLABLES: Final = re.compile(r"[\uac00-\ud7a3]+")
_FULL_NAME: Final = re.compile(r"[\uac00-\ud7a3]{2,5}")


def is_hangul_syllables(text: str) -> bool:
    """Whether ``text`` is non-empty and only precomposed Hangul syllables.

    >>> is_hangul_syllables("김민준"), is_hangul_syllables("김 민준"), is_hangul_syllables("")
    (True, False, False)
    """
    return _SYLLABLES.fullmatch(text) is not None


def _syllable(index: int) -> str:
    return _INITIALS[index // 588] + _VOWELS[index % 588 // 28] + _FINALS[index % 28]


#: Every syllable's romanization as a ``str.translate`` table (11,172 entries, built once).
_ROMANIZATION: Final = {
    _FIRST_SYLLABLE + index: _syllable(index) for index in range(_LAST_SYLLABLE - _FIRST_SYLLABLE + 1)
}


def romanize(hangul: str) -> str:
    """Revised Romanization of ``hangul``, syllable by syllable, without sound changes across them.

    >>> romanize("민준"), romanize("서연"), romanize("김")
    ('minjun', 'seoyeon', 'gim')
    """
    if hangul and not is_hangul_syllables(hangul):
        raise ValueError(f"not only Hangul syllables: {hangul!r}")
    return hangul.translate(_ROMANIZATION)


def family_spellings(family: str) -> tuple[str, ...]:
    """Latin spellings of a Hangul family name: Revised Romanization first, then conventional ones.

    >>> family_spellings("이"), family_spellings("곽")
    (('i', 'lee', 'yi', 'rhee', 'rhie'), ('gwak', 'kwak'))
    """
    spellings = _FAMILY_SPELLINGS.get(family)
    if spellings is None:
        spellings = tuple(dict.fromkeys((romanize(family), *FAMILY_NAME_SPELLINGS.get(family, ()))))
    return spellings


_FAMILY_SPELLINGS: Final[dict[str, tuple[str, ...]]] = {}
_FAMILY_SPELLINGS.update((family, family_spellings(family)) for family in FAMILY_NAME_SPELLINGS)


def name_readings(names: Iterable[str]) -> list[tuple[str, str, str]]:
    """``(family name, romanised given name, full name)`` for every Korean full name (2-5 Hangul
    syllables) among ``names``; other values yield nothing. A name starting with a compound family
    name (남궁, 선우...) is read both ways: 선우진 may be 선우 + 진 or 선 + 우진.

    >>> name_readings(["김민준", "선우진", "Kim"])
    [('김', 'minjun', '김민준'), ('선', 'ujin', '선우진'), ('선우', 'jin', '선우진')]
    """
    full_names = [name for name in names if _FULL_NAME.fullmatch(name)]
    splits = [(name[:1], name[1:], name) for name in full_names]
    splits += [
        (name[:2], name[2:], name)
        for name in full_names
        if len(name) >= 3 and name[:2] in _COMPOUND_FAMILY_NAMES
    ]
    if not splits:
        return []
    # One translate over all given names at once; they are syllables only, so the joiner survives.
    given_latin = "\n".join(given for _, given, _ in splits).translate(_ROMANIZATION).split("\n")
    return [(family, latin, name) for (family, _, name), latin in zip(splits, given_latin, strict=True)]
