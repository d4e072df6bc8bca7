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
