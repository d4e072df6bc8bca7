"""File names the airlock accepts and refuses (privacy.files.validate_name)."""

from __future__ import annotations

import pytest

from privacy.files import BadFileName, validate_name

ACCEPTED = [
    "results.csv",
    "Table 1 - baseline.csv",
    "km_plot_2024-05-01.png",
    "생존분석_결과.csv",
    "환자수 요약 v2.parquet",
    "README",
    "a" * 251 + ".csv",  # 255 bytes
    "analysis.ipynb",
]

# (name, why, a word the message must contain)
REFUSED = [
    ("", "empty", "empty"),
    (".", "current directory", "not a file name"),
    ("..", "parent directory", "not a file name"),
    ("../x", "path traversal", "separator"),
    ("/etc/passwd", "absolute path", "separator"),
    ("dir\\file.csv", "Windows separator", "separator"),
    ("C:results.csv", "drive-relative Windows path", "':'"),
    ("report.csv:hidden", "NTFS alternate data stream", "':'"),
    ("a\x00b.csv", "NUL byte", "U+0000"),
    ("a\nb.csv", "line break", "U+000A"),
    ("a\u202ecsv.txt", "right-to-left override (shows as atxt.vsc)", "U+202E"),
    ("a\u200bb.csv", "zero-width space", "U+200B"),
    ("a\u2028b.csv", "line separator", "U+2028"),
    ("a\ue000.csv", "private use character", "U+E000"),
    ("a" * 300 + ".csv", "300 characters", "255 bytes"),
    ("가" * 86, "86 Hangul syllables are 258 UTF-8 bytes", "255 bytes"),
    ("\uff52\uff45\uff53\uff55\uff4c\uff54.csv", "full-width letters (ｒｅｓｕｌｔ.csv)", "U+FF52"),  # noqa: RUF001
    ("result\u00a0.csv", "no-break space", "U+00A0"),
    ("ﬁle.csv", "ligature", "U+FB01"),
    ("cafe\u0301.csv", "decomposed accent (NFD)", "NFC"),
    ("\u1112\u1161\u11ab.csv", "decomposed Hangul (NFD)", "NFC"),
    ("p\u0430tients.csv", "Cyrillic a among Latin letters", "cyrillic"),
    ("\u03c1atients.csv", "Greek rho among Latin letters", "greek"),
    (".hidden", "hidden file", "dot"),
    (".env.csv", "hidden file with extension", "dot"),
    ("results.csv.", "trailing dot", "ends with"),
    ("results.csv ", "trailing space", "ends with"),
    (" results.csv", "leading space", "starts with a space"),
]


@pytest.mark.parametrize("name", ACCEPTED)
def test_safe_names_are_returned_unchanged(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(("name", "why", "reason"), REFUSED, ids=[case[1] for case in REFUSED])
def test_unsafe_names_are_refused_with_the_reason(name: str, why: str, reason: str) -> None:
    with pytest.raises(BadFileName) as refused:
        validate_name(name)
    assert refused.value.rule == "bad_name"
    assert reason.lower() in str(refused.value).lower(), why
