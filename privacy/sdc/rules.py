"""Disclosure-control rules as pure functions on numbers, and the thresholds they apply.

The defaults follow ACRO/SACRO (at least 10 per cell, p-ratio 0.1, nk-dominance with n = 2 and
k = 0.9, at least 10 residual degrees of freedom, zeros disclosive) and OpenSAFELY's release
suggestions (redact counts ≤ 7, round the others to the nearest 5).

Magnitude rules take a cell's number of contributors ``n``, its ``total`` and its largest
contributions ``top`` (descending). All are absolute values, so that a large negative contribution
dominates a cell exactly as a large positive one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SdcRules:
    """Thresholds of the disclosure checks; the defaults are ACRO's and OpenSAFELY's."""

    #: Smallest acceptable count, and smallest number of contributors to a magnitude cell.
    threshold: int = 10
    #: p% rule: a cell is disclosive when (total - top1 - top2) / top1 < ``p_ratio``.
    p_ratio: float = 0.1
    #: nk-dominance: a cell is disclosive when its ``nk_n`` largest contributions exceed ``nk_k``
    #: of its total.
    nk_n: int = 2
    nk_k: float = 0.9
    #: Flag zeros: a zero count tells that nobody in a group has the attribute. Turn off only where
    #: all zeros are structural (impossible combinations).
    zeros_are_disclosive: bool = True
    #: Smallest acceptable number of residual degrees of freedom of a model output.
    dof_threshold: int = 10
    #: Counts at or below this are suggested for redaction (OpenSAFELY).
    redact_at_most: int = 7
    #: Other counts are suggested rounded to the nearest multiple of this; 1 turns rounding off.
    rounding_base: int = 5

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if not 0.0 <= self.p_ratio < 1.0:
            raise ValueError("p_ratio must be in [0, 1)")
        if self.nk_n < 1:
            raise ValueError("nk_n must be at least 1")
        if not 0.0 < self.nk_k <= 1.0:
            raise ValueError("nk_k must be in (0, 1]")
        if self.dof_threshold < 0:
            raise ValueError("dof_threshold must not be negative")
        if self.redact_at_most < -1:
            raise ValueError("redact_at_most must be -1 (never redact) or more")
        if self.rounding_base < 1:
            raise ValueError("rounding_base must be at least 1")


def fails_threshold(n: int, threshold: int) -> bool:
    """Whether a non-zero count (or number of contributors) ``n`` is below ``threshold``.

    Zero is left to :func:`fails_zero`, so that one cell breaks one rule.

    >>> fails_threshold(9, 10), fails_threshold(10, 10), fails_threshold(0, 10)
    (True, False, False)
    """
    return 0 < n < threshold


def fails_zero(n: float, zeros_are_disclosive: bool) -> bool:
    """Whether ``n`` is a zero that the rules treat as disclosive.

    >>> fails_zero(0, True), fails_zero(0, False), fails_zero(3, True)
    (True, False, False)
    """
    return zeros_are_disclosive and n == 0


def p_ratio_value(total: float, top: Sequence[float]) -> float:
    """(total - top1 - top2) / top1: how closely the second-largest contributor can estimate the largest.

    ``top`` must hold at least the largest contribution, and it must be positive.

    >>> p_ratio_value(160.0, [100.0, 50.0])
    0.1
    """
    second = top[1] if len(top) > 1 else 0.0
    return (total - top[0] - second) / top[0]


def fails_p_ratio(n: int, total: float, top: Sequence[float], p: float) -> bool:
    """Whether a magnitude cell breaks the p% rule (p-ratio below ``p``).

    With fewer than three contributors each one can subtract its own value and learn the other's,
    so such a cell is disclosive whatever its values. A cell whose contributions are all zero has no
    largest contribution to reveal; :func:`fails_zero` deals with it.

    >>> fails_p_ratio(3, 159.0, [100.0, 50.0], 0.1)
    True
    >>> fails_p_ratio(3, 160.0, [100.0, 50.0], 0.1)
    False
    >>> fails_p_ratio(2, 1000.0, [500.0, 500.0], 0.1)
    True
    """
    if n < 3:
        return n > 0
    if not top or top[0] <= 0.0:
        return False
    return p_ratio_value(total, top) < p


def nk_share(n: int, total: float, top: Sequence[float], nk_n: int) -> float:
    """Share of ``total`` held by the ``nk_n`` largest contributions, or 0 for an all-zero cell.

    When ``top`` lists fewer than ``nk_n`` values but more contributors exist, each missing one is
    taken as large as the smallest listed: an upper bound, so the rule never passes by missing data.

    >>> nk_share(5, 100.0, [60.0, 30.0], 2)
    0.9
    >>> nk_share(5, 100.0, [60.0, 30.0], 3)
    1.0
    """
    if total <= 0.0:
        return 0.0
    listed = list(top[:nk_n])
    missing = min(nk_n, n) - len(listed)
    if missing > 0 and listed:
        listed.extend([listed[-1]] * missing)
    return min(sum(listed) / total, 1.0)


def fails_nk(n: int, total: float, top: Sequence[float], nk_n: int, k: float) -> bool:
    """Whether the ``nk_n`` largest contributions hold more than ``k`` of the cell total.

    >>> fails_nk(5, 100.0, [60.0, 30.0], 2, 0.9), fails_nk(5, 100.0, [60.0, 31.0], 2, 0.9)
    (False, True)
    """
    return nk_share(n, total, top, nk_n) > k


def fails_dof(dof: float, threshold: int) -> bool:
    """Whether a model's residual degrees of freedom are below ``threshold``.

    >>> fails_dof(9, 10), fails_dof(10, 10)
    (True, False)
    """
    return dof < threshold


def round_to(count: int, base: int) -> int:
    """``count`` rounded to the nearest multiple of ``base``, halves upwards.

    >>> round_to(12, 5), round_to(13, 5), round_to(15, 10)
    (10, 15, 20)
    """
    return (count + base // 2) // base * base


def count_suggestion(count: int, rules: SdcRules) -> str:
    """What OpenSAFELY would do with ``count`` before release: redact, round, or nothing ("").

    >>> count_suggestion(7, SdcRules()), count_suggestion(13, SdcRules()), count_suggestion(15, SdcRules())
    ('redact (≤ 7)', 'round to 5 → 15', '')
    """
    if count <= rules.redact_at_most:
        return f"redact (≤ {rules.redact_at_most})"
    if count % rules.rounding_base:
        return f"round to {rules.rounding_base} → {round_to(count, rules.rounding_base)}"
    return ""
