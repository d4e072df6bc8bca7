"""Differentially private query engine: declarative queries (DESIGN §4.3) compiled to OpenDP.

Pure library: no web framework, no database. The budget ledger reserves (ε, δ) before calling
:func:`run_query` and refunds on :class:`QueryError`, which is only ever raised before any noise is drawn.

    request = parse_request(body)                 # or QueryRequest.model_validate(body)
    result = run_query(pl.scan_parquet(path), metadata, request)
"""

from privacy.dp.engine import (
    DEFAULT_MAX_ROWS,
    CompiledQuery,
    PrivacyCheckError,
    QueryResult,
    compile_query,
    run_query,
)
from privacy.dp.spec import (
    Aggregate,
    CountAggregate,
    Filter,
    FilterOp,
    HistogramAggregate,
    MeanAggregate,
    QuantileAggregate,
    QueryError,
    QueryRequest,
    QuerySpec,
    ResolvedAggregate,
    ResolvedFilter,
    ResolvedQuery,
    SumAggregate,
    parse_request,
    validate_against,
)

__all__ = [
    "DEFAULT_MAX_ROWS",
    "Aggregate",
    "CompiledQuery",
    "CountAggregate",
    "Filter",
    "FilterOp",
    "HistogramAggregate",
    "MeanAggregate",
    "PrivacyCheckError",
    "QuantileAggregate",
    "QueryError",
    "QueryRequest",
    "QueryResult",
    "QuerySpec",
    "ResolvedAggregate",
    "ResolvedFilter",
    "ResolvedQuery",
    "SumAggregate",
    "compile_query",
    "parse_request",
    "run_query",
    "validate_against",
]
