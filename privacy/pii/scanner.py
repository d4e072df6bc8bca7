"""The PII scanner of the egress airlock: findings for texts and tables.

    scanner = PiiScanner(deny_list=DenyList.build(values), mrn_patterns=[r"HB\\d{8}"])
    findings = scanner.scan_text(notebook_cell_output, file="analysis.ipynb", location="cell 2 output 1")
    findings += scanner.scan_table(pl.read_csv(path), file="table.csv")

Structured identifiers and deny-listed values are :attr:`~privacy.findings.Severity.BLOCK` findings;
names found only by NER (``ner=True``) are :attr:`~privacy.findings.Severity.REVIEW` findings. No
finding holds an identifier in clear: excerpts mask every identifier found near the one reported.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence
from typing import Final

import polars as pl
from presidio_analyzer import AnalyzerEngine

from privacy.findings import Check, Finding, Severity, mask
from privacy.pii.analyzer import LANGUAGE, NER_ENTITIES, build_analyzer
from privacy.pii.deny_list import DenyList
from privacy.pii.matcher import Detection, PatternMatcher, remove_contained
from privacy.pii.normalize import NormalizedText
from privacy.pii.recognizers import DenyListRecognizer, KrPhoneRecognizer, PiiPatternRecognizer
from privacy.pii.registry import pattern_recognizers

#: Characters of context on each side of an identifier in an excerpt.
EXCERPT_CONTEXT: Final = 30
#: Longer detections than this may show partly in an excerpt window that does not reach their start.
_LONGEST_IDENTIFIER: Final = 256
#: spaCy refuses texts over 1,000,000 characters; NER runs on pieces of at most this size.
NER_CHUNK: Final = 100_000
SUGGESTION_BLOCK: Final = "Remove the identifier (or aggregate the data) and submit the output again."
SUGGESTION_REVIEW: Final = "Check whether this names a real person; remove the name if it does."
#: Integer cells of these lengths are RRNs that lost their leading zeros (people born 2000-2009).
_RRN_WITHOUT_LEADING_ZEROS: Final = (11, 12)
#: Integer cells of these lengths in a phone column are numbers that lost their trunk 0.
_PHONE_WITHOUT_TRUNK_ZERO: Final = (9, 10)
_NESTED: Final = (pl.List, pl.Array, pl.Struct, pl.Object, pl.Binary)


class PiiScanner:
    """Finds personal identifiers in texts and tables.

    ``deny_list`` holds the direct identifiers of the datasets the requester holds grants for;
    ``mrn_patterns`` the medical-record-number formats those datasets declare; ``ner`` adds spaCy's
    person-name recognition to :meth:`scan_text` (slower, REVIEW findings).
    """

    def __init__(
        self, deny_list: DenyList | None = None, mrn_patterns: Sequence[str] = (), ner: bool = False
    ) -> None:
        self.deny_list = deny_list
        self.recognizers = pattern_recognizers(mrn_patterns)
        self._matcher = PatternMatcher(self.recognizers)
        self._descriptions = {recognizer.ENTITY: recognizer.DESCRIPTION for recognizer in self.recognizers}
        self._descriptions[DenyListRecognizer.ENTITY] = DenyListRecognizer.DESCRIPTION
        self._analyzer = build_analyzer(ner=True) if ner else None
        self._table_filters = [
            _TableFilter(recognizer, self._matcher.prefilter(recognizer.ENTITY))
            for recognizer in self.recognizers
        ]

    def scan_text(self, text: str, *, file: str, location: str = "") -> list[Finding]:
        """Findings for every identifier in ``text``, in order of position.

        Each location reads ``line L, column C`` (1-based, characters), after ``location`` and a
        comma when given (``cell 2 output 1, line 3, column 14``).
        """
        detections = self.detect(text)
        if not detections:
            return []
        line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
        starts = [detection.start for detection in detections]
        findings = []
        for detection in detections:
            # Only detections near this one can appear in its excerpt.
            nearby = detections[
                bisect.bisect_left(
                    starts, detection.start - EXCERPT_CONTEXT - _LONGEST_IDENTIFIER
                ) : bisect.bisect_left(starts, detection.end + EXCERPT_CONTEXT)
            ]
            line = bisect.bisect_right(line_starts, detection.start)
            position = f"line {line}, column {detection.start - line_starts[line - 1] + 1}"
            findings.append(
                self._finding(
                    detection,
                    file=file,
                    location=f"{location}, {position}" if location else position,
                    message=self._message(detection),
                    excerpt=excerpt(text, detection.start, detection.end, nearby),
                )
            )
        return findings

    def scan_table(self, table: pl.DataFrame, *, file: str) -> list[Finding]:
        """Findings for the identifiers in ``table``'s column names and cells.

        Each column is scanned as a column: its distinct values once each, with the column name as
        context. There is at most one finding per column, entity and value, located at the first row
        holding the value (``row 12, column 'phone'``; rows count from 1) and saying how many rows
        hold it. A column whose name is itself an identifier is named by position (``column 3``).
        Integer columns are also read as RRNs that lost their leading zeros and, in phone columns, as
        phone numbers that lost their trunk 0.
        """
        findings: list[Finding] = []
        labels = []
        for index, name in enumerate(table.columns):
            header = [
                self._finding(
                    detection,
                    file=file,
                    location=f"header of column {index + 1}",
                    message=self._message(detection),
                    excerpt=excerpt(name, detection.start, detection.end, detections),
                )
                for detections in [self.detect(name)]
                for detection in detections
            ]
            findings += header
            labels.append(f"column {index + 1}" if header else f"column {name!r}")
        for name, label in zip(table.columns, labels, strict=True):
            findings += self._scan_column(table.get_column(name), label, file)
        return findings

    def detect(self, text: str) -> list[Detection]:
        """The detections behind :meth:`scan_text`: entity, offsets into ``text`` and score, ordered by
        position (deny-list hits on an identifier a pattern found are folded into its ``kinds``)."""
        normalized = NormalizedText.of(text)
        detections = self._matcher.detect(normalized)
        if self.deny_list is not None:
            detections += _deny_listed(self.deny_list, normalized)
        if self._analyzer is not None:
            detections += _named_entities(self._analyzer, text, detections)
        return sorted(fold_deny_list(detections), key=lambda d: (d.start, d.end, d.entity))

    def _scan_column(self, series: pl.Series, label: str, file: str) -> list[Finding]:
        strings = _cell_strings(series, phone_column=_is_phone_column(series.name))
        if strings is None:
            return []
        distinct = (
            pl.DataFrame({"value": strings})
            .with_row_index("row")
            .filter(pl.col("value").str.len_chars() > 0)
            .group_by("value", maintain_order=True)
            .agg(pl.col("row").first().alias("first"), pl.len().alias("rows"))
        )
        if distinct.height == 0:
            return []
        values = distinct.get_column("value")
        value_list: list[str] = values.to_list()
        detections_of: dict[int, list[Detection]] = {}

        # A cell that is a listed value (in any notation) is reported as such; the patterns look at
        # the other cells only, and the automaton for listed values inside them.
        unlisted = pl.Series([True] * len(value_list))
        if self.deny_list is not None:
            entity = DenyListRecognizer.ENTITY
            listed = self.deny_list.find_whole(value_list)
            for index, kinds in enumerate(listed):
                if kinds is not None:
                    detections_of[index] = [Detection(entity, 0, len(value_list[index]), 1.0, kinds)]
            unlisted = pl.Series([kinds is None for kinds in listed])
            rest = unlisted.arg_true().to_list()
            joined = "\n".join([value_list[index] for index in rest])
            hits = _deny_listed(self.deny_list, NormalizedText.of(joined)) if rest else []
            for at, detection in _per_value(hits, rest, value_list):
                detections_of.setdefault(rest[at], []).append(detection)

        for table_filter in self._table_filters:
            candidates = table_filter.candidates(values, series.name, unlisted).to_list()
            if candidates:
                # One pass of each pattern over the candidates joined by line breaks, which no
                # pattern crosses; context words count on a value's own line only.
                found = self._matcher.detect(
                    NormalizedText.of("\n".join([value_list[index] for index in candidates])),
                    (series.name,),
                    (table_filter.entity,),
                    per_line=True,
                )
                for at, detection in _per_value(found, candidates, value_list):
                    detections_of.setdefault(candidates[at], []).append(detection)

        first_rows = distinct.get_column("first").to_list()
        row_counts = distinct.get_column("rows").to_list()
        findings = []
        for index in sorted(detections_of):
            value, rows, detections = value_list[index], row_counts[index], detections_of[index]
            location = f"row {first_rows[index] + 1}, {label}"
            held = f"; {rows} {'row holds' if rows == 1 else 'rows hold'} this value"
            reported_detections = (
                detections if len(detections) == 1 else _one_per_entity(fold_deny_list(detections))
            )
            for reported in reported_detections:
                findings.append(
                    self._finding(
                        reported,
                        file=file,
                        location=location,
                        message=self._message(reported) + held,
                        excerpt=excerpt(value, reported.start, reported.end, detections),
                    )
                )
        return findings

    def _message(self, detection: Detection) -> str:
        description = self._descriptions.get(detection.entity)
        if description is None:
            return f"possible {detection.entity.lower()} name (named-entity recognition)"
        if detection.entity == DenyListRecognizer.ENTITY:
            return f"{description} (kind: {', '.join(detection.kinds)})"
        if detection.kinds:
            return f"{description}, listed in the granted datasets (kind: {', '.join(detection.kinds)})"
        return description

    @staticmethod
    def _finding(detection: Detection, *, file: str, location: str, message: str, excerpt: str) -> Finding:
        blocking = detection.entity not in NER_ENTITIES
        return Finding(
            check=Check.PII,
            rule=detection.entity,
            severity=Severity.BLOCK if blocking else Severity.REVIEW,
            file=file,
            location=location,
            message=message,
            excerpt=excerpt,
            suggestion=SUGGESTION_BLOCK if blocking else SUGGESTION_REVIEW,
            score=round(detection.score, 4),
        )


class _TableFilter:
    """A recognizer's vectorised prefilter over a column's distinct values."""

    def __init__(self, recognizer: PiiPatternRecognizer, prefilter: str | None) -> None:
        self.entity = recognizer.ENTITY
        self.prefilter = prefilter
        self.needs_context = recognizer.NEEDS_CONTEXT
        self.context_words = tuple(recognizer.context)

    def candidates(self, values: pl.Series, column: str, among: pl.Series) -> pl.Series:
        """Indices of the values (where ``among`` is true) this recognizer must look at in
        ``column``: those matching the prefilter and, for a recognizer that needs context, not
        missing it (the column name or the value holds a context word)."""
        selected = among & values.str.contains(self.prefilter) if self.prefilter else among
        if self.needs_context and not any(word in column.lower() for word in self.context_words):
            context = "(?i)" + "|".join(re.escape(word) for word in self.context_words)
            selected = selected & values.str.contains(context)
        return selected.arg_true()


def _one_per_entity(detections: list[Detection]) -> list[Detection]:
    """The best-scoring detection of each entity among a value's detections, with all their kinds."""
    reported = []
    for entity in dict.fromkeys(detection.entity for detection in detections):
        of_entity = [detection for detection in detections if detection.entity == entity]
        best = max(of_entity, key=lambda d: d.score)
        kinds = tuple(sorted({kind for detection in of_entity for kind in detection.kinds}))
        reported.append(Detection(entity, best.start, best.end, best.score, kinds))
    return reported


