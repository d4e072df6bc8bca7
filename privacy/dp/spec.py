"""The DP query spec (DESIGN §4.3, contract) and its check against a dataset's metadata.

A query is declarative JSON (invariant 8): :class:`QueryRequest` parses it strictly (unknown fields,
non-finite numbers and malformed aggregates are refused), and :func:`validate_against` resolves it
against the dataset's :class:`~enclave_api.metadata.DatasetMetadata` into a :class:`ResolvedQuery` the
engine compiles. Every refusal is a :class:`QueryError` naming the offending field, e.g.
``query.aggregates[1].column``, and happens before any data is read or any noise is drawn.

Semantics fixed here:

* Filters are ANDed. ``==``/``!=``/``in`` work on every queryable type; ``<``, ``<=``, ``>``, ``>=``
  on int, float and date columns (dates as ISO strings). ``in`` takes 1 to 100 values.
* ``count`` without a column counts rows; with a column it counts that column's non-null values.
* ``sum``, ``mean`` and ``quantile`` clamp to ``bounds``, which default to the metadata's public bounds
  (on int columns rounded inwards to integers). A sum counts nulls as 0; a mean and a quantile are of
  the non-null values.
* ``histogram`` counts the rows in each bin ``[e_i, e_i+1)``, the last bin closed; values outside the
  edges are clamped into the first or last bin, nulls are not counted.
* ``group_by`` columns (category, bool, str or int) have public keys when the metadata declares their
  categories; a bool column's keys are always public (its domain is ``{false, true}``). With public keys
  every key combination is released, in declared order, and rows whose key is null are left out.
  Otherwise the keys themselves are private and need ``delta > 0`` (OpenDP's thresholded key release).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from enclave_api.errors import Invalid
from enclave_api.metadata import ColumnRole, ColumnSpec, ColumnType, DatasetMetadata

#: Most filters, group_by columns, aggregates, ``in`` values and histogram edges a query may have.
MAX_FILTERS: Final = 20
MAX_GROUP_BY: Final = 4
MAX_AGGREGATES: Final = 20
MAX_IN_VALUES: Final = 100
MAX_EDGES: Final = 101
#: Most released cells (public key combinations times histogram bins) of one aggregate.
MAX_CELLS: Final = 100_000
#: Largest |bound| accepted: sums are exact 64-bit integer arithmetic (see ``engine.MAX_ROWS_LIMIT``).
MAX_ABS_BOUND: Final = 1e9

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
ColumnRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Scalar = StrictBool | StrictInt | FiniteFloat | Annotated[str, StringConstraints(max_length=200)]
Bounds = tuple[FiniteFloat, FiniteFloat]

_NUMERIC: Final = (ColumnType.INT, ColumnType.FLOAT)
_GROUPABLE: Final = (ColumnType.CATEGORY, ColumnType.BOOL, ColumnType.STR, ColumnType.INT)
_ORDERED: Final = (ColumnType.INT, ColumnType.FLOAT, ColumnType.DATE)
_BOOL_KEYS: Final = {"false": False, "true": True}


class QueryError(Invalid):
    """A query that cannot run on this dataset; ``field`` names the offending request field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field=field)


