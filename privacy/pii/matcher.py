"""The scanner's fast path: the recognizers' own patterns and checks, without Presidio's machinery.

Presidio's analyzer runs every pattern with the ``regex`` module over the original text and tokenises
it. :class:`PatternMatcher` compiles the same patterns with ``re``, runs them over the NFKC form of the
text (so full-width and other compatibility forms match), and calls the same ``validate_result``,
``invalidate_result`` and context rule
(:meth:`~privacy.pii.recognizers.base.PiiPatternRecognizer.has_context`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final

import polars as pl

from privacy.pii.normalize import NormalizedText
from privacy.pii.recognizers.base import CONTEXT_WINDOW, REPORT_THRESHOLD, PiiPatternRecognizer, with_context

#: Presidio's default flags for every pattern (``re`` and ``regex`` agree on their meaning).
PATTERN_FLAGS: Final = re.DOTALL | re.MULTILINE | re.IGNORECASE
#: From this length on, a text is cut into lines and each recognizer runs its patterns only on the
#: lines its prefilter accepts (Polars runs the prefilters in Rust, far faster than ``re``).
LINE_PREFILTER_FROM: Final = 16_384
#: Room after the last possible start of a match (identifiers are short and never span lines).
_LONGEST_MATCH: Final = 64


@dataclass(frozen=True, slots=True)
class Detection:
    """An entity found at ``[start, end)`` of the original text, with its score; ``kinds`` say under
    which keys a deny-listed value was listed."""

    entity: str
    start: int
    end: int
    score: float
    kinds: tuple[str, ...] = ()


class PatternMatcher:
    """Runs pattern recognizers over normalised texts."""

    def __init__(self, recognizers: Sequence[PiiPatternRecognizer]) -> None:
        self._compiled = {
            recognizer.ENTITY: (
                recognizer,
                tuple(
                    (re.compile(pattern.regex, PATTERN_FLAGS), pattern.score)
                    for pattern in recognizer.patterns
                ),
            )
            for recognizer in recognizers
        }
        self._prefilters = {
            recognizer.ENTITY: _valid_prefilter(recognizer.prefilter) for recognizer in recognizers
        }
        self._context_words = {
            recognizer.ENTITY: "|".join(map(re.escape, recognizer.context))
            for recognizer in recognizers
            if recognizer.NEEDS_CONTEXT
        }

    def prefilter(self, entity: str) -> str | None:
        """The entity's prefilter (Rust regex), or ``None`` if it has none or Polars rejects it."""
        return self._prefilters[entity]

    def detect(
        self,
        normalized: NormalizedText,
        context: Sequence[str] = (),
        entities: Collection[str] | None = None,
        *,
        per_line: bool = False,
    ) -> list[Detection]:
        """Every match scoring at least :data:`REPORT_THRESHOLD`, with offsets into the original text.

        ``context`` adds words that count as context for every match (a table's column name);
        ``entities`` restricts the recognizers run; ``per_line`` looks for context words on the
        match's own line only (each line a table value). Matches of one entity contained in another
        of the same entity are dropped, as Presidio does.
        """
        text = normalized.text
        lines = _Lines(text) if not per_line and len(text) >= LINE_PREFILTER_FROM else None
        detections = []
        for entity in self._compiled if entities is None else self._compiled.keys() & entities:
            recognizer, patterns = self._compiled[entity]
            spans = self._spans(text, entity, lines, needs_context=recognizer.NEEDS_CONTEXT and not context)
            matches = []  # (start, end, score) of valid matches, before context
            for pattern, pattern_score in patterns:
                for position, end_position in spans:
                    for match in pattern.finditer(text, position, end_position):
                        matched = match.group()
                        validated = recognizer.validate_result(matched)
                        if matched and validated is not False and not recognizer.invalidate_result(matched):
                            matches.append((match.start(), match.end(), 1.0 if validated else pattern_score))
            if not matches:
                continue
            if len(matches) == 1:
                windows = [0]
            else:
                matches.sort()
                windows = recognizer.context_windows([(start, end) for start, end, _ in matches])
            for (start, end, score), window_start in zip(matches, windows, strict=True):
                if per_line:
                    window_start = max(window_start, text.rfind("\n", 0, start) + 1)
                if score < 1.0 and recognizer.has_context(text, start, window_start, context):
                    score = with_context(score)
                if score >= REPORT_THRESHOLD:
                    detections.append(Detection(entity, *normalized.to_original(start, end), score))
        return remove_contained(detections) if len(detections) > 1 else detections

    def _spans(
        self, text: str, entity: str, lines: _Lines | None, *, needs_context: bool
    ) -> list[tuple[int, int]]:
        """Where the entity's patterns must run: for a recognizer that needs context, the reach of
        its context words (a match further away cannot be reported); in a long text, the lines its
        prefilter accepts; else everywhere. Spans end at line ends, so no match is cut short."""
        if needs_context:
            context_words = self._context_words[entity]
            # In a long text, Rust finds the lines with a context word and Python looks only there.
            regions = [(0, len(text))] if lines is None else lines.accepted(f"(?i){context_words}")
            finder = re.compile(context_words, re.IGNORECASE)
            spans: list[tuple[int, int]] = []
            for word in (word for start, stop in regions for word in finder.finditer(text, start, stop)):
                stop = text.find("\n", min(len(text), word.start() + CONTEXT_WINDOW + _LONGEST_MATCH))
                stop = len(text) if stop < 0 else stop
                if spans and word.end() <= spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(spans[-1][1], stop))
                else:
                    spans.append((word.end(), stop))
            return spans
        if lines is not None:
            return lines.accepted(self._prefilters[entity])
        return [(0, len(text))]