def fold_deny_list(detections: list[Detection]) -> list[Detection]:
    """Detections with each deny-list hit that spans exactly an identifier found by a pattern folded
    into that detection (its ``kinds``): one finding says both what it is and that it is listed.

    >>> fold_deny_list([Detection("KR_RRN", 0, 14, 1.0), Detection("DENY_LIST", 0, 14, 1.0, ("rrn",))])
    [Detection(entity='KR_RRN', start=0, end=14, score=1.0, kinds=('rrn',))]
    """
    deny = DenyListRecognizer.ENTITY
    if len(detections) == 2:  # the usual pair in a table cell: a pattern and the deny-list agree
        first, second = detections if detections[1].entity == deny else reversed(detections)
        if (
            first.entity != deny
            and second.entity == deny
            and (first.start, first.end) == (second.start, second.end)
        ):
            return [Detection(first.entity, first.start, first.end, first.score, second.kinds)]
    listed = {
        (detection.start, detection.end): detection.kinds
        for detection in detections
        if detection.entity == deny
    }
    if not listed:
        return detections
    folded = []
    spans_found = set()
    for detection in detections:
        kinds = listed.get((detection.start, detection.end))
        if detection.entity != deny and kinds is not None:
            spans_found.add((detection.start, detection.end))
            detection = Detection(detection.entity, detection.start, detection.end, detection.score, kinds)
        folded.append(detection)
    return [
        detection
        for detection in folded
        if detection.entity != deny or (detection.start, detection.end) not in spans_found
    ]


