"""Disclosure checks on one output table: small counts, zeros, dominant contributors, and what to do.

Tables arrive as text (every column a string, as parsed from CSV, TSV or Parquet). Without contributor
statistics only count cells are checked: the cells of columns whose name says they count (``n``,
``patients``, ``n_deaths``, ``event_count``, ``환자수``...) and whose every value is a non-negative
integer, or the whole body of a crosstab whose header row holds category labels (two or more columns
of unnamed non-negative integers beside label columns). Means, percentages and coefficients are not
checked on their own, but a percentage beside a disclosive count is flagged, as the count can be
recomputed from it. With a :class:`~privacy.sdc.stats.TableStats` sidecar the cells
it describes are also checked for the number of contributors, the p-ratio and nk-dominance.

Locations count data rows from 1 (the header row not included) and name the row's labels:
``row 3 (stage='II', sex='F'), column 'n'``. Sidecars index rows from 0.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import Enum, auto
from pathlib import PurePath
from typing import Final

import polars as pl

from privacy.findings import Check, Finding, Severity
from privacy.sdc.rules import (
    SdcRules,
    count_suggestion,
    fails_nk,
    fails_p_ratio,
    fails_threshold,
    fails_zero,
    nk_share,
    p_ratio_value,
)
from privacy.sdc.stats import CellStats, TableStats

# Names are split into lower-case words; camelCase counts as two words.
_WORD: Final = re.compile(r"[a-z0-9]+|[가-힣]+|%")
_CAMEL: Final = re.compile(r"(?<=[a-z])(?=[A-Z])")

_COUNT_FIRST: Final = frozenset({"n", "num", "number", "count", "counts", "cnt", "nb", "freq", "frequency"})
# Not "number": "phone_number" and "case_number" are identifiers.
_COUNT_LAST: Final = frozenset({"n", "count", "counts", "cnt", "freq", "frequency"})
# Plural nouns that, anywhere in a name, say that people or events were counted.
# fmt: off
_COUNTED: Final = frozenset({
    "patients", "cases", "events", "deaths", "people", "persons", "individuals", "subjects",
    "participants", "respondents", "admissions", "births", "records", "visits", "episodes",
    "명", "건", "회", "인원", "빈도",
})
# Korean words ending in 수 that are no count (score, index, coefficient, variable...).
_KOREAN_NOT_COUNTS: Final = frozenset(
    {"점수", "지수", "계수", "변수", "함수", "분수", "정수", "상수", "소수", "배수", "호수", "차수"}
)
_PERCENT_WORDS: Final = frozenset({
    "pct", "percent", "percentage", "prop", "proportion", "%", "비율", "백분율",
})
_MEASURE_WORDS: Final = _PERCENT_WORDS | frozenset({
    "sum", "amount", "cost", "mean", "avg", "average", "median", "sd", "std", "stdev", "se", "sem",
    "var", "variance", "min", "max", "iqr", "q1", "q3", "rate", "ratio", "per", "coef", "coefficient", "beta",
    "estimate", "or", "hr", "rr", "ci", "lower", "upper", "lcl", "ucl", "p", "pvalue", "score",
    "평균", "중앙값", "표준편차", "율",
})
_LABEL_WORDS: Final = frozenset({
    "group", "grp", "category", "cat", "id", "code", "year", "quarter", "month", "week", "day",
    "date", "age", "band", "stage", "sex", "gender", "region", "area", "level", "type", "class",
    "label", "name", "site", "구분", "분류", "연도", "년도", "연령", "연령대", "성별", "지역", "시도",
})
# fmt: on

# Missing values and cells already suppressed (``<8``, ``*``, ``[REDACTED]``, ONS's ``[c]``).
_BLANK: Final = re.compile(
    r"|na|n/a|nan|null|none|-|\u2013|\u2014|\.|\*+|\[?redacted\]?|suppressed|\[c\]|[<≤]=?\s*\d+",
    re.IGNORECASE,
)
_COUNT: Final = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.0*)?")
# Clinical "Table 1" cells: "12 (4.5%)" — the count is the number before the bracket.
_COUNT_WITH_PERCENT: Final = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)\s*\(\s*\d+(?:\.\d+)?\s*%?\s*\)")

_MAX_LABELS: Final = 3
_MAX_LABEL_CHARS: Final = 30
_MAX_EXCERPT_CHARS: Final = 60


class _Kind(Enum):
    COUNT = auto()
    PERCENT = auto()
    MEASURE = auto()
    LABEL = auto()
    # Unnamed non-negative integers: counts if the whole table body is made of them (a crosstab).
    BODY = auto()
    EMPTY = auto()


def is_count_name(name: str) -> bool:
    """Whether a column name says that its values count people or events.

    >>> [is_count_name(name) for name in ("n", "N_deaths", "event_count", "nPatients", "환자 수", "인원(명)")]
    [True, True, True, True, True, True]
    >>> [is_count_name(name) for name in ("mean_age", "pct_patients", "events_per_year", "점수", "성명")]
    [False, False, False, False, False]
    """
    words = _words(name)
    if not words:
        return False
    # "n (%)" heads clinical tables whose cells read "12 (4.5%)": a count despite the percent sign.
    measures = [word for word in words if word in _MEASURE_WORDS and not (word == "%" and words[0] == "n")]
    if measures:
        return False
    korean = any(word.endswith("수") and word not in _KOREAN_NOT_COUNTS for word in words)
    return korean or words[0] in _COUNT_FIRST or words[-1] in _COUNT_LAST or any(w in _COUNTED for w in words)


def count_columns(table: pl.DataFrame, stats: TableStats | None = None) -> list[str]:
    """The columns of ``table`` whose cells :func:`check_table` checks as counts, in table order."""
    layout = _Layout.of(table, stats)
    return [name for name in table.columns if layout.kinds[name] is _Kind.COUNT]


def check_table(
    table: pl.DataFrame,
    *,
    file: str,
    stats: TableStats | None = None,
    rules: SdcRules = SdcRules(),
) -> list[Finding]:
    """Disclosure findings for ``table`` (read from ``file``), ordered by row and column.

    Count cells: a zero gives rule ``zero``, a count below the threshold ``threshold`` (both
    :attr:`~privacy.findings.Severity.REVIEW`, suggesting redaction or rounding), and a percentage
    beside either ``percentage``; a passing count that OpenSAFELY would still redact or round gives an
    :attr:`~privacy.findings.Severity.INFO` ``redact`` or ``rounding`` suggestion. Cells described by
    ``stats`` are checked for ``threshold`` and ``zero`` on their contributors and, with magnitudes,
    ``p_ratio`` and ``nk_dominance``; statistics that do not fit the table give ``stats_mismatch``.
    A count-named column holding something other than counts gives an INFO ``not_a_count``.
    Missing, empty and already suppressed cells are skipped.
    """
    layout = _Layout.of(table, stats)
    checker = _TableChecker(table, layout, file=file, rules=rules)
    checker.check_counts()
    if stats is not None:
        checker.check_stats(stats)
    return checker.sorted_findings()


@dataclass(frozen=True, slots=True)
class _Layout:
    """The role of every column, read from its name and its values."""

    texts: dict[str, list[str | None]]
    kinds: dict[str, _Kind]
    # Count-named columns with a value that is no count: (0-based row, the value).
    not_counts: dict[str, tuple[int, str]]

    @classmethod
    def of(cls, table: pl.DataFrame, stats: TableStats | None) -> _Layout:
        texts = {name: [_text(value) for value in table.get_column(name).to_list()] for name in table.columns}
        not_counts: dict[str, tuple[int, str]] = {}
        kinds = {name: _classify(name, values, not_counts) for name, values in texts.items()}
        # Whole-valued sums look like counts; statistics with magnitudes say they are not.
        magnitudes = {
            column for (_, column), cell in (stats.cells if stats else {}).items() if cell.total is not None
        }
        for name in magnitudes & kinds.keys():
            if kinds[name] is _Kind.BODY:
                kinds[name] = _Kind.MEASURE
        # A crosstab spreads categories over at least two columns; a lone unnamed number ("value") is
        # no frequency table.
        body = [name for name, kind in kinds.items() if kind is _Kind.BODY]
        is_crosstab = len(body) >= 2 and all(
            kind in (_Kind.LABEL, _Kind.BODY, _Kind.EMPTY) for kind in kinds.values()
        )
        for name in body:
            kinds[name] = _Kind.COUNT if is_crosstab else _Kind.MEASURE
        return cls(texts=texts, kinds=kinds, not_counts=not_counts)


class _TableChecker:
    """Collects the findings of one table, each with its (row, column position) for ordering."""

    def __init__(self, table: pl.DataFrame, layout: _Layout, *, file: str, rules: SdcRules) -> None:
        self.layout = layout
        self.file = file
        self.rules = rules
        self.height = table.height
        self.positions = {name: position for position, name in enumerate(table.columns)}
        self.labels = [name for name, kind in layout.kinds.items() if kind is _Kind.LABEL][:_MAX_LABELS]
        self.percentages = _percentages_by_count(table.columns, layout.kinds)
        self.findings: list[tuple[int, int, Finding]] = []

    def check_counts(self) -> None:
        for column, (row, value) in self.layout.not_counts.items():
            self._add(
                "not_a_count",
                Severity.INFO,
                f"column {column!r} is named like a count but row {row + 1} holds {_short(value)!r}: "
                "its cells were not checked as counts",
                column=column,
                location=f"column {column!r}",
                excerpt=_short(value),
            )
        for column, kind in self.layout.kinds.items():
            if kind is not _Kind.COUNT:
                continue
            for row, text in enumerate(self.layout.texts[column]):
                count = _as_count(text)
                if count is not None:
                    self._check_count(row, column, count)

    def _check_count(self, row: int, column: str, count: int) -> None:
        rules = self.rules
        suggestion = count_suggestion(count, rules)
        if fails_zero(count, rules.zeros_are_disclosive):
            self._add(
                "zero",
                Severity.REVIEW,
                "zero count: it tells that nobody in this group has the attribute (zeros are disclosive)",
                row=row,
                column=column,
                suggestion=f"{suggestion or 'suppress'}, unless the zero is structural",
            )
        elif fails_threshold(count, rules.threshold):
            self._add(
                "threshold",
                Severity.REVIEW,
                f"count {count} is below the minimum cell count of {rules.threshold}",
                row=row,
                column=column,
                suggestion=suggestion or "suppress, or combine categories",
            )
        else:
            # A zero that passes is structural by configuration: nothing to redact.
            if suggestion and count > 0:
                if count <= rules.redact_at_most:
                    rule, detail = "redact", f"at most {rules.redact_at_most}"
                else:
                    rule, detail = "rounding", f"not a multiple of {rules.rounding_base}"
                self._add(
                    rule,
                    Severity.INFO,
                    f"count {count} is {detail}",
                    row=row,
                    column=column,
                    suggestion=suggestion,
                )
            return
        for percentage in self.percentages.get(column, []):
            shown = self.layout.texts[percentage][row]
            if shown is not None and not _is_blank(shown):
                self._add(
                    "percentage",
                    Severity.REVIEW,
                    f"percentage {_short(shown)} beside the disclosive count {count} in column {column!r} "
                    "lets the count be recomputed",
                    row=row,
                    column=percentage,
                    suggestion=f"redact together with {column!r}",
                )

    def check_stats(self, stats: TableStats) -> None:
        if stats.table and stats.table != PurePath(self.file).name:
            self._add(
                "stats_mismatch",
                Severity.REVIEW,
                f"the statistics describe {stats.table!r}, not this file",
                location="sidecar",
            )
        for (row, column), cell in sorted(stats.cells.items()):
            if column not in self.positions or row >= self.height:
                self._add(
                    "stats_mismatch",
                    Severity.REVIEW,
                    f"the statistics describe row {row + 1}, column {column!r}, "
                    "which the table does not have",
                    location="sidecar",
                )
                continue
            if self.layout.kinds[column] is _Kind.COUNT:
                self._check_count_stats(row, column, cell)
            else:
                self._check_contributors(row, column, cell)
            if cell.total is not None and cell.n > 0:
                self._check_magnitudes(row, column, cell, cell.total)

    def _check_count_stats(self, row: int, column: str, cell: CellStats) -> None:
        # The count check has judged the visible value already; the statistics must agree with it.
        count = _as_count(self.layout.texts[column][row])
        if count is not None and count != cell.n:
            self._add(
                "stats_mismatch",
                Severity.REVIEW,
                f"the table shows {count} but the statistics claim {cell.n} contributors",
                row=row,
                column=column,
            )

    def _check_contributors(self, row: int, column: str, cell: CellStats) -> None:
        rules = self.rules
        if fails_zero(cell.n, rules.zeros_are_disclosive):
            self._add(
                "zero",
                Severity.REVIEW,
                "no contributors: the cell tells that nobody is in this group",
                row=row,
                column=column,
                suggestion="suppress, unless the empty group is structural",
            )
        elif fails_threshold(cell.n, rules.threshold):
            self._add(
                "threshold",
                Severity.REVIEW,
                f"{cell.n} contributors, below the minimum of {rules.threshold}",
                row=row,
                column=column,
                suggestion=f"suppress, or combine categories until ≥ {rules.threshold} contribute",
            )

    def _check_magnitudes(self, row: int, column: str, cell: CellStats, total: float) -> None:
        rules = self.rules
        if total == 0.0:
            if rules.zeros_are_disclosive:
                self._add(
                    "zero",
                    Severity.REVIEW,
                    f"all {cell.n} contributions are zero: the cell tells that nobody in this group has any",
                    row=row,
                    column=column,
                    suggestion="suppress, unless the zero is structural",
                )
            return
        if fails_p_ratio(cell.n, total, cell.top, rules.p_ratio):
            if cell.n < 3:
                why = f"only {cell.n} contributor(s): each can subtract its own value and learn the others'"
            else:
                why = (
                    f"p-ratio {p_ratio_value(total, cell.top):.4g} < {rules.p_ratio}: the second largest "
                    "contributor can estimate the largest closely"
                )
            self._add(
                "p_ratio",
                Severity.REVIEW,
                why,
                row=row,
                column=column,
                suggestion="suppress, or combine categories so that no contribution can be estimated",
            )
        if fails_nk(cell.n, total, cell.top, rules.nk_n, rules.nk_k):
            share = nk_share(cell.n, total, cell.top, rules.nk_n)
            self._add(
                "nk_dominance",
                Severity.REVIEW,
                f"the {rules.nk_n} largest contributions hold {share:.1%} of the total, "
                f"above k = {rules.nk_k:.0%}",
                row=row,
                column=column,
                suggestion=(
                    f"suppress, or combine categories until the {rules.nk_n} largest hold ≤ {rules.nk_k:.0%}"
                ),
            )

    def _add(
        self,
        rule: str,
        severity: Severity,
        message: str,
        *,
        row: int = -1,
        column: str = "",
        location: str = "",
        suggestion: str = "",
        excerpt: str | None = None,
    ) -> None:
        """Record a finding; without an explicit ``location`` it is the cell at ``row``, ``column``."""
        if not location:
            labels = ", ".join(self._label(name, row) for name in self.labels)
            location = f"row {row + 1}{f' ({labels})' if labels else ''}, column {column!r}"
        if excerpt is None:
            excerpt = _short(self.layout.texts[column][row] or "") if row >= 0 else ""
        finding = Finding(
            check=Check.SDC,
            rule=rule,
            severity=severity,
            file=self.file,
            location=location,
            message=message,
            excerpt=excerpt,
            suggestion=suggestion,
        )
        self.findings.append((row, self.positions.get(column, -1), finding))

    def _label(self, name: str, row: int) -> str:
        value = repr(_short(self.layout.texts[name][row] or "", _MAX_LABEL_CHARS))
        # A pandas index written to CSV has an empty header; its values still name the row.
        return f"{name}={value}" if name.strip() else value

    def sorted_findings(self) -> list[Finding]:
        # Table-wide findings first, then by row and column; sorting is stable, so within one cell
        # the rules keep the order in which they were checked.
        return [finding for _, _, finding in sorted(self.findings, key=lambda item: (item[0], item[1]))]


def _classify(name: str, values: list[str | None], not_counts: dict[str, tuple[int, str]]) -> _Kind:
    present = [(row, text) for row, text in enumerate(values) if text is not None and not _is_blank(text)]
    count_named = is_count_name(name)
    if not present:
        return _Kind.COUNT if count_named else _Kind.EMPTY
    numeric = all(_as_number(text) is not None for _, text in present)
    if count_named:
        bad = next(((row, text) for row, text in present if _as_count(text) is None), None)
        if bad is None:
            return _Kind.COUNT
        not_counts[name] = bad
        return _Kind.MEASURE if numeric else _Kind.LABEL
    if not numeric:
        return _Kind.LABEL
    words = set(_words(name))
    if words & _PERCENT_WORDS:
        return _Kind.PERCENT
    if words & _MEASURE_WORDS:
        return _Kind.MEASURE
    if words & _LABEL_WORDS:
        return _Kind.LABEL
    if all(_as_count(text) is not None for _, text in present):
        return _Kind.BODY
    return _Kind.MEASURE


def _percentages_by_count(columns: list[str], kinds: dict[str, _Kind]) -> dict[str, list[str]]:
    """Each percentage column, attached to the nearest count column (the left one on a tie)."""
    counts = [position for position, name in enumerate(columns) if kinds[name] is _Kind.COUNT]
    attached: dict[str, list[str]] = {}
    if not counts:
        return attached
    for position, name in enumerate(columns):
        if kinds[name] is _Kind.PERCENT:
            nearest = min(counts, key=lambda count: (abs(count - position), count > position))
            attached.setdefault(columns[nearest], []).append(name)
    return attached


def _words(name: str) -> list[str]:
    return _WORD.findall(_CAMEL.sub("_", name).lower())


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _is_blank(text: str) -> bool:
    return _BLANK.fullmatch(text.strip()) is not None


def _as_count(text: str | None) -> int | None:
    """The non-negative integer ``text`` shows, or None (blank, negative, fractional, not a number)."""
    if text is None:
        return None
    stripped = text.strip()
    match = _COUNT.fullmatch(stripped) or _COUNT_WITH_PERCENT.fullmatch(stripped)
    return int(match.group(1).replace(",", "")) if match else None


def _as_number(text: str) -> float | None:
    stripped = text.strip().removesuffix("%").strip()
    if _COUNT.fullmatch(stripped):
        stripped = stripped.replace(",", "")
    try:
        number = float(stripped)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _short(text: str, limit: int = _MAX_EXCERPT_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
