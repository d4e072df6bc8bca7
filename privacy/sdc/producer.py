"""Tables for release, built from microdata together with the statistics that let them be checked.

ACRO-style: inside a notebook session the researcher builds an output table with :func:`crosstab`
instead of ``group_by``/``pivot``, and saves it with :func:`write_table`, which writes the sidecar
that :func:`~privacy.sdc.tables.check_table` reads at egress::

    table, stats = crosstab(patients, index=["stage", "sex"], values="size", aggfunc="mean")
    write_table(table, stats, "outputs/size_by_stage.csv")

Every row of ``df`` is one contributor (one patient). As in pandas, rows whose index or column
category is missing are left out.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import polars as pl

from privacy.sdc.stats import CellStats, TableStats, sidecar_path

AggFunc = Literal["count", "sum", "mean"]

_N = "__sdc_n"
_VALUE = "__sdc_value"
_TOTAL = "__sdc_total"
_TOP = "__sdc_top"


def crosstab(
    df: pl.DataFrame,
    index: str | list[str],
    columns: str | None = None,
    values: str | None = None,
    aggfunc: AggFunc = "count",
) -> tuple[pl.DataFrame, TableStats]:
    """The table of ``aggfunc`` over ``df`` by ``index`` (and ``columns``), with its per-cell statistics.

    Without ``columns`` the table is long: the index columns, then one value column named ``n`` for
    counts or ``<aggfunc>_<values>`` (``mean_size``). With ``columns`` it is wide: one column per
    category of ``columns``, in sorted order, a combination without rows showing 0 for counts and
    nothing for sums and means. Rows are sorted by the index.

    The statistics hold, for every body cell, the number of contributors (rows; for sums and means,
    rows with a value) and, for sums and means, the total and the two largest absolute contributions.
    Raises ``ValueError`` for unknown columns, a missing or non-numeric ``values`` where a sum or mean
    needs it, or category names that clash with the index columns.
    """
    index_columns = [index] if isinstance(index, str) else list(index)
    _check_arguments(df, index_columns, columns, values, aggfunc)
    keys = index_columns + ([columns] if columns is not None else [])
    grouped = _aggregate(df, keys, values, aggfunc)
    if columns is None:
        value_name = "n" if aggfunc == "count" else f"{aggfunc}_{values}"
        if value_name in index_columns:
            raise ValueError(f"the value column {value_name!r} clashes with an index column")
        return _long(grouped, index_columns, value_name)
    return _wide(grouped, index_columns, columns, empty=0 if aggfunc == "count" else None)


def write_table(table: pl.DataFrame, stats: TableStats, path: str | os.PathLike[str]) -> Path:
    """Write ``table`` as CSV to ``path`` and ``stats``, bound to that file name, beside it.

    Returns the sidecar's path (``<path>.sdc.json``).
    """
    path = Path(path)
    table.write_csv(path)
    sidecar = sidecar_path(path)
    sidecar.write_bytes(replace(stats, table=path.name).to_json())
    return sidecar


def _aggregate(df: pl.DataFrame, keys: list[str], values: str | None, aggfunc: AggFunc) -> pl.DataFrame:
    """One row per combination of ``keys``: contributors, value and, for sums and means, magnitudes."""
    if values is None:
        aggregations = [pl.len().cast(pl.Int64).alias(_N), pl.len().cast(pl.Int64).alias(_VALUE)]
    elif aggfunc == "count":
        aggregations = [pl.col(values).count().cast(pl.Int64).alias(name) for name in (_N, _VALUE)]
    else:
        present = pl.col(values).drop_nulls()
        magnitude = present.abs().cast(pl.Float64)
        aggregations = [
            present.count().alias(_N),
            (present.sum() if aggfunc == "sum" else present.mean()).alias(_VALUE),
            magnitude.sum().alias(_TOTAL),
            magnitude.sort(descending=True).head(2).alias(_TOP),
        ]
    # NaN is a number to polars but missing to pandas users (and NaN != NaN as a dict key).
    used = [*keys, *([values] if values is not None else [])]
    keyed = df.with_columns([pl.col(name).fill_nan(None) for name in used if df.schema[name].is_float()])
    return keyed.drop_nulls(keys).group_by(keys).agg(aggregations).sort(keys)


def _long(grouped: pl.DataFrame, index: list[str], value_name: str) -> tuple[pl.DataFrame, TableStats]:
    cells = {(row, value_name): _cell_stats(group) for row, group in enumerate(grouped.iter_rows(named=True))}
    return grouped.select(*index, pl.col(_VALUE).alias(value_name)), TableStats(cells=cells)


def _wide(
    grouped: pl.DataFrame, index: list[str], columns: str, *, empty: int | None
) -> tuple[pl.DataFrame, TableStats]:
    names = [str(category) for category in grouped.get_column(columns).unique().sort().to_list()]
    if clashes := set(names) & set(index):
        raise ValueError(f"categories of {columns!r} clash with index columns: {sorted(clashes)}")
    rows = grouped.select(index).unique(maintain_order=True)
    row_of = {key: position for position, key in enumerate(rows.iter_rows())}
    body: dict[str, list[Any]] = {name: [empty] * rows.height for name in names}
    cells: dict[tuple[int, str], CellStats] = {}
    for group in grouped.iter_rows(named=True):
        row = row_of[tuple(group[name] for name in index)]
        name = str(group[columns])
        body[name][row] = group[_VALUE]
        cells[(row, name)] = _cell_stats(group)
    for row in range(rows.height):
        for name in names:
            cells.setdefault((row, name), CellStats(n=0))
    dtype = grouped.schema[_VALUE]
    table = rows.with_columns([pl.Series(name, body[name], dtype=dtype) for name in names])
    return table, TableStats(cells=cells)


def _check_arguments(
    df: pl.DataFrame, index: list[str], columns: str | None, values: str | None, aggfunc: str
) -> None:
    if aggfunc not in ("count", "sum", "mean"):
        raise ValueError(f"aggfunc must be count, sum or mean, not {aggfunc!r}")
    if not index:
        raise ValueError("index needs at least one column")
    named = [*index, *([columns] if columns is not None else []), *([values] if values is not None else [])]
    if unknown := [name for name in named if name not in df.columns]:
        raise ValueError(f"unknown columns: {unknown}")
    if len(set(named)) != len(named):
        raise ValueError("index, columns and values must be different columns")
    if aggfunc != "count":
        if values is None:
            raise ValueError(f"aggfunc {aggfunc!r} needs values")
        if not df.schema[values].is_numeric():
            raise ValueError(f"values column {values!r} is not numeric")


def _cell_stats(group: dict[str, Any]) -> CellStats:
    # Count cells carry no magnitudes, and neither does a cell whose values are all missing.
    if group.get(_TOTAL) is None or group[_N] == 0:
        return CellStats(n=group[_N])
    return CellStats(n=group[_N], total=group[_TOTAL], top=tuple(group[_TOP]))