def excerpt(text: str, start: int, end: int, detections: Sequence[Detection]) -> str:
    """``text`` around ``[start, end)`` on one line, every detected identifier in view masked.

    The window widens to whole identifiers, so that none is shown half in clear. ``detections`` are
    sorted by start.

    >>> excerpt("RRN 900101-1234568 of Kim", 4, 18, [Detection("KR_RRN", 4, 18, 1.0)])
    'RRN 90**********68 of Kim'
    """
    if start == 0 and end == len(text):  # a whole table cell: nothing else to show (mask keeps 4)
        return " ".join(mask(text).split()).encode("utf-8", "replace").decode("utf-8")
    low, high = max(0, start - EXCERPT_CONTEXT), min(len(text), end + EXCERPT_CONTEXT)
    spans: list[list[int]] = []
    for detection in detections:
        if detection.start < high and low < detection.end:
            if spans and detection.start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], detection.end)
            else:
                spans.append([detection.start, detection.end])
    if spans:
        low, high = min(low, spans[0][0]), max(high, spans[-1][1])
    pieces, cursor = [], low
    for span_start, span_end in spans:
        pieces += [text[cursor:span_start], mask(text[span_start:span_end])]
        cursor = span_end
    pieces.append(text[cursor:high])
    # One line, and encodable: a lone surrogate in the text shows as "?".
    shown = " ".join("".join(pieces).split()).encode("utf-8", "replace").decode("utf-8")
    return ("…" if low > 0 else "") + shown + ("…" if high < len(text) else "")


