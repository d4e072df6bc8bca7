"""The one place the enclave imports OpenDP and switches on its features.

Every other module reaches OpenDP through this one, so ``dp.enable_features`` is called exactly once in
the repository. ``contrib`` is needed for the Polars measurements (``make_private_lazyframe``), the
adaptive compositor and the accuracy helpers; no other feature (``floating-point``,
``honest-but-curious``) is enabled: float sums are computed on a fixed-point integer grid instead.

The ``noisy_*`` helpers are typed wrappers of OpenDP's Polars plugin (``pl.Expr.dp``), which mypy
cannot see because the namespace is registered at run time. They leave the noise scale to the
measurement's ``global_scale``, which OpenDP multiplies by each expression's own sensitivity. (An
explicit per-expression scale would be absolute, and a quantile's score sensitivity depends on how
OpenDP rationalises ``alpha``, so one relative scale per plan is the robust choice.)
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Final

import opendp.prelude as dp
import polars as pl
from opendp.extras.polars import DPExpr, Margin, dp_len
from opendp.mod import Measurement, OpenDPException

dp.enable_features("contrib")

OPENDP_VERSION: Final = version("opendp")

__all__ = [
    "OPENDP_VERSION",
    "Margin",
    "Measurement",
    "OpenDPException",
    "dp",
    "noisy_count",
    "noisy_len",
    "noisy_quantile",
    "noisy_sum",
    "privacy_loss",
]


def noisy_len() -> pl.Expr:
    """Noisy number of rows (nulls included), as a signed Int64."""
    out: pl.Expr = dp_len(signed=True)
    return out


def noisy_count(expr: pl.Expr) -> pl.Expr:
    """Noisy number of non-null values of ``expr``, as a signed Int64."""
    out: pl.Expr = _dp(expr).count(signed=True)
    return out


def noisy_sum(expr: pl.Expr, bounds: tuple[int, int]) -> pl.Expr:
    """Noisy sum of ``expr`` clamped to ``bounds`` (sensitivity ``max(|lower|, |upper|)``)."""
    out: pl.Expr = _dp(expr).sum(bounds)
    return out


def noisy_quantile(expr: pl.Expr, alpha: float, candidates: Sequence[float]) -> pl.Expr:
    """The candidate an exponential mechanism picks as the ``alpha``-quantile of ``expr``."""
    out: pl.Expr = _dp(expr).quantile(alpha, list(candidates))
    return out


def privacy_loss(measurement: Measurement, d_in: int) -> tuple[float, float]:
    """OpenDP's privacy map of ``measurement`` at ``d_in`` as ``(ε, δ)`` (``δ = 0`` for pure DP)."""
    loss = measurement.map(d_in)  # type: ignore[no-untyped-call]  # OpenDP leaves map() unannotated
    if isinstance(loss, tuple):
        return float(loss[0]), float(loss[1])
    return float(loss), 0.0


def _dp(expr: pl.Expr) -> DPExpr:
    return DPExpr(expr)  # type: ignore[no-untyped-call]  # OpenDP leaves DPExpr.__init__ unannotated