class FilterOp(StrEnum):
    EQ = "=="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    IN = "in"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(_Strict):
    """One row condition; a query's filters are ANDed."""

    column: ColumnRef
    op: FilterOp
    value: Scalar | list[Scalar]

    @field_validator("value")
    @classmethod
    def _value_shape(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("op") is FilterOp.IN:
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
                raise ValueError(f"'in' takes a list of 1 to {MAX_IN_VALUES} values")
        elif isinstance(value, list):
            raise ValueError("only 'in' takes a list of values")
        return value


class _Aggregate(_Strict):
    name: Identifier = Field(alias="as")


class CountAggregate(_Aggregate):
    fn: Literal["count"]
    column: ColumnRef | None = None


class SumAggregate(_Aggregate):
    fn: Literal["sum"]
    column: ColumnRef
    bounds: Bounds | None = None


class MeanAggregate(_Aggregate):
    fn: Literal["mean"]
    column: ColumnRef
    bounds: Bounds | None = None


class QuantileAggregate(_Aggregate):
    fn: Literal["quantile"]
    column: ColumnRef
    q: FiniteFloat = Field(gt=0, lt=1)
    bounds: Bounds | None = None


class HistogramAggregate(_Aggregate):
    fn: Literal["histogram"]
    column: ColumnRef
    edges: list[FiniteFloat] = Field(min_length=2, max_length=MAX_EDGES)

    @field_validator("edges")
    @classmethod
    def _increasing(cls, edges: list[float]) -> list[float]:
        if any(b <= a for a, b in itertools.pairwise(edges)):
            raise ValueError("edges must be strictly increasing")
        return edges


Aggregate = Annotated[
    CountAggregate | SumAggregate | MeanAggregate | QuantileAggregate | HistogramAggregate,
    Field(discriminator="fn"),
]


class QuerySpec(_Strict):
    """The ``query`` object of contract 4.3."""

    filters: list[Filter] = Field(default_factory=list, max_length=MAX_FILTERS)
    group_by: list[ColumnRef] = Field(default_factory=list, max_length=MAX_GROUP_BY)
    aggregates: list[Aggregate] = Field(min_length=1, max_length=MAX_AGGREGATES)


class QueryRequest(_Strict):
    """``POST /v1/queries`` body: which dataset, which grant pays, the privacy loss, the query."""

    dataset_id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    grant_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] | None = None
    epsilon: FiniteFloat = Field(gt=0)
    delta: FiniteFloat = Field(0.0, ge=0, lt=1)
    query: QuerySpec


def parse_request(raw: Mapping[str, Any] | str | bytes) -> QueryRequest:
    """Parse a JSON document or mapping into a :class:`QueryRequest`; raise :class:`QueryError` naming
    the first offending field (``query.aggregates[0].as``)."""
    try:
        if isinstance(raw, Mapping):
            return QueryRequest.model_validate(raw)
        return QueryRequest.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _field_path(first["loc"], unknown_field=first["type"] == "extra_forbidden")
        raise QueryError(f"{where or 'request'}: {first['msg']}", field=where or None) from exc


_FIELD_NAMES: Final = frozenset(
    {"dataset_id", "grant_id", "epsilon", "delta", "query", "filters", "group_by", "aggregates"}
    | {"column", "op", "value", "fn", "as", "bounds", "q", "edges"}
)


def _field_path(loc: tuple[int | str, ...], *, unknown_field: bool) -> str:
    """Pydantic's error location as ``query.aggregates[1].bounds``: indices in brackets, union tags
    (``sum``, ``bool``, ...) dropped, an unknown field's own name kept."""
    path = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _FIELD_NAMES or (unknown_field and index == len(loc) - 1):
            path += f".{part}" if path else part
    return path


# --- resolution against metadata --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedFilter:
    """A filter with its value(s) converted to the column's Python type (a tuple for ``in``)."""

    column: ColumnSpec
    op: FilterOp
    value: Any


@dataclass(frozen=True, slots=True)
class ResolvedAggregate:
    """An aggregate with its column, effective bounds (the edges' range for histograms) and options."""

    fn: Literal["count", "sum", "mean", "quantile", "histogram"]
    name: str
    column: ColumnSpec | None
    bounds: tuple[float, float] | None = None
    q: float | None = None
    edges: tuple[float, ...] | None = None


@dataclass(frozen=True, slots=True)
class ResolvedQuery:
    """A query checked against a dataset: everything the engine needs, nothing left to look up."""

    dataset_id: str
    epsilon: float
    delta: float
    #: The privacy unit: one person contributes at most this many rows (metadata ``max_rows_per_person``).
    rows_per_person: int
    filters: tuple[ResolvedFilter, ...]
    group_by: tuple[ColumnSpec, ...]
    #: Public key combinations in release order, or ``None`` when the keys are private (``delta > 0``).
    group_keys: tuple[tuple[str | bool, ...], ...] | None
    aggregates: tuple[ResolvedAggregate, ...]
    #: Every column the query reads (at least one), in metadata order.
    columns: tuple[ColumnSpec, ...]

    @property
    def output_columns(self) -> list[str]:
        return [c.name for c in self.group_by] + [a.name for a in self.aggregates]


