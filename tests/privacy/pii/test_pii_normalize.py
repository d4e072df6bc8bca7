"""NormalizedText: NFKC with offsets back into the original text."""

from __future__ import annotations

import doctest

import pytest

from privacy.pii import normalize
from privacy.pii.normalize import NormalizedText, digits_of
from tests.privacy.pii.helpers import wide


@pytest.mark.parametrize(
    ("original", "piece", "normalized_piece"),
    [
        ("RRN " + wide("900101-1234568") + " end", wide("900101-1234568"), "900101-1234568"),
        ("a\u3000b " + wide("ABC"), wide("ABC"), "ABC"),
        ("㈜한빛 900101", "900101", "900101"),  # one character became three before it
        ("\u1100\u1161\u11a8 김민준", "김민준", "김민준"),  # decomposed syllable before it
        ("ﬁle 010-2345-6789", "010-2345-6789", "010-2345-6789"),  # ligature before it
        ("plain ascii", "ascii", "ascii"),
    ],
)
def test_spans_map_back_to_the_original(original: str, piece: str, normalized_piece: str) -> None:
    text = NormalizedText.of(original)
    start = text.text.index(normalized_piece)
    mapped = text.to_original(start, start + len(normalized_piece))
    assert original[mapped[0] : mapped[1]] == piece


def test_a_changed_cluster_maps_as_a_whole() -> None:
    text = NormalizedText.of("x㈜y")
    assert text.text == "x(주)y"
    assert text.to_original(2, 3) == (1, 2)
    assert text.to_original(0, len(text.text)) == (0, 3)


def test_digits_of() -> None:
    assert digits_of("+82 (0)10-2345-6789") == "820102345678" + "9"
    assert digits_of("") == ""


def test_doctests() -> None:
    result = doctest.testmod(normalize)
    assert result.attempted > 0
    assert result.failed == 0
