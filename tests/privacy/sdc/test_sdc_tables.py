"""Disclosure checks on output tables (privacy.sdc.tables): count detection, rules, locations, messy cells."""

from __future__ import annotations

import polars as pl
import pytest

from privacy.findings import Check, Finding, Severity
from privacy.sdc import CellStats, SdcRules, TableStats, check_table, count_columns, is_count_name


def text_table(data: dict[str, list[str | None]]) -> pl.DataFrame:
    """A table as the file parsers deliver it: every column a string."""
    return pl.DataFrame(data, schema=dict.fromkeys(data, pl.String))


def rules_at(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.location) for f in findings]


def review(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity is Severity.REVIEW]


# (column name, is a count name)
COUNT_NAMES = [
    ("n", True),
    ("N", True),
    ("count", True),
    ("Counts", True),
    ("freq", True),
    ("frequency", True),
    ("patients", True),
    ("cases", True),
    ("events", True),
    ("number", True),
    ("num_admissions", True),
    ("n_deaths", True),
    ("event_count", True),
    ("cases_n", True),
    ("total_patients", True),
    ("nPatients", True),
    ("n (%)", True),
    ("환자수", True),
    ("환자 수", True),
    ("건수", True),
    ("인원(명)", True),
    ("빈도", True),
    ("mean_age", False),
    ("median_los", False),
    ("pct_patients", False),
    ("% patients", False),
    ("events_per_year", False),
    ("n_pct", False),
    ("rate", False),
    ("age", False),
    ("stage", False),
    ("patient_id", False),
    ("phone_number", False),
    ("점수", False),
    ("계수", False),
    ("성명", False),
    ("평균 환자수", False),
    ("", False),
]


@pytest.mark.parametrize(("name", "expected"), COUNT_NAMES)
def test_count_names(name: str, expected: bool) -> None:
    assert is_count_name(name) is expected


# (values of a column named "n", checked as counts)
COUNT_VALUES = [
    (["3", "120", "0"], True),
    (["3", "", None, "NaN", "NA", "-"], True),
    (["<8", "[REDACTED]", "*", "[c]", "12"], True),
    (["1,234", "12.0", " 15 "], True),
    (["12 (4.5%)", "230 (95.5%)"], True),
    (["3", "2.5"], False),
    (["3", "-3"], False),
    (["3", "many"], False),
    (["3", "1e3"], False),
    (["3", "inf"], False),
]


@pytest.mark.parametrize(("values", "is_count"), COUNT_VALUES)
def test_count_named_columns_must_hold_non_negative_integers(
    values: list[str | None], is_count: bool
) -> None:
    table = text_table({"stage": [f"s{i}" for i in range(len(values))], "n": values})
    assert count_columns(table) == (["n"] if is_count else [])


def test_mean_age_is_no_count_even_when_integer() -> None:
    table = text_table({"stage": ["I", "II"], "mean_age": ["3", "4"], "n": ["40", "45"]})
    assert count_columns(table) == ["n"]
    assert check_table(table, file="t.csv") == []


def test_a_count_named_column_with_fractions_is_noted_and_not_checked() -> None:
    table = text_table({"stage": ["I", "II"], "n": ["3", "2.5"]})
    findings = check_table(table, file="t.csv")
    assert [(f.rule, f.severity, f.location) for f in findings] == [
        ("not_a_count", Severity.INFO, "column 'n'")
    ]
    assert "2.5" in findings[0].message and "row 2" in findings[0].message


def test_finding_names_file_cell_labels_rule_value_threshold_and_suggestion() -> None:
    table = text_table({"stage": ["I", "II"], "sex": ["M", "F"], "n": ["40", "3"]})
    (finding,) = check_table(table, file="out/counts.csv")
    assert finding == Finding(
        check=Check.SDC,
        rule="threshold",
        severity=Severity.REVIEW,
        file="out/counts.csv",
        location="row 2 (stage='II', sex='F'), column 'n'",
        message="count 3 is below the minimum cell count of 10",
        excerpt="3",
        suggestion="redact (≤ 7)",
    )


