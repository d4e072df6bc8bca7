"""Disclosure rules on numbers (privacy.sdc.rules): one table per rule, boundaries included."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from privacy.sdc import rules, stats, tables
from privacy.sdc.rules import (
    SdcRules,
    count_suggestion,
    fails_dof,
    fails_nk,
    fails_p_ratio,
    fails_threshold,
    fails_zero,
    nk_share,
    p_ratio_value,
    round_to,
)


@pytest.mark.parametrize("module", [rules, stats, tables], ids=lambda m: m.__name__)
def test_doctests(module: ModuleType) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_defaults_are_acro_and_opensafely() -> None:
    defaults = SdcRules()
    assert (defaults.threshold, defaults.p_ratio, defaults.nk_n, defaults.nk_k) == (10, 0.1, 2, 0.9)
    assert (defaults.zeros_are_disclosive, defaults.dof_threshold) == (True, 10)
    assert (defaults.redact_at_most, defaults.rounding_base) == (7, 5)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0},
        {"p_ratio": -0.1},
        {"p_ratio": 1.0},
        {"nk_n": 0},
        {"nk_k": 0.0},
        {"nk_k": 1.5},
        {"dof_threshold": -1},
        {"redact_at_most": -2},
        {"rounding_base": 0},
    ],
)
def test_rules_refuse_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SdcRules(**kwargs)  # type: ignore[arg-type]


# (n, threshold, fails)
THRESHOLD_CASES = [
    (9, 10, True),
    (10, 10, False),
    (11, 10, False),
    (1, 10, True),
    (0, 10, False),  # zeros are the zero rule's
    (4, 5, True),
    (5, 5, False),
]


@pytest.mark.parametrize(("n", "threshold", "fails"), THRESHOLD_CASES)
def test_threshold(n: int, threshold: int, fails: bool) -> None:
    assert fails_threshold(n, threshold) is fails


# (n, zeros_are_disclosive, fails)
ZERO_CASES = [(0, True, True), (0, False, False), (1, True, False), (0.0, True, True)]


@pytest.mark.parametrize(("n", "disclosive", "fails"), ZERO_CASES)
def test_zero(n: float, disclosive: bool, fails: bool) -> None:
    assert fails_zero(n, disclosive) is fails


# (n, total, top, fails, why)
P_RATIO_CASES = [
    (3, 160.0, [100.0, 50.0], False, "p exactly 0.1 is not below 0.1"),
    (3, 159.0, [100.0, 50.0], True, "p = 0.09"),
    (3, 161.0, [100.0, 50.0], False, "p = 0.11"),
    (2, 1000.0, [500.0, 500.0], True, "two contributors: each learns the other"),
    (2, 1000.0, [10.0, 10.0], True, "two contributors, whatever the values claim"),
    (1, 7.0, [7.0], True, "one contributor"),
    (0, 0.0, [], False, "no contributor: the zero rule's"),
    (30, 3.0, [0.1, 0.1], False, "evenly spread"),
    (12, 0.0, [0.0, 0.0], False, "all zero: no largest contribution to reveal"),
    (3, 10.0, [10.0, 0.0], True, "one holds everything"),
]


@pytest.mark.parametrize(
    ("n", "total", "top", "fails", "why"), P_RATIO_CASES, ids=[c[4] for c in P_RATIO_CASES]
)
def test_p_ratio(n: int, total: float, top: list[float], fails: bool, why: str) -> None:
    assert fails_p_ratio(n, total, top, 0.1) is fails


def test_p_ratio_value_is_the_remainder_over_the_largest() -> None:
    assert p_ratio_value(160.0, [100.0, 50.0]) == 0.1
    assert p_ratio_value(130.0, [100.0]) == pytest.approx(0.3)


# (n, total, top, nk_n, fails, why)
NK_CASES = [
    (12, 100.0, [60.0, 30.0], 2, False, "exactly 0.9 is not above 0.9"),
    (12, 100.0, [60.0, 31.0], 2, True, "0.91"),
    (12, 100.0, [60.0, 29.0], 2, False, "0.89"),
    (2, 10.0, [5.0, 5.0], 2, True, "no more contributors than n: they hold everything"),
    (12, 0.0, [0.0, 0.0], 2, False, "all zero: the zero rule's"),
    (12, 100.0, [50.0, 30.0], 3, True, "unlisted third taken as large as the second: 110% capped"),
    (12, 100.0, [50.0, 30.0], 1, False, "n = 1: 0.5"),
]


@pytest.mark.parametrize(
    ("n", "total", "top", "nk_n", "fails", "why"), NK_CASES, ids=[c[5] for c in NK_CASES]
)
def test_nk_dominance(n: int, total: float, top: list[float], nk_n: int, fails: bool, why: str) -> None:
    assert fails_nk(n, total, top, nk_n, 0.9) is fails


def test_nk_share_bounds_unlisted_contributions_from_above() -> None:
    assert nk_share(12, 100.0, [50.0, 30.0], 3) == 1.0
    assert nk_share(12, 200.0, [50.0, 30.0], 3) == pytest.approx(0.55)
    assert nk_share(2, 80.0, [50.0, 30.0], 3) == 1.0


# (dof, threshold, fails)
DOF_CASES = [(9, 10, True), (10, 10, False), (11, 10, False), (0, 10, True), (-2, 10, True), (9.5, 10, True)]


@pytest.mark.parametrize(("dof", "threshold", "fails"), DOF_CASES)
def test_dof(dof: float, threshold: int, fails: bool) -> None:
    assert fails_dof(dof, threshold) is fails


# (count, suggestion)
SUGGESTION_CASES = [
    (0, "redact (≤ 7)"),
    (7, "redact (≤ 7)"),
    (8, "round to 5 → 10"),
    (12, "round to 5 → 10"),
    (13, "round to 5 → 15"),
    (15, ""),
    (1234, "round to 5 → 1235"),
]


@pytest.mark.parametrize(("count", "suggestion"), SUGGESTION_CASES)
def test_opensafely_suggestions(count: int, suggestion: str) -> None:
    assert count_suggestion(count, SdcRules()) == suggestion


def test_suggestions_follow_the_configured_rules() -> None:
    custom = SdcRules(redact_at_most=-1, rounding_base=10)
    assert count_suggestion(3, custom) == "round to 10 → 0"
    assert count_suggestion(25, custom) == "round to 10 → 30"
    assert count_suggestion(25, SdcRules(rounding_base=1)) == ""


@pytest.mark.parametrize(("count", "base", "rounded"), [(12, 5, 10), (13, 5, 15), (15, 10, 20), (14, 10, 10)])
def test_round_to(count: int, base: int, rounded: int) -> None:
    assert round_to(count, base) == rounded
