"""The labelled corpus of the benchmark, smaller: the scanner meets the recall and precision targets."""

from __future__ import annotations

import pytest

from benchmarks import pii_corpus
from privacy.pii import PiiScanner


@pytest.fixture(scope="module")
def corpus() -> pii_corpus.Corpus:
    return pii_corpus.generate_corpus(n_texts=200, n_tables=1, n_table_rows=150, n_patients=1500)


def test_scanner_meets_the_targets(corpus: pii_corpus.Corpus) -> None:
    scores = pii_corpus.evaluate(
        PiiScanner(deny_list=corpus.deny_list(), mrn_patterns=corpus.mrn_patterns), corpus
    )
    assert all(scores[entity].planted >= 20 for entity in pii_corpus.ENTITIES), scores
    assert pii_corpus.misses(scores) == []


def test_the_targets_can_be_missed(corpus: pii_corpus.Corpus) -> None:
    """Without the deny-list and the MRN formats, deny-listed names and MRNs go unreported."""
    scores = pii_corpus.evaluate(PiiScanner(), corpus)
    missed = pii_corpus.misses(scores)
    assert any(miss.startswith("DENY_LIST: recall") for miss in missed)
    assert any(miss.startswith("MRN: recall") for miss in missed)


def test_corpus_is_deterministic() -> None:
    first = pii_corpus.generate_corpus(n_texts=5, n_tables=1, n_table_rows=5, n_patients=200)
    again = pii_corpus.generate_corpus(n_texts=5, n_tables=1, n_table_rows=5, n_patients=200)
    assert first.texts == again.texts
    assert first.tables[0].table.equals(again.tables[0].table)