# (count, findings as (rule, severity, suggestion))
THRESHOLD_TABLE = [
    ("9", [("threshold", Severity.REVIEW, "round to 5 → 10")]),
    ("10", []),
    ("11", [("rounding", Severity.INFO, "round to 5 → 10")]),
    ("7", [("threshold", Severity.REVIEW, "redact (≤ 7)")]),
    ("1", [("threshold", Severity.REVIEW, "redact (≤ 7)")]),
    ("0", [("zero", Severity.REVIEW, "redact (≤ 7), unless the zero is structural")]),
    ("23", [("rounding", Severity.INFO, "round to 5 → 25")]),
    ("25", []),
]


@pytest.mark.parametrize(("count", "expected"), THRESHOLD_TABLE)
def test_count_cells(count: str, expected: list[tuple[str, Severity, str]]) -> None:
    findings = check_table(text_table({"stage": ["I"], "n": [count]}), file="t.csv")
    assert [(f.rule, f.severity, f.suggestion) for f in findings] == expected


def test_zeros_can_be_declared_structural() -> None:
    table = text_table({"stage": ["I"], "n": ["0"]})
    assert check_table(table, file="t.csv", rules=SdcRules(zeros_are_disclosive=False)) == []


def test_redaction_is_suggested_for_small_counts_that_pass_a_lower_threshold() -> None:
    table = text_table({"stage": ["I", "II"], "n": ["6", "4"]})
    findings = check_table(table, file="t.csv", rules=SdcRules(threshold=5))
    assert [(f.rule, f.severity) for f in findings] == [
        ("redact", Severity.INFO),
        ("threshold", Severity.REVIEW),
    ]


def test_every_count_cell_is_checked_in_row_then_column_order() -> None:
    table = text_table({"region": ["N", "S"], "n_male": ["3", "40"], "n_female": ["40", "0"]})
    assert rules_at(check_table(table, file="t.csv")) == [
        ("threshold", "row 1 (region='N'), column 'n_male'"),
        ("zero", "row 2 (region='S'), column 'n_female'"),
    ]


def test_a_percentage_beside_a_disclosive_count_is_flagged_with_it() -> None:
    table = text_table(
        {
            "stage": ["I", "II", "III"],
            "n": ["3", "120", "0"],
            "%": ["2.5", "97.5", ""],
            "mean_age": ["61.0", "60.2", "58.1"],
        }
    )
    findings = check_table(table, file="t.csv")
    assert rules_at(findings) == [
        ("threshold", "row 1 (stage='I'), column 'n'"),
        ("percentage", "row 1 (stage='I'), column '%'"),
        ("zero", "row 3 (stage='III'), column 'n'"),
    ]
    assert findings[1].suggestion == "redact together with 'n'"
    assert "2.5" in findings[1].message


def test_percentages_attach_to_the_nearest_count_column() -> None:
    table = text_table(
        {"sex": ["F"], "n_alive": ["50"], "pct_alive": ["90.9"], "n_dead": ["5"], "pct_dead": ["9.1"]}
    )
    assert rules_at(review(check_table(table, file="t.csv"))) == [
        ("threshold", "row 1 (sex='F'), column 'n_dead'"),
        ("percentage", "row 1 (sex='F'), column 'pct_dead'"),
    ]


def test_table_one_cells_with_count_and_percentage() -> None:
    table = text_table({"characteristic": ["Female", "Male"], "n (%)": ["4 (3.3%)", "117 (96.7%)"]})
    findings = check_table(table, file="table1.csv")
    assert [(f.rule, f.excerpt) for f in findings] == [("threshold", "4 (3.3%)"), ("rounding", "117 (96.7%)")]


def test_crosstab_with_category_headers_is_checked_as_a_whole() -> None:
    table = text_table(
        {"": ["Stage I", "Stage II"], "Male": ["12", "0"], "Female": ["3", "40"], "Total": ["15", "40"]}
    )
    assert rules_at(review(check_table(table, file="t.csv"))) == [
        ("threshold", "row 1 ('Stage I'), column 'Female'"),
        ("zero", "row 2 ('Stage II'), column 'Male'"),
    ]
    assert count_columns(table) == ["Male", "Female", "Total"]


