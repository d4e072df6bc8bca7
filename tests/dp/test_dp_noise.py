"""The noise OpenDP actually draws matches the calibration, and the closed forms match OpenDP's maps.

The empirical checks release a count 400 times on a 20-row frame at ε = 0.1: discrete Laplace noise
of scale ``t = 10``. Two statistics, each tested at a false-alarm rate below 1e-6:

* the mean absolute noise: for Laplace noise ``2 Σ|z| / E|z|`` is χ²(2n) (exactly for the continuous
  law; the discrete law's |z| has a variance within 0.5% of the exponential's at t = 10);
* the sample variance ``Σz²/n`` (the true count is known, so the noise is observed exactly): its
  standard deviation follows from the exact fourth moment; the tolerance is 5.3 of them. Its upper
  tail is heavier than normal, but exceeding 1.6 σ² needs a single |z| ≳ 23 t, which has probability
  ≈ 400 e^-23 ≈ 4e-8.

Both reject the noise of a scale 2x too large, and the same noise judged against a scale 4x too large
(i.e. noise at half the expected scale): so a wrong calibration cannot pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

from enclave_api.metadata import DatasetMetadata, parse_metadata
from privacy.dp import QueryRequest, calibration, compile_query, validate_against
from privacy.dp._opendp import Margin, dp

RELEASES = 400
EPSILON = 0.1
SCALE = 1 / EPSILON  # discrete Laplace scale of a lone count at d_in = 1
ROWS = 20
FALSE_ALARM = 1e-6
Z = stats.norm.isf(FALSE_ALARM / 2)


@pytest.fixture(scope="module")
def dataset() -> tuple[pl.DataFrame, DatasetMetadata]:
    frame = pl.DataFrame({"x": list(range(ROWS))})
    meta = parse_metadata(
        {
            "id": "noise",
            "title": "Noise",
            "custodian_org": "hanbit-cancer-center",
            "tier": "query_only",
            "columns": [{"name": "x", "type": "int", "role": "attribute", "bounds": [0, 100]}],
        }
    )
    return frame, meta


def count_noise(
    dataset: tuple[pl.DataFrame, DatasetMetadata],
    releases: int = RELEASES,
    epsilon: float = EPSILON,
    others: tuple[dict[str, Any], ...] = (),
) -> np.ndarray:
    """Released count minus the true count, for ``releases`` independent releases of the count (first)
    and the ``others`` aggregates, which must share its plan."""
    frame, meta = dataset
    aggregates = [{"fn": "count", "as": "n"}, *others]
    request = QueryRequest.model_validate(
        {"dataset_id": "noise", "epsilon": epsilon, "query": {"aggregates": aggregates}}
    )
    compiled = compile_query(validate_against(request, meta))
    assert len(compiled.plans) == 1
    return np.array([compiled.release(frame).rows[0][0] - ROWS for _ in range(releases)], dtype=np.float64)


def discrete_laplace_moments(scale: float) -> tuple[float, float, float]:
    """E|z|, E z², E z⁴ of OpenDP's discrete Laplace, P(z = k) ∝ exp(-|k| / scale)."""
    k = np.arange(-int(80 * scale) - 10, int(80 * scale) + 11, dtype=np.float64)
    weights = np.exp(-np.abs(k) / scale)
    p = weights / weights.sum()
    return float(p @ np.abs(k)), float(p @ k**2), float(p @ k**4)


def variance_matches(noise: np.ndarray, scale: float) -> bool:
    _, second, fourth = discrete_laplace_moments(scale)
    spread = math.sqrt((fourth - second**2) / len(noise))
    return abs(float(np.mean(noise**2)) - second) <= Z * spread


def mean_absolute_matches(noise: np.ndarray, scale: float) -> bool:
    first, _, _ = discrete_laplace_moments(scale)
    statistic = 2 * float(np.sum(np.abs(noise))) / first
    dof = 2 * len(noise)
    return bool(stats.chi2.ppf(FALSE_ALARM / 2, dof) <= statistic <= stats.chi2.isf(FALSE_ALARM / 2, dof))


def test_moments_match_the_closed_forms() -> None:
    first, second, _ = discrete_laplace_moments(SCALE)
    p = math.exp(-1 / SCALE)
    assert first == pytest.approx(2 * p / (1 - p**2))
    assert second == pytest.approx(2 * p / (1 - p) ** 2)


