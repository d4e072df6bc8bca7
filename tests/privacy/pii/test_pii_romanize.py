"""Latin spellings of Korean names."""

from __future__ import annotations

import doctest

import pytest

from privacy.pii import romanize
from privacy.pii.romanize import family_spellings, name_readings


@pytest.mark.parametrize(
    ("hangul", "latin"),
    [
        ("민준", "minjun"), ("서연", "seoyeon"), ("지우", "jiu"), ("하은", "haeun"), ("예린", "yerin"),
        ("길동", "gildong"), ("꽃", "kkot"), ("흙", "heuk"), ("의", "ui"), ("", ""),
    ],
)  # fmt: skip
def test_revised_romanization(hangul: str, latin: str) -> None:
    assert romanize.romanize(hangul) == latin


def test_romanize_refuses_other_characters() -> None:
    with pytest.raises(ValueError, match="Hangul"):
        romanize.romanize("민a")


def test_family_spellings() -> None:
    assert family_spellings("박") == ("bak", "park", "pak")
    assert family_spellings("정") == ("jeong", "jung", "chung")
    assert family_spellings("빈") == ("bin",)  # not in the table: Revised Romanization only


def test_name_readings() -> None:
    assert name_readings(["남궁민", "이", "김민준a"]) == [
        ("남", "gungmin", "남궁민"),
        ("남궁", "min", "남궁민"),
    ]
    assert name_readings([]) == []


def test_doctests() -> None:
    result = doctest.testmod(romanize)
    assert result.attempted > 0
    assert result.failed == 0
