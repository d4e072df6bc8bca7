"""The DP query engine: compile a resolved query to OpenDP measurements, verify them, release.

Privacy argument
================

*Privacy unit.* Neighbouring datasets differ by one person: under OpenDP's ``SymmetricDistance``
(add or remove rows) that is ``d_in = max_rows_per_person`` rows. The custodian's metadata vouches for
that bound; every privacy map is evaluated at exactly this ``d_in``.

*What runs.* The query becomes OpenDP Polars plans over the dataset's ``LazyFrame``, each made a
measurement by ``make_private_lazyframe`` and each one pass over the data: one plan for the counts, sums,
means and quantiles, whose expressions share one scan and one ``group_by`` (a quantile drops its column's
nulls inside its own expression, which OpenDP would otherwise impute); one per histogram (it also groups
by a bin index). Filters come first: row-wise predicates can only remove a person's rows, never add
influence. Group-by with public keys (declared categories, or ``{false, true}``) is a left join of the
public key-set with the aggregates, so every key is released and the key-set costs nothing; with private
keys OpenDP releases only groups whose noisy row count reaches a threshold, which costs δ. A histogram's
bin index is computed row by row from the public edges and joined with the public bin keys. Sums clamp
to the bounds and count nulls as 0; float columns are put on a fixed-point grid of ``2^-k`` (``k`` as
large as a sum of ``max_rows`` values allows in 64 bits), so OpenDP sums integers exactly and its
sensitivity has no floating-point slack; these integers are a column computed once per row before
grouping, which the noisy sum (and a mean's noisy count) then read. A mean is the bounds' midpoint plus
a noisy sum of values centred on it (half the sensitivity of a plain sum) over a noisy count of the
non-null values, clamped to the bounds. A quantile is OpenDP's exponential mechanism over at most 1001
public candidates spanning the bounds.

*Budget split and calibration* (:mod:`privacy.dp.calibration`). Every noisy statistic of a query gets the
same noise scale relative to its own sensitivity, ``g = d_in · U / ε``, where ``U`` counts the statistics
in loss units (``calibration.UNITS``: a count, sum or histogram is 1, a mean 2 for its sum and count, a
quantile 2 because the exponential mechanism on a non-monotonic score costs ``2 d_in / g``; plus 1 for the
hidden row count a private-key plan needs when it has no plain count to threshold on). So ε is split
equally per noisy statistic and each plan spends ``ε · U_plan / U`` — the split OpenDP's Context API
makes with one global scale, without its search. ``g`` is OpenDP's ``global_scale``, which it multiplies
by each expression's sensitivity itself (1 for counts, ``max |bound|`` for sums, the score sensitivity
that follows from how it rationalises ``q`` for quantiles). δ is spent only by thresholded plans, split
equally over them; each threshold is solved in closed form from ``g`` and its share. When every key is
public the measurement is pure ε-DP and δ is not spent. Shares and scales keep a relative headroom of
1e-9, so rounding can never push a sum of losses over the budget.

*Verification.* The calibration is only a proposal. Each plan's measurement has its OpenDP privacy map
evaluated at ``d_in`` and must be within its share; the shares are the ``d_mids`` of an OpenDP adaptive
compositor whose own map, at ``d_in``, must be within the requested (ε, δ). Any failure raises
:class:`PrivacyCheckError` before the data is touched. The release then goes through that compositor:
OpenDP itself refuses any plan whose map exceeds its share, every noise draw is OpenDP's (discrete
Laplace on integers, exponential-mechanism selection), and each plan's output is collected once.
(``make_composition`` would be the natural non-interactive combinator, but in OpenDP 0.16 collecting
the Polars outputs it returns crashes the interpreter.) OpenDP collects each plan with the Polars engine
built into its own library, which takes no engine argument: it runs in memory unless the process
environment has ``POLARS_AUTO_NEW_STREAMING=1`` (read at each collect, by Python Polars too), with which
a query over 10M rows takes about half the time. That is the deployment's choice, not this module's.

*Accuracy* is the half-width of a 95% interval per aggregate, from the discrete Laplace closed form
(:func:`calibration.laplace_accuracy`, as OpenDP's but finite at any ε) on each statistic's absolute
noise scale. A mean's is the
largest over its cells of ``(a_sum + h·a_count) / n̂``, both accuracies at 97.5% (union bound), ``h`` the
bounds' half-width and ``n̂`` the released count, capped at the bounds' width: a bound computed from
released values only. A quantile's is a rank error in rows (see :func:`calibration.quantile_rank_accuracy`).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import Any, Final, TypeVar

import numpy as np
import polars as pl

from enclave_api.errors import EnclaveError
from enclave_api.metadata import ColumnSpec, ColumnType, DatasetMetadata
from privacy.dp import calibration
from privacy.dp._opendp import (
    OPENDP_VERSION,
    Margin,
    Measurement,
    OpenDPException,
    dp,
    noisy_count,
    noisy_len,
    noisy_quantile,
    noisy_sum,
    privacy_loss,
)
from privacy.dp.spec import (
    FilterOp,
    QueryError,
    QueryRequest,
    ResolvedAggregate,
    ResolvedFilter,
    ResolvedQuery,
    validate_against,
)

#: Public upper bound on a dataset's rows (OpenDP's ``max_length``); larger datasets are refused.
DEFAULT_MAX_ROWS: Final = 2**30
#: OpenDP takes ``max_length`` as a u32. With ``spec.MAX_ABS_BOUND`` (< 2^30) this also keeps every
#: sum below 2^62, so the fixed-point grid always has k ≥ 0 fraction bits.
MAX_ROWS_LIMIT: Final = 2**32 - 1
#: Accuracy is reported as the half-width of the ``1 - ALPHA`` interval.
ALPHA: Final = 0.05
#: Most candidates of a quantile's grid (ints use every integer in the bounds if there are fewer).
QUANTILE_CANDIDATES: Final = 1001
#: Sums of fixed-point values stay below 2**this for any ``max_rows`` values (OpenDP refuses ≥ 2**63).
_SUM_BITS: Final = 62
_MAX_FRACTION_BITS: Final = 52

_POLARS_TYPES: Final[dict[ColumnType, type[pl.DataType]]] = {
    ColumnType.INT: pl.Int64,
    ColumnType.FLOAT: pl.Float64,
    ColumnType.STR: pl.String,
    ColumnType.CATEGORY: pl.String,
    ColumnType.BOOL: pl.Boolean,
    ColumnType.DATE: pl.Date,
}
_ATOM_TYPES: Final = {
    ColumnType.INT: "i64",
    ColumnType.FLOAT: "f64",
    ColumnType.STR: "String",
    ColumnType.CATEGORY: "String",
    ColumnType.BOOL: "bool",
    ColumnType.DATE: "NaiveDate",
}
_EPOCH: Final = date(1970, 1, 1)
# Internal column names: user output names start with a letter.
_BIN: Final = "__dp_bin"
_ROWS: Final = "__dp_rows"
#: The aggregates computed together in one plan (one pass); each histogram gets a plan of its own.
_MAIN: Final = ("count", "sum", "mean", "quantile")

_COMPARISONS: Final[dict[FilterOp, Callable[[Any, Any], Any]]] = {
    FilterOp.EQ: operator.eq,
    FilterOp.NE: operator.ne,
    FilterOp.LT: operator.lt,
    FilterOp.LE: operator.le,
    FilterOp.GT: operator.gt,
    FilterOp.GE: operator.ge,
}

Key = tuple[Any, ...]
T = TypeVar("T")


class PrivacyCheckError(EnclaveError):
    """OpenDP's privacy map exceeds the requested loss: nothing was released (a bug, never a user error)."""

    status, title = 500, "Privacy check failed"


