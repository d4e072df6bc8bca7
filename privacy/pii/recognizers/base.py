"""The plug-in point for pattern recognizers: a Presidio ``PatternRecognizer`` plus what the fast path needs.

Scores follow Presidio: a match starts at its pattern's score; ``validate_result`` returning ``True``
(a check digit verified) raises it to 1, ``False`` drops the match, ``None`` keeps the score; a context
word adds :data:`CONTEXT_SIMILARITY_FACTOR` (to at least :data:`MIN_SCORE_WITH_CONTEXT`). A match is
reported from :data:`REPORT_THRESHOLD` on, both by the scanner's fast path and by the Presidio
analyzer built in :mod:`privacy.pii.analyzer`.

Context is decided here, once for both paths (:meth:`PiiPatternRecognizer.has_context`, also
Presidio's recognizer-level ``enhance_using_context``): a context word must be part of one of the
:data:`CONTEXT_WORDS_BEFORE` words (stop words not counted) before the match *and after the previous
match of the same recognizer*, so that in "born 1990-01-01, diagnosed 2015-03-02" only the first
date is a date of birth. Presidio's lemma-based enhancer would give both dates the birth context.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from typing import ClassVar, Final

from presidio_analyzer import Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from spacy.lang.en.stop_words import STOP_WORDS

#: Lowest score reported as a finding.
REPORT_THRESHOLD: Final = 0.5
#: Presidio's ``LemmaContextAwareEnhancer`` defaults.
CONTEXT_SIMILARITY_FACTOR: Final = 0.35
MIN_SCORE_WITH_CONTEXT: Final = 0.4
#: How many words before a match are searched for context words (Presidio's prefix count).
CONTEXT_WORDS_BEFORE: Final = 5
#: Characters before a match in which those words are looked for.
CONTEXT_WINDOW: Final = 160
_WORD: Final = re.compile(r"\w+")


def with_context(score: float) -> float:
    """The score of a match with a context word (Presidio's rule)."""
    return min(1.0, max(score + CONTEXT_SIMILARITY_FACTOR, MIN_SCORE_WITH_CONTEXT))


class PiiPatternRecognizer(PatternRecognizer):
    """Base of the scanner's pattern recognizers.

    A subclass sets

    * ``ENTITY`` — the entity name, which becomes the finding's ``rule``;
    * ``DESCRIPTION`` — what the entity is, in words, for finding messages;
    * ``PATTERNS`` — Presidio patterns; each must mean the same in Python's ``re`` (fast path, on NFKC
      text) and in the ``regex`` module (Presidio, on the original text);
    * ``CONTEXT`` — lower-case words that raise the score when one is part of a word shortly before
      the match (Presidio's substring matching);
    * ``PREFILTER`` — a Rust regex (Polars ``str.contains``, no look-around) that every raw table
      value a pattern could match also matches, or ``None`` to look at every value;
    * ``NEEDS_CONTEXT`` — ``True`` when no match reaches :data:`REPORT_THRESHOLD` without a context
      word, so table columns without one in their name are skipped;

    and overrides ``validate_result`` where the identifier carries a check digit or other structure.
    """

    ENTITY: ClassVar[str]
    DESCRIPTION: ClassVar[str]
    patterns: list[Pattern]  # set by PatternRecognizer.__init__
    PATTERNS: ClassVar[Sequence[Pattern]] = ()
    CONTEXT: ClassVar[Sequence[str]] = ()
    PREFILTER: ClassVar[str | None] = None
    NEEDS_CONTEXT: ClassVar[bool] = False

    def __init__(self, supported_language: str = "en", patterns: Sequence[Pattern] | None = None) -> None:
        # One language for everything: texts mix Korean and English, and context words of both are
        # matched as substrings of the words before a match.
        super().__init__(
            supported_entity=self.ENTITY,
            name=type(self).__name__,
            supported_language=supported_language,
            patterns=list(self.PATTERNS if patterns is None else patterns),
            context=[word.lower() for word in self.CONTEXT],
        )
        self.prefilter: str | None = self.PREFILTER

    def has_context(self, text: str, start: int, window_start: int = 0, extra: Sequence[str] = ()) -> bool:
        """Whether a context word is part of one of the words of ``text`` before ``start`` (from
        ``window_start`` on) or of an ``extra`` context word (a table's column name)."""
        if not self.context:
            return False
        keywords = [word.lower() for word in extra]
        if start > window_start:
            window = unicodedata.normalize(
                "NFKC", text[max(window_start, start - CONTEXT_WINDOW) : start]
            ).lower()
            keywords += [word for word in _WORD.findall(window) if word not in STOP_WORDS][
                -CONTEXT_WORDS_BEFORE:
            ]
        return any(word in keyword for word in self.context for keyword in keywords)

    def context_windows(self, spans: Sequence[tuple[int, int]]) -> list[int]:
        """For spans sorted by start, where each one's context window begins: the end of the last
        span that ends before it starts (0 if none)."""
        ends: list[int] = []
        windows = []
        for start, end in spans:
            before = bisect.bisect_right(ends, start)
            windows.append(ends[before - 1] if before else 0)
            bisect.insort(ends, end)
        return windows

    def enhance_using_context(
        self,
        text: str,
        raw_recognizer_results: list[RecognizerResult],
        other_raw_recognizer_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts | None,
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        """Presidio's hook: score this recognizer's results with :meth:`has_context`, and mark them
        so that Presidio's lemma-based enhancer leaves them alone."""
        results = sorted(raw_recognizer_results, key=lambda result: (result.start, result.end))
        windows = self.context_windows([(result.start, result.end) for result in results])
        for result, window_start in zip(results, windows, strict=True):
            if result.score < 1.0 and self.has_context(text, result.start, window_start, context or ()):
                result.score = with_context(result.score)
            result.recognition_metadata[RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY] = True
        return raw_recognizer_results
