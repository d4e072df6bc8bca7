"""The fast validator used on every append refuses exactly what the reference validator refuses.

Appends are checked with compiled Rust validators (``jsonschema_rs``); the ``jsonschema`` library
(Draft 2020-12, formats asserted) is the reference. For every shipped schema, a valid event and
many near misses (each field wrong in type, length, range, format or pattern; each required field
missing; an unknown field added) must get the same verdict from both.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from audit.schemas import AuditSchemaError, SchemaRegistry, shipped_schemas

SCHEMAS = shipped_schemas()
REGISTRY = SchemaRegistry(SCHEMAS)
# Values of every JSON type and edge, tried in place of each field.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**70,
    0.5,
    1.0,
    -0.0,
    math.inf,
    math.nan,
    "",
    "x",
    "x" * 65,
    "x" * 10_000,
    "Ünïcode 환자",
    "2026-11-25T06:00:00.123456Z",
    "2026-11-25T06:00:00+09:00",
    "2026-02-30T00:00:00Z",
    "2026-11-25 06:00:00Z",
    "a" * 64,
    "A" * 64,
    "a" * 63,
    [],
    ["x"],
    [1, 2],
    {},
    {"x": 1},
]


def example(schema: dict[str, Any]) -> Any:
    """A value that satisfies ``schema`` (the subset of keywords the shipped schemas use)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        return {name: example(sub) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example(schema["items"])] * max(1, schema.get("minItems", 1)) if "items" in schema else []
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-11-25T06:00:00.123456Z"
        if "pattern" in schema:
            return "0" * 64  # the shipped patterns are lowercase SHA-256 hex
        return "v" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return None


def near_misses(schema: dict[str, Any], value: Any) -> Iterator[Any]:
    """``value`` with one thing changed at a time, at every depth."""
    if not isinstance(value, dict):
        return
    properties = schema.get("properties", {})
    yield {**value, "unexpected": 1}
    for name in schema.get("required", []):
        yield {key: item for key, item in value.items() if key != name}
    for name, sub in properties.items():
        for odd in ODD_VALUES:
            yield {**value, name: odd}
        for inner in near_misses(sub, value.get(name)):
            yield {**value, name: inner}
        if sub.get("type") == "array" and "items" in sub:
            for odd in ODD_VALUES:
                yield {**value, name: [odd]}


def is_json(value: Any) -> bool:
    """Whether ``value`` is JSON at all (NaN and infinities are not, nor are bytes or objects)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def accepted_by_registry(event_type: str, event: Any) -> bool:
    try:
        REGISTRY.validate(event_type, event.get("subject", {}), event.get("details", {}))
    except AuditSchemaError:
        return False
    return True


@pytest.mark.parametrize("event_type", sorted(SCHEMAS))
def test_fast_validator_agrees_with_the_reference(event_type: str) -> None:
    schema = SCHEMAS[event_type][1]
    reference = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    valid = example(schema)
    assert reference.is_valid(valid), "the test's example must satisfy the schema"
    assert accepted_by_registry(event_type, valid)
    tried = refused = 0
    for event in near_misses(schema, copy.deepcopy(valid)):
        if set(event) != {"subject", "details"} or not all(isinstance(v, dict) for v in event.values()):
            continue  # validate() is given exactly these two parts, as mappings
        expected = reference.is_valid(event) and is_json(event)
        assert accepted_by_registry(event_type, event) == expected, f"verdicts differ on {event!r:.300}"
        tried += 1
        refused += not expected
    assert tried > 50
    assert refused > 0


@pytest.mark.parametrize("odd", [b"bytes", object(), math.nan, math.inf])
def test_values_json_cannot_hold_are_refused_with_an_explanation(odd: object) -> None:
    details = example(SCHEMAS["grant.created"][1])["details"]
    subject = {"grant": "g", "project": "p", "dataset": "d"}
    REGISTRY.validate("grant.created", subject, details)
    with pytest.raises(AuditSchemaError, match=r"grant\.created event"):
        REGISTRY.validate("grant.created", {**subject, "grant": odd}, details)
    with pytest.raises(AuditSchemaError, match=r"grant\.created event"):
        REGISTRY.validate("grant.created", subject, {**details, "epsilon_total": odd})
