"""The one place the enclave imports OpenDP and switches on its features.

Every other module reaches OpenDP through this one, so ``dp.enable_features`` is called exactly once in
the repository. ``contrib`` is needed for the Polars measurements (``make_private_lazyframe``), the
adaptive compositor and the accuracy helpers; no other feature (``floating-point``,
``honest-but-curious``) is enabled: float sums are computed on a fixed-point integer grid instead.

The ``noisy_*`` helpers are typed wrappers of OpenDP's Polars plugin (``pl.Expr.dp``), which mypy
cannot see because the namespace is registered at run time. Their ``scale`` is OpenDP's: the noise
scale in units of the expression's sensitivity to one row (OpenDP ≥ 0.14.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Final

import opendp.prelude as dp
import polars as pl
from opendp.extras.polars import DPExpr, Margin
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
]


def noisy_len(scale: float) -> pl.Expr:
    """Noisy number of rows (nulls included), as a signed Int64."""
    expr: pl.Expr = dp.polars.dp_len(scale=scale, signed=True)
    return expr


def noisy_count(expr: pl.Expr, scale: float) -> pl.Expr:
    """Noisy number of non-null values of ``expr``, as a signed Int64."""
    out: pl.Expr = DPExpr(expr).count(scale=scale, signed=True)
    return out


def noisy_sum(expr: pl.Expr, bounds: tuple[int, int], scale: float) -> pl.Expr:
    """Noisy sum of ``expr`` clamped to ``bounds`` (integer columns only: see the engine)."""
    out: pl.Expr = DPExpr(expr).sum(bounds, scale=scale)
    return out


def noisy_quantile(expr: pl.Expr, alpha: float, candidates: Sequence[float], scale: float) -> pl.Expr:
    """The candidate an exponential mechanism picks as the ``alpha``-quantile of ``expr``."""
    out: pl.Expr = DPExpr(expr).quantile(alpha, list(candidates), scale=scale)
    return out