def test_a_lone_unnamed_number_column_is_no_crosstab() -> None:
    table = text_table({"region": ["N", "S"], "value": ["3", "40"]})
    assert count_columns(table) == []
    assert check_table(table, file="t.csv") == []


def test_a_sum_crosstab_described_by_magnitude_statistics_is_not_read_as_counts() -> None:
    table = text_table({"": ["A", "B"], "F": ["3.0", "250.0"], "M": ["40.0", "120.0"]})
    cells = {
        (row, column): CellStats(n=20, total=300.0, top=(20.0, 20.0)) for row in (0, 1) for column in "FM"
    }
    assert count_columns(table) == ["F", "M"]
    assert count_columns(table, TableStats(cells=cells)) == []
    assert check_table(table, file="t.csv", stats=TableStats(cells=cells)) == []


def test_crosstab_with_numeric_category_codes_as_labels() -> None:
    table = text_table({"age_group": ["1", "2"], "2019": ["30", "4"], "2020": ["25", "35"]})
    assert rules_at(review(check_table(table, file="t.csv"))) == [
        ("threshold", "row 2 (age_group='2'), column '2019'")
    ]


# Tables that are not crosstabs of counts: nothing is checked.
NOT_CROSSTABS = [
    {"": ["A", "B"], "Male": ["1.5", "2"], "Female": ["3", "4"]},
    {"": ["A", "B"], "mean_x": ["1", "2"], "Female": ["3", "4"]},
    {"": ["A", "B"], "Male": ["-1", "2"], "Female": ["3", "4"]},
    {"": ["A", "B"], "Male": ["1", "2"], "share": ["0.5", "0.25"]},
]


@pytest.mark.parametrize("data", NOT_CROSSTABS)
def test_not_crosstabs(data: dict[str, list[str | None]]) -> None:
    table = text_table(data)
    assert count_columns(table) == []
    assert check_table(table, file="t.csv") == []


def test_model_coefficients_and_means_are_not_threshold_checked_without_stats() -> None:
    table = text_table(
        {
            "term": ["(Intercept)", "age"],
            "coef": ["1.2", "0.03"],
            "se": ["0.1", "0.01"],
            "p": ["0.001", "0.2"],
        }
    )
    assert check_table(table, file="coefs.csv") == []


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"n": []},
        {"stage": ["I", None], "n": [None, ""]},
        {"stage": ["I"], "n": ["NaN"], "notes": ["x" * 10_000]},
    ],
)
def test_empty_and_missing_never_crash(data: dict[str, list[str | None]]) -> None:
    assert check_table(text_table(data), file="t.csv") == []


def test_typed_tables_with_nan_and_nulls_are_read_as_text() -> None:
    table = pl.DataFrame(
        {"stage": ["I", "II", "III"], "n": [3.0, float("nan"), None], "mean_size": [1.5, 2.0, 3.0]}
    )
    assert rules_at(check_table(table, file="t.parquet")) == [("threshold", "row 1 (stage='I'), column 'n'")]


def test_locations_name_at_most_three_labels() -> None:
    table = text_table({"a": ["1a"], "b": ["1b"], "c": ["1c"], "d": ["1d"], "n": ["3"]})
    (finding,) = check_table(table, file="t.csv")
    assert finding.location == "row 1 (a='1a', b='1b', c='1c'), column 'n'"


def test_long_labels_are_shortened_in_locations() -> None:
    table = text_table({"label": ["x" * 100], "n": ["3"]})
    (finding,) = check_table(table, file="t.csv")
    assert finding.location == f"row 1 (label='{'x' * 29}…'), column 'n'"


# --- with contributor statistics ---------------------------------------------------------------


def magnitude_table() -> pl.DataFrame:
    return text_table({"stage": ["I", "II", "III"], "mean_size": ["12.3", "40.1", "7.7"]})


