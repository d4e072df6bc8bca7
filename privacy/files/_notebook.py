"""Jupyter notebooks: every cell source, output, attachment and metadata, located by cell and output.

The notebook is parsed once with the depth-bounded JSON parser and checked against the nbformat 4
schema with ``nbformat.validate``. ``nbformat.reads`` is not used: it logs schema errors together with
the offending content (output text would reach the application log) and drops "transient" fields that
still leave with the file.
"""

from __future__ import annotations

import copy
import json
import re
import warnings
from typing import Any, Final

from privacy.files._base64 import MIN_RUN, decode_base64_payload
from privacy.files._collector import Collector
from privacy.files._embedded import IMAGE_TYPES, add_data_uris, add_payload, is_text_type
from privacy.files._json import load_json
from privacy.files._markup import add_html
from privacy.files.errors import UnreadableFile

# Terminal colour and cursor sequences (CSI) and window titles (OSC) in streams and tracebacks: they can
# split an identifier in the text without changing what a terminal shows.
_ANSI: Final = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_BASE64_PAYLOAD: Final = re.compile(r"[A-Za-z0-9+/=\s]+")
_WARNINGS: Final = {
    "MissingIDFieldWarning": "some cells have no id (nbformat 4.5 requires one)",
    "DuplicateCellId": "some cell ids are repeated",
}


def add_notebook(collector: Collector, text: str) -> None:
    """Add a notebook: segments ``cell 3 (markdown) source``, ``cell 5 output 1 (text/html)``,
    ``cell 2 (markdown) attachment 'a.png' (image/png)``, ``cell 4 metadata``, ``notebook metadata``.

    HTML outputs also yield their tables (pandas ``_repr_html_``), PNG/JPEG outputs and attachments
    images, and base64 payloads of other types text when they decode to UTF-8; binary payloads of other
    types raise :class:`ForbiddenFileType`. A notebook that is not valid nbformat 4 raises
    :class:`UnreadableFile`.
    """
    notebook = load_json(text, max_depth=collector.limits.max_json_depth)
    _validate(collector, notebook)
    _add_json(collector, "notebook metadata", notebook.get("metadata"))
    for number, cell in enumerate(notebook["cells"], start=1):
        where = f"cell {number} ({cell['cell_type']})"
        source = _joined(cell["source"])
        collector.text(f"{where} source", source)
        if cell["cell_type"] == "markdown":
            add_data_uris(collector, f"{where} source", [source])
        _add_json(collector, f"{where} metadata", cell.get("metadata"))
        attachments: dict[str, dict[str, Any]] = cell.get("attachments") or {}
        collector.text(f"{where} attachment names", "\n".join(attachments))
        for name, bundle in attachments.items():
            for mime, value in bundle.items():
                _add_data(collector, f"{where} attachment {name!r} ({mime})", mime, value)
        for output_number, output in enumerate(cell.get("outputs", []), start=1):
            _add_output(collector, f"cell {number} output {output_number}", output)


def _validate(collector: Collector, notebook: dict[str, Any]) -> None:
    # Imported on first use: nbformat pulls in jsonschema, whose import takes seconds, and the API
    # process (which imports this package for file-name checks) never parses notebooks itself.
    import nbformat

    if notebook.get("nbformat") != 4:
        raise UnreadableFile("only nbformat 4 notebooks are accepted; save it with a current Jupyter")
    # validate() repairs missing and repeated cell ids with a warning; the repair is applied to a copy.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            nbformat.validate(copy.deepcopy(notebook))
        except nbformat.ValidationError as error:
            path = "/".join(str(part) for part in error.absolute_path)
            raise UnreadableFile(
                f"the notebook does not follow the nbformat 4 schema ({error.validator} check failed at "
                f"/{path})"
            ) from None
        except (AttributeError, ImportError, KeyError, TypeError) as error:
            raise UnreadableFile(f"the notebook cannot be validated: {type(error).__name__}") from None
    for warning in caught:
        collector.note(f"notebook: {_WARNINGS.get(warning.category.__name__, str(warning.message))}")


def _add_output(collector: Collector, where: str, output: dict[str, Any]) -> None:
    output_type = output["output_type"]
    if output_type == "stream":
        collector.text(f"{where} ({output['name']})", _plain(collector, _joined(output["text"])))
    elif output_type == "error":
        lines = [f"{output['ename']}: {output['evalue']}", *output["traceback"]]
        collector.text(f"{where} (error)", _plain(collector, "\n".join(lines)))
    else:
        for mime, value in output["data"].items():
            _add_data(collector, f"{where} ({mime})", mime, value)
    _add_json(collector, f"{where} metadata", output.get("metadata"))


def _add_data(collector: Collector, where: str, mime: str, value: Any) -> None:
    """One entry of a MIME bundle (output data or attachment)."""
    if not isinstance(value, str | list) or mime.endswith("json"):
        _add_json(collector, where, value)
        return
    content = _joined(value)
    if mime == "text/html":
        add_html(collector, where, content)
    elif mime in IMAGE_TYPES:
        try:
            payload = decode_base64_payload(content)
        except ValueError as error:
            raise UnreadableFile(f"{where} is not valid base64: {error}") from None
        add_payload(collector, where, mime, payload)
    elif is_text_type(mime):
        collector.text(where, content)
    else:
        # Another type: base64 is decoded (then scanned if text, refused if binary), the rest is text.
        decoded = _base64_or_none(content)
        if decoded is None:
            collector.text(where, content)
        else:
            add_payload(collector, f"{where} (base64-decoded)", mime, decoded)


def _base64_or_none(content: str) -> bytes | None:
    """The bytes ``content`` encodes if it is one base64 payload of at least 24 characters."""
    if len(content.strip()) < MIN_RUN or not _BASE64_PAYLOAD.fullmatch(content):
        return None
    try:
        return decode_base64_payload(content)
    except ValueError:
        return None


def _add_json(collector: Collector, where: str, value: Any) -> None:
    if value:
        collector.text(where, json.dumps(value, ensure_ascii=False, indent=1))


def _joined(value: str | list[str]) -> str:
    """A notebook multiline string (a string, or a list of lines) as one string."""
    return value if isinstance(value, str) else "".join(value)


def _plain(collector: Collector, text: str) -> str:
    plain = _ANSI.sub("", text)
    if plain != text:
        collector.note("terminal escape sequences in outputs were removed before checking")
    return plain
