"""Versioned JSON schemas of audit events, one file per type: ``<type>.v<N>.json``.

Each schema describes the object ``{"subject": {...}, "details": {...}}`` of one event type. The newest
version of a type is the one new events must satisfy; older versions stay for reading old logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jsonschema_rs

_NAME = re.compile(r"^(?P<type>[a-z_]+(?:\.[a-z_]+)+)\.v(?P<version>\d+)\.json$")


class AuditSchemaError(ValueError):
    """An event does not match its type's schema, or its type has none: the append is refused."""


def shipped_schemas() -> dict[str, tuple[int, dict[str, Any]]]:
    """Event type → (newest version, schema) of the schemas shipped in this package."""
    found: dict[str, tuple[int, dict[str, Any]]] = {}
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if not match:
            continue
        version = int(match["version"])
        if match["type"] not in found or found[match["type"]][0] < version:
            found[match["type"]] = (version, json.loads(entry.read_text(encoding="utf-8")))
    return found


class SchemaRegistry:
    """Validators for every known event type, loaded once.

    Appends sit on the hot path of every write, so events are checked with compiled validators
    (``jsonschema_rs``, Rust: under a microsecond per event, ten times faster than generated Python
    code), asserting ``format`` as the schemas intend; the full ``jsonschema`` library is imported
    only to explain a failure (its import is slow, and every CLI command and API start loads this
    registry). That the shipped schemas are valid Draft 2020-12 documents, and that both libraries
    accept and refuse the same events, is checked by the test suite.
    """

    def __init__(self, schemas: Mapping[str, tuple[int, dict[str, Any]]]) -> None:
        self._validators = dict(schemas)
        self._fast = {
            event_type: jsonschema_rs.validator_for(schema, validate_formats=True)
            for event_type, (_version, schema) in self._validators.items()
        }

    @classmethod
    def load(cls) -> SchemaRegistry:
        """Load the schemas shipped in this package (newest version per type)."""
        return cls(shipped_schemas())

    @property
    def types(self) -> list[str]:
        return sorted(self._validators)

    def version(self, event_type: str) -> int:
        return self._validators[event_type][0]

    def validate(self, event_type: str, subject: Mapping[str, Any], details: Mapping[str, Any]) -> None:
        """Raise :class:`AuditSchemaError` unless the event matches its type's newest schema."""
        fast = self._fast.get(event_type)
        if fast is None:
            raise AuditSchemaError(f"no audit schema for event type {event_type!r}")
        try:
            if fast.is_valid({"subject": subject, "details": details}):
                return
        except (TypeError, ValueError):  # a value JSON cannot represent: refused, explained below
            pass
        entry = self._validators[event_type]
        from jsonschema import Draft202012Validator

        event = {"subject": dict(subject), "details": dict(details)}
        error = next(iter(Draft202012Validator(entry[1]).iter_errors(event)), None)
        if error is not None:
            path = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise AuditSchemaError(f"{event_type} event invalid at {path}: {error.message}")
        raise AuditSchemaError(f"{event_type} event holds a value JSON cannot represent (NaN, ±∞, bytes…)")