@dataclass(frozen=True, slots=True)
class QueryResult:
    """A release: one row per group key (ordered by the keys), then one cell per aggregate.

    Counts are ints, sums/means/quantiles floats, a histogram a list of bin counts. With private keys a
    cell is ``None`` where its plan's threshold suppressed the group (or the histogram bin). The
    ``epsilon_spent``/``delta_spent`` are what OpenDP's maps certify (≤ the request); ``accuracy`` maps
    each aggregate to its 95% half-width (a rank error in rows for quantiles).
    """

    columns: list[str]
    rows: list[list[Any]]
    epsilon_spent: float
    delta_spent: float
    accuracy: dict[str, float]
    mechanism: str


@dataclass(frozen=True, slots=True)
class _Statistic:
    """How one aggregate is computed and how its released columns become a cell."""

    aggregate: ResolvedAggregate
    #: The plan's OpenDP ``global_scale``: noise scale in units of each component's per-row sensitivity.
    scale: float
    #: Value of one integer unit of a sum (``2^-k`` on the fixed-point grid, else 1).
    unit: float = 1.0
    #: A sum's per-row sensitivity in integer units: ``max(|lower|, |upper|)`` of the summed values.
    sum_sensitivity: float = 1.0
    #: What a mean's summed values were shifted by (the bounds' midpoint).
    center: float = 0.0
    #: How many candidates a quantile chose from.
    candidates: int = 0


