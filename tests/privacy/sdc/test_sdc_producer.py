"""Tables built from microdata with their statistics (privacy.sdc.producer), checked end to end."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from privacy.findings import Severity
from privacy.sdc import CellStats, TableStats, check_table, crosstab, sidecar_path, write_table


def patients() -> pl.DataFrame:
    """Tumour sizes by stage: stage I has one dominant patient, stage II only three patients,
    stage III is safe, stage IV has two patients who together hold more than 90% of the total
    (but a p-ratio of 0.2), and stage V has twelve patients with no recorded size."""
    rows: list[tuple[str | None, str | None, float | None]] = []
    rows += [("I", "F" if i % 2 else "M", 1.0) for i in range(29)] + [("I", "F", 1000.0)]
    rows += [("II", "F", 5.0), ("II", "F", 6.0), ("II", "M", 7.0)]
    rows += [("III", "F" if i % 2 else "M", 10.0 + i % 3) for i in range(25)]
    rows += [("IV", "M", 50.0), ("IV", "M", 45.0)] + [("IV", "M", 1.0)] * 10
    rows += [("V", "M", None)] * 12
    rows += [(None, "F", 3.0), ("III", None, 3.0)]  # missing categories are left out, as in pandas
    return pl.DataFrame(rows, schema={"stage": pl.String, "sex": pl.String, "size": pl.Float64}, orient="row")


def written_and_read_back(table: pl.DataFrame, stats: TableStats, path: Path) -> list[tuple[str, str]]:
    """Write as a session would, read as the airlock does (all text), and check."""
    sidecar = write_table(table, stats, path)
    assert sidecar == sidecar_path(path)
    read = pl.read_csv(path, infer_schema=False)
    findings = check_table(read, file=path.name, stats=TableStats.from_json(sidecar.read_bytes()))
    return [(f.rule, f.location) for f in findings if f.severity is Severity.REVIEW]


def test_mean_by_stage_flags_exactly_the_disclosive_cells(tmp_path: Path) -> None:
    table, stats = crosstab(patients(), index="stage", values="size", aggfunc="mean")
    assert table.columns == ["stage", "mean_size"]
    assert table.get_column("stage").to_list() == ["I", "II", "III", "IV", "V"]
    assert stats.cells[(1, "mean_size")] == CellStats(n=3, total=18.0, top=(7.0, 6.0))
    assert written_and_read_back(table, stats, tmp_path / "sizes.csv") == [
        ("p_ratio", "row 1 (stage='I'), column 'mean_size'"),
        ("nk_dominance", "row 1 (stage='I'), column 'mean_size'"),
        ("threshold", "row 2 (stage='II'), column 'mean_size'"),
        ("nk_dominance", "row 4 (stage='IV'), column 'mean_size'"),
        ("zero", "row 5 (stage='V'), column 'mean_size'"),
    ]


def test_sum_by_stage_and_sex_wide(tmp_path: Path) -> None:
    table, stats = crosstab(patients(), index="stage", columns="sex", values="size", aggfunc="sum")
    assert table.columns == ["stage", "F", "M"]
    # Nobody with stage IV or V is female: an empty cell, and no contributors in the statistics.
    assert table.row(3) == ("IV", None, 105.0)
    assert stats.cells[(3, "F")] == CellStats(n=0)
    assert written_and_read_back(table, stats, tmp_path / "sums.csv") == [
        ("p_ratio", "row 1 (stage='I'), column 'F'"),
        ("nk_dominance", "row 1 (stage='I'), column 'F'"),
        ("threshold", "row 2 (stage='II'), column 'F'"),
        ("p_ratio", "row 2 (stage='II'), column 'F'"),
        ("nk_dominance", "row 2 (stage='II'), column 'F'"),
        ("threshold", "row 2 (stage='II'), column 'M'"),
        ("p_ratio", "row 2 (stage='II'), column 'M'"),
        ("nk_dominance", "row 2 (stage='II'), column 'M'"),
        ("zero", "row 4 (stage='IV'), column 'F'"),
        ("nk_dominance", "row 4 (stage='IV'), column 'M'"),
        ("zero", "row 5 (stage='V'), column 'F'"),
        ("zero", "row 5 (stage='V'), column 'M'"),
    ]


def test_count_crosstab_shows_zeros_and_checks_counts(tmp_path: Path) -> None:
    table, stats = crosstab(patients(), index="stage", columns="sex")
    assert table.row(1) == ("II", 2, 1)
    assert table.row(3) == ("IV", 0, 12)
    assert stats.cells[(3, "M")] == CellStats(n=12)
    assert written_and_read_back(table, stats, tmp_path / "counts.csv") == [
        ("threshold", "row 2 (stage='II'), column 'F'"),
        ("threshold", "row 2 (stage='II'), column 'M'"),
        ("zero", "row 4 (stage='IV'), column 'F'"),
        ("zero", "row 5 (stage='V'), column 'F'"),
    ]


def test_long_count_table_by_two_index_columns(tmp_path: Path) -> None:
    table, stats = crosstab(patients(), index=["stage", "sex"])
    assert table.columns == ["stage", "sex", "n"]
    assert table.filter(stage="II").get_column("n").to_list() == [2, 1]
    assert written_and_read_back(table, stats, tmp_path / "long.csv")[:2] == [
        ("threshold", "row 3 (stage='II', sex='F'), column 'n'"),
        ("threshold", "row 4 (stage='II', sex='M'), column 'n'"),
    ]


def test_count_of_values_counts_only_present_values() -> None:
    table, stats = crosstab(patients(), index="stage", values="size")
    assert table.filter(stage="V").get_column("n").to_list() == [0]
    assert stats.cells[(4, "n")] == CellStats(n=0)


def test_negative_contributions_dominate_by_their_size() -> None:
    df = pl.DataFrame({"group": ["a"] * 12, "change": [-500.0] + [1.0] * 11})
    table, stats = crosstab(df, index="group", values="change", aggfunc="sum")
    assert table.get_column("sum_change").to_list() == [-489.0]
    assert stats.cells[(0, "sum_change")] == CellStats(n=12, total=511.0, top=(500.0, 1.0))
    assert [f.rule for f in check_table(table, file="t.csv", stats=stats)] == ["p_ratio", "nk_dominance"]


def test_nan_categories_and_values_are_missing() -> None:
    df = pl.DataFrame({"score": [1.0, float("nan"), 1.0], "value": [2.0, 3.0, float("nan")]})
    table, stats = crosstab(df, index="score", values="value", aggfunc="mean")
    assert table.rows() == [(1.0, 2.0)]
    assert stats.cells == {(0, "mean_value"): CellStats(n=1, total=2.0, top=(2.0,))}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"index": "nope"}, "unknown columns"),
        ({"index": []}, "at least one"),
        ({"index": "stage", "columns": "stage"}, "different columns"),
        ({"index": "stage", "aggfunc": "mean"}, "needs values"),
        ({"index": "stage", "values": "sex", "aggfunc": "sum"}, "not numeric"),
        ({"index": "stage", "aggfunc": "median"}, "aggfunc"),
        ({"index": "n", "values": "size"}, "clashes"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    df = patients().with_columns(n=pl.lit("x"))
    with pytest.raises(ValueError, match=message):
        crosstab(df, **kwargs)  # type: ignore[arg-type]


def test_categories_clashing_with_index_columns_are_refused() -> None:
    df = pl.DataFrame({"stage": ["I", "II"], "kind": ["stage", "other"]})
    with pytest.raises(ValueError, match="clash"):
        crosstab(df, index="stage", columns="kind")
