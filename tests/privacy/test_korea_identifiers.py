"""Korean resident registration numbers and mobile numbers (privacy.identifiers.korea)."""

from __future__ import annotations

import doctest
from datetime import date

import pytest

from privacy.identifiers import korea
from privacy.identifiers.korea import (
    MOBILE_PATTERN,
    RRN_PATTERN,
    RrnInfo,
    brn_check_digit,
    format_rrn,
    frn_check_digit,
    is_korean_landline,
    is_korean_mobile,
    is_valid_brn,
    is_valid_rrn,
    normalize_korean_landline,
    normalize_korean_mobile,
    normalize_rrn,
    parse_rrn,
    rrn_check_digit,
)

FULL_WIDTH_DIGITS = {ord(digit): ord(digit) + 0xFEE0 for digit in "0123456789"}

# (input, valid, why) — check digits computed by hand with weights 2..9,2..5.
RRN_CASES = [
    ("900101-1234568", True, "man born 1990"),
    ("9001011234568", True, "without hyphen"),
    (" 900101-1234568\n", True, "surrounding whitespace"),
    ("850615-2345562", True, "woman born 1985"),
    ("050315-3123569", True, "man born 2005"),
    ("100101-4987566", True, "woman born 2010"),
    ("991231-9123563", True, "man born 1899"),
    ("991231-0123569", True, "woman born 1899"),
    ("880307-5123564", True, "foreign man born 1988"),
    ("880307-6123567", True, "foreign woman born 1988"),
    ("120815-7123563", True, "foreign man born 2012"),
    ("120815-8123566", True, "foreign woman born 2012"),
    ("000229-4123569", True, "29 February 2000 (leap year)"),
    ("701225-1987061", True, "weighted sum divisible by 11: check digit 1"),
    ("701225-1987060", False, "weighted sum divisible by 11: 0 is wrong"),
    ("701225-1987040", True, "weighted sum 1 mod 11: check digit 10 mod 10 = 0"),
    ("000229-2123563", False, "29 February 1900 (not a leap year), check digit right"),
    ("900101-1234569", False, "wrong check digit"),
    ("900101-1234560", False, "wrong check digit (0)"),
    ("901301-1234567", False, "month 13"),
    ("900100-1234560", False, "day 0"),
    ("900231-1234560", False, "31 February"),
    ("900101-123456", False, "12 digits"),
    ("900101-12345688", False, "14 digits"),
    ("90010-11234568", False, "hyphen misplaced"),
    ("900101--1234568", False, "two hyphens"),
    ("900101 1234568", False, "space instead of hyphen"),
    ("90010a-1234568", False, "letter"),
    ("900101-1234568".translate(FULL_WIDTH_DIGITS), False, "full-width digits"),
    ("", False, "empty"),
]


@pytest.mark.parametrize(("rrn", "valid", "why"), RRN_CASES, ids=[case[2] for case in RRN_CASES])
def test_is_valid_rrn(rrn: str, valid: bool, why: str) -> None:
    assert is_valid_rrn(rrn) is valid, why


def test_check_digit_can_be_skipped_for_numbers_issued_since_2020() -> None:
    assert is_valid_rrn("900101-1234569", verify_check_digit=False)
    assert not is_valid_rrn("900231-1234560", verify_check_digit=False)


@pytest.mark.parametrize(
    ("first12", "check"),
    [
        ("900101123456", 8),
        ("850615234556", 2),
        ("000229412356", 9),
        ("701225198706", 1),
        ("701225198704", 0),
    ],
)
def test_rrn_check_digit(first12: str, check: int) -> None:
    assert rrn_check_digit(first12) == check


@pytest.mark.parametrize("bad", ["90010112345", "9001011234567", "900101-12345", "9001011234a6"])
def test_rrn_check_digit_rejects_malformed_input(bad: str) -> None:
    with pytest.raises(ValueError, match="12 ASCII digits"):
        rrn_check_digit(bad)


def test_normalize_rrn() -> None:
    assert normalize_rrn("9001011234568") == "900101-1234568"
    assert normalize_rrn(" 900101-1234568 ") == "900101-1234568"
    assert normalize_rrn("900101-1234569") == "900101-1234569"  # shape only
    with pytest.raises(ValueError, match="13 digits"):
        normalize_rrn("900101/1234568")


def test_parse_rrn() -> None:
    assert parse_rrn("850615-2345562") == RrnInfo(date(1985, 6, 15), "F", foreign=False)
    assert parse_rrn("120815-7123563") == RrnInfo(date(2012, 8, 15), "M", foreign=True)
    with pytest.raises(ValueError, match="check digit"):
        parse_rrn("900101-1234569")
    with pytest.raises(ValueError, match="birth date"):
        parse_rrn("000229-2123563")


@pytest.mark.parametrize(
    ("birth", "sex", "foreign", "sex_digit"),
    [
        (date(1899, 12, 31), "M", False, "9"),
        (date(1899, 12, 31), "F", False, "0"),
        (date(1950, 7, 1), "M", False, "1"),
        (date(1950, 7, 1), "F", False, "2"),
        (date(2001, 2, 3), "M", False, "3"),
        (date(2001, 2, 3), "F", False, "4"),
        (date(1975, 3, 9), "M", True, "5"),
        (date(1975, 3, 9), "F", True, "6"),
        (date(2004, 11, 30), "M", True, "7"),
        (date(2004, 11, 30), "F", True, "8"),
    ],
)
def test_format_rrn_round_trips(birth: date, sex: korea.Sex, foreign: bool, sex_digit: str) -> None:
    rrn = format_rrn(birth, sex, "12345", foreign=foreign)
    assert rrn[7] == sex_digit
    assert parse_rrn(rrn) == RrnInfo(birth, sex, foreign)


