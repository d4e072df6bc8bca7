"""The deny-list as a Presidio recognizer, so that Presidio's analyzer finds what the scanner finds."""

from __future__ import annotations

from typing import Final

from presidio_analyzer import EntityRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts

from privacy.pii.deny_list import DenyList

#: Result metadata key holding the kinds (``name``, ``rrn``...) the value was listed under.
KINDS_KEY: Final = "deny_list_kinds"


class DenyListRecognizer(EntityRecognizer):
    """Finds the values of a :class:`~privacy.pii.deny_list.DenyList` (entity ``DENY_LIST``, score 1)."""

    ENTITY: Final = "DENY_LIST"
    name: str  # set by EntityRecognizer.__init__
    DESCRIPTION: Final = "value from the deny-list of the granted datasets"

    def __init__(self, deny_list: DenyList, supported_language: str = "en") -> None:
        self.deny_list = deny_list
        super().__init__(supported_entities=[self.ENTITY], supported_language=supported_language)

    def load(self) -> None:
        """Nothing to load: the deny-list is built by its owner."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        """One result per deny-listed value standing as a word in ``text``."""
        return [
            RecognizerResult(
                entity_type=self.ENTITY,
                start=hit.start,
                end=hit.end,
                score=1.0,
                recognition_metadata={
                    RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                    RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    KINDS_KEY: hit.kinds,
                },
            )
            for hit in self.deny_list.find(text)
        ]
