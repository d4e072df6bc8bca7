"""The WDBC reference data set (enclave_api.demo.wdbc)."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest
from sklearn.datasets import load_breast_cancer

from enclave_api.demo.wdbc import load_wdbc, wdbc_metadata


def significant_digits(number: float) -> int:
    return len(Decimal(repr(number)).normalize().as_tuple().digits)


@pytest.fixture(scope="module")
def wdbc() -> pa.Table:
    return load_wdbc()


def test_shape_and_column_names(wdbc: pa.Table) -> None:
    assert wdbc.num_rows == 569
    assert wdbc.num_columns == 32
    assert wdbc.column_names[:3] == ["sample_id", "mean_radius", "mean_texture"]
    assert "worst_concave_points" in wdbc.column_names
    assert "fractal_dimension_error" in wdbc.column_names
    assert wdbc.column_names[-1] == "diagnosis"
    assert all(name.isidentifier() and name.islower() for name in wdbc.column_names)


def test_values_come_from_scikit_learn(wdbc: pa.Table) -> None:
    bunch = load_breast_cancer()
    assert wdbc.column("sample_id").to_pylist() == list(range(1, 570))
    features = np.column_stack([wdbc.column(name).to_numpy() for name in wdbc.column_names[1:-1]])
    assert np.array_equal(features, bunch.data)
    diagnosis = wdbc.column("diagnosis").to_pylist()
    assert diagnosis.count("malignant") == 212
    assert diagnosis.count("benign") == 357
    # target 0 is malignant
    assert all((d == "malignant") == (t == 0) for d, t in zip(diagnosis, bunch.target, strict=True))


def test_metadata_describes_the_table(wdbc: pa.Table) -> None:
    metadata = wdbc_metadata()
    json.dumps(metadata)
    assert metadata["id"] == "wdbc"
    assert metadata["title"] == "Wisconsin Diagnostic Breast Cancer (WDBC)"
    assert "scikit-learn" in metadata["description"]
    assert metadata["custodian_org"] == "hanbit-cancer-center"
    assert wdbc_metadata("dasom-university-hospital")["custodian_org"] == ("dasom-university-hospital")
    assert metadata["tier"] == "enclave"
    assert metadata["max_rows_per_person"] == 1
    columns = metadata["columns"]
    assert [c["name"] for c in columns] == wdbc.column_names
    assert columns[0] == {
        "name": "sample_id",
        "type": "int",
        "role": "attribute",
        "bounds": [1, 569],
    }
    assert columns[-1] == {
        "name": "diagnosis",
        "type": "category",
        "role": "sensitive",
        "categories": ["malignant", "benign"],
    }
    assert pa.types.is_integer(wdbc.schema.field("sample_id").type)
    assert pa.types.is_string(wdbc.schema.field("diagnosis").type)
    for spec in columns[1:-1]:
        assert (spec["type"], spec["role"]) == ("float", "attribute")
        assert pa.types.is_floating(wdbc.schema.field(spec["name"]).type)


def test_feature_bounds_are_rounded_out_and_enclose_the_data(wdbc: pa.Table) -> None:
    for spec in wdbc_metadata()["columns"][1:-1]:
        low, high = spec["bounds"]
        values = wdbc.column(spec["name"]).to_numpy()
        assert low <= values.min() <= values.max() <= high, spec
        # Two significant digits of the larger end: the bounds are short decimals ...
        assert all(significant_digits(bound) <= 2 for bound in (low, high)), spec
        # ... and not much wider than the data.
        assert high - low < 1.5 * (values.max() - values.min()) + 0.1 * abs(high), spec
    bounds = {spec["name"]: spec.get("bounds") for spec in wdbc_metadata()["columns"]}
    assert bounds["mean_radius"] == [6.0, 29.0]
    assert bounds["mean_area"] == [100.0, 2600.0]
    assert bounds["mean_concavity"] == [0.0, 0.43]
