"""Dataset metadata (contract 4.4) and the check of a table against it.

A custodian's metadata declares every column's type, role and public bounds or categories. A file is
registered only if it matches exactly; otherwise :class:`~enclave_api.errors.Invalid` names the column.
"""

from __future__ import annotations

import io
import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Self

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from enclave_api.errors import Invalid

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
OrgId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,63}$")]
ColumnName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]


class ColumnType(StrEnum):
    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    DATE = "date"
    CATEGORY = "category"


class ColumnRole(StrEnum):
    DIRECT_IDENTIFIER = "direct_identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    ATTRIBUTE = "attribute"


class Tier(StrEnum):
    ENCLAVE = "enclave"  # pseudonymised records visible inside sessions
    QUERY_ONLY = "query_only"  # only DP queries, never records


class OnRelease(StrEnum):
    """What the data broker does with a direct identifier: drop it or replace it by a keyed HMAC."""

    DROP = "drop"
    PSEUDONYMISE = "pseudonymise"


ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.INT: pa.int64(),
    ColumnType.FLOAT: pa.float64(),
    ColumnType.STR: pa.string(),
    ColumnType.BOOL: pa.bool_(),
    ColumnType.DATE: pa.date32(),
    ColumnType.CATEGORY: pa.string(),
}


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ColumnName
    type: ColumnType
    role: ColumnRole
    description: str = Field("", max_length=2000)
    bounds: tuple[float, float] | tuple[date, date] | None = None
    categories: list[Annotated[str, StringConstraints(max_length=200)]] | None = Field(
        None, max_length=10_000
    )
    on_release: OnRelease | None = None
    #: A regular expression that every value of this direct identifier matches (e.g. an MRN scheme
    #: ``HB[0-9]{7}``): the egress scanner looks for it in outputs, beyond the deny-list of known values.
    pattern: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.bounds is not None:
            if self.type not in (ColumnType.INT, ColumnType.FLOAT, ColumnType.DATE):
                raise ValueError(f"column {self.name}: bounds only apply to int, float and date")
            low, high = self.bounds
            if isinstance(low, date) != (self.type is ColumnType.DATE):
                raise ValueError(f"column {self.name}: bounds do not match type {self.type}")
            if not low < high:  # type: ignore[operator]
                raise ValueError(f"column {self.name}: bounds must satisfy lower < upper")
        if self.categories is not None:
            if self.type not in (ColumnType.CATEGORY, ColumnType.BOOL):
                raise ValueError(f"column {self.name}: categories only apply to category columns")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"column {self.name}: categories must be unique")
        if self.on_release is not None and self.role is not ColumnRole.DIRECT_IDENTIFIER:
            raise ValueError(f"column {self.name}: on_release only applies to direct identifiers")
        if self.pattern is not None:
            if self.role is not ColumnRole.DIRECT_IDENTIFIER:
                raise ValueError(f"column {self.name}: pattern only applies to direct identifiers")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"column {self.name}: pattern is not a valid regular expression: {exc}"
                ) from exc
        return self

    @property
    def release_action(self) -> OnRelease | None:
        """What leaves the broker for this column: ``None`` means the value as stored."""
        if self.role is not ColumnRole.DIRECT_IDENTIFIER:
            return None
        return self.on_release or OnRelease.DROP

    def public(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "type": self.type, "role": self.role}
        if self.description:
            doc["description"] = self.description
        if self.bounds is not None:
            doc["bounds"] = [b.isoformat() if isinstance(b, date) else b for b in self.bounds]
        if self.categories is not None:
            doc["categories"] = list(self.categories)
        if self.pattern is not None:
            doc["pattern"] = self.pattern
        return doc