def test_format_rrn_rejects_what_has_no_sex_digit() -> None:
    with pytest.raises(ValueError, match="sex digit"):
        format_rrn(date(1850, 1, 1), "F", "12345", foreign=True)
    with pytest.raises(ValueError, match="5 ASCII digits"):
        format_rrn(date(1990, 1, 1), "F", "1234")


def test_rrn_pattern_finds_candidates_in_text() -> None:
    text = "환자 주민번호 900101-1234568, 보호자 8506152345562; 주문번호 1900101-12345689"
    assert RRN_PATTERN.findall(text) == ["900101-1234568", "8506152345562"]


MOBILE_CASES = [
    ("010-2345-6789", "010-2345-6789"),
    ("01023456789", "010-2345-6789"),
    ("010 2345 6789", "010-2345-6789"),
    ("010.2345.6789", "010-2345-6789"),
    ("+82 10-2345-6789", "010-2345-6789"),
    ("+82-10-2345-6789", "010-2345-6789"),
    ("+82 (0)10 2345 6789", "010-2345-6789"),
    ("821023456789", "010-2345-6789"),
    ("(010) 2345-6789", "010-2345-6789"),
    ("011-234-5678", "011-234-5678"),
    ("016-2345-6789", "016-2345-6789"),
    ("010-1234-5678", None),  # exchange starting with 1
    ("010-0234-5678", None),  # exchange starting with 0
    ("010-234-5678", None),  # 010 needs four exchange digits
    ("012-2345-6789", None),  # not a mobile prefix
    ("02-2345-6789", None),  # Seoul landline
    ("010-2345-678", None),
    ("010-2345-67890", None),
    ("010-2345-678x", None),
    ("", None),
]


@pytest.mark.parametrize(("number", "canonical"), MOBILE_CASES)
def test_korean_mobile(number: str, canonical: str | None) -> None:
    assert is_korean_mobile(number) is (canonical is not None)
    if canonical is None:
        with pytest.raises(ValueError):  # noqa: PT011 - several reasons, all ValueError
            normalize_korean_mobile(number)
    else:
        assert normalize_korean_mobile(number) == canonical


def test_mobile_pattern_finds_candidates_in_text() -> None:
    text = "연락처: 010-2345-6789 / +82 10 3456 7890, 계좌 1010-2345-67890"
    assert MOBILE_PATTERN.findall(text) == ["010-2345-6789", "+82 10 3456 7890"]


def test_doctests() -> None:
    result = doctest.testmod(korea)
    assert result.attempted > 0
    assert result.failed == 0


def test_frn_check_digit_is_the_rrn_one_shifted_by_two() -> None:
    assert frn_check_digit("880307512356") == 6
    assert rrn_check_digit("880307512356") == 4
    for first12 in ("120815812356", "701225598706", "000229712356"):
        assert frn_check_digit(first12) == (rrn_check_digit(first12) + 2) % 10


@pytest.mark.parametrize(
    ("brn", "valid"),
    [
        ("124-81-00998", True),
        ("1248100998", True),
        (" 220-81-02765 ", True),
        ("101-86-00011", True),
        ("124-81-00997", False),
        ("124-8100-998", False),
        ("124-81-0099", False),
        ("124 81 00998", False),
        ("", False),
    ],
)
def test_is_valid_brn(brn: str, valid: bool) -> None:
    assert is_valid_brn(brn) is valid


def test_brn_check_digit_counts_the_tens_of_the_ninth_product() -> None:
    assert brn_check_digit("124810099") == 8  # 9 x 5 = 45 adds 4 + 45
    with pytest.raises(ValueError, match="9 ASCII digits"):
        brn_check_digit("12481009")


LANDLINE_CASES = [
    ("02-2345-6789", "02-2345-6789"),
    ("02-234-5678", "02-234-5678"),
    ("0223456789", "02-2345-6789"),
    ("031.234.5678", "031-234-5678"),
    ("+82 2 2345 6789", "02-2345-6789"),
    ("+82 (0)64-723-4567", "064-723-4567"),
    ("070-2345-6789", "070-2345-6789"),
    ("070-234-5678", None),  # internet telephony has eight subscriber digits
    ("02-1234-5678", None),  # exchange starting with 1
    ("035-234-5678", None),  # no such area code
    ("010-2345-6789", None),  # a mobile number
    ("02-2345-67", None),  # six subscriber digits
    ("", None),
]


@pytest.mark.parametrize(("number", "canonical"), LANDLINE_CASES)
def test_korean_landline(number: str, canonical: str | None) -> None:
    assert is_korean_landline(number) is (canonical is not None)
    if canonical is None:
        with pytest.raises(ValueError):  # noqa: PT011 - several reasons, all ValueError
            normalize_korean_landline(number)
    else:
        assert normalize_korean_landline(number) == canonical
