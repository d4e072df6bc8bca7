"""Synthetic hospital registries (enclave_api.demo.synthetic)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from enclave_api.demo.synthetic import HOSPITALS, HospitalSpec, generate_registry, registry_metadata
from privacy.identifiers.korea import is_korean_mobile, parse_rrn

DATA_CUTOFF = date(2025, 6, 30)
DAYS_PER_MONTH = 365.2425 / 12
ARROW_TYPE_CHECKS: dict[str, Callable[[pa.DataType], bool]] = {
    "int": pa.types.is_integer,
    "float": pa.types.is_floating,
    "date": pa.types.is_date32,
    "str": pa.types.is_string,
    "category": pa.types.is_string,
    "bool": pa.types.is_boolean,
}
HANGUL_NAME = re.compile(r"[가-힣]{3,4}")


@pytest.fixture(scope="module")
def registries() -> dict[str, pa.Table]:
    return {hospital.org_id: generate_registry(hospital) for hospital in HOSPITALS}


@pytest.fixture(params=HOSPITALS, ids=lambda hospital: hospital.org_id)
def hospital(request: pytest.FixtureRequest) -> HospitalSpec:
    spec: HospitalSpec = request.param
    return spec


@pytest.fixture
def registry(hospital: HospitalSpec, registries: dict[str, pa.Table]) -> pa.Table:
    return registries[hospital.org_id]


def column(table: pa.Table, name: str) -> np.ndarray[Any, Any]:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False))


def test_demo_hospitals() -> None:
    assert [(h.org_id, h.name, h.dataset_id, h.n_patients) for h in HOSPITALS] == [
        ("hanbit-cancer-center", "Hanbit Cancer Center", "hanbit_registry", 30_000),
        ("dasom-university-hospital", "Dasom University Hospital", "dasom_registry", 20_000),
        ("mirae-oncology-institute", "Mirae Oncology Institute", "mirae_registry", 25_000),
    ]
    assert len({h.mrn_prefix for h in HOSPITALS}) == len({h.seed for h in HOSPITALS}) == 3


def test_size_and_seed_default_to_the_hospital(hospital: HospitalSpec, registry: pa.Table) -> None:
    assert registry.num_rows == hospital.n_patients
    assert generate_registry(hospital, hospital.n_patients, hospital.seed).equals(registry)
    assert generate_registry(hospital, 50, seed=7).num_rows == 50


def test_same_seed_gives_the_same_bytes() -> None:
    hospital = HOSPITALS[1]

    def ipc_bytes(table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return bytes(sink.getvalue().to_pybytes())

    assert ipc_bytes(generate_registry(hospital, 2_000, 42)) == ipc_bytes(
        generate_registry(hospital, 2_000, 42)
    )
    different = generate_registry(hospital, 2_000, 43)
    for name in ("rrn", "phone", "mrn", "tumor_size_mm", "survival_months"):
        assert not different.column(name).equals(generate_registry(hospital, 2_000, 42)[name])


def test_columns_match_the_metadata(hospital: HospitalSpec, registry: pa.Table) -> None:
    metadata = registry_metadata(hospital)
    assert registry.column_names == [c["name"] for c in metadata["columns"]]
    for spec, field in zip(metadata["columns"], registry.schema, strict=True):
        assert ARROW_TYPE_CHECKS[spec["type"]](field.type), (spec, field.type)


def test_values_lie_within_metadata_bounds_and_categories(hospital: HospitalSpec, registry: pa.Table) -> None:
    for spec in registry_metadata(hospital)["columns"]:
        values = registry.column(spec["name"])
        assert values.null_count == 0, spec["name"]
        if "categories" in spec:
            assert set(values.unique().to_pylist()) <= set(spec["categories"]), spec["name"]
        if "bounds" in spec:
            low, high = spec["bounds"]
            if spec["type"] == "date":
                low, high = date.fromisoformat(low), date.fromisoformat(high)
            extremes = pc.min_max(values).as_py()
            assert low <= extremes["min"] <= extremes["max"] <= high, spec["name"]


def test_metadata_contract(hospital: HospitalSpec) -> None:
    metadata = registry_metadata(hospital)
    json.dumps(metadata)  # serialisable beside the data set
    assert metadata["id"] == hospital.dataset_id
    assert metadata["custodian_org"] == hospital.org_id
    assert metadata["tier"] == "enclave"
    assert metadata["max_rows_per_person"] == 1
    assert metadata["title"]
    assert hospital.name in metadata["description"]
    roles = {c["name"]: c["role"] for c in metadata["columns"]}
    assert [n for n, r in roles.items() if r == "direct_identifier"] == [
        "patient_name",
        "rrn",
        "phone",
        "mrn",
    ]
    assert [n for n, r in roles.items() if r == "quasi_identifier"] == [
        "sex",
        "age_at_diagnosis",
        "diagnosis_date",
    ]
    assert list(roles)[7:] == [n for n, r in roles.items() if r == "sensitive"]
    on_release = {c["name"]: c.get("on_release") for c in metadata["columns"]}
    assert on_release["mrn"] == "pseudonymise"
    assert on_release["patient_name"] == on_release["rrn"] == on_release["phone"] == "drop"
    for spec in metadata["columns"]:
        assert spec["type"] in ARROW_TYPE_CHECKS
        assert spec["role"] != "direct_identifier" or spec["type"] == "str"
        assert ("on_release" in spec) == (spec["role"] == "direct_identifier")
        if spec["type"] in {"int", "float", "date"}:
            assert len(spec["bounds"]) == 2
            assert spec["bounds"][0] < spec["bounds"][1]
        if spec["type"] == "category":
            assert all(isinstance(c, str) for c in spec["categories"])


def test_every_rrn_is_valid_and_matches_sex_and_age(registry: pa.Table) -> None:
    rows = registry.select(["rrn", "sex", "age_at_diagnosis", "diagnosis_date"]).to_pylist()
    for row in rows:
        info = parse_rrn(row["rrn"])  # raises on a bad date or check digit
        assert re.fullmatch(r"\d{6}-\d{7}", row["rrn"])
        assert info.sex == row["sex"]
        diagnosed: date = row["diagnosis_date"]
        born = info.birth_date
        age = diagnosed.year - born.year - ((diagnosed.month, diagnosed.day) < (born.month, born.day))
        assert age == row["age_at_diagnosis"], row
    assert len({row["rrn"] for row in rows}) == len(rows)
    foreign = [row for row in rows if row["rrn"][7] in "5678"]
    assert 0 < len(foreign) < 0.03 * len(rows)


def test_direct_identifiers_are_well_formed(hospital: HospitalSpec, registry: pa.Table) -> None:
    mrns = registry.column("mrn").to_pylist()
    assert len(set(mrns)) == len(mrns)
    assert all(re.fullmatch(re.escape(hospital.mrn_prefix) + r"\d{8}", mrn) for mrn in mrns)
    phones = registry.column("phone").to_pylist()
    assert all(re.fullmatch(r"010-\d{4}-\d{4}", p) and is_korean_mobile(p) for p in phones)
    names = registry.column("patient_name").to_pylist()
    assert all(HANGUL_NAME.fullmatch(name) for name in names)
    assert not any(name[-1] == name[-2] for name in names)
    assert 0.15 < sum(name.startswith("김") for name in names) / len(names) < 0.28
    assert len(set(names)) > len(names) / 10


def test_patients_are_mostly_women(registry: pa.Table) -> None:
    male_share = float(np.mean(column(registry, "sex") == "M"))
    assert 0.003 < male_share < 0.02


def test_survival_is_censored_at_the_data_cutoff(registry: pa.Table) -> None:
    diagnosis = column(registry, "diagnosis_date").astype("datetime64[D]")
    follow_up_days = (np.datetime64(DATA_CUTOFF) - diagnosis).astype(np.int64)
    months_since_diagnosis = np.floor(follow_up_days / DAYS_PER_MONTH)
    survival = column(registry, "survival_months")
    assert (survival >= 0).all()
    assert (survival <= months_since_diagnosis).all()
    alive = column(registry, "vital_status") == "alive"
    # Most of the living are followed up to the cut-off; deaths end follow-up earlier.
    assert np.mean(survival[alive] == months_since_diagnosis[alive]) > 0.7
    assert diagnosis.min() < np.datetime64("2011-01-01")
    assert diagnosis.max() > np.datetime64("2024-01-01")
    assert (np.diff(diagnosis.astype(np.int64)) >= 0).all()  # registration order


def test_stage_drives_survival(registry: pa.Table) -> None:
    stage = column(registry, "stage")
    survival = column(registry, "survival_months")
    deceased = column(registry, "vital_status") == "deceased"
    median = {s: float(np.median(survival[stage == s])) for s in ("I", "IV")}
    assert median["IV"] < 0.5 * median["I"]
    death_share = [float(np.mean(deceased[stage == s])) for s in ("I", "II", "III", "IV")]
    assert death_share == sorted(death_share)
    assert death_share[-1] > 5 * death_share[0]


def test_clinical_relationships(registry: pa.Table) -> None:
    stage, grade = column(registry, "stage"), column(registry, "grade")
    size, ki67 = column(registry, "tumor_size_mm"), column(registry, "ki67_pct")
    er_positive = column(registry, "er_status") == "positive"
    pr_positive = column(registry, "pr_status") == "positive"
    her2_positive = column(registry, "her2_status") == "positive"
    treatment = column(registry, "treatment")

    median_size = [float(np.median(size[stage == s])) for s in ("I", "II", "III")]
    assert median_size == sorted(median_size)
    assert np.median(size[stage == "III"]) > 2 * np.median(size[stage == "I"])
    assert ki67[grade == "3"].mean() > 2 * ki67[grade == "1"].mean()
    assert np.mean(pr_positive[er_positive]) > 0.6
    assert np.mean(pr_positive[~er_positive]) < 0.15
    assert 0.12 < np.mean(her2_positive) < 0.22
    assert np.mean(treatment[stage == "IV"] == "palliative") > 0.6
    assert np.mean(treatment[stage == "0"] == "palliative") < 0.02


def test_hospitals_differ_in_case_mix(registries: dict[str, pa.Table]) -> None:
    advanced_share = {
        org: float(np.isin(column(table, "stage"), ["III", "IV"]).mean()) for org, table in registries.items()
    }
    hanbit, dasom, mirae = (advanced_share[h.org_id] for h in HOSPITALS)
    assert hanbit + 0.04 < dasom < mirae - 0.04


def test_largest_registry_generates_fast() -> None:
    hospital = max(HOSPITALS, key=lambda h: h.n_patients)
    started = time.perf_counter()
    generate_registry(hospital)
    assert time.perf_counter() - started < 2.0
