"""Benchmark the DP query engine against OpenDP's Context API.

    .venv/bin/python benchmarks/bench_dp.py [--sizes 1000 30000 1000000] [--runs 20] [--context-runs 3]

Writes synthetic registries of each size to Parquet in a temporary directory, then times the typical
query (noisy count and mean tumour size grouped by stage, ε = 1) end to end from
``pl.scan_parquet(path)``: our ``run_query`` (analytic calibration, map check) and the same query
through ``dp.Context.compositor(...).query()...release()`` (noise scale found by binary search on
every release). Prints the median time per query side by side with the ratio, and each one's 95%
half-width of the stage counts (the same noise, so the comparison is like for like).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from enclave_api.demo import synthetic
from enclave_api.metadata import parse_metadata
from privacy.dp import QueryRequest, run_query
from privacy.dp._opendp import Margin, dp

EPSILON = 1.0
HOSPITAL = synthetic.HOSPITALS[0]
SIZE_BOUNDS = synthetic.TUMOR_SIZE_BOUNDS_MM
STAGES = synthetic.STAGES
#: OpenDP's max_length for the Context API reference: a public bound ≥ every size benchmarked (its float
#: sum's sensitivity grows with it; ours does not, as we sum on a fixed-point grid).
CONTEXT_MAX_LENGTH = 2**20
REQUEST = QueryRequest.model_validate(
    {
        "dataset_id": HOSPITAL.dataset_id,
        "epsilon": EPSILON,
        "query": {
            "group_by": ["stage"],
            "aggregates": [
                {"fn": "count", "as": "n"},
                {"fn": "mean", "column": "tumor_size_mm", "bounds": list(SIZE_BOUNDS), "as": "mean_size"},
            ],
        },
    }
)


def ours(path: Path, summarize: bool = False) -> float:
    """One query through ``run_query``; returns the 95% half-width of the counts."""
    meta = parse_metadata(synthetic.registry_metadata(HOSPITAL))
    result = run_query(pl.scan_parquet(path), meta, REQUEST)
    assert len(result.rows) == len(STAGES)
    return result.accuracy["n"]


def context_api(path: Path, summarize: bool = False) -> float:
    """The same query through OpenDP's Context API; with ``summarize``, returns the 95% half-width of
    the counts (``summarize`` searches for the scale once more, so it stays out of the timed runs)."""
    context = dp.Context.compositor(
        data=pl.scan_parquet(path),
        privacy_unit=dp.unit_of(contributions=1),
        privacy_loss=dp.loss_of(epsilon=EPSILON),
        split_evenly_over=1,
        margins=[Margin(by=[], max_length=CONTEXT_MAX_LENGTH)],
    )
    query: Any = context.query()
    query = (
        query.group_by("stage")
        .agg(dp.len(signed=True).alias("n"), pl.col("tumor_size_mm").dp.mean(SIZE_BOUNDS).alias("mean_size"))
        .with_keys(pl.DataFrame({"stage": list(STAGES)}))
    )
    released = query.release().collect()
    assert released.height == len(STAGES)
    if not summarize:
        return float("nan")
    summary = query.summarize(alpha=0.05)
    return float(summary.filter(pl.col("column") == "n")["accuracy"][0])


def median_ms(run: Callable[..., float], path: Path, runs: int) -> tuple[float, float]:
    """Median wall time of ``runs`` queries after a warm-up (which loads OpenDP's Polars plugin and
    fills the page cache), and the accuracy the warm-up reported."""
    accuracy = run(path, summarize=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(path)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 30_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of our engine per size")
    parser.add_argument("--context-runs", type=int, default=3, help="timed runs of the Context API per size")
    args = parser.parse_args()

    print(f"query: count + mean(tumor_size_mm) by stage, ε={EPSILON}, from pl.scan_parquet; median per query")
    print(f"{'rows':>10} {'ours ms':>9} {'Context ms':>11} {'ratio':>7} {'±n ours':>8} {'±n Context':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"registry-{size}.parquet"
            pq.write_table(synthetic.generate_registry(HOSPITAL, n_patients=size), path)
            our_ms, our_accuracy = median_ms(ours, path, args.runs)
            context_ms, context_accuracy = median_ms(context_api, path, args.context_runs)
            print(
                f"{size:>10} {our_ms:>9.1f} {context_ms:>11.1f} {context_ms / our_ms:>6.0f}x "
                f"{our_accuracy:>8.1f} {context_accuracy:>11.1f}"
            )


if __name__ == "__main__":
    main()
