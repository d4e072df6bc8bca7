"""Per-cell contributor statistics of a table, and their JSON sidecar ``<table file>.sdc.json``.

A magnitude table (sums, means) cannot be checked from its printed values alone: whether one patient
dominates a cell depends on the contributions behind it. The producer (:func:`privacy.sdc.crosstab`)
records them next to the table::

    {"version": 1, "table": "sizes.csv",
     "cells": [{"row": 0, "column": "mean_size", "n": 42, "total": 1234.5, "top": [80.1, 75.0]}]}

``row`` is the 0-based data row (header excluded), ``n`` the number of contributors, ``total`` the sum
of their absolute contributions and ``top`` the largest absolute contributions, descending. ``total``
and ``top`` are left out for count cells, whose contributors each add one.

A sidecar is written by the researcher's own code, so it is a claim: the checks can only be as honest
as the code that produced it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

SIDECAR_SUFFIX: Final = ".sdc.json"
SIDECAR_VERSION: Final = 1
#: Sidecars above this size are refused before parsing.
MAX_SIDECAR_BYTES: Final = 4 * 1024 * 1024
MAX_CELLS: Final = 100_000
#: Most contributions a cell may list; the rules need two (``nk_n`` of them).
MAX_TOP: Final = 10
MAX_NAME_CHARS: Final = 1024

_TOP_KEYS: Final = frozenset({"version", "table", "cells"})
_CELL_KEYS: Final = frozenset({"row", "column", "n", "total", "top"})
_REQUIRED_CELL_KEYS: Final = frozenset({"row", "column", "n"})
# Float sums of the same contributions may differ in the last bits depending on their order.
_SUM_TOLERANCE: Final = 1e-9


@dataclass(frozen=True, slots=True)
class CellStats:
    """Who contributes to one cell: ``n`` contributors, magnitudes optional (see module docstring).

    Construction validates: a count is a non-negative integer, magnitudes are finite and
    non-negative, ``top`` is descending, lists no more than ``n`` values and at least the two the
    p-ratio needs, and adds up to no more than ``total`` (to exactly ``total`` when it lists all).
    """

    n: int
    total: float | None = None
    top: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not _is_int(self.n) or self.n < 0:
            raise ValueError("n must be a non-negative integer")
        if self.total is None:
            if self.top:
                raise ValueError("top needs total")
            return
        if not _is_magnitude(self.total):
            raise ValueError("total must be a finite non-negative number")
        if self.n == 0 and self.total != 0.0:
            raise ValueError("a cell with no contributors has a total of 0")
        if len(self.top) > min(self.n, MAX_TOP):
            raise ValueError(f"top lists more than min(n, {MAX_TOP}) contributions")
        if len(self.top) < min(self.n, 2):
            raise ValueError("top must list the two largest contributions (or all, if fewer)")
        if not all(_is_magnitude(value) for value in self.top):
            raise ValueError("top must hold finite non-negative numbers")
        if any(later > earlier for earlier, later in zip(self.top, self.top[1:], strict=False)):
            raise ValueError("top must be in descending order")
        listed = math.fsum(self.top)
        if listed > self.total * (1 + _SUM_TOLERANCE):
            raise ValueError("top adds up to more than total")
        if len(self.top) == self.n and listed < self.total * (1 - _SUM_TOLERANCE):
            raise ValueError("top lists every contribution but adds up to less than total")


@dataclass(frozen=True, slots=True)
class TableStats:
    """Contributor statistics of a table's cells, keyed by (0-based row, column name).

    ``table`` is the file name the statistics belong to ("" while not yet written).
    """

    cells: Mapping[tuple[int, str], CellStats] = field(default_factory=dict)
    table: str = ""

    @classmethod
    def from_json(cls, data: bytes) -> TableStats:
        """Parse a sidecar, or raise ``ValueError`` saying what is wrong with it.

        Strict: size bounded by :data:`MAX_SIDECAR_BYTES`, UTF-8, no duplicate keys, no NaN or
        infinity, no unknown keys, version 1, every cell valid as :class:`CellStats` and described once.
        """
        if len(data) > MAX_SIDECAR_BYTES:
            raise ValueError(f"sidecar is {len(data)} bytes, above the limit of {MAX_SIDECAR_BYTES}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError("sidecar is not UTF-8") from exc
        try:
            document = json.loads(
                text,
                object_pairs_hook=_refuse_duplicate_keys,
                parse_constant=_refuse_constant,
            )
        except RecursionError as exc:
            raise ValueError("sidecar is nested too deeply") from exc
        except ValueError as exc:
            raise ValueError(f"sidecar is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ValueError("sidecar must be a JSON object")
        _check_keys(document, required=_TOP_KEYS, allowed=_TOP_KEYS, where="sidecar")
        version = document["version"]
        if not _is_int(version) or version != SIDECAR_VERSION:
            raise ValueError(f"sidecar version must be {SIDECAR_VERSION}, not {version!r}")
        table = document["table"]
        if not isinstance(table, str) or len(table) > MAX_NAME_CHARS or any(c in table for c in "/\\\0"):
            raise ValueError("table must be a file name (a string without path separators)")
        raw_cells = document["cells"]
        if not isinstance(raw_cells, list):
            raise ValueError("cells must be a list")
        if len(raw_cells) > MAX_CELLS:
            raise ValueError(f"sidecar describes {len(raw_cells)} cells, above the limit of {MAX_CELLS}")
        cells: dict[tuple[int, str], CellStats] = {}
        for index, raw in enumerate(raw_cells):
            key, cell = _parse_cell(raw, where=f"cells[{index}]")
            if key in cells:
                raise ValueError(f"cells[{index}]: row {key[0]}, column {key[1]!r} is described twice")
            cells[key] = cell
        return cls(cells=cells, table=table)

    def to_json(self) -> bytes:
        """The sidecar (UTF-8 JSON) that :meth:`from_json` reads back into equal statistics."""
        cells: list[dict[str, Any]] = []
        for (row, column), cell in sorted(self.cells.items()):
            entry: dict[str, Any] = {"row": row, "column": column, "n": cell.n}
            if cell.total is not None:
                entry["total"] = cell.total
                entry["top"] = list(cell.top)
            cells.append(entry)
        document = {"version": SIDECAR_VERSION, "table": self.table, "cells": cells}
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def sidecar_path(table_path: str | os.PathLike[str]) -> Path:
    """Where the statistics of ``table_path`` are kept: the same name plus ``.sdc.json``.

    >>> sidecar_path("out/sizes.csv").as_posix()
    'out/sizes.csv.sdc.json'
    """
    path = Path(table_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _parse_cell(raw: object, *, where: str) -> tuple[tuple[int, str], CellStats]:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be an object")
    _check_keys(raw, required=_REQUIRED_CELL_KEYS, allowed=_CELL_KEYS, where=where)
    row, column, n = raw["row"], raw["column"], raw["n"]
    if not _is_int(row) or row < 0:
        raise ValueError(f"{where}.row: must be a non-negative integer")
    if not isinstance(column, str) or not 0 < len(column) <= MAX_NAME_CHARS:
        raise ValueError(f"{where}.column: must be a non-empty string of at most {MAX_NAME_CHARS} characters")
    if not _is_int(n):
        raise ValueError(f"{where}.n: must be an integer")
    if ("total" in raw) != ("top" in raw):
        raise ValueError(f"{where}: total and top go together")
    total: float | None = None
    top: tuple[float, ...] = ()
    if "total" in raw:
        if not _is_number(raw["total"]):
            raise ValueError(f"{where}.total: must be a number")
        total = float(raw["total"])
        raw_top = raw["top"]
        if not isinstance(raw_top, list) or len(raw_top) > MAX_TOP or not all(map(_is_number, raw_top)):
            raise ValueError(f"{where}.top: must be a list of at most {MAX_TOP} numbers")
        top = tuple(float(value) for value in raw_top)
    try:
        return (row, column), CellStats(n=n, total=total, top=top)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _check_keys(
    obj: dict[str, Any], *, required: frozenset[str], allowed: frozenset[str], where: str
) -> None:
    missing = required - obj.keys()
    if missing:
        raise ValueError(f"{where}: missing {', '.join(sorted(missing))}")
    unknown = obj.keys() - allowed
    if unknown:
        raise ValueError(f"{where}: unknown {', '.join(sorted(unknown))}")


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate key")
    return obj


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _is_int(value: object) -> bool:
    # bool is an int subclass, and True is no count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_magnitude(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    )