def test_count_noise_has_the_calibrated_variance(dataset: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    noise = count_noise(dataset)
    assert variance_matches(noise, SCALE)
    assert mean_absolute_matches(noise, SCALE)
    assert abs(noise.mean()) <= Z * math.sqrt(discrete_laplace_moments(SCALE)[1] / RELEASES)


def test_count_noise_keeps_its_scale_in_a_merged_plan(dataset: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    # A count (1 unit) and a quantile (2 units) at 3ε share one plan and one pass over the data; the
    # count's share is ε, so its noise has the scale of a lone count at ε.
    quantile = {"fn": "quantile", "column": "x", "q": 0.5, "as": "median"}
    noise = count_noise(dataset, epsilon=3 * EPSILON, others=(quantile,))
    assert variance_matches(noise, SCALE)
    assert mean_absolute_matches(noise, SCALE)


def test_a_wrong_scale_fails_the_checks(
    dataset: tuple[pl.DataFrame, DatasetMetadata], monkeypatch: pytest.MonkeyPatch
) -> None:
    calibrated: Callable[..., float] = calibration.noise_scale
    monkeypatch.setattr(calibration, "noise_scale", lambda *args: 2 * calibrated(*args))
    noise = count_noise(dataset)  # twice the noise: still private, so it is released
    assert variance_matches(noise, 2 * SCALE)  # ... with the doubled scale's variance
    assert not variance_matches(noise, SCALE)
    assert not mean_absolute_matches(noise, SCALE)
    assert not variance_matches(noise, 4 * SCALE)  # noise at half the expected scale is caught too
    assert not mean_absolute_matches(noise, 4 * SCALE)


@pytest.mark.parametrize("scale", [0.01, 0.05, 0.3, 1.0, 7.5, 120.0, 1e5])
@pytest.mark.parametrize("alpha", [0.05, 0.025, 0.001])
def test_laplace_accuracy_matches_opendp(scale: float, alpha: float) -> None:
    expected = dp.discrete_laplacian_scale_to_accuracy(scale, alpha)
    assert calibration.laplace_accuracy(scale, alpha) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("scale", [1e-2, 1e-3, 1e-4, 1e-8, 0.0])
def test_laplace_accuracy_stays_finite_where_opendp_overflows(scale: float) -> None:
    accuracy = calibration.laplace_accuracy(scale, 0.05)
    assert math.isfinite(accuracy) and 0 <= accuracy <= scale * math.log(2 / 0.05) + 1e-12


def test_laplace_accuracy_covers_the_noise() -> None:
    """The half-width holds ≥ 95% of real discrete Laplace draws (OpenDP's sampler)."""
    scale = 2.0
    domain, metric = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
    noise = dp.m.make_noise(domain, metric, dp.max_divergence(), scale=scale)
    draws = np.array(noise([0] * 20_000))
    covered = np.mean(np.abs(draws) <= calibration.laplace_accuracy(scale, 0.05))
    assert 0.94 <= covered <= 0.97


def test_noise_scale_inverts_the_laplace_loss() -> None:
    assert calibration.noise_scale(0.5, 1) == pytest.approx(2.0)
    assert calibration.noise_scale(1.0, 3, units=4) == pytest.approx(12.0)
    assert calibration.noise_scale(1.0, 1) > 1.0  # the safety headroom
    with pytest.raises(ValueError, match="epsilon"):
        calibration.noise_scale(0.0, 1)


@pytest.mark.parametrize("rows_per_person", [1, 2, 5])
@pytest.mark.parametrize("scale", [0.5, 3.0, 20.0])
@pytest.mark.parametrize("delta", [1e-9, 1e-6, 1e-3])
def test_key_threshold_is_within_opendps_delta(rows_per_person: int, scale: float, delta: float) -> None:
    threshold = calibration.key_threshold(scale, rows_per_person, delta)
    domain = dp.lazyframe_domain([dp.series_domain("k", dp.option_domain(dp.atom_domain(T="String")))])
    domain = dp.with_margin(domain, Margin(by=["k"], max_groups=1000))
    plan = pl.LazyFrame(schema={"k": pl.String}).group_by("k").agg(dp.polars.dp_len(signed=True))
    measurement = dp.m.make_private_lazyframe(
        domain,
        dp.symmetric_distance(),
        dp.approximate(dp.max_divergence()),
        plan,
        global_scale=scale,
        threshold=threshold,
    )
    epsilon, opendp_delta = measurement.map(rows_per_person)
    assert epsilon == pytest.approx(rows_per_person / scale)
    assert opendp_delta <= delta
    # not wastefully high: a threshold a few noise scales lower would already exceed δ
    lower = max(threshold - math.ceil(2 * scale) - 1, 0)
    lowered = dp.m.make_private_lazyframe(
        domain,
        dp.symmetric_distance(),
        dp.approximate(dp.max_divergence()),
        plan,
        global_scale=scale,
        threshold=lower,
    )
    assert lowered.map(rows_per_person)[1] > delta


def test_key_threshold_refuses_impossible_deltas() -> None:
    with pytest.raises(ValueError, match="delta"):
        calibration.key_threshold(1.0, 1, 0.0)
    with pytest.raises(ValueError, match="too small"):
        calibration.key_threshold(1e9, 1, 1e-300)


def test_quantile_rank_accuracy_formula() -> None:
    # scale 2, q = 0.25: max(q, 1-q) = 0.75; 101 candidates at alpha 0.05
    assert calibration.quantile_rank_accuracy(2.0, 0.25, 101, 0.05) == pytest.approx(1.5 * math.log(2020))
