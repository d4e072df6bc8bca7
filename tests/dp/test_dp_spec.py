"""The DP query spec: parsing, and validation against dataset metadata (every QueryError path)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from enclave_api.demo.synthetic import HOSPITALS, registry_metadata
from enclave_api.metadata import DatasetMetadata, parse_metadata
from privacy.dp import QueryError, QueryRequest, parse_request, validate_against

HOSPITAL = HOSPITALS[0]


@pytest.fixture(scope="module")
def meta() -> DatasetMetadata:
    """The hospital registry's metadata plus two columns it lacks: an unbounded float and a free-text str."""
    doc = registry_metadata(HOSPITAL)
    doc["columns"] += [
        {"name": "bmi", "type": "float", "role": "sensitive"},
        {"name": "ward", "type": "str", "role": "attribute"},
        {"name": "smoker", "type": "bool", "role": "attribute"},
    ]
    return parse_metadata(doc)


def contract_example() -> dict[str, Any]:
    """The example of DESIGN §4.3, on the registry."""
    return {
        "dataset_id": HOSPITAL.dataset_id,
        "grant_id": "g-123",
        "epsilon": 0.5,
        "delta": 0,
        "query": {
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
                {
                    "fn": "histogram",
                    "column": "tumor_size_mm",
                    "edges": [0, 10, 20, 50, 150],
                    "as": "size_hist",
                },
            ],
        },
    }


def with_changes(**changes: Any) -> dict[str, Any]:
    """The contract example with dotted-path changes: ``{"query.aggregates.0.bounds": [1, 0]}``."""
    doc = contract_example()
    for path, value in changes.items():
        *parents, last = path.split(".")
        target: Any = doc
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return doc


def test_contract_example_resolves(meta: DatasetMetadata) -> None:
    request = parse_request(contract_example())
    resolved = validate_against(request, meta)
    assert resolved.output_columns == ["stage", "n", "total_size", "mean_size", "median_age", "size_hist"]
    assert resolved.group_keys == (("0",), ("I",), ("II",), ("III",), ("IV",))
    assert [a.bounds for a in resolved.aggregates] == [None, (0, 150), (0, 150), (18, 100), (0, 150)]
    assert [c.name for c in resolved.columns] == ["age_at_diagnosis", "stage", "tumor_size_mm"]
    assert resolved.rows_per_person == 1


def test_request_round_trips_with_alias() -> None:
    request = parse_request(json.dumps(contract_example()))
    dumped = request.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["query"]["aggregates"][0] == {"fn": "count", "as": "n"}
    assert QueryRequest.model_validate(dumped) == request


def test_bounds_default_to_metadata(meta: DatasetMetadata) -> None:
    doc = with_changes(**{"query.aggregates": [{"fn": "mean", "column": "ki67_pct", "as": "ki67"}]})
    resolved = validate_against(parse_request(doc), meta)
    assert resolved.aggregates[0].bounds == (0.0, 100.0)


def test_int_bounds_round_inwards(meta: DatasetMetadata) -> None:
    aggregate = {"fn": "sum", "column": "age_at_diagnosis", "bounds": [20.5, 80.7], "as": "s"}
    resolved = validate_against(parse_request(with_changes(**{"query.aggregates": [aggregate]})), meta)
    assert resolved.aggregates[0].bounds == (21.0, 80.0)


def test_undeclared_keys_need_delta(meta: DatasetMetadata) -> None:
    doc = with_changes(**{"query.group_by": ["survival_months"]})
    with pytest.raises(QueryError) as refused:
        validate_against(parse_request(doc), meta)
    assert refused.value.field == "query.group_by[0]"
    assert "delta > 0" in str(refused.value)
    doc["delta"] = 1e-6
    resolved = validate_against(parse_request(doc), meta)
    assert resolved.group_keys is None


def test_bool_keys_are_public(meta: DatasetMetadata) -> None:
    resolved = validate_against(parse_request(with_changes(**{"query.group_by": ["smoker", "sex"]})), meta)
    assert resolved.group_keys == ((False, "F"), (False, "M"), (True, "F"), (True, "M"))


def test_bare_count_reads_one_non_identifier_column(meta: DatasetMetadata) -> None:
    doc = with_changes(
        **{"query.filters": [], "query.group_by": [], "query.aggregates": [{"fn": "count", "as": "n"}]}
    )
    resolved = validate_against(parse_request(doc), meta)
    assert [c.name for c in resolved.columns] == ["sex"]


