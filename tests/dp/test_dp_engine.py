"""The DP engine end to end on real OpenDP: semantics, correctness against the truth, keys, privacy checks.

Semantics are checked exactly on a tiny typed dataset at ε = 10⁴, where OpenDP's noise is (with
overwhelming probability) zero on counts and below 0.01 on sums. Accuracy is checked on the demo data
at realistic ε against a generous multiple (4x) of the reported 95% half-width: a Laplace cell exceeds
it with probability (1/20)^4 ≈ 6e-6.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from enclave_api.demo.synthetic import HOSPITALS, STAGES, generate_registry, registry_metadata
from enclave_api.demo.wdbc import load_wdbc, wdbc_metadata
from enclave_api.metadata import DatasetMetadata, parse_metadata
from privacy.dp import (
    PrivacyCheckError,
    QueryError,
    QueryRequest,
    QueryResult,
    calibration,
    compile_query,
    run_query,
    validate_against,
)
from privacy.dp._opendp import dp

HOSPITAL = HOSPITALS[0]
EXACT = 1e4  # an ε at which OpenDP's noise vanishes
MULTIPLE = 4.0
REPO = Path(__file__).resolve().parents[2]


def request(
    meta: DatasetMetadata, query: dict[str, Any], epsilon: float = 1.0, delta: float = 0.0
) -> QueryRequest:
    return QueryRequest.model_validate(
        {"dataset_id": meta.id, "epsilon": epsilon, "delta": delta, "query": query}
    )


def rows_by_key(result: QueryResult, keys: int = 1) -> dict[Any, dict[str, Any]]:
    """``{key: {column: value}}`` (the key is a scalar when there is one group_by column)."""
    out = {}
    for row in result.rows:
        key = row[0] if keys == 1 else tuple(row[:keys])
        out[key] = dict(zip(result.columns[keys:], row[keys:], strict=True))
    return out


@pytest.fixture(scope="module")
def registry() -> tuple[pl.DataFrame, DatasetMetadata]:
    frame = pl.from_arrow(generate_registry(HOSPITAL, n_patients=4000))
    assert isinstance(frame, pl.DataFrame)
    return frame, parse_metadata(registry_metadata(HOSPITAL))


@pytest.fixture(scope="module")
def wdbc() -> tuple[pl.DataFrame, DatasetMetadata]:
    frame = pl.from_arrow(load_wdbc())
    assert isinstance(frame, pl.DataFrame)
    return frame, parse_metadata(wdbc_metadata())


@pytest.fixture(scope="module")
def tiny() -> tuple[pl.DataFrame, DatasetMetadata]:
    """Twelve rows of every queryable type, with nulls and values outside the public bounds."""
    frame = pl.DataFrame(
        {
            "i": [1, 5, 5, 20, 50, 99, 150, -3, None, 7, 8, 9],
            "f": [0.5, 1.25, 2.0, 9.5, 12.0, -1.0, None, 3.3, 4.4, 5.5, 6.6, 7.7],
            "s": ["x"] * 10 + ["y", None],
            "c": ["a", "a", "b", "b", "b", "c", "a", "a", "b", None, "a", "b"],
            "b": [True, False, True, True, None, False, True, True, False, True, True, True],
            "d": [date(2020, 1, 1 + k) for k in range(6)] + [date(2021, 6, 1 + k) for k in range(6)],
        },
        schema={
            "i": pl.Int64,
            "f": pl.Float64,
            "s": pl.String,
            "c": pl.String,
            "b": pl.Boolean,
            "d": pl.Date,
        },
    )
    meta = parse_metadata(
        {
            "id": "tiny",
            "title": "Tiny",
            "custodian_org": "hanbit-cancer-center",
            "tier": "enclave",
            "columns": [
                {"name": "i", "type": "int", "role": "attribute", "bounds": [0, 100]},
                {"name": "f", "type": "float", "role": "attribute", "bounds": [0, 10]},
                {"name": "s", "type": "str", "role": "attribute"},
                {"name": "c", "type": "category", "role": "attribute", "categories": ["a", "b", "c"]},
                {"name": "b", "type": "bool", "role": "attribute"},
                {"name": "d", "type": "date", "role": "attribute"},
            ],
        }
    )
    return frame, meta


# --- release shape and correctness ------------------------------------------------------------------


def test_contract_example_releases(registry: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = registry
    query = {
        "filters": [{"column": "age_at_diagnosis", "op": ">=", "value": 50}],
        "group_by": ["stage"],
        "aggregates": [
            {"fn": "count", "as": "n"},
            {"fn": "sum", "column": "tumor_size_mm", "bounds": [0, 150], "as": "total_size"},
            {"fn": "mean", "column": "tumor_size_mm", "bounds": [0, 150], "as": "mean_size"},
            {
                "fn": "quantile",
                "column": "age_at_diagnosis",
                "q": 0.5,
                "bounds": [18, 100],
                "as": "median_age",
            },
            {"fn": "histogram", "column": "tumor_size_mm", "edges": [0, 10, 20, 50, 150], "as": "size_hist"},
        ],
    }
    result = run_query(frame, meta, request(meta, query, epsilon=0.5))
    assert result.columns == ["stage", "n", "total_size", "mean_size", "median_age", "size_hist"]
    assert [row[0] for row in result.rows] == list(STAGES)
    for _, n, total, mean, median, hist in result.rows:
        assert type(n) is int
        assert type(total) is float
        assert type(mean) is float
        assert 0 <= mean <= 150
        assert type(median) is float
        assert 18 <= median <= 100
        assert len(hist) == 4
        assert all(type(c) is int for c in hist)
    assert 0.5 * (1 - 1e-8) <= result.epsilon_spent <= 0.5
    assert result.delta_spent == 0
    assert set(result.accuracy) == {"n", "total_size", "mean_size", "median_age", "size_hist"}
    assert all(v > 0 for v in result.accuracy.values())
    assert "OpenDP 0.16.0" in result.mechanism
    assert "public group keys" in result.mechanism


def test_registry_results_within_accuracy(registry: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = registry
    query = {
        "filters": [{"column": "age_at_diagnosis", "op": ">=", "value": 50}],
        "group_by": ["stage"],
        "aggregates": [
            {"fn": "count", "as": "n"},
            {"fn": "sum", "column": "ki67_pct", "as": "ki67_total"},
            {"fn": "mean", "column": "tumor_size_mm", "as": "mean_size"},
            {"fn": "mean", "column": "survival_months", "as": "mean_survival"},
        ],
    }
    result = run_query(frame, meta, request(meta, query, epsilon=2.0))
    truth = (
        frame.filter(pl.col("age_at_diagnosis") >= 50)
        .group_by("stage")
        .agg(
            n=pl.len(),
            ki67_total=pl.col("ki67_pct").sum(),
            mean_size=pl.col("tumor_size_mm").mean(),
            mean_survival=pl.col("survival_months").mean(),
        )
    )
    released = rows_by_key(result)
    for row in truth.iter_rows(named=True):
        for name in ("n", "ki67_total", "mean_size", "mean_survival"):
            error = abs(released[row["stage"]][name] - row[name])
            assert error <= MULTIPLE * result.accuracy[name], (
                row["stage"],
                name,
                error,
                result.accuracy[name],
            )


def test_wdbc_results_within_accuracy(wdbc: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = wdbc
    query = {
        "group_by": ["diagnosis"],
        "aggregates": [
            {"fn": "count", "as": "n"},
            {"fn": "mean", "column": "mean_radius", "as": "radius"},
            {"fn": "quantile", "column": "mean_area", "q": 0.5, "as": "median_area"},
        ],
    }
    result = run_query(frame, meta, request(meta, query, epsilon=3.0))
    released = rows_by_key(result)
    assert list(released) == ["malignant", "benign"]  # declared order
    for diagnosis, group in frame.group_by("diagnosis"):
        got = released[diagnosis[0]]
        assert abs(got["n"] - group.height) <= MULTIPLE * result.accuracy["n"]
        assert abs(got["radius"] - group["mean_radius"].mean()) <= MULTIPLE * result.accuracy["radius"]  # type: ignore[operator]
        # the quantile's accuracy is a rank error, in rows
        rank = group.filter(pl.col("mean_area") < got["median_area"]).height
        assert abs(rank - group.height / 2) <= MULTIPLE * result.accuracy["median_area"] + 2


def test_sum_is_clamped_to_bounds(registry: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = registry
    assert frame["tumor_size_mm"].max() == 150  # type: ignore[comparison-overlap]
    query = {
        "aggregates": [
            {"fn": "sum", "column": "tumor_size_mm", "bounds": [0, 10], "as": "total"},
            {"fn": "mean", "column": "tumor_size_mm", "bounds": [0, 10], "as": "mean"},
        ]
    }
    clamped = frame["tumor_size_mm"].clip(0, 10).sum()
    for _ in range(5):
        result = run_query(frame, meta, request(meta, query, epsilon=1.0))
        [[total, mean]] = result.rows
        assert total <= frame.height * 10 + MULTIPLE * result.accuracy["total"]
        assert abs(total - clamped) <= MULTIPLE * result.accuracy["total"]
        assert 0 <= mean <= 10


def test_public_keys_absent_from_data_are_released(registry: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = registry
    query = {
        "filters": [{"column": "stage", "op": "in", "value": ["0", "I"]}],
        "group_by": ["stage", "er_status"],
        "aggregates": [
            {"fn": "count", "as": "n"},
            {"fn": "histogram", "column": "ki67_pct", "edges": [0, 50, 100], "as": "h"},
        ],
    }
    result = run_query(frame, meta, request(meta, query))
    keys = [(stage, er) for stage in STAGES for er in ("positive", "negative")]
    assert [tuple(row[:2]) for row in result.rows] == keys
    for (stage, _), n, hist in ((tuple(r[:2]), r[2], r[3]) for r in result.rows):
        if stage not in ("0", "I"):
            assert abs(n) <= MULTIPLE * result.accuracy["n"]
            assert all(abs(c) <= MULTIPLE * result.accuracy["h"] for c in hist)


def test_private_keys_are_thresholded(tiny: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = tiny
    big = pl.concat([frame] * 10)  # "x": 100 rows, "y": 10 rows, null: 10 rows
    query = {"group_by": ["s"], "aggregates": [{"fn": "mean", "column": "f", "as": "m"}]}
    result = run_query(big, meta, request(meta, query, epsilon=1.0, delta=1e-6))
    # the hidden row count (ε/3) has scale 3: the threshold is well above 10 rows, well below 100
    assert [row[0] for row in result.rows] == ["x"]
    assert 0 < result.delta_spent <= 1e-6
    assert result.epsilon_spent <= 1.0
    assert "private group keys above noisy count" in result.mechanism
    with pytest.raises(QueryError):  # the same query without δ
        run_query(big, meta, request(meta, query, epsilon=1.0))


def test_private_keys_in_key_order_with_histogram(registry: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = registry
    query = {
        "group_by": ["survival_months"],
        "aggregates": [
            {"fn": "count", "as": "n"},
            {"fn": "histogram", "column": "age_at_diagnosis", "edges": [20, 50, 96], "as": "ages"},
        ],
    }
    result = run_query(frame, meta, request(meta, query, epsilon=1.0, delta=1e-5))
    keys = [row[0] for row in result.rows]
    assert keys == sorted(keys)
    assert set(keys) <= set(frame["survival_months"].to_list())
    assert all(n >= 0 for _, n, _ in result.rows)  # released only above the threshold
    assert any(None in hist for _, _, hist in result.rows)  # some bins were below it
    assert 0 < result.delta_spent <= 1e-5


# --- semantics, exactly ----------------------------------------------------------------------------

FILTERS: list[tuple[str, str, Any, Callable[[pl.Expr], pl.Expr]]] = [
    ("i", ">=", 5, lambda c: c >= 5),
    ("i", "<", 8, lambda c: c < 8),
    ("i", "==", 5, lambda c: c == 5),
    ("i", "!=", 5, lambda c: c != 5),
    ("i", "<=", 150, lambda c: c <= 150),  # beyond the bounds: filters see the data as it is
    ("i", "in", [5, 20, 1000], lambda c: (c == 5) | (c == 20)),
    ("f", "<=", 2, lambda c: c <= 2.0),
    ("f", ">", 5.5, lambda c: c > 5.5),
    ("s", "==", "x", lambda c: c == "x"),
    ("s", "!=", "x", lambda c: c != "x"),
    ("c", "in", ["a", "c"], lambda c: (c == "a") | (c == "c")),
    ("b", "==", True, lambda c: c == True),  # noqa: E712  (a Polars expression)
    ("b", "!=", True, lambda c: c != True),  # noqa: E712
    ("d", ">=", "2021-01-01", lambda c: c >= date(2021, 1, 1)),
    ("d", "<", "2020-01-03", lambda c: c < date(2020, 1, 3)),
    ("d", "in", ["2020-01-02", "2021-06-06"], lambda c: (c == date(2020, 1, 2)) | (c == date(2021, 6, 6))),
]


@pytest.mark.parametrize(("column", "op", "value", "expected"), FILTERS)
def test_filters_match_polars(
    tiny: tuple[pl.DataFrame, DatasetMetadata],
    column: str,
    op: str,
    value: Any,
    expected: Callable[[pl.Expr], pl.Expr],
) -> None:
    frame, meta = tiny
    query = {
        "filters": [{"column": column, "op": op, "value": value}],
        "aggregates": [{"fn": "count", "as": "n"}],
    }
    result = run_query(frame, meta, request(meta, query, epsilon=EXACT))
    assert result.rows == [[frame.filter(expected(pl.col(column))).height]]


def test_filters_are_anded(tiny: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = tiny
    filters = [{"column": "i", "op": ">", "value": 1}, {"column": "c", "op": "==", "value": "a"}]
    result = run_query(
        frame, meta, request(meta, {"filters": filters, "aggregates": [{"fn": "count", "as": "n"}]}, EXACT)
    )
    assert result.rows == [[frame.filter((pl.col("i") > 1) & (pl.col("c") == "a")).height]]


def test_exact_aggregates(tiny: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = tiny
    query = {
        "aggregates": [
            {"fn": "count", "as": "rows"},
            {"fn": "count", "column": "f", "as": "f_known"},
            {"fn": "sum", "column": "i", "as": "i_sum"},
            {"fn": "sum", "column": "f", "as": "f_sum"},
            {"fn": "mean", "column": "i", "as": "i_mean"},
            {"fn": "mean", "column": "f", "bounds": [1, 5], "as": "f_mean"},
            {"fn": "quantile", "column": "i", "q": 0.5, "as": "i_median"},
            {"fn": "quantile", "column": "f", "q": 0.25, "bounds": [0, 10], "as": "f_q1"},
        ]
    }
    result = run_query(frame, meta, request(meta, query, epsilon=EXACT))
    [row] = result.rows
    # At this ε the reported 95% half-widths are finite, non-negative and tiny (OpenDP's own helper
    # returns -inf here), and they cover the errors that actually occurred.
    assert all(math.isfinite(a) and a >= 0 for a in result.accuracy.values()), result.accuracy
    assert result.accuracy["rows"] < 0.01 and result.accuracy["i_mean"] < 0.1
    got = dict(
        zip(["rows", "f_known", "i_sum", "f_sum", "i_mean", "f_mean", "i_median", "f_q1"], row, strict=True)
    )
    i_clamped = frame["i"].clip(0, 100).drop_nulls()
    f_clamped = frame["f"].clip(0, 10).drop_nulls()
    assert got["rows"] == 12
    assert got["f_known"] == 11
    # Noise is tiny at this ε but not zero: the sums' noise scales are about 0.15 (i) and 0.012 (f),
    # so these bounds are over 20 scales wide (a failure chance below 1e-9), and still below what a
    # missing clamp would change (47 for i, 1 for f).
    assert got["i_sum"] == pytest.approx(i_clamped.sum(), abs=4)
    assert got["f_sum"] == pytest.approx(f_clamped.sum(), abs=0.3)
    assert got["i_mean"] == pytest.approx(i_clamped.mean(), abs=0.05)
    assert got["f_mean"] == pytest.approx(frame["f"].clip(1, 5).drop_nulls().mean(), abs=0.05)
    # 11 known values of i clamped: 0 1 5 5 7 8 9 20 50 99 100 -> median 8
    assert got["i_median"] == pytest.approx(8, abs=1)
    assert got["f_q1"] == pytest.approx(1.25, abs=0.75)


def test_histogram_bins_clamp_and_skip_nulls(tiny: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = tiny
    query = {
        "group_by": ["c"],
        "aggregates": [
            {"fn": "histogram", "column": "f", "edges": [0, 2, 5, 10], "as": "h"},
            {"fn": "histogram", "column": "i", "edges": [0, 100], "as": "one_bin"},
        ],
    }
    result = run_query(frame, meta, request(meta, query, epsilon=EXACT))
    # bins [0, 2), [2, 5), [5, 10]; -1.0 goes to the first, 12.0 to the last; nulls are not counted,
    # nor is the row whose key c is null
    assert result.rows == [
        ["a", [2, 1, 1], [5]],  # f: 0.5 1.25 | 3.3 | 6.6 (and a null); i: 1 5 150 -3 8
        ["b", [0, 2, 3], [4]],  # f: | 2.0 4.4 | 9.5 12.0 7.7; i: 5 20 50 9 (and a null)
        ["c", [1, 0, 0], [1]],  # f: -1.0; i: 99
    ]


def test_scan_parquet_dataframe_and_lazyframe_agree(
    tiny: tuple[pl.DataFrame, DatasetMetadata], tmp_path: Path
) -> None:
    frame, meta = tiny
    path = tmp_path / "tiny.parquet"
    frame.write_parquet(path)
    query = request(meta, {"group_by": ["b"], "aggregates": [{"fn": "sum", "column": "i", "as": "s"}]}, EXACT)
    truth = frame.drop_nulls("b").group_by("b").agg(pl.col("i").clip(0, 100).sum()).sort("b")
    for source in (frame, frame.lazy(), pl.scan_parquet(path)):
        result = run_query(source, meta, query)
        assert [row[0] for row in result.rows] == [False, True]
        assert [row[1] for row in result.rows] == pytest.approx(truth["i"].to_list(), abs=0.5)


def test_rows_beyond_the_public_bound_are_refused(tiny: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = tiny
    with pytest.raises(QueryError) as refused:
        run_query(frame, meta, request(meta, {"aggregates": [{"fn": "count", "as": "n"}]}), max_rows=10)
    assert refused.value.field == "dataset_id"


def test_widest_bounds_at_the_largest_row_bound(tiny: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = tiny
    query = {
        "aggregates": [
            {"fn": "sum", "column": "f", "bounds": [-1e9, 1e9], "as": "f_sum"},
            {"fn": "sum", "column": "i", "bounds": [-1e9, 1e9], "as": "i_sum"},
        ]
    }
    compiled = compile_query(validate_against(request(meta, query, epsilon=1e12), meta), max_rows=2**32 - 1)
    [[f_sum, i_sum]] = compiled.release(frame).rows
    # the fixed-point grid is down to 2^0 here: each float is truncated toward zero
    assert f_sum == sum(int(v) for v in frame["f"].drop_nulls())
    assert i_sum == frame["i"].sum()
    with pytest.raises(ValueError, match="max_rows"):
        compile_query(compiled.query, max_rows=2**32)


def test_quantile_shares_the_pass_and_skips_only_its_own_nulls(
    tiny: tuple[pl.DataFrame, DatasetMetadata],
) -> None:
    frame, meta = tiny
    unknown = frame.with_columns(pl.lit(None, pl.Int64).alias("i"))
    padded = pl.concat([frame, unknown, unknown])  # 36 rows, i known in 11 of them
    query = {
        "aggregates": [
            {"fn": "count", "as": "rows"},
            {"fn": "count", "column": "i", "as": "known"},
            {"fn": "quantile", "column": "i", "q": 0.5, "as": "median"},
            {"fn": "quantile", "column": "i", "q": 0.9, "as": "q9"},
        ]
    }
    compiled = compile_query(validate_against(request(meta, query, epsilon=EXACT), meta))
    assert len(compiled.plans) == 1
    # 11 known values of i clamped: 0 1 5 5 7 8 9 20 50 99 100; the 25 nulls would be the majority
    assert compiled.release(padded).rows == [[36, 11, 8.0, 99.0]]


# --- privacy accounting ----------------------------------------------------------------------------


def _opendp_scales(measurement: Any) -> dict[str, float]:
    """OpenDP's own noise scale of each released column of a plan."""
    summary = dp.summarize_polars_measurement(measurement)
    return dict(zip(summary["column"], summary["scale"], strict=True))


