"""Korean driver's licence numbers (운전면허번호): ``RR-YY-NNNNNN-CC``."""

from __future__ import annotations

from typing import Final

from presidio_analyzer import Pattern

from privacy.pii.normalize import GROUP_SEPARATOR, SPACES
from privacy.pii.recognizers.base import PiiPatternRecognizer

#: Region codes 11-28 of the numeric form; older licences print the region's name instead.
_REGION_CODE: Final = r"(?:1[1-9]|2[0-8])"
_REGION_NAMES: Final = "서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산"
_REST: Final = rf"{GROUP_SEPARATOR}?\d{{2}}{GROUP_SEPARATOR}?\d{{6}}{GROUP_SEPARATOR}?\d{{2}}(?!\d)"


class KrDriverLicenseRecognizer(PiiPatternRecognizer):
    """Driver's licence numbers: region, year of issue, six serial digits and two check digits (whose
    rule is not public), reported only next to a context word (운전면허, licence)."""

    ENTITY = "KR_DRIVER_LICENSE"
    DESCRIPTION = "Korean driver's licence number"
    PATTERNS = (
        Pattern("Driver licence", rf"(?<!\d){_REGION_CODE}{_REST}", 0.3),
        Pattern("Driver licence (region name)", rf"(?<![가-힣])(?:{_REGION_NAMES})[{SPACES}]?{_REST}", 0.3),
    )
    CONTEXT = ("운전면허", "면허", "driver", "driving", "licence", "license")
    PREFILTER = r"(?:\d|\p{Hangul})\D{0,3}\d{2}\D{0,3}\d{6}"
    NEEDS_CONTEXT = True