@dataclass(frozen=True)
class Plan:
    """One OpenDP measurement of a compiled query and the budget share it was verified against."""

    measurement: Measurement
    epsilon: float
    delta: float
    threshold: int | None
    statistics: tuple[_Statistic, ...]
    histogram: bool


@dataclass(frozen=True)
class CompiledQuery:
    """A verified query: its plans, the compositor they are released through, the certified loss."""

    query: ResolvedQuery
    plans: tuple[Plan, ...]
    compositor: Measurement
    epsilon_spent: float
    delta_spent: float
    max_rows: int
    mechanism: str

    def release(self, frame: pl.LazyFrame | pl.DataFrame) -> QueryResult:
        """Release the verified measurements on ``frame`` through the compositor and shape the result.

        Every call is a new release and spends the certified (ε, δ) again. OpenDP receives the frame's
        plan serialized: a ``scan_parquet`` plan is a path, but a LazyFrame over an in-memory DataFrame
        carries all of its data, so in-memory data should come as a DataFrame (only the query's columns
        are handed over). Raises :class:`QueryError`, before any noise, if the frame has more rows than
        ``max_rows``.
        """
        n_rows = frame.select(pl.len()).lazy().collect().item()
        if n_rows > self.max_rows:
            raise QueryError(
                f"dataset {self.query.dataset_id} has more rows than the public bound {self.max_rows}",
                "dataset_id",
            )
        data = frame.select(pl.col(c.name).cast(_POLARS_TYPES[c.type]) for c in self.query.columns).lazy()
        queryable = self.compositor(data)
        outputs = [queryable(plan.measurement).collect() for plan in self.plans]
        return self._assemble(outputs)

    def _assemble(self, outputs: list[pl.DataFrame]) -> QueryResult:
        query = self.query
        key_columns = [c.name for c in query.group_by]
        cells: dict[str, dict[Key, Any]] = {}
        for plan, frame in zip(self.plans, outputs, strict=True):
            if plan.histogram:
                cells[plan.statistics[0].aggregate.name] = _histogram_cells(
                    plan.statistics[0], frame, key_columns
                )
                continue
            released = {tuple(row[c] for c in key_columns): row for row in frame.iter_rows(named=True)}
            for stat in plan.statistics:
                cells[stat.aggregate.name] = {key: _cell(stat, row) for key, row in released.items()}
        if query.group_keys is not None:
            keys = list(query.group_keys)
        else:  # the keys the main plan released, else those any histogram plan released
            main = [p for p in self.plans if p.statistics[0].aggregate.fn in _MAIN] or self.plans
            keys = sorted({k for p in main for k in cells[p.statistics[0].aggregate.name]}, key=_sort_key)
        rows = []
        for key in keys:
            row: list[Any] = list(key)
            for aggregate in query.aggregates:
                value = cells[aggregate.name].get(key)
                if isinstance(value, _MeanCell):
                    value = value.value
                elif value is None and aggregate.edges is not None:
                    value = [None] * (len(aggregate.edges) - 1)
                row.append(value)
            rows.append(row)
        accuracy = {
            stat.aggregate.name: _accuracy(stat, cells[stat.aggregate.name])
            for plan in self.plans
            for stat in plan.statistics
        }
        return QueryResult(
            columns=query.output_columns,
            rows=rows,
            epsilon_spent=self.epsilon_spent,
            delta_spent=self.delta_spent,
            accuracy={a.name: accuracy[a.name] for a in query.aggregates},
            mechanism=self.mechanism,
        )


