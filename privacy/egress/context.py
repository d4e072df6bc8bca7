"""The inputs of the automatic checks beyond the files (light: the API process builds these)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from privacy.egress.provenance import ReleaseEvidence
from privacy.files import Limits
from privacy.sdc import SdcRules


@dataclass(frozen=True)
class SubmittedFile:
    name: str
    data: bytes


@dataclass(frozen=True)
class CheckContext:
    """What the checks need to know beyond the files; built by the API from its database."""

    releases: Mapping[str, ReleaseEvidence] = field(default_factory=dict)
    mrn_patterns: tuple[str, ...] = ()
    ner: bool = False
    limits: Limits = field(default_factory=Limits)
    sdc_rules: SdcRules = field(default_factory=SdcRules)