def test_merged_plan_keeps_each_statistics_scale_and_accuracy(
    registry: tuple[pl.DataFrame, DatasetMetadata],
) -> None:
    frame, meta = registry
    aggregates: list[dict[str, Any]] = [
        {"fn": "count", "as": "n"},
        {"fn": "sum", "column": "tumor_size_mm", "as": "total"},
        {"fn": "mean", "column": "ki67_pct", "as": "ki67"},
        {"fn": "quantile", "column": "age_at_diagnosis", "q": 0.5, "as": "median_age"},
        {"fn": "histogram", "column": "tumor_size_mm", "edges": [0, 20, 50, 150], "as": "sizes"},
    ]
    epsilon = 0.9
    query = {"group_by": ["stage"], "aggregates": aggregates}
    compiled = compile_query(validate_against(request(meta, query, epsilon), meta))
    main, histogram = compiled.plans  # one pass for count/sum/mean/quantile, one for the histogram
    assert [s.aggregate.name for s in main.statistics] == ["n", "total", "ki67", "median_age"]
    merged = _opendp_scales(main.measurement) | _opendp_scales(histogram.measurement)
    accuracy = compiled.release(frame).accuracy
    # Each aggregate alone, with the share of ε the split gives it, gets the same noise and accuracy.
    units = sum(calibration.UNITS[a["fn"]] for a in aggregates)
    alone: dict[str, float] = {}
    for aggregate in aggregates:
        share = epsilon * calibration.UNITS[aggregate["fn"]] / units
        single_query = {"group_by": ["stage"], "aggregates": [aggregate]}
        single = compile_query(validate_against(request(meta, single_query, share), meta))
        [plan] = single.plans
        alone |= _opendp_scales(plan.measurement)
        if aggregate["fn"] != "mean":  # a mean's accuracy also depends on its noisy counts
            name = aggregate["as"]
            assert accuracy[name] == pytest.approx(single.release(frame).accuracy[name], rel=1e-9), name
    assert len(merged) == len(alone) == 6  # the mean is a sum and a count
    assert merged == pytest.approx(alone, rel=1e-9)


