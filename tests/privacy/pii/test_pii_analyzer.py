"""build_analyzer: Presidio with exactly our recognizers, agreeing with the scanner's fast path."""

from __future__ import annotations

import pytest
import spacy
from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine

from privacy.pii import DenyList, build_analyzer
from privacy.pii.analyzer import NER_MODEL, InstalledSpacyNlpEngine, PatternOnlyNlpEngine
from privacy.pii.matcher import PatternMatcher
from privacy.pii.normalize import NormalizedText
from privacy.pii.registry import PATTERN_RECOGNIZERS, pattern_recognizers

DENY_VALUES = {"patient_name": ["김민준"], "rrn": ["900101-1234568"], "phone": ["010-2345-6789"]}
MRN_PATTERNS = [r"HB\d{8}"]

SAMPLE = """환자 김민준님의 주민번호는 900101-1234568 입니다. FRN 880307-5123566.
Kim Minjun, tel +82 10-2345-6789, 02-2345-6789, email kim.minjun@example.co.kr
생년월일: 1990-01-01, diagnosed 2015-03-02. MRN HB01234567. 여권 M123A4567, card 4111 1111 1111 1111
BRN 124-81-00998, 사업자번호 2208102765, 운전면허 11-23-456789-01, spaced 9 0 0 1 0 1 - 1 2 3 4 5 6 8.
Clean: ISBN 978-89-546-3201-4, order 1900101-12345689, part M12345678, lab 12.5 mg/dL, p = 0.023456789."""


@pytest.fixture(scope="module")
def deny_list() -> DenyList:
    return DenyList.build(DENY_VALUES)


@pytest.fixture(scope="module")
def analyzer(deny_list: DenyList) -> AnalyzerEngine:
    return build_analyzer(False, deny_list=deny_list, mrn_patterns=MRN_PATTERNS)


def test_registry_holds_exactly_our_recognizers(analyzer: AnalyzerEngine) -> None:
    names = sorted(recognizer.name for recognizer in analyzer.registry.recognizers)
    expected = [recognizer.__name__ for recognizer in PATTERN_RECOGNIZERS] + [
        "DenyListRecognizer",
        "MrnRecognizer",
    ]
    assert names == sorted(expected)
    assert isinstance(analyzer.nlp_engine, PatternOnlyNlpEngine)


def test_fast_path_and_presidio_agree(analyzer: AnalyzerEngine, deny_list: DenyList) -> None:
    presidio = sorted(
        (r.entity_type, r.start, r.end, round(r.score, 6)) for r in analyzer.analyze(SAMPLE, "en")
    )
    matcher = PatternMatcher(pattern_recognizers(MRN_PATTERNS))
    ours = [(d.entity, d.start, d.end, round(d.score, 6)) for d in matcher.detect(NormalizedText.of(SAMPLE))]
    ours += [("DENY_LIST", hit.start, hit.end, 1.0) for hit in deny_list.find(SAMPLE)]
    assert presidio == sorted(ours)
    assert {entity for entity, *_ in presidio} == {
        "DENY_LIST", "KR_RRN", "KR_FRN", "KR_PHONE", "EMAIL_ADDRESS", "DATE_OF_BIRTH", "MRN", "KR_PASSPORT",
        "CREDIT_CARD", "KR_BRN", "KR_DRIVER_LICENSE",
    }  # fmt: skip


def test_batch_analysis_uses_the_column_name_as_context(analyzer: AnalyzerEngine) -> None:
    batch = BatchAnalyzerEngine(analyzer)
    results = {
        result.key: result.recognizer_results
        for result in batch.analyze_dict({"birth_date": ["1990-01-01"], "visit": ["1990-01-01"]}, "en")
    }
    assert [[r.entity_type for r in cell] for cell in results["birth_date"]] == [["DATE_OF_BIRTH"]]
    assert results["visit"] == [[]]


def test_ner_uses_the_installed_model_and_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a spaCy model download was attempted")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    analyzer = build_analyzer(True)
    assert isinstance(analyzer.nlp_engine, InstalledSpacyNlpEngine)
    assert analyzer.nlp_engine.models == [{"lang_code": "en", "model_name": NER_MODEL}]
    results = analyzer.analyze("Dr. Emily Clark reviewed the scan in Seoul.", "en", entities=["PERSON"])
    assert [(r.entity_type, r.start, r.end) for r in results] == [("PERSON", 4, 15)]

    missing = InstalledSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "en_no_such_model_xyz"}])
    with pytest.raises(OSError, match="en_no_such_model_xyz"):
        missing.load()


def test_pattern_only_engine_tokenises_without_a_model() -> None:
    engine = PatternOnlyNlpEngine()
    assert not engine.is_loaded()
    with pytest.raises(RuntimeError, match="before load"):
        engine.process_text("x", "en")
    engine.load()
    artifacts = engine.process_text("Date of Birth: 1990", "en")
    assert artifacts.lemmas == ["date", "of", "birth", ":", "1990"]
    assert artifacts.entities == []
    assert engine.get_supported_entities() == []
    assert engine.get_supported_languages() == ["en"]
    assert engine.is_stopword("of", "en") and engine.is_punct(":", "en")