# Each case: changes to the contract example, the field the QueryError must name, a fragment of its message.
PARSE_ERRORS = [
    ({"surprise": 1}, "surprise", "Extra inputs"),
    ({"query.limit": 5}, "query.limit", "Extra inputs"),
    (
        {"query.aggregates.0.column": "stage", "query.aggregates.0.where": "x"},
        "query.aggregates[0].where",
        "Extra",
    ),
    ({"query.filters.0.unit": "years"}, "query.filters[0].unit", "Extra"),
    ({"epsilon": 0}, "epsilon", "greater than 0"),
    ({"epsilon": -1.0}, "epsilon", "greater than 0"),
    ({"epsilon": float("nan")}, "epsilon", "finite"),
    ({"epsilon": float("inf")}, "epsilon", "finite"),
    ({"epsilon": "a lot"}, "epsilon", "number"),
    ({"delta": 1}, "delta", "less than 1"),
    ({"delta": -1e-9}, "delta", "greater than or equal to 0"),
    ({"delta": float("nan")}, "delta", "finite"),
    ({"dataset_id": "Not A Slug"}, "dataset_id", "pattern"),
    ({"grant_id": "g 1"}, "grant_id", "pattern"),
    ({"query.aggregates": []}, "query.aggregates", "at least 1"),
    (
        {"query.aggregates": [{"fn": "count", "as": f"n{i}"} for i in range(21)]},
        "query.aggregates",
        "at most 20",
    ),
    ({"query.aggregates.0.fn": "median"}, "query.aggregates[0]", "tag"),
    ({"query.aggregates.0.as": "2n"}, "query.aggregates[0].as", "pattern"),
    ({"query.aggregates.0.as": "__n"}, "query.aggregates[0].as", "pattern"),
    ({"query.aggregates.1.column": None}, "query.aggregates[1].column", "string"),
    ({"query.aggregates.1.bounds": [0, float("nan")]}, "query.aggregates[1].bounds[1]", "finite"),
    ({"query.aggregates.1.bounds": [float("-inf"), 1]}, "query.aggregates[1].bounds[0]", "finite"),
    ({"query.aggregates.1.bounds": [0, 1, 2]}, "query.aggregates[1].bounds", "at most 2"),
    ({"query.aggregates.3.q": 0}, "query.aggregates[3].q", "greater than 0"),
    ({"query.aggregates.3.q": 1}, "query.aggregates[3].q", "less than 1"),
    ({"query.aggregates.4.edges": [0]}, "query.aggregates[4].edges", "at least 2"),
    ({"query.aggregates.4.edges": [0, 10, 10, 20]}, "query.aggregates[4].edges", "strictly increasing"),
    ({"query.aggregates.4.edges": [0, float("nan")]}, "query.aggregates[4].edges[1]", "finite"),
    ({"query.aggregates.4.bounds": [0, 1]}, "query.aggregates[4].bounds", "Extra"),
    ({"query.filters.0.op": "~="}, "query.filters[0].op", "Input should be"),
    ({"query.filters.0.op": "in"}, "query.filters[0].value", "list of 1 to 100"),
    ({"query.filters.0.value": [50, 60]}, "query.filters[0].value", "only 'in'"),
    ({"query.filters.0.value": {"gt": 5}}, "query.filters[0].value", "Input should be"),
    (
        {"query.filters": [{"column": "stage", "op": "in", "value": []}]},
        "query.filters[0].value",
        "list of 1",
    ),
    ({"query.group_by": ["a", "b", "c", "d", "e"]}, "query.group_by", "at most 4"),
]