def test_accuracy_agrees_with_opendp_summary(registry: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    _, meta = registry
    query = {
        "group_by": ["stage"],
        "aggregates": [
            {"fn": "count", "as": "n"},
            {"fn": "sum", "column": "tumor_size_mm", "as": "size"},
            {"fn": "sum", "column": "survival_months", "as": "months"},
            {"fn": "histogram", "column": "ki67_pct", "edges": [0, 20, 100], "as": "h"},
        ],
    }
    compiled = compile_query(validate_against(request(meta, query, epsilon=0.7), meta))
    main, histogram = compiled.plans
    summary = dp.summarize_polars_measurement(main.measurement, 0.05)
    accuracy = dict(zip(summary["column"], summary["accuracy"], strict=True))
    stats = {s.aggregate.name: s for s in main.statistics}
    result = compiled.release(registry[0])
    assert result.accuracy["n"] == pytest.approx(accuracy["n"])
    assert result.accuracy["size"] == pytest.approx(accuracy["size"] * stats["size"].unit)
    assert result.accuracy["months"] == pytest.approx(accuracy["months"])
    hist_summary = dp.summarize_polars_measurement(histogram.measurement, 0.05)
    assert result.accuracy["h"] == pytest.approx(hist_summary["accuracy"][0])


def test_rows_per_person_scales_the_noise(registry: tuple[pl.DataFrame, DatasetMetadata]) -> None:
    frame, meta = registry
    triple = meta.model_copy(update={"max_rows_per_person": 3})
    query = {
        "group_by": ["grade"],
        "aggregates": [{"fn": "count", "as": "n"}, {"fn": "sum", "column": "ki67_pct", "as": "k"}],
    }
    scales = []
    for m in (meta, triple):
        compiled = compile_query(validate_against(request(m, query, epsilon=0.8), m))
        assert compiled.epsilon_spent <= 0.8
        loss = compiled.plans[0].measurement.map(m.max_rows_per_person)
        assert loss <= 0.8
        summary = dp.summarize_polars_measurement(compiled.plans[0].measurement)
        scales.append(summary["scale"].to_list())
    for single, tripled in zip(*scales, strict=True):
        assert tripled == pytest.approx(3 * single)
    result = run_query(frame, triple, request(triple, query, epsilon=0.8))
    single = run_query(frame, meta, request(meta, query, epsilon=0.8)).accuracy["n"]
    assert result.accuracy["n"] == pytest.approx(3 * single, rel=0.05)


@pytest.mark.parametrize(
    ("delta", "aggregates"),
    [
        (0.0, [{"fn": "count", "as": "n"}, {"fn": "mean", "column": "ki67_pct", "as": "k"}]),
        (  # merged into one plan: the quantile shares the pass with the sum
            0.0,
            [
                {"fn": "sum", "column": "ki67_pct", "as": "s"},
                {"fn": "quantile", "column": "age_at_diagnosis", "q": 0.5, "as": "m"},
                {"fn": "histogram", "column": "ki67_pct", "edges": [0, 50, 100], "as": "h"},
            ],
        ),
        (1e-6, [{"fn": "quantile", "column": "age_at_diagnosis", "q": 0.5, "as": "m"}]),
    ],
)
def test_map_check_refuses_undercalibrated_noise(
    registry: tuple[pl.DataFrame, DatasetMetadata],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    delta: float,
    aggregates: list[dict[str, Any]],
) -> None:
    _, meta = registry
    calibrated = calibration.noise_scale
    monkeypatch.setattr(calibration, "noise_scale", lambda *args: calibrated(*args) * 0.99)
    untouchable = pl.scan_parquet(tmp_path / "does-not-exist.parquet")  # reading it would raise another error
    group_by = ["survival_months"] if delta else ["stage"]
    query = {"group_by": group_by, "aggregates": aggregates}
    with pytest.raises(PrivacyCheckError, match="above its budget"):
        run_query(untouchable, meta, request(meta, query, epsilon=1.0, delta=delta))


def test_map_check_refuses_a_low_threshold(
    registry: tuple[pl.DataFrame, DatasetMetadata], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, meta = registry
    calibrated = calibration.key_threshold
    monkeypatch.setattr(calibration, "key_threshold", lambda *args: calibrated(*args) - 5)
    untouchable = pl.scan_parquet(tmp_path / "does-not-exist.parquet")
    query = {"group_by": ["survival_months"], "aggregates": [{"fn": "count", "as": "n"}]}
    with pytest.raises(PrivacyCheckError, match="δ="):
        run_query(untouchable, meta, request(meta, query, epsilon=1.0, delta=1e-6))


def test_query_error_before_any_release(tiny: tuple[pl.DataFrame, DatasetMetadata], tmp_path: Path) -> None:
    _, meta = tiny
    untouchable = pl.scan_parquet(tmp_path / "does-not-exist.parquet")
    with pytest.raises(QueryError):
        run_query(
            untouchable, meta, request(meta, {"group_by": ["s"], "aggregates": [{"fn": "count", "as": "n"}]})
        )


@pytest.mark.parametrize(
    ("epsilon", "delta", "aggregates"),
    [
        (0.1, 0.0, [{"fn": "count", "as": "n"}]),
        (0.3, 0.0, [{"fn": "count", "as": "n1"}, {"fn": "count", "as": "n2"}, {"fn": "count", "as": "n3"}]),
        (
            1 / 3,
            1e-7,
            [
                {"fn": "mean", "column": "f", "as": "m"},
                {"fn": "quantile", "column": "i", "q": 0.1, "as": "q"},
            ],
        ),
        (
            7.0,
            1e-3,
            [
                {"fn": "histogram", "column": "f", "edges": [0, 1, 2], "as": "h"},
                {"fn": "sum", "column": "i", "as": "total"},
            ],
        ),
    ],
)
def test_certified_loss_never_exceeds_the_request(
    tiny: tuple[pl.DataFrame, DatasetMetadata], epsilon: float, delta: float, aggregates: list[dict[str, Any]]
) -> None:
    _, meta = tiny
    group_by = ["s"] if delta else ["c"]
    compiled = compile_query(
        validate_against(
            request(meta, {"group_by": group_by, "aggregates": aggregates}, epsilon, delta), meta
        )
    )
    assert compiled.epsilon_spent <= epsilon
    assert compiled.delta_spent <= delta
    assert compiled.epsilon_spent >= epsilon * (1 - 1e-8)  # the budget is used, not wasted
    for plan in compiled.plans:  # each plan within its share, the shares within the request
        loss = plan.measurement.map(1)
        plan_epsilon, plan_delta = loss if delta else (loss, 0.0)
        assert plan_epsilon <= plan.epsilon
        assert plan_delta <= plan.delta
    assert sum(p.epsilon for p in compiled.plans) <= epsilon
    assert sum(p.delta for p in compiled.plans) <= delta


def test_enable_features_is_called_in_one_place() -> None:
    callers = set()
    for directory, subdirectories, files in os.walk(REPO):
        subdirectories[:] = [d for d in subdirectories if not d.startswith(".") and d != "node_modules"]
        for name in files:
            path = Path(directory, name)
            if name.endswith(".py") and "enable_features(" in path.read_text(
                encoding="utf-8", errors="replace"
            ):
                callers.add(path.relative_to(REPO).as_posix())
    assert callers - {"tests/dp/test_dp_engine.py"} == {"privacy/dp/_opendp.py"}
