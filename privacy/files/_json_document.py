"""JSON documents as text segments located by JSON pointer, and lists of records as tables."""

from __future__ import annotations

from typing import Any

from privacy.files._collector import Collector
from privacy.files._json import load_json
from privacy.files._tables import frame_from_rows


def add_json(collector: Collector, text: str) -> None:
    """Add a JSON document. Numbers keep their literal text throughout.

    * an array of flat objects (records, as ``to_json(orient="records")`` writes) → a table at the
      array's pointer (``table`` for the whole document), columns = keys in order of appearance;
    * each string or number member of any other object → a segment at its JSON pointer
      (``/results/0/name``);
    * an array of scalars only → one segment at the array's pointer, one element per line;
    * scalars in other arrays → a segment each (``/rows/2``);
    * all distinct object keys → one segment ``object keys``, one key per line.

    Records become a table rather than a segment per value: the checks scan tables cell by cell
    (``row 3, column 'name'``), disclosure control needs them as tables, and a segment per value would
    turn an ordinary export of 50,000 records into more segments than ``max_segments``.
    """
    document = load_json(text, max_depth=collector.limits.max_json_depth, numbers_as_text=True)
    keys: dict[str, None] = {}
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        pointer, node = stack.pop()
        containers: list[tuple[str, Any]] = []
        if isinstance(node, dict):
            keys.update(dict.fromkeys(node))
            for key, value in node.items():
                child = f"{pointer}/{_escape(key)}"
                if isinstance(value, dict | list):
                    containers.append((child, value))
                elif isinstance(value, str):
                    collector.text(child, value)
        elif _is_record_list(node):
            header = list(dict.fromkeys(key for record in node for key in record))
            keys.update(dict.fromkeys(header))
            rows = [[_scalar(record.get(key)) for key in header] for record in node]
            frame, _ = frame_from_rows(header, rows)  # keys of a JSON object are unique
            collector.table(pointer or "table", frame)
        elif isinstance(node, list):
            if not any(isinstance(value, dict | list) for value in node):
                collector.text(pointer, "\n".join(_literal(value) for value in node))
            else:
                for index, value in enumerate(node):
                    child = f"{pointer}/{index}"
                    if isinstance(value, dict | list):
                        containers.append((child, value))
                    elif isinstance(value, str):
                        collector.text(child, value)
        elif isinstance(node, str):
            collector.text(pointer, node)
        stack.extend(reversed(containers))
    collector.text("object keys", "\n".join(keys))


def _escape(key: str) -> str:
    """A key as a JSON pointer reference token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _literal(value: Any) -> str:
    """A scalar as written: strings and numbers unchanged, ``true``, ``false``, ``null``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _scalar(value: Any) -> str | None:
    """A scalar as a table cell: as :func:`_literal`, but null stays missing."""
    return None if value is None else _literal(value)


def _is_record_list(document: Any) -> bool:
    return (
        isinstance(document, list)
        and bool(document)
        and all(
            isinstance(record, dict) and not any(isinstance(value, dict | list) for value in record.values())
            for record in document
        )
    )
