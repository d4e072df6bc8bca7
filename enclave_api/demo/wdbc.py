"""The Wisconsin Diagnostic Breast Cancer (WDBC) data set, as shipped inside scikit-learn."""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, Final

import numpy as np
import pyarrow as pa
from sklearn.datasets import load_breast_cancer

DATASET_ID: Final = "wdbc"
#: Labels of the scikit-learn target: 0 = malignant, 1 = benign.
DIAGNOSES: Final = ("malignant", "benign")
#: Significant digits kept when rounding the public feature bounds outwards.
BOUND_SIGNIFICANT_DIGITS: Final = 2


def load_wdbc() -> pa.Table:
    """Return the 569 WDBC samples: ``sample_id``, the 30 features in snake case, ``diagnosis``."""
    bunch = load_breast_cancer()
    if tuple(bunch.target_names) != DIAGNOSES:
        raise RuntimeError(f"unexpected WDBC target names {bunch.target_names!r}")
    data = np.asarray(bunch.data, dtype=np.float64)
    columns: dict[str, pa.Array] = {
        "sample_id": pa.array(np.arange(1, len(data) + 1), pa.int64()),
    }
    for name, values in zip(bunch.feature_names, data.T, strict=True):
        columns[_snake_case(name)] = pa.array(values, pa.float64())
    columns["diagnosis"] = pa.array(DIAGNOSES, pa.string()).take(bunch.target)
    return pa.table(columns)


def wdbc_metadata(custodian_org: str = "hanbit-cancer-center") -> dict[str, Any]:
    """Return the dataset metadata (contract 4.4) of WDBC, held by ``custodian_org``.

    Feature bounds enclose the data, rounded outwards to :data:`BOUND_SIGNIFICANT_DIGITS`
    significant digits of the larger end (public: the data set itself is public).
    """
    table = load_wdbc()
    columns: list[dict[str, Any]] = [
        {"name": "sample_id", "type": "int", "role": "attribute", "bounds": [1, table.num_rows]}
    ]
    for name in table.column_names[1:-1]:
        values = table.column(name).to_numpy()
        low, high = _rounded_out(float(values.min()), float(values.max()))
        columns.append({"name": name, "type": "float", "role": "attribute", "bounds": [low, high]})
    columns.append(
        {
            "name": "diagnosis",
            "type": "category",
            "role": "sensitive",
            "categories": list(DIAGNOSES),
        }
    )
    return {
        "id": DATASET_ID,
        "title": "Wisconsin Diagnostic Breast Cancer (WDBC)",
        "description": (
            "569 breast masses sampled by fine-needle aspiration at the University of Wisconsin "
            "Hospitals (Wolberg, Street and Mangasarian, 1995), from the UCI Machine Learning "
            "Repository as shipped in scikit-learn (sklearn.datasets.load_breast_cancer). Thirty "
            "features describe the cell nuclei in a digitised image: the mean, standard error and "
            "worst (mean of the three largest values) of radius, texture, perimeter, area, "
            "smoothness, compactness, concavity, concave points, symmetry and fractal dimension. "
            "diagnosis is malignant (212) or benign (357)."
        ),
        "custodian_org": custodian_org,
        "tier": "enclave",
        "max_rows_per_person": 1,
        "columns": columns,
    }


def _snake_case(feature_name: str) -> str:
    """``"worst concave points"`` → ``"worst_concave_points"``."""
    return "_".join(feature_name.lower().split())


def _rounded_out(low: float, high: float) -> tuple[float, float]:
    """Widen ``[low, high]`` to multiples of a power of ten giving the larger end its significant
    digits; decimal arithmetic keeps the float result outside the interval."""
    magnitude = max(abs(low), abs(high))
    if magnitude == 0:
        return 0.0, 0.0
    exponent = math.floor(math.log10(magnitude)) - BOUND_SIGNIFICANT_DIGITS + 1
    step = Decimal(1).scaleb(exponent)
    rounded_low = Decimal(repr(low)).quantize(step, rounding=ROUND_FLOOR)
    rounded_high = Decimal(repr(high)).quantize(step, rounding=ROUND_CEILING)
    return float(rounded_low), float(rounded_high)
