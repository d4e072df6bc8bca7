"""JSON parsing that refuses what could hide content or exhaust the parser."""

from __future__ import annotations

import json
from typing import Any

from privacy.files.errors import BombDetected, UnreadableFile


class JsonNumber(str):
    """A JSON number (or ``NaN``/``Infinity``) kept exactly as written: ``1.50`` stays ``"1.50"``."""

    __slots__ = ()


def load_json(text: str, *, max_depth: int, numbers_as_text: bool = False) -> Any:
    """Parse ``text`` as JSON, refusing duplicate keys and nesting deeper than ``max_depth``.

    Duplicate keys are refused (:class:`UnreadableFile`) because a parser keeps only one of the values
    while the others still leave with the file. Deep nesting is refused as :class:`BombDetected`. With
    ``numbers_as_text`` every number is a :class:`JsonNumber` holding its literal text.
    """
    number_hooks: dict[str, Any] = (
        {"parse_int": JsonNumber, "parse_float": JsonNumber, "parse_constant": JsonNumber}
        if numbers_as_text
        else {}
    )
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, **number_hooks)
    except RecursionError:
        raise BombDetected(f"JSON is nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as error:
        raise UnreadableFile(
            f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except ValueError as error:  # duplicate keys, integers beyond Python's digit limit
        raise UnreadableFile(f"not acceptable JSON: {error}") from None
    _check_depth(value, max_depth)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object has the same key more than once")
    return result


def _check_depth(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                raise BombDetected(f"JSON is nested deeper than {max_depth} levels")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