def validate_against(request: QueryRequest, meta: DatasetMetadata) -> ResolvedQuery:
    """Check ``request`` against the dataset's metadata and resolve it, or raise :class:`QueryError`.

    Promises: every column exists and is not a direct identifier; types suit their use; bounds are
    finite with lower < upper (defaults from metadata); output names are unique; private group keys
    only with ``delta > 0``. Reads no data.
    """
    if request.dataset_id != meta.id:
        raise QueryError(f"the query is for dataset {request.dataset_id}, not {meta.id}", "dataset_id")
    query = request.query
    filters = tuple(_resolve_filter(meta, f, f"query.filters[{i}]") for i, f in enumerate(query.filters))
    group_by = _resolve_group_by(meta, query.group_by)
    group_keys = _public_keys(group_by, request.delta)

    names = {c.name for c in group_by}
    aggregates = []
    for i, spec in enumerate(query.aggregates):
        where = f"query.aggregates[{i}]"
        if spec.name in names:
            raise QueryError(f"output name {spec.name} is used twice", f"{where}.as")
        names.add(spec.name)
        aggregate = _resolve_aggregate(meta, spec, where)
        if aggregate.edges is not None and len(group_keys or ((),)) * (len(aggregate.edges) - 1) > MAX_CELLS:
            raise QueryError(f"more than {MAX_CELLS} histogram cells", f"{where}.edges")
        aggregates.append(aggregate)

    used = {f.column.name for f in filters} | {c.name for c in group_by}
    used |= {a.column.name for a in aggregates if a.column is not None}
    if not used:  # a bare row count still needs one column to count rows over
        used = {
            next(
                (c for c in meta.columns if c.role is not ColumnRole.DIRECT_IDENTIFIER), meta.columns[0]
            ).name
        }
    return ResolvedQuery(
        dataset_id=meta.id,
        epsilon=float(request.epsilon),
        delta=float(request.delta),
        rows_per_person=meta.max_rows_per_person,
        filters=filters,
        group_by=group_by,
        group_keys=group_keys,
        aggregates=tuple(aggregates),
        columns=tuple(c for c in meta.columns if c.name in used),
    )


def _column(meta: DatasetMetadata, name: str, where: str) -> ColumnSpec:
    try:
        column = meta.column(name)
    except KeyError:
        raise QueryError(f"dataset {meta.id} has no column {name}", where) from None
    if column.role is ColumnRole.DIRECT_IDENTIFIER:
        raise QueryError(f"column {name} is a direct identifier and cannot be queried", where)
    return column


def _resolve_filter(meta: DatasetMetadata, spec: Filter, where: str) -> ResolvedFilter:
    column = _column(meta, spec.column, f"{where}.column")
    if spec.op not in (FilterOp.EQ, FilterOp.NE, FilterOp.IN) and column.type not in _ORDERED:
        raise QueryError(
            f"'{spec.op}' needs an int, float or date column; {column.name} is {column.type}", where
        )
    if isinstance(spec.value, list):
        values = tuple(_filter_value(column, v, f"{where}.value[{i}]") for i, v in enumerate(spec.value))
        return ResolvedFilter(column, spec.op, values)
    return ResolvedFilter(column, spec.op, _filter_value(column, spec.value, f"{where}.value"))


def _filter_value(column: ColumnSpec, value: bool | int | float | str, where: str) -> Any:
    """``value`` as the column's Python type, or a QueryError."""
    kind = column.type
    if kind is ColumnType.BOOL and isinstance(value, bool):
        return value
    if kind is ColumnType.INT and isinstance(value, int | float) and not isinstance(value, bool):
        if value != int(value):
            raise QueryError(f"{column.name} is an int column; {value} is not an integer", where)
        return int(value)
    if kind is ColumnType.FLOAT and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind in (ColumnType.STR, ColumnType.CATEGORY) and isinstance(value, str):
        if column.categories is not None and value not in column.categories:
            raise QueryError(f"{value!r} is not a declared category of {column.name}", where)
        return value
    if kind is ColumnType.DATE and isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise QueryError(f"{column.name} is a date column; {value!r} is not an ISO date", where) from None
    raise QueryError(f"{json.dumps(value)} does not fit {kind} column {column.name}", where)


