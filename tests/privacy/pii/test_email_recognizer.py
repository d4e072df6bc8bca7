"""EmailRecognizer."""

from __future__ import annotations

import pytest

from privacy.pii.recognizers import EmailRecognizer
from tests.privacy.pii.helpers import found, prefilter_accepts, wide

RECOGNIZER = EmailRecognizer()

CASES = [
    ("mail kim.minjun@example.co.kr today", "kim.minjun@example.co.kr", "plain"),
    ("<Jane_Doe+onco@Hospital.ORG>", "Jane_Doe+onco@Hospital.ORG", "plus tag, capitals, brackets"),
    ("이메일: star98@naver.com입니다", "star98@naver.com", "followed by Hangul"),
    (wide("kim@example.com"), wide("kim@example.com"), "full-width"),
    ("logo@2x.png", None, "image file name"),
    ("user@localhost", None, "no top-level domain"),
    ("a..b@example.com", None, "empty dot-separated piece"),
    ("x@-example.com", None, "domain label starting with a hyphen"),
    ("@example.com", None, "no local part"),
    ("version 1.2.3, ratio 3.4", None, "no at sign"),
]


@pytest.mark.parametrize(("text", "expected", "why"), CASES, ids=[case[2] for case in CASES])
def test_email_recognizer(text: str, expected: str | None, why: str) -> None:
    assert found(RECOGNIZER, text) == ([expected] if expected else []), why


@pytest.mark.parametrize("text", [text for text, expected, _ in CASES if expected])
def test_prefilter_lets_every_positive_through(text: str) -> None:
    assert prefilter_accepts(RECOGNIZER, text)