class _Lines:
    """A long text's lines as a Polars series, to run prefilters on."""

    def __init__(self, text: str) -> None:
        lines = text.split("\n")
        self.series = pl.Series(lines, dtype=pl.String)
        self.lengths = [len(line) for line in lines]
        self.starts = list(itertools.accumulate((length + 1 for length in self.lengths[:-1]), initial=0))

    def accepted(self, prefilter: str | None) -> list[tuple[int, int]]:
        """Spans of consecutive lines the prefilter accepts (all of the text without one)."""
        if prefilter is None:
            return [(0, self.starts[-1] + self.lengths[-1])]
        spans: list[tuple[int, int]] = []
        for index in self.series.str.contains(prefilter).arg_true().to_list():
            start, stop = self.starts[index], self.starts[index] + self.lengths[index]
            if spans and spans[-1][1] + 1 == start:
                spans[-1] = (spans[-1][0], stop)
            else:
                spans.append((start, stop))
        return spans


def _valid_prefilter(prefilter: str | None) -> str | None:
    """``prefilter`` if Polars (Rust regex syntax) accepts it, else ``None``."""
    if prefilter is None:
        return None
    try:
        pl.Series([""], dtype=pl.String).str.contains(prefilter)
    except pl.exceptions.PolarsError:
        return None
    return prefilter


def remove_contained(detections: list[Detection]) -> list[Detection]:
    """Drop duplicates and detections inside another of the same entity with at least their score,
    as ``EntityRecognizer.remove_duplicates`` does; the result is ordered by position.

    One sweep per entity in order of start (longest first): a detection is inside an earlier one
    exactly when an earlier one of at least its score reaches as far.
    """
    by_entity: dict[str, list[Detection]] = {}
    for detection in detections:
        by_entity.setdefault(detection.entity, []).append(detection)
    kept = []
    for group in by_entity.values():
        group.sort(key=lambda d: (d.start, -d.end, -d.score))
        reach: dict[float, int] = {}  # score → furthest end of the detections so far with that score
        furthest = 0
        for detection in group:
            if detection.start < furthest and any(
                end >= detection.end for score, end in reach.items() if score >= detection.score
            ):
                continue
            furthest = max(furthest, detection.end)
            kept.append(detection)
            reach[detection.score] = max(reach.get(detection.score, 0), detection.end)
    return sorted(kept, key=lambda d: (d.start, d.end, d.entity))