def _resolve_group_by(meta: DatasetMetadata, names: list[str]) -> tuple[ColumnSpec, ...]:
    columns: list[ColumnSpec] = []
    for i, name in enumerate(names):
        where = f"query.group_by[{i}]"
        column = _column(meta, name, where)
        if column.type not in _GROUPABLE:
            raise QueryError(f"cannot group by {column.type} column {name}", where)
        if column in columns:
            raise QueryError(f"{name} appears twice in group_by", where)
        columns.append(column)
    return tuple(columns)


def _public_keys(group_by: tuple[ColumnSpec, ...], delta: float) -> tuple[tuple[str | bool, ...], ...] | None:
    per_column: list[list[str | bool]] = []
    for i, column in enumerate(group_by):
        if column.type is ColumnType.BOOL:
            declared = column.categories or list(_BOOL_KEYS)
            per_column.append([_BOOL_KEYS[c] for c in declared if c in _BOOL_KEYS])
        elif column.categories is not None:
            per_column.append(list(column.categories))
        elif delta > 0:
            return None
        else:
            raise QueryError(
                f"{column.name} has no public categories in the metadata: its keys are private, so grouping "
                "by it needs delta > 0 (keys are then released only above a noisy threshold)",
                f"query.group_by[{i}]",
            )
    if math.prod(len(keys) for keys in per_column) > MAX_CELLS:
        raise QueryError(f"more than {MAX_CELLS} group key combinations", "query.group_by")
    return tuple(itertools.product(*per_column))


def _resolve_aggregate(
    meta: DatasetMetadata,
    spec: CountAggregate | SumAggregate | MeanAggregate | QuantileAggregate | HistogramAggregate,
    where: str,
) -> ResolvedAggregate:
    if isinstance(spec, CountAggregate):
        column = None if spec.column is None else _column(meta, spec.column, f"{where}.column")
        return ResolvedAggregate("count", spec.name, column)
    column = _column(meta, spec.column, f"{where}.column")
    if column.type not in _NUMERIC:
        raise QueryError(
            f"{spec.fn} needs an int or float column; {column.name} is {column.type}", f"{where}.column"
        )
    if isinstance(spec, HistogramAggregate):
        edges = tuple(float(e) for e in spec.edges)
        _check_bounds((edges[0], edges[-1]), f"{where}.edges")
        return ResolvedAggregate("histogram", spec.name, column, (edges[0], edges[-1]), edges=edges)
    bounds = _bounds(column, spec.bounds, f"{where}.bounds")
    q = float(spec.q) if isinstance(spec, QuantileAggregate) else None
    return ResolvedAggregate(spec.fn, spec.name, column, bounds, q=q)


def _bounds(column: ColumnSpec, given: tuple[float, float] | None, where: str) -> tuple[float, float]:
    raw = given if given is not None else column.bounds
    if raw is None:
        raise QueryError(f"no bounds given, and the metadata declares none for {column.name}", where)
    low, high = raw
    if isinstance(low, date) or isinstance(high, date):  # only numeric columns get here
        raise QueryError(f"{column.name} has date bounds", where)
    low, high = float(low), float(high)
    _check_bounds((low, high), where)
    if column.type is ColumnType.INT:
        low, high = float(math.ceil(low)), float(math.floor(high))
        if low > high:
            raise QueryError(f"bounds of int column {column.name} contain no integer", where)
    return low, high


def _check_bounds(bounds: tuple[float, float], where: str) -> None:
    low, high = bounds
    if not (math.isfinite(low) and math.isfinite(high)):
        raise QueryError("bounds must be finite numbers", where)
    if not low < high:
        raise QueryError(f"bounds must satisfy lower < upper, got [{low:g}, {high:g}]", where)
    if max(abs(low), abs(high)) > MAX_ABS_BOUND:
        raise QueryError(f"bounds must lie within ±{MAX_ABS_BOUND:g}", where)