def stats_for(cells: dict[tuple[int, str], CellStats], table: str = "") -> TableStats:
    return TableStats(cells=cells, table=table)


@pytest.mark.parametrize(
    ("cell", "expected", "why"),
    [
        (CellStats(n=12, total=1000.0, top=(60.0, 50.0)), [], "spread out"),
        (CellStats(n=9, total=1000.0, top=(60.0, 50.0)), ["threshold"], "9 contributors"),
        (CellStats(n=10, total=1000.0, top=(60.0, 50.0)), [], "10 contributors"),
        (CellStats(n=11, total=1000.0, top=(60.0, 50.0)), [], "11 contributors"),
        (CellStats(n=12, total=160.0, top=(100.0, 50.0)), ["nk_dominance"], "p exactly 0.1 passes; nk 0.94"),
        (CellStats(n=12, total=159.0, top=(100.0, 50.0)), ["p_ratio", "nk_dominance"], "p 0.09"),
        (CellStats(n=12, total=100.0, top=(60.0, 30.0)), [], "nk exactly 0.9 passes; p 0.167"),
        (CellStats(n=12, total=100.0, top=(60.0, 31.0)), ["nk_dominance"], "nk 0.91"),
        (CellStats(n=2, total=10.0, top=(5.0, 5.0)), ["threshold", "p_ratio", "nk_dominance"], "two"),
        (CellStats(n=0), ["zero"], "nobody"),
        (CellStats(n=12, total=0.0, top=(0.0, 0.0)), ["zero"], "all contributions zero"),
        (CellStats(n=3), ["threshold"], "contributors only"),
    ],
)
def test_magnitude_cells(cell: CellStats, expected: list[str], why: str) -> None:
    findings = check_table(magnitude_table(), file="t.csv", stats=stats_for({(1, "mean_size"): cell}))
    assert [f.rule for f in findings] == expected
    assert all(f.location == "row 2 (stage='II'), column 'mean_size'" for f in findings)
    assert all(f.severity is Severity.REVIEW and f.suggestion for f in findings)


def test_magnitude_messages_give_value_and_threshold() -> None:
    cell = CellStats(n=12, total=159.0, top=(100.0, 50.0))
    p_ratio, nk = check_table(magnitude_table(), file="t.csv", stats=stats_for({(0, "mean_size"): cell}))
    assert "p-ratio 0.09 < 0.1" in p_ratio.message
    assert "94.3%" in nk.message and "k = 90%" in nk.message


def test_zero_cells_with_statistics_pass_when_zeros_are_structural() -> None:
    stats = stats_for(
        {(0, "mean_size"): CellStats(n=0), (1, "mean_size"): CellStats(n=12, total=0.0, top=(0.0, 0.0))}
    )
    assert (
        check_table(magnitude_table(), file="t.csv", stats=stats, rules=SdcRules(zeros_are_disclosive=False))
        == []
    )


def test_statistics_for_the_wrong_file_or_missing_cells_are_mismatches() -> None:
    stats = stats_for(
        {
            (0, "mean_size"): CellStats(n=40),
            (3, "mean_size"): CellStats(n=40),
            (0, "median"): CellStats(n=40),
        },
        table="other.csv",
    )
    findings = check_table(magnitude_table(), file="outputs/sizes.csv", stats=stats)
    assert [(f.rule, f.location) for f in findings] == [("stats_mismatch", "sidecar")] * 3
    assert "'other.csv'" in findings[0].message
    assert (
        check_table(magnitude_table(), file="outputs/other.csv", stats=stats_for({}, table="other.csv")) == []
    )


def test_statistics_of_count_cells_must_agree_with_the_shown_count() -> None:
    table = text_table({"stage": ["I", "II"], "n": ["40", "3"]})
    stats = stats_for({(0, "n"): CellStats(n=40), (1, "n"): CellStats(n=30)})
    assert rules_at(check_table(table, file="t.csv", stats=stats)) == [
        ("threshold", "row 2 (stage='II'), column 'n'"),
        ("stats_mismatch", "row 2 (stage='II'), column 'n'"),
    ]
