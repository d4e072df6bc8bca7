"""DenyList: normalisation, word boundaries, Latin spellings of Hangul names, values never in clear."""

from __future__ import annotations

import copy
import doctest

import pytest

from privacy.pii import DenyList, deny_list
from privacy.pii.deny_list import normalize_value
from tests.privacy.pii.helpers import wide

VALUES = {
    "patient_name": ["김민준", "박서연", "선우진", "이"],
    "rrn": ["900101-1234568", "050315-3123569"],
    "phone": ["010-2345-6789", "02-2345-6789"],
    "mrn": ["HB01234567", "1234"],
    "guardian": ["Jane Doe"],
}


@pytest.fixture(scope="module")
def listed() -> DenyList:
    return DenyList.build(VALUES)


# (text, the pieces found, why)
CASES = [
    ("환자 김민준 방문", ["김민준"], "Hangul name"),
    ("김민준님의 기록", ["김민준"], "name with title and particle"),
    ("김민준이 왔다. 박서연은 안 왔다", ["김민준", "박서연"], "names with particles"),
    ("김민준선생님께서", ["김민준"], "title with particle"),
    ("김 민 준", ["김 민 준"], "spaced syllables"),
    ("김\u00b7민준", ["김\u00b7민준"], "middle dot"),
    ("김민준비", [], "followed by more Hangul that is no particle"),
    ("왕김민준", [], "preceded by Hangul"),
    ("Kim Minjun", ["Kim Minjun"], "romanised, family name first"),
    ("Minjun Kim", ["Minjun Kim"], "romanised, given name first"),
    ("KIM Min-jun", ["KIM Min-jun"], "upper case, hyphenated given name"),
    ("Min Jun Kim", ["Min Jun Kim"], "spaced given name"),
    ("Gim Minjun", ["Gim Minjun"], "Revised Romanization of the family name"),
    ("Kim, Minjun", ["Kim, Minjun"], "family name, comma, given name"),
    ("Seoyeon Park and Pak Seo-yeon", ["Seoyeon Park", "Pak Seo-yeon"], "conventional spellings"),
    ("Sunwoo Jin; Jin Seonu", ["Sunwoo Jin", "Jin Seonu"], "compound family name"),
    ("Minjun", [], "given name alone"),
    ("Kimminjunk", [], "inside a longer word"),
    ("kim.minjun@example.com", ["kim.minjun"], "a name inside an e-mail address"),
    ("RRN 900101-1234568.", ["900101-1234568"], "RRN"),
    (wide("900101-1234568"), [wide("900101-1234568")], "full-width RRN"),
    ("9 0 0 1 0 1 - 1 2 3 4 5 6 8", ["9 0 0 1 0 1 - 1 2 3 4 5 6 8"], "RRN one digit at a time"),
    ("900101.1234568", ["900101.1234568"], "dotted RRN"),
    ("0503153123569", ["0503153123569"], "RRN without hyphen"),
    ("19001011234568", [], "RRN inside a longer digit run"),
    ("9001011234568 7", ["9001011234568"], "RRN followed by another number"),
    ("tel 010.2345.6789", ["010.2345.6789"], "dotted phone"),
    ("+82 10-2345-6789", ["+82 10-2345-6789"], "phone with country code"),
    ("+82 (0)10 2345 6789", ["+82 (0)10 2345 6789"], "phone with (0)"),
    ("1023456789", ["1023456789"], "phone that lost its trunk 0"),
    ("+82 2 2345 6789", ["+82 2 2345 6789"], "landline with country code"),
    ("chart HB01234567x", ["HB01234567"], "MRN followed by a letter"),
    ("chart xHB01234567", [], "MRN preceded by a letter"),
    ("1234 patients", [], "short values are not listed"),
    ("이 환자", [], "one-syllable values are not listed"),
    ("guardian JANE-DOE", ["JANE-DOE"], "other kinds: case and separators"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_find(listed: DenyList, text: str, expected: list[str], why: str) -> None:
    assert [text[hit.start : hit.end] for hit in listed.find(text)] == expected, why


def test_hits_say_under_which_kind(listed: DenyList) -> None:
    kinds = {hit.kinds for hit in listed.find("김민준 900101-1234568 010-2345-6789 HB01234567 Minjun Kim")}
    assert kinds == {("patient_name",), ("rrn",), ("phone",), ("mrn",)}


def test_a_value_under_two_kinds_has_both() -> None:
    both = DenyList.build({"mrn": ["HB01234567"], "chart_no": ["hb-0123-4567"]})
    assert [hit.kinds for hit in both.find("HB01234567")] == [("chart_no", "mrn")]


def test_find_whole(listed: DenyList) -> None:
    found = listed.find_whole(["900101 1234568", "+82 10 2345 6789", "김민준", "김민준님", "Kim Minjun", "x"])
    assert found == [("rrn",), ("phone",), ("patient_name",), None, None, None]


def test_fingerprint_ignores_order_and_notation(listed: DenyList) -> None:
    reordered = {kind: list(reversed(values)) for kind, values in reversed(VALUES.items())}
    reordered["rrn"] = [wide("050315-3123569"), "9001011234568"]
    assert DenyList.build(reordered).fingerprint == listed.fingerprint
    assert DenyList.build({**VALUES, "rrn": ["900101-1234568"]}).fingerprint != listed.fingerprint
    assert len(listed.fingerprint) == 64


def test_no_value_in_repr_or_pickle(listed: DenyList) -> None:
    shown = repr(listed)
    assert "김민준" not in shown and "1234568" not in shown
    assert f"size={len(listed)}" in shown
    # The automaton cannot be serialised by accident: pickling and copying both go through this.
    with pytest.raises(TypeError):
        listed.__reduce_ex__(5)
    with pytest.raises(TypeError):
        copy.deepcopy(listed)


def test_empty_deny_list_finds_nothing() -> None:
    empty = DenyList.build({"name": []})
    assert len(empty) == 0
    assert empty.find("김민준 900101-1234568") == []
    assert empty.find_whole(["김민준"]) == [None]


def test_normalize_value() -> None:
    assert normalize_value(" Kim\u00b7Min_jun ") == "kimminjun"
    assert normalize_value("010\u20132345\u20146789") == "01023456789"


def test_doctests() -> None:
    result = doctest.testmod(deny_list)
    assert result.attempted > 0
    assert result.failed == 0
