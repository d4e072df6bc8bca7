"""A deterministic, labelled evaluation corpus for the PII scanner, and its scoring.

Free texts (Korean and English sentences) and tables plant identifiers of every entity, many in the
forms people use to slip past scanners (full-width digits, spaces, dots, en and em dashes, one
digit at a time, romanised names in both orders), next to clean look-alikes that must not be
reported: RRNs with wrong check digits or impossible dates, 13-digit numbers inside longer digit
runs, ISBNs, order numbers, lab values, dates that are not birth dates, invalid phone numbers, card
numbers failing Luhn, passport- and licence-like codes without context.

The people come from the demo registry generator (:mod:`enclave_api.demo.synthetic`), whose
direct identifiers form the deny-list, as for a requester holding a grant on that registry.

    corpus = generate_corpus(n_texts=200, n_table_rows=100)
    scores = evaluate(PiiScanner(deny_list=corpus.deny_list(), mrn_patterns=corpus.mrn_patterns), corpus)
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import ClassVar, Final

import polars as pl

from enclave_api.demo import synthetic
from privacy.findings import Finding
from privacy.identifiers.korea import (
    brn_check_digit,
    format_rrn,
    frn_check_digit,
    rrn_check_digit,
    rrn_sex_digit,
)
from privacy.pii import DenyList, PiiScanner
from privacy.pii.romanize import romanize

HOSPITAL: Final = synthetic.HOSPITALS[0]
MRN_PATTERNS: Final = (rf"{HOSPITAL.mrn_prefix}\d{{8}}",)
ENTITIES: Final = (
    "KR_RRN", "KR_FRN", "KR_PHONE", "KR_PASSPORT", "KR_DRIVER_LICENSE", "KR_BRN", "EMAIL_ADDRESS",
    "CREDIT_CARD", "DATE_OF_BIRTH", "MRN", "DENY_LIST",
)  # fmt: skip
#: Targets: recall on structured identifiers and deny-listed values, precision on every entity.
RECALL_TARGET: Final = 0.99
RECALL_TARGET_ENTITIES: Final = ("KR_RRN", "KR_FRN", "KR_PHONE", "EMAIL_ADDRESS", "MRN", "DENY_LIST")
PRECISION_TARGET: Final = 0.9
DENY = "DENY_LIST"

# Family names whose conventional Latin spellings people use (an independent list: the corpus does
# not borrow the scanner's table).
_LATIN_FAMILY_NAMES: Final = {
    "김": ("Kim",), "이": ("Lee", "Yi", "Rhee"), "박": ("Park", "Pak"), "최": ("Choi", "Choe"),
    "정": ("Jung", "Chung", "Jeong"), "강": ("Kang",), "조": ("Cho", "Jo"), "윤": ("Yoon", "Yun"),
    "장": ("Jang", "Chang"), "임": ("Lim", "Im"), "한": ("Han",), "오": ("Oh",), "서": ("Seo", "Suh"),
    "신": ("Shin",), "권": ("Kwon",), "황": ("Hwang",), "안": ("Ahn",), "송": ("Song",), "홍": ("Hong",),
}  # fmt: skip
_PARTICLES: Final = ("", "", "님", "님의", "가", "는", "의", "씨", "에게", "이", "은")
_FULL_WIDTH: Final = {ord(ch): ord(ch) + 0xFEE0 for ch in "0123456789-"}
_SEPARATORS: Final = ("-", "-", " ", ".", "\u2013", "\u2014", "\u2010", "")
DOMAINS: Final = ("example.com", "hanbit.or.kr", "naver.com", "gmail.com", "snu.ac.kr", "pharma.co.kr")
WORDS: Final = ("star", "river", "blue", "moon", "data", "onco", "study", "lab", "kite", "pine", "coral")


@dataclass(frozen=True, slots=True)
class Span:
    """A planted identifier at ``[start, end)``; any of ``entities`` is a right detection."""

    start: int
    end: int
    entities: frozenset[str]


@dataclass(frozen=True)
class LabelledText:
    text: str
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class LabelledTable:
    """A table and the entities each identifier cell (column, ``str(value)``) may be reported as;
    the first entity of each is the one its recall counts for."""

    table: pl.DataFrame
    cells: dict[tuple[str, str], tuple[str, ...]]


@dataclass(frozen=True)
class Corpus:
    texts: tuple[LabelledText, ...]
    tables: tuple[LabelledTable, ...]
    #: The direct identifiers of the registry the requester holds a grant for.
    deny_values: dict[str, list[str]]
    mrn_patterns: tuple[str, ...] = MRN_PATTERNS

    def deny_list(self) -> DenyList:
        return DenyList.build(self.deny_values)


@dataclass
class Score:
    """Counts for one entity: planted and found (recall), reported and right (precision)."""

    planted: int = 0
    found: int = 0
    reported: int = 0
    right: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.planted if self.planted else 1.0

    @property
    def precision(self) -> float:
        return self.right / self.reported if self.reported else 1.0


@dataclass
class _Person:
    name: str
    rrn: str
    phone: str
    mrn: str


class _Builder:
    """Concatenates text pieces and records where the planted ones are."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.spans: list[Span] = []
        self.length = 0

    def add(self, *pieces: str | tuple[str, Iterable[str]]) -> None:
        for piece in pieces:
            if isinstance(piece, tuple):
                text, entities = piece
                self.spans.append(Span(self.length, self.length + len(text), frozenset(entities)))
            else:
                text = piece
            self.pieces.append(text)
            self.length += len(text)

    def build(self) -> LabelledText:
        return LabelledText("".join(self.pieces), tuple(self.spans))