def run_query(
    frame: pl.LazyFrame | pl.DataFrame,
    meta: DatasetMetadata,
    request: QueryRequest,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> QueryResult:
    """Validate ``request`` against ``meta``, compile and verify it, and release it on ``frame``
    (preferably ``pl.scan_parquet(path)``; in-memory data as a DataFrame, see :meth:`CompiledQuery.release`).

    Raises :class:`QueryError` (before any noise is drawn) for queries that cannot run, and
    :class:`PrivacyCheckError` if OpenDP's map would exceed the requested (ε, δ) — never releasing then.
    ``max_rows`` is the public bound on the dataset's rows (see :data:`DEFAULT_MAX_ROWS`).
    """
    return compile_query(validate_against(request, meta), max_rows=max_rows).release(frame)


def compile_query(query: ResolvedQuery, *, max_rows: int = DEFAULT_MAX_ROWS) -> CompiledQuery:
    """Build the OpenDP measurements of ``query`` with analytically calibrated noise and verify them
    with OpenDP's privacy maps (see the module docstring). Touches no data."""
    if not 1 <= max_rows <= MAX_ROWS_LIMIT:
        raise ValueError(f"max_rows must lie in [1, {MAX_ROWS_LIMIT}], got {max_rows}")
    d_in = query.rows_per_person
    private_keys = query.group_keys is None
    # One plan for count/sum/mean/quantile (one pass over the data), one per histogram (its own group_by).
    main = [a for a in query.aggregates if a.fn in _MAIN]
    groupings = ([main] if main else []) + [[a] for a in query.aggregates if a.fn not in _MAIN]
    # With private keys a plan's key threshold needs a noisy row count: a plain count, a histogram's own,
    # or a hidden one that costs a unit.
    hidden = [private_keys and not any(a.fn == "histogram" or _is_row_count(a) for a in g) for g in groupings]
    units = [sum(calibration.UNITS[a.fn] for a in g) + h for g, h in zip(groupings, hidden, strict=True)]
    delta = query.delta / len(groupings) / (1 + calibration.SAFETY) if private_keys else 0.0

    measure = dp.approximate(dp.max_divergence()) if private_keys else dp.max_divergence()
    domain = _input_domain(query, max_rows)
    rows = pl.LazyFrame(schema={c.name: _POLARS_TYPES[c.type] for c in query.columns})
    if query.filters:
        rows = rows.filter(reduce(operator.and_, (_predicate(f) for f in query.filters)))

    plans = []
    for grouping, plan_units, hidden_count in zip(groupings, units, hidden, strict=True):
        epsilon = query.epsilon * plan_units / sum(units) / (1 + calibration.SAFETY)
        scale = calibration.noise_scale(epsilon, d_in, plan_units)
        statistics, values, exprs = [], [], []
        for aggregate in grouping:
            stat, stat_values, stat_exprs = _statistic(aggregate, scale, max_rows)
            statistics.append(stat)
            values += stat_values
            exprs += stat_exprs
        if hidden_count:
            exprs.append(noisy_len().alias(_ROWS))
        plan_rows = rows.with_columns(values) if values else rows
        plans.append(_plan(query, domain, measure, plan_rows, exprs, statistics, epsilon, delta, scale))

    for index, plan in enumerate(plans):
        _verify(plan.measurement, d_in, (plan.epsilon, plan.delta), f"plan {index}")
    d_mids = [(p.epsilon, p.delta) if private_keys else p.epsilon for p in plans]
    try:
        compositor = dp.c.make_adaptive_composition(domain, dp.symmetric_distance(), measure, d_in, d_mids)
    except OpenDPException as exc:
        raise PrivacyCheckError(f"OpenDP refused the composition: {exc.message}") from exc
    epsilon_spent, delta_spent = _verify(compositor, d_in, (query.epsilon, query.delta), "the query")
    return CompiledQuery(
        query=query,
        plans=tuple(plans),
        compositor=compositor,
        epsilon_spent=epsilon_spent,
        delta_spent=delta_spent,
        max_rows=max_rows,
        mechanism=_mechanism(query, plans),
    )


def _is_row_count(aggregate: ResolvedAggregate) -> bool:
    return aggregate.fn == "count" and aggregate.column is None


# --- compilation ------------------------------------------------------------------------------------


def _input_domain(query: ResolvedQuery, max_rows: int) -> Any:
    """OpenDP's LazyFrame domain of the columns the query reads, nullable, with the public margins."""
    domain = dp.lazyframe_domain(
        [
            dp.series_domain(c.name, dp.option_domain(dp.atom_domain(T=_ATOM_TYPES[c.type])))
            for c in query.columns
        ]
    )
    domain = dp.with_margin(domain, Margin(by=[], max_length=max_rows))
    if query.group_keys is None:  # private keys: at most one group per row
        domain = dp.with_margin(domain, Margin(by=[c.name for c in query.group_by], max_groups=max_rows))
    return domain


def _predicate(spec: ResolvedFilter) -> pl.Expr:
    """A filter as a row-wise Polars predicate OpenDP accepts (no ``is_in``; dates as day numbers)."""
    column = pl.col(spec.column.name)
    values = spec.value if spec.op is FilterOp.IN else (spec.value,)
    if spec.column.type is ColumnType.DATE:
        column = column.cast(pl.Int32)
        values = tuple((v - _EPOCH).days for v in values)
    compare = _COMPARISONS[FilterOp.EQ if spec.op is FilterOp.IN else spec.op]
    predicate: pl.Expr = reduce(operator.or_, (compare(column, v) for v in values))
    return predicate


def _statistic(
    aggregate: ResolvedAggregate, scale: float, max_rows: int
) -> tuple[_Statistic, list[pl.Expr], list[pl.Expr]]:
    """One aggregate's row-wise value columns (added before grouping) and its noisy expressions (noise at
    its plan's ``scale``)."""
    name, column = aggregate.name, aggregate.column
    if aggregate.fn == "count":
        expr = noisy_len() if column is None else noisy_count(pl.col(column.name))
        return _Statistic(aggregate, scale), [], [expr.alias(name)]
    if aggregate.fn == "histogram":
        return _Statistic(aggregate, scale), [], [noisy_len().alias(_ROWS)]
    column, bounds = _given(column), _given(aggregate.bounds)
    if aggregate.fn == "quantile":  # of the known values only: the other expressions keep every row
        candidates = _candidates(column, bounds)
        expr = noisy_quantile(pl.col(column.name).drop_nulls(), _given(aggregate.q), candidates)
        return _Statistic(aggregate, scale, candidates=len(candidates)), [], [expr.alias(name)]
    # A mean sums values centred on the bounds' midpoint: half the sensitivity of a plain sum.
    center = 0.0 if aggregate.fn == "sum" else _midpoint(column, bounds)
    values, int_bounds, unit = _summable(aggregate, max_rows, center)
    sensitivity = float(max(abs(b) for b in int_bounds))
    stat = _Statistic(aggregate, scale, unit=unit, sum_sensitivity=sensitivity, center=center)
    # The integer values are a column of their own, computed once per row before grouping: the noisy
    # sum and a mean's noisy count then read it instead of each recomputing (and re-casting) it.
    column_name = f"__dp_{name}_values"
    summed = pl.col(column_name)
    total = noisy_sum(summed.fill_null(0), int_bounds)  # nulls add nothing (OpenDP would impute the midpoint)
    if aggregate.fn == "sum":
        return stat, [values.alias(column_name)], [total.alias(name)]
    # mean: centre + a noisy centred sum over a noisy count of the same (non-null) values
    noisy = [total.alias(f"__dp_{name}_sum"), noisy_count(summed).alias(f"__dp_{name}_n")]
    return stat, [values.alias(column_name)], noisy


def _summable(
    aggregate: ResolvedAggregate, max_rows: int, center: float = 0.0
) -> tuple[pl.Expr, tuple[int, int], float]:
    """The column clamped, minus ``center``, as 64-bit integers OpenDP sums exactly (nulls kept); the
    summing bounds, widened to include 0 (which leaves the sensitivity ``max |bound|`` unchanged); and
    the value of one integer unit.

    Ints are used as they are. Floats are scaled by ``2^k`` (truncation toward zero: an error below
    ``2^-k`` per row; NaN becomes null), with the largest ``k`` for which ``max_rows`` values cannot
    overflow.
    """
    column = _given(aggregate.column)
    low, high = _given(aggregate.bounds)
    magnitude = max(abs(low - center), abs(high - center))
    clamped = pl.col(column.name).clip(low, high)
    if column.type is ColumnType.INT:
        values, factor = (clamped - int(center) if center else clamped), 1.0
    else:  # k >= 0 since max_rows < 2^32 and magnitude <= MAX_ABS_BOUND < 2^30
        bits = min(_MAX_FRACTION_BITS, math.floor(_SUM_BITS - math.log2(max_rows) - math.log2(magnitude)))
        factor = 2.0**bits
        values = ((clamped - center if center else clamped) * factor).cast(pl.Int64, strict=False)
    int_low, int_high = math.floor((low - center) * factor), math.ceil((high - center) * factor)
    return values, (min(int_low, 0), max(int_high, 0)), 1 / factor


def _midpoint(column: ColumnSpec, bounds: tuple[float, float]) -> float:
    middle = (bounds[0] + bounds[1]) / 2
    return float(math.floor(middle)) if column.type is ColumnType.INT else middle


def _candidates(column: ColumnSpec, bounds: tuple[float, float]) -> list[float]:
    """The public quantile candidates: every integer of an int column's bounds if few, else a grid."""
    low, high = bounds
    grid = np.linspace(low, high, QUANTILE_CANDIDATES)
    if column.type is ColumnType.INT:
        if high - low + 1 <= QUANTILE_CANDIDATES:
            return list(range(int(low), int(high) + 1))
        return sorted({round(float(v)) for v in grid})
    return [float(v) for v in grid]


def _bin_index(aggregate: ResolvedAggregate) -> pl.Expr:
    """Row-wise bin index: the number of inner edges at or below the value (clamps out-of-range values
    into the first/last bin; null stays null). A single bin is index 0 for every non-null value."""
    values = pl.col(_given(aggregate.column).name).cast(pl.Float64)
    inner = _given(aggregate.edges)[1:-1]
    if not inner:
        return values.is_null().cast(pl.UInt32)  # nulls get index 1, outside the keys
    return reduce(lambda a, b: a + b, ((values >= edge).cast(pl.UInt32) for edge in inner))


def _plan(
    query: ResolvedQuery,
    domain: Any,
    measure: Any,
    rows: pl.LazyFrame,
    exprs: list[pl.Expr],
    statistics: list[_Statistic],
    epsilon: float,
    delta: float,
    scale: float,
) -> Plan:
    """Group, join the public keys or set the key threshold, and build the OpenDP measurement."""
    first = statistics[0].aggregate
    histogram = first.fn == "histogram"
    if histogram:
        rows = rows.with_columns(_bin_index(first).alias(_BIN))
    by = [c.name for c in query.group_by] + ([_BIN] if histogram else [])
    threshold = None
    if not by:
        lazyframe = rows.select(exprs)
    elif query.group_keys is not None:
        keys = _key_frame(query, first if histogram else None)
        lazyframe = keys.join(rows.group_by(by).agg(exprs), on=by, how="left", nulls_equal=True)
    else:
        try:  # the noisy row count the threshold applies to has absolute scale `scale` (sensitivity 1)
            threshold = calibration.key_threshold(scale, query.rows_per_person, delta)
        except ValueError as exc:
            raise QueryError(str(exc), "delta") from exc
        lazyframe = rows.group_by(by).agg(exprs)
    try:
        measurement = dp.m.make_private_lazyframe(
            domain, dp.symmetric_distance(), measure, lazyframe, global_scale=scale, threshold=threshold
        )
    except OpenDPException as exc:
        raise QueryError(f"OpenDP cannot compile this query: {exc.message}", "query") from exc
    return Plan(measurement, epsilon, delta, threshold, tuple(statistics), histogram)


def _key_frame(query: ResolvedQuery, histogram: ResolvedAggregate | None) -> pl.LazyFrame:
    """The public key-set: declared key combinations (times the bin indices for a histogram)."""
    schema: dict[str, type[pl.DataType]] = {c.name: _POLARS_TYPES[c.type] for c in query.group_by}
    rows: Iterable[Key] = query.group_keys or [()]
    if histogram is not None:
        bins = range(len(_given(histogram.edges)) - 1)
        rows = [(*key, b) for key in rows for b in bins]
        schema[_BIN] = pl.UInt32
    return pl.LazyFrame(list(rows), schema=schema, orient="row")


def _verify(
    measurement: Measurement, d_in: int, budget: tuple[float, float], what: str
) -> tuple[float, float]:
    """OpenDP's privacy map of ``measurement`` at ``d_in``, or PrivacyCheckError if it exceeds ``budget``."""
    epsilon, delta = privacy_loss(measurement, d_in)
    if not (epsilon <= budget[0] and delta <= budget[1]):
        raise PrivacyCheckError(
            f"OpenDP's privacy map of {what} is (ε={epsilon!r}, δ={delta!r}), above its budget "
            f"(ε={budget[0]!r}, δ={budget[1]!r}): nothing was released"
        )
    return epsilon, delta


def _mechanism(query: ResolvedQuery, plans: Sequence[Plan]) -> str:
    fns = {a.fn for a in query.aggregates}
    parts = []
    if fns - {"quantile"}:
        parts.append("discrete Laplace")
    if "quantile" in fns:
        parts.append("exponential mechanism (quantile)")
    if query.group_by and query.group_keys is not None:
        parts.append("public group keys")
    elif query.group_by:
        thresholds = sorted({p.threshold for p in plans if p.threshold is not None})
        parts.append("private group keys above noisy count " + "/".join(str(t) for t in thresholds))
    guarantee = "(ε, δ)-DP" if query.group_keys is None else "ε-DP"
    return f"OpenDP {OPENDP_VERSION} make_private_lazyframe, {guarantee}: " + ", ".join(parts)


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _MeanCell:
    """A released mean and the noisy count it was divided by (for the accuracy estimate)."""

    value: float
    count: int


def _cell(stat: _Statistic, row: dict[str, Any]) -> int | float | _MeanCell:
    """One released cell as a plain Python value (sums back from the fixed-point grid)."""
    aggregate = stat.aggregate
    if aggregate.fn == "count":
        return int(row[aggregate.name])
    if aggregate.fn == "quantile":
        return float(row[aggregate.name])
    if aggregate.fn == "sum":
        return float(row[aggregate.name]) * stat.unit
    low, high = _given(aggregate.bounds)
    total, count = float(row[f"__dp_{aggregate.name}_sum"]) * stat.unit, int(row[f"__dp_{aggregate.name}_n"])
    return _MeanCell(min(max(stat.center + total / max(count, 1), low), high), count)


def _histogram_cells(
    stat: _Statistic, frame: pl.DataFrame, key_columns: list[str]
) -> dict[Key, list[int | None]]:
    """Bin counts per group key; bins the threshold suppressed stay ``None``."""
    bins = len(stat.aggregate.edges or ()) - 1
    cells: dict[Key, list[int | None]] = {}
    for row in frame.iter_rows(named=True):
        index = row[_BIN]
        if index is not None and index < bins:
            cells.setdefault(tuple(row[c] for c in key_columns), [None] * bins)[index] = int(row[_ROWS])
    return cells


def _accuracy(stat: _Statistic, cells: dict[Key, Any]) -> float:
    aggregate, scale = stat.aggregate, stat.scale
    if aggregate.fn in ("count", "histogram"):
        return calibration.laplace_accuracy(scale, ALPHA)
    if aggregate.fn == "quantile":
        return calibration.quantile_rank_accuracy(scale, _given(aggregate.q), stat.candidates, ALPHA)
    if aggregate.fn == "sum":
        return calibration.laplace_accuracy(scale * stat.sum_sensitivity, ALPHA) * stat.unit
    low, high = _given(aggregate.bounds)
    width = high - low
    sum_accuracy = calibration.laplace_accuracy(scale * stat.sum_sensitivity, ALPHA / 2) * stat.unit
    count_accuracy = calibration.laplace_accuracy(scale, ALPHA / 2)
    magnitude = max(abs(low - stat.center), abs(high - stat.center))  # bounds |mean - center|
    worst = 0.0 if cells else width
    for cell in cells.values():
        bound = (sum_accuracy + magnitude * count_accuracy) / cell.count if cell.count > 0 else width
        worst = max(worst, min(bound, width))
    return worst


def _given(value: T | None) -> T:
    """``value``, which the resolved aggregate's kind guarantees is set."""
    if value is None:
        raise RuntimeError("resolved aggregate lacks a field its kind requires")
    return value


def _sort_key(key: Key) -> tuple[tuple[bool, Any], ...]:
    return tuple((value is None, 0 if value is None else value) for value in key)