@pytest.mark.parametrize(("changes", "field", "message"), PARSE_ERRORS)
def test_parse_errors_name_the_field(changes: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(QueryError) as refused:
        parse_request(with_changes(**changes))
    assert refused.value.field == field
    assert message in str(refused.value)


def test_parse_rejects_nan_in_json() -> None:
    text = json.dumps(contract_example()).replace('"epsilon": 0.5', '"epsilon": NaN')
    with pytest.raises(QueryError) as refused:
        parse_request(text)
    assert refused.value.field == "epsilon"


def test_query_error_is_an_invalid_input() -> None:
    error = QueryError("bad", "query.group_by[0]")
    assert (error.status, error.field, error.detail) == (422, "query.group_by[0]", "bad")


VALIDATION_ERRORS = [
    ({"dataset_id": "wdbc"}, "dataset_id", "not hanbit_registry"),
    # unknown columns, everywhere
    ({"query.filters.0.column": "weight"}, "query.filters[0].column", "no column weight"),
    ({"query.group_by": ["ward_no"]}, "query.group_by[0]", "no column ward_no"),
    ({"query.aggregates.0.column": "weight"}, "query.aggregates[0].column", "no column weight"),
    ({"query.aggregates.2.column": "weight"}, "query.aggregates[2].column", "no column weight"),
    # direct identifiers, everywhere
    (
        {"query.filters.0.column": "rrn", "query.filters.0.op": "=="},
        "query.filters[0].column",
        "direct identifier",
    ),
    ({"query.group_by": ["mrn"]}, "query.group_by[0]", "direct identifier"),
    ({"query.aggregates.0.column": "patient_name"}, "query.aggregates[0].column", "direct identifier"),
    ({"query.aggregates.1.column": "phone"}, "query.aggregates[1].column", "direct identifier"),
    # unsuitable types
    ({"query.aggregates.1.column": "stage"}, "query.aggregates[1].column", "needs an int or float column"),
    ({"query.aggregates.2.column": "diagnosis_date"}, "query.aggregates[2].column", "needs an int or float"),
    ({"query.aggregates.3.column": "ward"}, "query.aggregates[3].column", "needs an int or float"),
    ({"query.aggregates.4.column": "smoker"}, "query.aggregates[4].column", "needs an int or float"),
    ({"query.group_by": ["tumor_size_mm"]}, "query.group_by[0]", "cannot group by float"),
    ({"query.group_by": ["diagnosis_date"]}, "query.group_by[0]", "cannot group by date"),
    ({"query.group_by": ["stage", "grade", "stage"]}, "query.group_by[2]", "twice"),
    # bounds
    ({"query.aggregates.1.bounds": [150, 0]}, "query.aggregates[1].bounds", "lower < upper"),
    ({"query.aggregates.2.bounds": [5, 5]}, "query.aggregates[2].bounds", "lower < upper"),
    ({"query.aggregates.3.bounds": [30.2, 30.8]}, "query.aggregates[3].bounds", "contain no integer"),
    ({"query.aggregates.1.bounds": [0, 1e10]}, "query.aggregates[1].bounds", "within"),
    ({"query.aggregates.4.edges": [-2e9, 0]}, "query.aggregates[4].edges", "within"),
    (
        {"query.aggregates.2.column": "bmi", "query.aggregates.2.bounds": None},
        "query.aggregates[2].bounds",
        "no bounds",
    ),
    # names
    ({"query.aggregates.1.as": "n"}, "query.aggregates[1].as", "used twice"),
    ({"query.aggregates.4.as": "stage"}, "query.aggregates[4].as", "used twice"),
    # keys
    ({"query.group_by": ["ward"]}, "query.group_by[0]", "no public categories"),
    ({"query.group_by": ["stage", "survival_months"]}, "query.group_by[1]", "no public categories"),
    # filters
    ({"query.filters.0.column": "stage"}, "query.filters[0]", "needs an int, float or date column"),
    (
        {"query.filters.0.column": "smoker", "query.filters.0.op": "<"},
        "query.filters[0]",
        "needs an int, float",
    ),
    ({"query.filters.0.value": "fifty"}, "query.filters[0].value", "does not fit int column"),
    ({"query.filters.0.value": 50.5}, "query.filters[0].value", "not an integer"),
    ({"query.filters.0.value": True}, "query.filters[0].value", "does not fit int column"),
    (
        {"query.filters": [{"column": "stage", "op": "==", "value": "V"}]},
        "query.filters[0].value",
        "not a declared",
    ),
    (
        {"query.filters": [{"column": "stage", "op": "in", "value": ["I", "V"]}]},
        "query.filters[0].value[1]",
        "not a",
    ),
    (
        {"query.filters": [{"column": "smoker", "op": "==", "value": "yes"}]},
        "query.filters[0].value",
        "does not fit",
    ),
    (
        {"query.filters": [{"column": "diagnosis_date", "op": ">", "value": "2020-13-01"}]},
        "query.filters[0].value",
        "ISO",
    ),
    (
        {"query.filters": [{"column": "tumor_size_mm", "op": ">", "value": "10"}]},
        "query.filters[0].value",
        "not fit",
    ),
]


@pytest.mark.parametrize(("changes", "field", "message"), VALIDATION_ERRORS)
def test_validation_errors_name_the_field(
    meta: DatasetMetadata, changes: dict[str, Any], field: str, message: str
) -> None:
    request = parse_request(with_changes(**changes))
    with pytest.raises(QueryError) as refused:
        validate_against(request, meta)
    assert refused.value.field == field
    assert message in str(refused.value)


def test_too_many_cells(meta: DatasetMetadata) -> None:
    doc = copy.deepcopy(meta.model_dump(mode="json"))
    codes = [str(i) for i in range(2000)]
    doc["columns"].append({"name": "code", "type": "category", "role": "attribute", "categories": codes})
    wide = parse_metadata(doc)
    request = parse_request(with_changes(**{"query.group_by": ["code", "treatment", "grade", "stage"]}))
    with pytest.raises(QueryError) as refused:  # 180,000 key combinations
        validate_against(request, wide)
    assert refused.value.field == "query.group_by"
    request = parse_request(with_changes(**{"query.group_by": ["code", "stage"]}))
    assert validate_against(request, wide).group_keys is not None  # 10,000 keys x 4 bins
    many_bins = with_changes(
        **{"query.group_by": ["code", "stage"], "query.aggregates.4.edges": list(range(21))}
    )
    with pytest.raises(QueryError) as refused:  # 10,000 keys x 20 bins
        validate_against(parse_request(many_bins), wide)
    assert refused.value.field == "query.aggregates[4].edges"