class DatasetMetadata(BaseModel):
    """Contract 4.4: what a custodian declares beside each dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    title: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=10_000)
    custodian_org: OrgId
    tier: Tier
    max_rows_per_person: int = Field(1, ge=1, le=10_000)
    columns: list[ColumnSpec] = Field(min_length=1, max_length=2_000)
    #: Independent custodian approvals an egress request touching this dataset needs (default: the
    #: deployment's ``egress_reviews`` setting).
    egress_reviews: int | None = Field(None, ge=1, le=5)

    @model_validator(mode="after")
    def _unique_columns(self) -> Self:
        names = [c.name for c in self.columns]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ValueError(f"column {duplicate} is declared twice")
        return self

    def column(self, name: str) -> ColumnSpec:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "custodian_org": self.custodian_org,
            "tier": self.tier,
            "description": self.description,
            "max_rows_per_person": self.max_rows_per_person,
            "columns": [c.public() for c in self.columns],
        } | ({"egress_reviews": self.egress_reviews} if self.egress_reviews is not None else {})


def parse_metadata(raw: bytes | str | dict[str, Any]) -> DatasetMetadata:
    """Parse YAML/JSON metadata; raise :class:`Invalid` naming the first bad field."""
    if not isinstance(raw, dict):
        if len(raw) > MAX_METADATA_BYTES:
            raise Invalid(f"metadata is larger than {MAX_METADATA_BYTES} bytes", field="metadata")
        try:
            if any(isinstance(token, yaml.AliasToken) for token in yaml.scan(raw, Loader=yaml.SafeLoader)):
                # Anchors/aliases are never needed here and allow exponential "billion laughs" documents.
                raise Invalid("metadata must not use YAML anchors or aliases", field="metadata")
            doc = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise Invalid(f"metadata is not valid YAML/JSON: {exc}", field="metadata") from exc
        if not isinstance(doc, dict):
            raise Invalid("metadata must be a mapping", field="metadata")
        raw = doc
    try:
        return DatasetMetadata.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "metadata"
        if first["loc"][:1] == ("columns",) and len(first["loc"]) > 1:
            index = first["loc"][1]
            columns = raw.get("columns")
            if isinstance(index, int) and isinstance(columns, list) and index < len(columns):
                name = columns[index].get("name") if isinstance(columns[index], dict) else None
                where = f"columns.{name or index}" + "".join(f".{p}" for p in first["loc"][2:])
        raise Invalid(f"metadata invalid at {where}: {first['msg']}", field=where) from exc


MAX_METADATA_BYTES = 256 * 1024  # below the multipart parser's own 1 MiB per-field cap
_CSV_COLUMN = re.compile(r"column #(\d+)")


def read_table(data: bytes, filename: str, meta: DatasetMetadata) -> pa.Table:
    """Read CSV or Parquet ``data`` and return it conformed to ``meta`` (declared order and types)."""
    lower = filename.lower()
    if lower.endswith((".csv", ".csv.gz")):
        names = [c.name for c in meta.columns]
        try:
            table = pacsv.read_csv(
                io.BytesIO(data),
                convert_options=pacsv.ConvertOptions(
                    column_types={c.name: ARROW_TYPES[c.type] for c in meta.columns},
                    strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            message = str(exc)
            match = _CSV_COLUMN.search(message)
            header = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
            column = None
            if match and int(match[1]) < len(header):
                column = header[int(match[1])].strip().strip('"')
            raise Invalid(
                f"CSV does not match the metadata: {message.splitlines()[0]}",
                field=column if column in names else None,
            ) from exc
    elif lower.endswith(".parquet"):
        try:
            table = pq.read_table(io.BytesIO(data))
        except (pa.ArrowInvalid, OSError) as exc:
            raise Invalid(f"unreadable Parquet file: {exc}", field="file") from exc
    else:
        raise Invalid("dataset files must be CSV (.csv) or Parquet (.parquet)", field="file")
    return conform_table(table, meta)


def conform_table(table: pa.Table, meta: DatasetMetadata) -> pa.Table:
    """Check columns, types and categories; cast to the declared Arrow types."""
    declared = [c.name for c in meta.columns]
    present = table.column_names
    missing = [name for name in declared if name not in present]
    extra = [name for name in present if name not in declared]
    if missing or extra:
        problems = [f"column {n} is declared in the metadata but missing" for n in missing]
        problems += [f"column {n} is in the file but not declared in the metadata" for n in extra]
        raise Invalid("; ".join(problems), field=(missing or extra)[0], missing=missing, undeclared=extra)
    if table.num_rows == 0:
        raise Invalid("the dataset has no rows", field="file")
    arrays = []
    for spec in meta.columns:
        arrays.append(_conform_column(table.column(spec.name), spec))
    return pa.Table.from_arrays(arrays, names=declared)


def _conform_column(column: pa.ChunkedArray, spec: ColumnSpec) -> pa.ChunkedArray:
    target = ARROW_TYPES[spec.type]
    source = column.type
    compatible = {
        ColumnType.INT: pa.types.is_integer(source),
        ColumnType.FLOAT: pa.types.is_integer(source) or pa.types.is_floating(source),
        ColumnType.STR: pa.types.is_string(source) or pa.types.is_large_string(source),
        ColumnType.BOOL: pa.types.is_boolean(source),
        ColumnType.DATE: pa.types.is_date(source) or pa.types.is_timestamp(source),
        ColumnType.CATEGORY: pa.types.is_string(source)
        or pa.types.is_large_string(source)
        or pa.types.is_dictionary(source)
        or pa.types.is_integer(source),
    }[spec.type]
    if not compatible:
        raise Invalid(f"column {spec.name} has type {source}, metadata declares {spec.type}", field=spec.name)
    try:
        conformed = column.cast(target) if source != target else column
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise Invalid(f"column {spec.name} cannot be read as {spec.type}: {exc}", field=spec.name) from exc
    if spec.type is ColumnType.FLOAT and pc.any(pc.is_nan(conformed)).as_py():
        raise Invalid(f"column {spec.name} contains NaN", field=spec.name)
    if spec.categories is not None:
        allowed = pa.array(spec.categories, type=pa.string())
        values = conformed.cast(pa.string()) if spec.type is ColumnType.BOOL else conformed
        unknown = pc.filter(values, pc.invert(pc.fill_null(pc.is_in(values, allowed), True)))
        if len(unknown):
            raise Invalid(
                f"column {spec.name} has values outside its declared categories "
                f"(e.g. {unknown[0].as_py()!r})",
                field=spec.name,
            )
    return conformed


def out_of_bounds(table: pa.Table, meta: DatasetMetadata) -> dict[str, int]:
    """Count values outside each column's public bounds (they will be clamped by the DP engine)."""
    counts = {}
    for spec in meta.columns:
        if spec.bounds is None:
            continue
        column = table.column(spec.name)
        low, high = (pa.scalar(b, type=column.type) for b in spec.bounds)
        outside = pc.sum(pc.or_(pc.less(column, low), pc.greater(column, high))).as_py() or 0
        if outside:
            counts[spec.name] = int(outside)
    return counts
