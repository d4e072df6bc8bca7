"""Analytic noise calibration and accuracy: closed forms, no search.

OpenDP's Polars measurements take a ``global_scale`` in units of each statistic's sensitivity to one
row. At global scale ``g`` a noisy count, sum or histogram (discrete Laplace) costs ``ε = d_in / g`` and
a quantile (exponential mechanism on a non-monotonic score) ``ε = 2 d_in / g``, where ``d_in`` is the
number of rows one person may contribute; losses of the statistics of one measurement add up.
:func:`noise_scale` inverts that sum. The engine never trusts these formulas alone: it evaluates
OpenDP's privacy map on the measurement it built.
"""

from __future__ import annotations

import math
from typing import Final

#: Relative headroom left between a calibrated loss and its budget, so that floating-point rounding
#: in OpenDP's map (a sum of per-statistic losses) can never push the total over the budget.
SAFETY: Final = 1e-9
#: Privacy-loss units of the statistics, in multiples of ``d_in / g``: a mean is a noisy sum and a
#: noisy count; the exponential mechanism's score is not monotonic, which doubles its loss.
UNITS: Final = {"count": 1, "sum": 1, "histogram": 1, "mean": 2, "quantile": 2}
#: Largest threshold OpenDP accepts (a u32).
MAX_THRESHOLD: Final = 2**32 - 1


def noise_scale(epsilon: float, rows_per_person: int, units: int = 1) -> float:
    """The OpenDP ``global_scale`` at which statistics worth ``units`` (see :data:`UNITS`) cost
    ``epsilon / (1 + SAFETY)`` together, when one person contributes ``rows_per_person`` rows."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"epsilon must be positive and finite, got {epsilon}")
    return units * rows_per_person / epsilon * (1 + SAFETY)


def key_threshold(scale: float, rows_per_person: int, delta: float) -> int:
    """The noisy-count threshold above which a private group key may be released with loss ``delta``.

    A person can create at most ``d = rows_per_person`` groups that the neighbouring dataset lacks,
    holding at most ``d`` rows together. Each is released only if its count plus discrete Laplace noise
    of scale ``b`` reaches the threshold ``T``; ``P[Z ≥ t] = e^(-t/b) / (1 + e^(-1/b))``, so by the
    union bound and convexity ``δ ≤ d · e^(-(T-d)/b) / (1 + e^(-1/b))``. Solving for ``T`` gives the
    result (rounded up); OpenDP's own, tighter accounting is then checked by its map.
    """
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    d = rows_per_person
    tail = math.log(d / (delta * (1 + math.exp(-1 / scale))))
    threshold = math.ceil(d + scale * max(tail, 0.0))
    if threshold > MAX_THRESHOLD:
        raise ValueError(f"delta {delta:g} is too small for noise scale {scale:g}")
    return threshold


def laplace_accuracy(scale: float, alpha: float) -> float:
    """Half-width of the ``1 - alpha`` interval of discrete Laplace noise of (absolute) ``scale``.

    ``P[|Z| ≥ t] = 2·e^(-t/b) / (1 + e^(-1/b))``, solved for ``t`` at ``alpha``: the same closed form
    as OpenDP's ``discrete_laplacian_scale_to_accuracy``, which overflows to ``-inf`` at tiny scales
    (huge ε); here the half-width then tends to 0, as the noise does.

    >>> round(laplace_accuracy(1.0, 0.05), 4), laplace_accuracy(1e-6, 0.05) < 1e-5
    (3.3756, True)
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if scale <= 0:
        return 0.0
    return max(0.0, scale * math.log(2.0 / (alpha * (1.0 + math.exp(-1.0 / scale)))))


def quantile_rank_accuracy(scale: float, q: float, candidates: int, alpha: float) -> float:
    """Rank error, in rows, that the exponential-mechanism quantile exceeds with probability ≤ ``alpha``.

    OpenDP scores candidate ``c`` as ``|(1-q)·#{x < c} - q·#{x > c}|`` times the denominator ``D`` of
    its rational ``q``, so one row moves a score by at most ``D·max(q, 1-q)`` (the sensitivity) and one
    rank step by ``D``. At global ``scale`` the mechanism adds exponential noise of ``scale`` times the
    sensitivity to each score and keeps the smallest; a candidate worse than the best by ``t`` wins with
    probability at most ``e^(-t/(scale·sensitivity))``, so by the union bound the released candidate's
    rank is within ``scale · max(q, 1-q) · ln(candidates / alpha)`` rows of the best candidate's.
    """
    return scale * max(q, 1 - q) * math.log(candidates / alpha)