@dataclass
class _Generator:
    rng: random.Random
    people: list[_Person]
    listed_mrns: set[str] = field(default_factory=set)

    # Identifiers -----------------------------------------------------------------------------

    def digits(self, count: int) -> str:
        return f"{self.rng.randrange(10**count):0{count}d}"

    def birth_date(self, low: int = 1935, high: int = 2019) -> date:
        return date(low, 1, 1) + timedelta(
            days=self.rng.randrange((date(high, 12, 31) - date(low, 1, 1)).days)
        )

    def rrn(self, *, foreign: bool = False) -> str:
        """A fresh registration number: pre-2020 with a check digit, or (one in ten) born since
        October 2020 with random last digit."""
        if self.rng.random() < 0.1 and not foreign:
            born = date(2020, 10, 1) + timedelta(days=self.rng.randrange(1500))
            first12 = born.strftime("%y%m%d") + rrn_sex_digit(
                "M" if self.rng.random() < 0.5 else "F", born.year
            )
            first12 += f"{self.digits(5)}"
            return f"{first12[:6]}-{first12[6:]}{self.rng.randrange(10)}"
        serial = f"{self.digits(5)}"
        rrn = format_rrn(self.birth_date(), "M" if self.rng.random() < 0.5 else "F", serial, foreign=foreign)
        if foreign and self.rng.random() < 0.5:  # the foreigners' own check digit
            rrn = rrn[:-1] + str(frn_check_digit(rrn.replace("-", "")[:12]))
        return rrn

    def phone(self) -> str:
        kind = self.rng.random()
        if kind < 0.6:
            return f"010-{self.rng.randint(2000, 9999)}-{self.digits(4)}"
        if kind < 0.7:
            return f"011-{self.rng.randint(200, 999)}-{self.digits(4)}"
        area = self.rng.choice(("02", "031", "051", "062", "070"))
        exchange = self.rng.randint(2000, 9999) if area in ("02", "070") else self.rng.randint(200, 999)
        return f"{area}-{exchange}-{self.digits(4)}"

    def email(self) -> str:
        user = f"{self.rng.choice(WORDS)}{self.rng.choice(('', '.', '_'))}{self.rng.choice(WORDS)}"
        return f"{user}{self.rng.randrange(100)}@{self.rng.choice(DOMAINS)}"

    def card(self, *, valid: bool = True) -> str:
        prefix, length = self.rng.choice(
            (("4", 16), ("51", 16), ("55", 16), ("37", 15), ("6011", 16), ("35", 16))
        )
        body = prefix + "".join(str(self.rng.randrange(10)) for _ in range(length - len(prefix) - 1))
        check = _luhn_digit(body)
        digits = body + str(check if valid else (check + 1 + self.rng.randrange(9)) % 10)
        separator = self.rng.choice((" ", "-", ""))
        groups = (
            [digits[:4], digits[4:10], digits[10:]]
            if length == 15
            else [digits[i : i + 4] for i in range(0, 16, 4)]
        )
        return separator.join(groups)

    def brn(self, *, valid: bool = True) -> str:
        first9 = f"{self.rng.randint(101, 999)}{self.rng.randint(1, 99):02d}{self.digits(4)}"
        check = brn_check_digit(first9)
        check = check if valid else (check + 1 + self.rng.randrange(9)) % 10
        return f"{first9[:3]}-{first9[3:5]}-{first9[5:]}{check}"

    def passport(self) -> str:
        letter = self.rng.choice("MSRGD")
        if self.rng.random() < 0.5:
            return f"{letter}{self.digits(3)}{self.rng.choice('ABCDEFGHJK')}{self.digits(4)}"
        return f"{letter}{self.digits(8)}"

    def driver_license(self) -> str:
        region = self.rng.choice([*range(11, 27), 28])
        return f"{region}-{self.digits(2)}-{self.digits(6)}-{self.digits(2)}"

    def date_text(self, day: date) -> str:
        return self.rng.choice(
            (
                day.isoformat(),
                day.strftime("%Y.%m.%d"),
                day.strftime("%Y/%m/%d"),
                day.strftime("%d/%m/%Y"),
                f"{day.year}년 {day.month}월 {day.day}일",
                day.strftime("%B %d, %Y"),
                day.strftime("%d %b %Y"),
                day.strftime("%Y%m%d"),
                day.strftime("%y%m%d"),
            )
        )

    def fresh_mrn(self) -> str:
        while True:
            mrn = f"{HOSPITAL.mrn_prefix}{self.digits(8)}"
            if mrn not in self.listed_mrns:
                return mrn

    # Hidden forms ----------------------------------------------------------------------------

    def hide_number(self, number: str) -> str:
        """``number`` (digit groups joined by hyphens) as people write it to slip past scanners."""
        form = self.rng.random()
        if form < 0.35:
            return number
        if form < 0.45:
            return number.translate(_FULL_WIDTH)
        if form < 0.55:
            return " ".join(number)  # one digit at a time: 9 0 0 1 0 1 - 1 2 ...
        return number.replace("-", self.rng.choice(_SEPARATORS))

    def roman_name(self, name: str) -> str:
        family, given = name[0], name[1:]
        family_latin = self.rng.choice(_LATIN_FAMILY_NAMES[family])
        syllables = [romanize(syllable) for syllable in given]
        given_latin = self.rng.choice(
            (
                "".join(syllables).capitalize(),
                "-".join(syllables).title(),
                " ".join(s.capitalize() for s in syllables),
            )
        )
        order = self.rng.random()
        if order < 0.4:
            return f"{family_latin} {given_latin}"
        if order < 0.7:
            return f"{given_latin} {family_latin}"
        if order < 0.85:
            return f"{family_latin.upper()} {given_latin}"
        return f"{family_latin}, {given_latin}"

    # Sentences -------------------------------------------------------------------------------

    def person(self) -> _Person:
        return self.rng.choice(self.people)

    def sentence(self, out: _Builder) -> None:
        self.rng.choice(self.SENTENCES)(self, out)

    def korean_record(self, out: _Builder) -> None:
        person = self.person()
        entity = "KR_FRN" if person.rrn[7] in "5678" else "KR_RRN"
        name = " ".join(person.name) if self.rng.random() < 0.1 else person.name  # 김 민 준
        out.add(
            "환자 ",
            (name, {DENY}),
            self.rng.choice(_PARTICLES),
            f" {self.rng.randint(30, 80)}세, 주민등록번호 ",
            (self.hide_number(person.rrn), {entity, DENY}),
            ", 연락처 ",
            (self.hide_number(person.phone), {"KR_PHONE", DENY}),
            ". ",
        )

    def english_contact(self, out: _Builder) -> None:
        person = self.person()
        phone = "+82 " + person.phone[1:] if self.rng.random() < 0.3 else self.hide_number(person.phone)
        out.add(
            "Patient ",
            (self.roman_name(person.name), {DENY}),
            " (MRN ",
            (person.mrn, {"MRN", DENY}),
            ") can be reached at ",
            (phone, {"KR_PHONE", DENY}),
            " or ",
            (self.email(), {"EMAIL_ADDRESS"}),
            ". ",
        )

    def fresh_numbers(self, out: _Builder) -> None:
        foreign = self.rng.random() < 0.3
        out.add(
            self.rng.choice(("Registration no. ", "주민번호: ", "RRN ", "ID ")),
            (self.hide_number(self.rrn(foreign=foreign)), {"KR_FRN" if foreign else "KR_RRN"}),
            self.rng.choice((", tel ", ", 전화 ", "; phone ")),
            (self.hide_number(self.phone()), {"KR_PHONE"}),
            "; new chart ",
            (self.fresh_mrn(), {"MRN"}),
            ". ",
        )

    def birth(self, out: _Builder) -> None:
        born = self.birth_date(1935, 2005)
        diagnosed = date(2012, 1, 1) + timedelta(days=self.rng.randrange(4000))
        label = self.rng.choice(
            ("Date of birth: ", "DOB ", "생년월일 ", "born on ", "출생일: ", "Birth date ")
        )
        out.add(label, (self.date_text(born), {"DATE_OF_BIRTH"}), f", diagnosed {diagnosed.isoformat()}. ")

    def documents(self, out: _Builder) -> None:
        out.add(
            self.rng.choice(("여권번호 ", "Passport no. ", "passport ")),
            (self.passport(), {"KR_PASSPORT"}),
            self.rng.choice((", 운전면허 ", "; driver's licence ", ", 면허번호 ")),
            (self.driver_license(), {"KR_DRIVER_LICENSE"}),
            ". ",
        )

    def payment(self, out: _Builder) -> None:
        out.add(
            self.rng.choice(("사업자등록번호 ", "BRN ", "Business no. ")),
            (self.brn(), {"KR_BRN"}),
            self.rng.choice((", paid by card ", ", 카드 ", "; card no. ")),
            (self.card(), {"CREDIT_CARD"}),
            ". ",
        )

    def clean(self, out: _Builder) -> None:
        """Look-alikes that are not identifiers."""
        person = self.person()
        wrong = person.rrn[:-1] + str((int(person.rrn[-1]) + 1 + self.rng.randrange(9)) % 10)
        if wrong[7] in "5678":  # a foreigner's number may be right under the other check digit
            digits = wrong.replace("-", "")
            valid_checks = {rrn_check_digit(digits[:12]), frn_check_digit(digits[:12])}
            wrong = wrong[:-1] + str(next(d for d in range(10) if d not in valid_checks))
        choice = self.rng.randrange(8)
        if choice == 0:
            out.add(f"Checked {wrong} (typo) against order 1{person.rrn.replace('-', '')}9. ")
        elif choice == 1:
            isbn = f"978-89-{self.rng.randint(100, 999)}-{self.rng.randint(1000, 9999)}-{self.digits(1)}"
            out.add(f"ISBN {isbn}, order no. ORD-2024-{self.digits(7)}, sample S-2019-{self.digits(6)}. ")
        elif choice == 2:
            out.add(
                f"Hb {self.rng.uniform(9, 16):.1f} g/dL, WBC {self.rng.uniform(3, 12):.1f} x10^3/uL, "
                f"CA 15-3 {self.rng.uniform(5, 40):.1f} U/mL, Ki-67 {self.rng.randint(1, 90)}%. "
            )
        elif choice == 3:
            visit = date(2015, 1, 1) + timedelta(days=self.rng.randrange(3000))
            out.add(
                f"Follow-up visit {self.date_text(visit)}; surgery on {visit.isoformat()}, "
                f"수술일 {visit:%Y.%m.%d}. "
            )
        elif choice == 4:
            out.add(
                f"Invalid numbers 010-1{self.digits(3)}-{self.digits(4)} and "
                f"02-0{self.digits(3)}-{self.digits(4)}; card {self.card(valid=False)}; "
                f"BRN {self.brn(valid=False)}. "
            )
        elif choice == 5:
            out.add(
                f"Part M{self.digits(8)} and lot 11-{self.digits(2)}-"
                f"{self.digits(6)}-{self.digits(2)} shipped in batch "
                f"{self.rng.randint(101, 999)}{self.digits(7)}. "
            )
        elif choice == 6:
            out.add(
                f"Run 2024-01-{self.rng.randint(10, 28)} 12:{self.rng.randint(10, 59)}:45, "
                f"trial NCT0{self.digits(7)}, "
                f"p = 0.0{self.digits(8)}, ICD C50.{self.rng.randrange(10)}. "
            )
        else:
            out.add(
                f"{self.rng.randint(2, 9)}01301-{self.rng.randint(1, 4)}{self.digits(6)} is not a date; "
                "환자는 수술 후 방사선 치료를 받았다. "
            )

    SENTENCES: ClassVar[tuple[Callable[[_Generator, _Builder], None], ...]] = (
        korean_record,
        english_contact,
        fresh_numbers,
        birth,
        documents,
        payment,
        clean,
        clean,
    )

    # Tables ----------------------------------------------------------------------------------

    def table(self, rows: int) -> LabelledTable:
        people = self.rng.sample(self.people, rows)
        cells: dict[tuple[str, str], tuple[str, ...]] = {}
        columns: dict[str, list[object]] = {name: [] for name in TABLE_COLUMNS}
        for person in people:
            rrn = self.hide_number(person.rrn)
            entity = "KR_FRN" if person.rrn[7] in "5678" else "KR_RRN"
            born = self.birth_date(1935, 2005)
            email = self.email()
            values = {
                "patient_name": person.name,
                "rrn": rrn,
                "rrn_number": int(person.rrn.replace("-", "")),
                "phone": self.hide_number(person.phone),
                "mrn": person.mrn,
                "email": email,
                "birth_date": born,
                "diagnosis_date": date(2012, 1, 1) + timedelta(days=self.rng.randrange(4000)),
                "order_no": int(f"1{person.rrn.replace('-', '')}{self.rng.randrange(10)}"),
                "hb": round(self.rng.uniform(9, 16), 1),
                "stage": self.rng.choice(synthetic.STAGES),
            }
            for name, value in values.items():
                columns[name].append(value)
            cells[("patient_name", person.name)] = (DENY,)
            cells[("rrn", rrn)] = (entity, DENY)
            cells[("rrn_number", str(values["rrn_number"]))] = (entity, DENY)
            cells[("phone", str(values["phone"]))] = ("KR_PHONE", DENY)
            cells[("mrn", person.mrn)] = ("MRN", DENY)
            cells[("email", email)] = ("EMAIL_ADDRESS",)
            cells[("birth_date", str(born))] = ("DATE_OF_BIRTH",)
        return LabelledTable(pl.DataFrame(columns), cells)


