"""The registry and the recognizer contract (privacy.pii.recognizers.base)."""

from __future__ import annotations

import re

import pytest
import regex

from privacy.pii import recognizers
from privacy.pii.matcher import PatternMatcher
from privacy.pii.recognizers import MrnRecognizer, PiiPatternRecognizer
from privacy.pii.recognizers.base import REPORT_THRESHOLD
from privacy.pii.registry import PATTERN_RECOGNIZERS, pattern_recognizers
from tests.privacy.pii.helpers import found

ALL = pattern_recognizers([r"HB\d{8}"])


def test_every_recognizer_class_is_registered_explicitly() -> None:
    defined = {
        value
        for value in vars(recognizers).values()
        if isinstance(value, type)
        and issubclass(value, PiiPatternRecognizer)
        and value is not PiiPatternRecognizer
    }
    assert defined == {*PATTERN_RECOGNIZERS, MrnRecognizer}
    assert [type(recognizer) for recognizer in pattern_recognizers()] == list(PATTERN_RECOGNIZERS)
    assert type(ALL[-1]) is MrnRecognizer


def test_entities_are_distinct_and_described() -> None:
    entities = [recognizer.ENTITY for recognizer in ALL]
    assert len(set(entities)) == len(entities)
    assert all(recognizer.DESCRIPTION and recognizer.name == type(recognizer).__name__ for recognizer in ALL)


@pytest.mark.parametrize("recognizer", ALL, ids=lambda recognizer: recognizer.ENTITY)
def test_patterns_compile_alike_in_re_and_regex(recognizer: PiiPatternRecognizer) -> None:
    for pattern in recognizer.patterns:
        assert re.compile(pattern.regex).groups == regex.compile(pattern.regex).groups
        assert 0 < pattern.score <= 1


@pytest.mark.parametrize("recognizer", ALL, ids=lambda recognizer: recognizer.ENTITY)
def test_prefilters_are_valid_rust_regexes(recognizer: PiiPatternRecognizer) -> None:
    assert recognizer.prefilter is not None
    assert PatternMatcher([recognizer]).prefilter(recognizer.ENTITY) == recognizer.prefilter


#: A value each recognizer that needs context would report with it.
NEEDS_CONTEXT_SAMPLES = {
    "KR_PASSPORT": "M123A4567",
    "KR_DRIVER_LICENSE": "11-23-456789-01",
    "DATE_OF_BIRTH": "1990-01-01",
}


def test_which_recognizers_need_context() -> None:
    assert {recognizer.ENTITY for recognizer in ALL if recognizer.NEEDS_CONTEXT} == set(NEEDS_CONTEXT_SAMPLES)


@pytest.mark.parametrize("entity", sorted(NEEDS_CONTEXT_SAMPLES))
def test_recognizers_needing_context_report_only_with_it(entity: str) -> None:
    recognizer = {recognizer.ENTITY: recognizer for recognizer in ALL}[entity]
    sample = NEEDS_CONTEXT_SAMPLES[entity]
    assert all(pattern.score < REPORT_THRESHOLD for pattern in recognizer.patterns)
    assert found(recognizer, sample) == []
    assert found(recognizer, f"{recognizer.context[0]}: {sample}") == [sample]
