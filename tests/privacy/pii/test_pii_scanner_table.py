"""PiiScanner.scan_table: columns as columns, one finding per value, headers, numeric identifiers."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from privacy.findings import Severity
from privacy.pii import DenyList, PiiScanner

DENY_VALUES = {"patient_name": ["김민준", "박서연"], "rrn": ["900101-1234568"], "mrn": ["HB01234567"]}


@pytest.fixture(scope="module")
def pii() -> PiiScanner:
    return PiiScanner(deny_list=DenyList.build(DENY_VALUES), mrn_patterns=[r"HB\d{8}"])


def rules_at(findings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(finding.rule, finding.location) for finding in findings]


def test_one_finding_per_column_entity_and_value(pii: PiiScanner) -> None:
    table = pl.DataFrame(
        {
            "patient_name": ["김민준", "박서연", "김민준", None, "김민준"],
            "phone": ["010-2345-6789", "010-2345-6789", "02-2345-6789", "", "010-2345-6789"],
            "stage": ["I", "II", "II", "III", "I"],
            "tumor_size_mm": [12.5, 30.1, 8.0, 44.2, 12.5],
        }
    )
    findings = pii.scan_table(table, file="cohort.csv")
    assert rules_at(findings) == [
        ("DENY_LIST", "row 1, column 'patient_name'"),
        ("DENY_LIST", "row 2, column 'patient_name'"),
        ("KR_PHONE", "row 1, column 'phone'"),
        ("KR_PHONE", "row 3, column 'phone'"),
    ]
    assert findings[0].message == (
        "value from the deny-list of the granted datasets (kind: patient_name); 3 rows hold this value"
    )
    assert findings[3].message == "Korean phone number; 1 row holds this value"
    assert {finding.severity for finding in findings} == {Severity.BLOCK}
    assert [finding.excerpt for finding in findings] == ["***", "***", "01*********89", "02********89"]


def test_headers_are_scanned_and_such_columns_named_by_position(pii: PiiScanner) -> None:
    table = pl.DataFrame({"group": ["a", "b"], "900101-1234568": ["HB07654321", "n/a"]})
    findings = pii.scan_table(table, file="pivot.csv")
    assert rules_at(findings) == [("KR_RRN", "header of column 2"), ("MRN", "row 1, column 2")]
    assert "1234568" not in str([finding.to_dict() for finding in findings])


def test_integer_columns_holding_registration_numbers(pii: PiiScanner) -> None:
    table = pl.DataFrame(
        {
            "rrn": [9001011234568, 503153123569, 8506152345562, 1234567890123],
            "count": [3, 14, 15, 92],
        }
    )
    findings = pii.scan_table(table, file="ids.csv")
    assert rules_at(findings) == [
        ("DENY_LIST", "row 1, column 'rrn'"),  # listed: reported as such
        ("KR_RRN", "row 2, column 'rrn'"),  # 050315-3123569 lost its leading zero
        ("KR_RRN", "row 3, column 'rrn'"),
    ]
    assert findings[0].message.startswith("value from the deny-list of the granted datasets (kind: rrn)")


def test_phone_numbers_that_lost_their_trunk_zero(pii: PiiScanner) -> None:
    table = pl.DataFrame({"phone_no": [1023456789, 223456789], "visits": [1023456789, 5]})
    assert rules_at(pii.scan_table(table, file="t.csv")) == [
        ("KR_PHONE", "row 1, column 'phone_no'"),
        ("KR_PHONE", "row 2, column 'phone_no'"),
    ]


def test_float_column_of_whole_numbers(pii: PiiScanner) -> None:
    table = pl.DataFrame({"id": [8506152345562.0, None], "ratio": [0.5, 1.25]})
    assert rules_at(pii.scan_table(table, file="t.csv")) == [("KR_RRN", "row 1, column 'id'")]


def test_dates_of_birth_need_a_birth_column(pii: PiiScanner) -> None:
    days = [date(1961, 5, 3), date(1975, 12, 24)]
    table = pl.DataFrame({"birth_date": days, "diagnosis_date": days, "생년월일": ["1961.05.03", "19751224"]})
    assert rules_at(pii.scan_table(table, file="t.csv")) == [
        ("DATE_OF_BIRTH", "row 1, column 'birth_date'"),
        ("DATE_OF_BIRTH", "row 2, column 'birth_date'"),
        ("DATE_OF_BIRTH", "row 1, column '생년월일'"),
        ("DATE_OF_BIRTH", "row 2, column '생년월일'"),
    ]


def test_context_dependent_values_in_other_columns_need_their_own_context(pii: PiiScanner) -> None:
    table = pl.DataFrame({"note": ["passport M123A4567", "lot M12345678"], "code": ["M123A4567", "x"]})
    assert rules_at(pii.scan_table(table, file="t.csv")) == [("KR_PASSPORT", "row 1, column 'note'")]


def test_identifiers_inside_free_text_cells(pii: PiiScanner) -> None:
    table = pl.DataFrame({"comment": ["환자 김민준님 전화 010-2345-6789 요청", "no contact"]})
    findings = pii.scan_table(table, file="t.csv")
    assert rules_at(findings) == [
        ("DENY_LIST", "row 1, column 'comment'"),
        ("KR_PHONE", "row 1, column 'comment'"),
    ]
    assert all(finding.excerpt == "환자 ***님 전화 01*********89 요청" for finding in findings)


def test_other_column_types(pii: PiiScanner) -> None:
    table = pl.DataFrame(
        {
            "flags": [True, False],
            "tags": [["HB01234567"], []],
            "nothing": pl.Series([None, None], dtype=pl.Null),
            "when": [date(2020, 1, 1), date(2021, 1, 1)],
        }
    )
    assert rules_at(pii.scan_table(table, file="t.csv")) == [("MRN", "row 1, column 'tags'")]


def test_empty_and_clean_tables(pii: PiiScanner) -> None:
    assert pii.scan_table(pl.DataFrame(), file="t.csv") == []
    assert pii.scan_table(pl.DataFrame({"stage": ["I", "II"], "n": [10, 12]}), file="t.csv") == []
    assert pii.scan_table(pl.DataFrame({"x": pl.Series([], dtype=pl.String)}), file="t.csv") == []