TABLE_COLUMNS: Final = (
    "patient_name", "rrn", "rrn_number", "phone", "mrn", "email", "birth_date", "diagnosis_date", "order_no",
    "hb", "stage",
)  # fmt: skip


def _luhn_digit(body: str) -> int:
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return (10 - total % 10) % 10


def registry_people(n_patients: int, seed: int) -> list[_Person]:
    """People of the demo registry (names, RRNs, phones, MRNs with valid formats)."""
    registry = synthetic.generate_registry(HOSPITAL, n_patients=n_patients, seed=seed)
    columns = [registry.column(name).to_pylist() for name in ("patient_name", "rrn", "phone", "mrn")]
    return [_Person(*values) for values in zip(*columns, strict=True)]


def generate_corpus(
    n_texts: int = 2000, n_tables: int = 3, n_table_rows: int = 1000, n_patients: int = 5000, seed: int = 2024
) -> Corpus:
    """The corpus: ``n_texts`` texts of 3-6 sentences and ``n_tables`` tables, about patients of a
    registry of ``n_patients`` (whose identifiers are the deny-list). Same arguments, same corpus."""
    rng = random.Random(seed)
    people = [person for person in registry_people(n_patients, seed) if person.name[0] in _LATIN_FAMILY_NAMES]
    generator = _Generator(rng, people, {person.mrn for person in people})
    texts = []
    for _ in range(n_texts):
        builder = _Builder()
        for _ in range(rng.randint(3, 6)):
            generator.sentence(builder)
        texts.append(builder.build())
    tables = tuple(generator.table(min(n_table_rows, len(people))) for _ in range(n_tables))
    deny_values = {
        "patient_name": [person.name for person in people],
        "rrn": [person.rrn for person in people],
        "phone": [person.phone for person in people],
        "mrn": [person.mrn for person in people],
    }
    return Corpus(tuple(texts), tables, deny_values)