def _deny_listed(deny_list: DenyList, normalized: NormalizedText) -> list[Detection]:
    entity = DenyListRecognizer.ENTITY
    return [Detection(entity, hit.start, hit.end, 1.0, hit.kinds) for hit in deny_list.find_in(normalized)]


def _named_entities(analyzer: AnalyzerEngine, text: str, found: Sequence[Detection]) -> list[Detection]:
    """NER results that do not overlap an identifier already found."""
    named = []
    for offset, piece in _pieces(text, NER_CHUNK):
        for result in analyzer.analyze(piece, language=LANGUAGE, entities=list(NER_ENTITIES)):
            start, end = offset + result.start, offset + result.end
            if not any(other.start < end and start < other.end for other in found):
                named.append(Detection(result.entity_type, start, end, float(result.score)))
    return remove_contained(named)


def _per_value(
    detections: list[Detection], indices: list[int], values: list[str]
) -> list[tuple[int, Detection]]:
    """Detections in ``values[i] for i in indices`` joined by line breaks, as (position in
    ``indices``, detection with offsets into that value); one crossing into the next value is dropped."""
    starts = list(itertools.accumulate((len(values[index]) + 1 for index in indices[:-1]), initial=0))
    located = []
    for detection in detections:
        at = bisect.bisect_right(starts, detection.start) - 1
        offset = starts[at]
        if detection.end <= offset + len(values[indices[at]]):
            start, end = detection.start - offset, detection.end - offset
            located.append((at, Detection(detection.entity, start, end, detection.score, detection.kinds)))
    return located


def _is_phone_column(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in KrPhoneRecognizer.CONTEXT)


def _cell_strings(series: pl.Series, *, phone_column: bool) -> pl.Series | None:
    """The column's cells as strings (``None`` for a column that cannot hold an identifier)."""
    dtype = series.dtype
    if dtype in (pl.Boolean, pl.Null):
        return None
    if isinstance(dtype, _NESTED) or dtype in _NESTED:
        return pl.Series([None if cell is None else str(cell) for cell in series.to_list()], dtype=pl.String)
    if dtype.is_float():
        present = series.drop_nulls()
        # Whole numbers that fit an Int64 exactly (an RRN as a float is one).
        whole = present.is_finite() & (present == present.floor()) & (present.abs() < 1e15)
        if present.len() and whole.all():
            series = series.cast(pl.Int64)
            dtype = series.dtype
    if not dtype.is_integer():
        return series.cast(pl.String)
    strings = pl.col("cell").cast(pl.String)
    length = strings.str.len_chars()
    natural = pl.col("cell") >= 0
    padded = (
        pl.when(natural & length.is_in(_RRN_WITHOUT_LEADING_ZEROS))
        .then(strings.str.zfill(13))
        .when(natural & length.is_in(_PHONE_WITHOUT_TRUNK_ZERO) & pl.lit(phone_column))
        .then(pl.lit("0") + strings)
        .otherwise(strings)
    )
    return pl.DataFrame({"cell": series}).select(padded.alias("value")).get_column("value")


def _pieces(text: str, size: int) -> list[tuple[int, str]]:
    """``text`` cut into pieces of at most ``size`` characters, at line ends where possible."""
    pieces = []
    start = 0
    while start < len(text):
        stop = min(len(text), start + size)
        if stop < len(text):
            newline = text.rfind("\n", start, stop)
            stop = newline + 1 if newline > start else stop
        pieces.append((start, text[start:stop]))
        start = stop
    return pieces
