"""Shared by the recognizer tests: what a recognizer reports on the scanner's fast path."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from privacy.pii.matcher import PatternMatcher
from privacy.pii.normalize import NormalizedText
from privacy.pii.recognizers import PiiPatternRecognizer


def found(recognizer: PiiPatternRecognizer, text: str, context: Sequence[str] = ()) -> list[str]:
    """The pieces of ``text`` the recognizer reports (score at least the reporting threshold)."""
    detections = PatternMatcher([recognizer]).detect(NormalizedText.of(text), context)
    return [text[detection.start : detection.end] for detection in detections]


def prefilter_accepts(recognizer: PiiPatternRecognizer, value: str) -> bool:
    """Whether the recognizer's Polars prefilter lets ``value`` through to the patterns."""
    if recognizer.prefilter is None:
        return True
    return bool(pl.Series([value], dtype=pl.String).str.contains(recognizer.prefilter)[0])


def wide(text: str) -> str:
    """``text`` in full-width forms, as people write identifiers to hide them."""
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in text)