def evaluate(scanner: PiiScanner, corpus: Corpus) -> dict[str, Score]:
    """Recall and precision per entity over the corpus.

    Texts: a planted span counts as found for each of its entities that a detection overlapping it
    has (a pattern detection whose value is also deny-listed counts for ``DENY_LIST`` too); a
    detection is right if it overlaps a span planted with its entity. Tables: a cell counts for the
    first of its entities and is found by a finding on it with any of them; a finding is right if
    its cell was planted with its rule.
    """
    scores = {entity: Score() for entity in ENTITIES}
    for sample in corpus.texts:
        detections = scanner.detect(sample.text)
        for span in sample.spans:
            overlapping = [d for d in detections if d.start < span.end and span.start < d.end]
            found = {d.entity for d in overlapping} | ({DENY} if any(d.kinds for d in overlapping) else set())
            for entity in span.entities:
                scores[entity].planted += 1
                scores[entity].found += entity in found
        for detection in detections:
            claims = [detection.entity] + ([DENY] if detection.kinds and detection.entity != DENY else [])
            for entity in claims:
                scores.setdefault(entity, Score()).reported += 1
                scores[entity].right += any(
                    entity in span.entities and detection.start < span.end and span.start < detection.end
                    for span in sample.spans
                )
    for labelled in corpus.tables:
        reported_cells: dict[tuple[str, str], set[str]] = {}
        for finding in scanner.scan_table(labelled.table, file="table.csv"):
            cell = cell_of(finding, labelled.table)
            if cell is None:
                continue
            reported_cells.setdefault(cell, set()).add(finding.rule)
            scores.setdefault(finding.rule, Score()).reported += 1
            scores[finding.rule].right += finding.rule in labelled.cells.get(cell, ())
        for cell, entities in labelled.cells.items():
            scores[entities[0]].planted += 1
            scores[entities[0]].found += bool(reported_cells.get(cell, set()) & set(entities))
    return scores


_CELL_LOCATION: Final = re.compile(r"row (\d+), column '(.*)'")


def cell_of(finding: Finding, table: pl.DataFrame) -> tuple[str, str] | None:
    """The (column, ``str(value)``) a table finding is located at (``None`` for a header)."""
    match = _CELL_LOCATION.fullmatch(finding.location)
    if match is None:
        return None
    column = match[2]
    return column, str(table.get_column(column)[int(match[1]) - 1])


def misses(scores: dict[str, Score]) -> list[str]:
    """The targets ``scores`` miss, in words (empty when all are met)."""
    missed = []
    for entity, score in scores.items():
        if entity in RECALL_TARGET_ENTITIES and score.recall < RECALL_TARGET:
            missed.append(f"{entity}: recall {score.recall:.3f} < {RECALL_TARGET}")
        if score.precision < PRECISION_TARGET:
            missed.append(f"{entity}: precision {score.precision:.3f} < {PRECISION_TARGET}")
    return missed
