"""Korean personal identifiers: resident registration numbers and mobile phone numbers.

Pure functions without I/O or state, shared by the demo data generator and the PII scanner.

A resident registration number (RRN, 주민등록번호) reads ``YYMMDD-SBBBBBC``: the birth date, a digit
``S`` encoding sex and century, five serial digits and a check digit ``C``. Registration numbers of
foreign residents (외국인등록번호) share the format, with ``S`` in 5 to 8.

RRNs assigned since October 2020 end in random digits and carry no check digit, so a scanner that
must also catch those calls :func:`is_valid_rrn` with ``verify_check_digit=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

Sex = Literal["M", "F"]

#: Weights of the first twelve digits in the RRN check-digit sum.
RRN_WEIGHTS: Final = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)

#: Seventh RRN digit → (century, sex, foreign resident).
RRN_SEX_DIGITS: Final[dict[str, tuple[int, Sex, bool]]] = {
    "9": (1800, "M", False),
    "0": (1800, "F", False),
    "1": (1900, "M", False),
    "2": (1900, "F", False),
    "3": (2000, "M", False),
    "4": (2000, "F", False),
    "5": (1900, "M", True),
    "6": (1900, "F", True),
    "7": (2000, "M", True),
    "8": (2000, "F", True),
}

#: Candidate RRNs in free text (with or without hyphen); confirm each with :func:`is_valid_rrn`.
RRN_PATTERN: Final = re.compile(r"(?<![0-9])[0-9]{6}-?[0-9]{7}(?![0-9])")

#: Candidate Korean mobile numbers in free text; confirm each with :func:`is_korean_mobile`.
MOBILE_PATTERN: Final = re.compile(
    r"(?<![0-9+])(?:\+82[-.\s]?(?:\(0\))?|0)1[016789][-.\s]?[0-9]{3,4}[-.\s]?[0-9]{4}(?![0-9])"
)

_RRN_SHAPE: Final = re.compile(r"([0-9]{6})-?([0-9]{7})")
_MOBILE_SEPARATORS: Final = re.compile(r"[-.\s()]")


@dataclass(frozen=True, slots=True)
class RrnInfo:
    """What a valid RRN states about its holder."""

    birth_date: date
    sex: Sex
    foreign: bool


def rrn_check_digit(first12: str) -> int:
    """Return the check digit for the first twelve RRN digits (hyphen-free).

    >>> rrn_check_digit("900101123456")
    8
    """
    if len(first12) != 12 or not first12.isascii() or not first12.isdigit():
        raise ValueError("expected exactly 12 ASCII digits")
    total = sum(int(digit) * weight for digit, weight in zip(first12, RRN_WEIGHTS, strict=True))
    return (11 - total % 11) % 10


def normalize_rrn(s: str) -> str:
    """Return ``s`` in the canonical form ``YYMMDD-SBBBBBC``, checking the shape only.

    Surrounding whitespace and a missing hyphen are accepted; anything else raises ``ValueError``.

    >>> normalize_rrn(" 9001011234568 ")
    '900101-1234568'
    """
    match = _RRN_SHAPE.fullmatch(s.strip())
    if match is None:
        raise ValueError("an RRN is 13 digits, optionally with a hyphen after the sixth")
    return f"{match[1]}-{match[2]}"


def parse_rrn(s: str, *, verify_check_digit: bool = True) -> RrnInfo:
    """Return birth date, sex and residency encoded in a valid RRN; raise ``ValueError`` otherwise.

    >>> parse_rrn("900101-2234567", verify_check_digit=False)
    RrnInfo(birth_date=datetime.date(1990, 1, 1), sex='F', foreign=False)
    """
    canonical = normalize_rrn(s)
    century, sex, foreign = RRN_SEX_DIGITS[canonical[7]]
    try:
        birth_date = date(century + int(canonical[0:2]), int(canonical[2:4]), int(canonical[4:6]))
    except ValueError:
        raise ValueError(f"no such birth date: {canonical[:6]}") from None
    digits = canonical.replace("-", "")
    if verify_check_digit and rrn_check_digit(digits[:12]) != int(digits[12]):
        raise ValueError("wrong check digit")
    return RrnInfo(birth_date=birth_date, sex=sex, foreign=foreign)


def is_valid_rrn(s: str, *, verify_check_digit: bool = True) -> bool:
    """Tell whether ``s`` is a well-formed RRN with an existing birth date (and check digit).

    >>> is_valid_rrn("900101-1234568"), is_valid_rrn("9001011234568")
    (True, True)
    >>> is_valid_rrn("900101-1234569")  # wrong check digit
    False
    >>> is_valid_rrn("900230-1234560", verify_check_digit=False)
    False
    """
    try:
        parse_rrn(s, verify_check_digit=verify_check_digit)
    except ValueError:
        return False
    return True


def rrn_sex_digit(sex: Sex, birth_year: int, *, foreign: bool = False) -> str:
    """Return the seventh RRN digit for a holder's sex, birth year and residency.

    >>> rrn_sex_digit("F", 1975), rrn_sex_digit("M", 2003), rrn_sex_digit("F", 1988, foreign=True)
    ('2', '3', '6')
    """
    century = birth_year // 100 * 100
    for digit, meaning in RRN_SEX_DIGITS.items():
        if meaning == (century, sex, foreign):
            return digit
    raise ValueError(f"no RRN sex digit for {sex=}, {birth_year=}, {foreign=}")


def format_rrn(birth_date: date, sex: Sex, serial: str, *, foreign: bool = False) -> str:
    """Build the RRN with the given five serial digits and the correct check digit.

    >>> format_rrn(date(1990, 1, 1), "M", "23456")
    '900101-1234568'
    """
    if len(serial) != 5 or not serial.isascii() or not serial.isdigit():
        raise ValueError("serial must be 5 ASCII digits")
    first12 = birth_date.strftime("%y%m%d") + rrn_sex_digit(sex, birth_date.year, foreign=foreign)
    first12 += serial
    return f"{first12[:6]}-{first12[6:]}{rrn_check_digit(first12)}"


def normalize_korean_mobile(s: str) -> str:
    """Return a Korean mobile number in the canonical domestic form ``01X-XXXX-XXXX``.

    Accepts separators (hyphen, dot, space, parentheses) and the country code (``+82``, ``+82 (0)``,
    ``82``). Numbers starting ``010`` have eight subscriber digits; the legacy prefixes 011 and
    016 to 019 also seven. The subscriber part never starts with 0 or 1. Raises ``ValueError``.

    >>> normalize_korean_mobile("+82 10.2345.6789")
    '010-2345-6789'
    >>> normalize_korean_mobile("0162345678")
    '016-234-5678'
    """
    digits = _MOBILE_SEPARATORS.sub("", s.strip().replace("(0)", ""))
    digits = digits.removeprefix("+")
    if digits.startswith("82"):
        digits = "0" + digits[2:].removeprefix("0")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("a mobile number has only digits and separators")
    prefix, subscriber = digits[:3], digits[3:]
    allowed_lengths = (8,) if prefix == "010" else (7, 8)
    if prefix not in {"010", "011", "016", "017", "018", "019"}:
        raise ValueError(f"not a Korean mobile prefix: {prefix}")
    if len(subscriber) not in allowed_lengths or subscriber[0] in "01":
        raise ValueError("wrong number of subscriber digits or invalid exchange")
    return f"{prefix}-{subscriber[:-4]}-{subscriber[-4:]}"


def is_korean_mobile(s: str) -> bool:
    """Tell whether ``s`` is a Korean mobile number in any accepted notation.

    >>> is_korean_mobile("010-2345-6789"), is_korean_mobile("010-1234-5678")
    (True, False)
    """
    try:
        normalize_korean_mobile(s)
    except ValueError:
        return False
    return True


def frn_check_digit(first12: str) -> int:
    """Return the check digit of a foreign resident's registration number (외국인등록번호).

    Registration numbers of foreign residents issued before October 2020 carry the RRN's weighted
    sum shifted by two: ``(13 - sum mod 11) mod 10``. (:func:`is_valid_rrn` checks the RRN digit for
    them; scanners accept either.)

    >>> frn_check_digit("880307512356")
    6
    """
    return (rrn_check_digit(first12) + 2) % 10


#: Weights of the first nine digits of a business registration number (사업자등록번호).
BRN_WEIGHTS: Final = (1, 3, 7, 1, 3, 7, 1, 3, 5)


def brn_check_digit(first9: str) -> int:
    """Return the check digit for the first nine digits of a business registration number.

    The ninth digit counts with weight 5 plus the tens of that product (National Tax Service rule).

    >>> brn_check_digit("124810099")
    8
    """
    if len(first9) != 9 or not first9.isascii() or not first9.isdigit():
        raise ValueError("expected exactly 9 ASCII digits")
    digits = [int(digit) for digit in first9]
    total = sum(digit * weight for digit, weight in zip(digits, BRN_WEIGHTS, strict=True))
    total += digits[8] * 5 // 10
    return (10 - total % 10) % 10


def is_valid_brn(s: str) -> bool:
    """Tell whether ``s`` is a business registration number ``NNN-NN-NNNNN`` with a right check digit.

    The hyphens are optional; nothing else is accepted.

    >>> is_valid_brn("124-81-00998"), is_valid_brn("1248100998"), is_valid_brn("124-81-00997")
    (True, True, False)
    """
    match = re.fullmatch(r"([0-9]{3})-?([0-9]{2})-?([0-9]{5})", s.strip())
    if match is None:
        return False
    digits = "".join(match.groups())
    return brn_check_digit(digits[:9]) == int(digits[9])


#: Area codes of Korean geographic landlines, plus 070 (internet telephony, 인터넷전화).
LANDLINE_AREA_CODES: Final = frozenset(
    {"02", "031", "032", "033", "041", "042", "043", "044", "051", "052", "053", "054", "055"}
    | {"061", "062", "063", "064", "070"}
)


def normalize_korean_landline(s: str) -> str:
    """Return a Korean landline number in the canonical domestic form ``0AA-XXXX-XXXX``.

    Accepts the same separators and country-code forms as :func:`normalize_korean_mobile`. The
    subscriber part has seven or eight digits (eight for 070) and never starts with 0 or 1.
    Raises ``ValueError``.

    >>> normalize_korean_landline("+82 2-2345-6789")
    '02-2345-6789'
    >>> normalize_korean_landline("031.234.5678")
    '031-234-5678'
    """
    digits = _MOBILE_SEPARATORS.sub("", s.strip().replace("(0)", ""))
    digits = digits.removeprefix("+")
    if digits.startswith("82"):
        digits = "0" + digits[2:].removeprefix("0")
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("a landline number has only digits and separators")
    area = digits[:2] if digits.startswith("02") else digits[:3]
    if area not in LANDLINE_AREA_CODES:
        raise ValueError(f"not a Korean landline area code: {area}")
    subscriber = digits[len(area) :]
    allowed_lengths = (8,) if area == "070" else (7, 8)
    if len(subscriber) not in allowed_lengths or subscriber[0] in "01":
        raise ValueError("wrong number of subscriber digits or invalid exchange")
    return f"{area}-{subscriber[:-4]}-{subscriber[-4:]}"


def is_korean_landline(s: str) -> bool:
    """Tell whether ``s`` is a Korean landline (or 070) number in any accepted notation.

    >>> is_korean_landline("02-2345-6789"), is_korean_landline("02-1234-5678")
    (True, False)
    """
    try:
        normalize_korean_landline(s)
    except ValueError:
        return False
    return True
