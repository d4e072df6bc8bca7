"""Per-cell contributor statistics and their JSON sidecar (privacy.sdc.stats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from privacy.sdc import CellStats, TableStats, sidecar_path
from privacy.sdc.stats import MAX_CELLS, MAX_SIDECAR_BYTES


def sidecar(cells: Any, **top_level: Any) -> bytes:
    document = {"version": 1, "table": "sizes.csv", "cells": cells, **top_level}
    return json.dumps(document).encode()


GOOD_CELL = {"row": 0, "column": "mean_size", "n": 42, "total": 1234.5, "top": [80.1, 75.0]}


def test_reads_the_documented_format() -> None:
    stats = TableStats.from_json(sidecar([GOOD_CELL, {"row": 1, "column": "n", "n": 3}]))
    assert stats.table == "sizes.csv"
    assert stats.cells == {
        (0, "mean_size"): CellStats(n=42, total=1234.5, top=(80.1, 75.0)),
        (1, "n"): CellStats(n=3),
    }


def test_round_trip() -> None:
    stats = TableStats(
        cells={
            (2, "환자 평균"): CellStats(n=12, total=0.1 + 0.2, top=(0.2, 0.1)),
            (0, "mean_size"): CellStats(n=42, total=1234.5, top=(80.1, 75.0)),
            (1, "n"): CellStats(n=0),
            (1, "sum_cost"): CellStats(n=1, total=7.0, top=(7.0,)),
        },
        table="표.csv",
    )
    data = stats.to_json()
    assert TableStats.from_json(data) == stats
    assert [cell["row"] for cell in json.loads(data)["cells"]] == [0, 1, 1, 2]
    assert TableStats.from_json(TableStats().to_json()) == TableStats()


def test_sidecar_path() -> None:
    assert sidecar_path(Path("/out/sizes.csv")) == Path("/out/sizes.csv.sdc.json")


# (sidecar bytes, part of the error message)
MALFORMED = [
    (b"", "not valid JSON"),
    (b"{", "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "must be a JSON object"),
    (json.dumps({"version": 1, "table": "t.csv"}).encode(), "missing cells"),
    (sidecar([], extra=1), "unknown extra"),
    (sidecar([], version=2), "version must be 1"),
    (sidecar([], version="1"), "version must be 1"),
    (sidecar([], version=True), "version must be 1"),
    (sidecar([], version=1.0), "version must be 1"),
    (sidecar([], table="../etc/passwd"), "file name"),
    (sidecar([], table=7), "file name"),
    (sidecar({"row": 0}), "cells must be a list"),
    (sidecar([[0, "n", 3]]), r"cells\[0\]: must be an object"),
    (sidecar([{"row": 0, "column": "n"}]), r"cells\[0\]: missing n"),
    (sidecar([{**GOOD_CELL, "note": "x"}]), r"cells\[0\]: unknown note"),
    (sidecar([{**GOOD_CELL, "row": "0"}]), r"cells\[0\]\.row"),
    (sidecar([{**GOOD_CELL, "row": -1}]), r"cells\[0\]\.row"),
    (sidecar([{**GOOD_CELL, "row": 0.0}]), r"cells\[0\]\.row"),
    (sidecar([{**GOOD_CELL, "column": ""}]), r"cells\[0\]\.column"),
    (sidecar([{**GOOD_CELL, "column": 3}]), r"cells\[0\]\.column"),
    (sidecar([{**GOOD_CELL, "n": 4.5}]), r"cells\[0\]\.n"),
    (sidecar([{**GOOD_CELL, "n": True}]), r"cells\[0\]\.n"),
    (sidecar([{**GOOD_CELL, "n": -1}]), "non-negative integer"),
    (sidecar([{**GOOD_CELL, "total": "1234.5"}]), r"cells\[0\]\.total"),
    (sidecar([{**GOOD_CELL, "total": -1.0}]), "finite non-negative"),
    (sidecar([{**GOOD_CELL, "top": 80.1}]), r"cells\[0\]\.top"),
    (sidecar([{**GOOD_CELL, "top": ["80.1", 75.0]}]), r"cells\[0\]\.top"),
    (sidecar([{**GOOD_CELL, "top": [75.0, 80.1]}]), "descending"),
    (sidecar([{**GOOD_CELL, "top": [80.1]}]), "two largest"),
    (sidecar([{**GOOD_CELL, "top": [80.1, -75.0]}]), "non-negative"),
    (sidecar([{**GOOD_CELL, "top": [1000.0, 900.0]}]), "more than total"),
    (sidecar([{**GOOD_CELL, "top": [9.0] * 11}]), "at most 10"),
    (sidecar([{"row": 0, "column": "n", "n": 1, "total": 5.0, "top": [3.0, 2.0]}]), "more than min"),
    (sidecar([{"row": 0, "column": "n", "n": 3, "total": 5.0}]), "go together"),
    (sidecar([{"row": 0, "column": "n", "n": 2, "total": 1000.0, "top": [10.0, 10.0]}]), "less than total"),
    (sidecar([{"row": 0, "column": "n", "n": 0, "total": 5.0, "top": []}]), "no contributors"),
    (sidecar([GOOD_CELL, GOOD_CELL]), "described twice"),
    (b'{"version": 1, "version": 1, "table": "t.csv", "cells": []}', "duplicate key"),
    (sidecar([{**GOOD_CELL, "total": float("nan")}]), "NaN is not a number"),
    (sidecar([{**GOOD_CELL, "total": float("inf")}]), "Infinity is not a number"),
    (sidecar([{**GOOD_CELL, "total": 1e400}]).replace(b"Infinity", b"1e400"), "finite"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
]


@pytest.mark.parametrize(("data", "message"), MALFORMED)
def test_malformed_sidecars_are_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TableStats.from_json(data)


def test_an_empty_cell_has_no_magnitude() -> None:
    with pytest.raises(ValueError, match="no contributors"):
        CellStats(n=0, total=3.0)
    assert CellStats(n=0, total=0.0, top=()).total == 0.0


def test_size_is_bounded_before_parsing() -> None:
    data = sidecar([GOOD_CELL]) + b" " * MAX_SIDECAR_BYTES
    with pytest.raises(ValueError, match="above the limit"):
        TableStats.from_json(data)


def test_number_of_cells_is_bounded() -> None:
    cells = [{"row": row, "column": "n", "n": 1} for row in range(MAX_CELLS + 1)]
    with pytest.raises(ValueError, match=f"{MAX_CELLS + 1} cells"):
        TableStats.from_json(sidecar(cells))
    assert len(TableStats.from_json(sidecar(cells[:MAX_CELLS])).cells) == MAX_CELLS


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": True}, "non-negative integer"),
        ({"n": 3, "top": (1.0, 1.0)}, "top needs total"),
        ({"n": 3, "total": float("nan"), "top": (1.0, 1.0)}, "finite"),
        ({"n": 3, "total": 3.0, "top": (1.0, float("nan"))}, "finite"),
    ],
)
def test_cell_stats_validate_on_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CellStats(**kwargs)
