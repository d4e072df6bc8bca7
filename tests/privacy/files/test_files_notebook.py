"""Jupyter notebooks taken apart cell by cell and output by output (privacy.files.extract)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from privacy.files import (
    Extracted,
    FileKind,
    ForbiddenFileType,
    UnreadableFile,
    extract,
    sniff,
)

ImageBuilder = Callable[..., bytes]
PHONE = "Patient Kim 010-1234-5678"
PANDAS_HTML = (
    '<div><table border="1" class="dataframe"><thead><tr style="text-align: right;">'
    "<th></th><th>stage</th><th>n</th></tr></thead><tbody>"
    "<tr><th>0</th><td>I</td><td>12</td></tr><tr><th>1</th><td>II</td><td>7</td></tr>"
    "</tbody></table></div>"
)
TRACEBACK = [
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m",
    "\x1b[0;31mKeyError\x1b[0m: '\x1b[0;32m900101\x1b[0m-1234568'",
]


def run(data: bytes) -> Extracted:
    kind = sniff("analysis.ipynb", data)
    assert kind is FileKind.NOTEBOOK
    return extract("analysis.ipynb", data, kind)


def texts(extracted: Extracted) -> dict[str, str]:
    return {segment.location: segment.text for segment in extracted.texts}


def notebook_bytes(*cells: Any, **metadata: Any) -> bytes:
    return nbformat.writes(new_notebook(cells=list(cells), metadata=metadata)).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_every_part_of_a_notebook_is_a_located_segment(png: ImageBuilder) -> None:
    figure, attachment = png((80, 40)), png((40, 20))
    markdown = new_markdown_cell("# Cohort\n\nSee ![km](attachment:km.png)")
    markdown.attachments = {"km.png": {"image/png": b64(attachment)}}
    code = new_code_cell(
        "patient_rrn_column = df['rrn']\nprint(len(df))",
        outputs=[
            new_output("stream", name="stdout", text="569 rows\n"),
            new_output("execute_result", data={"text/plain": b64(PHONE.encode())}, execution_count=1),
            new_output("display_data", data={"text/html": PANDAS_HTML, "image/png": b64(figure)}),
        ],
    )
    failing = new_code_cell("df.loc['900101-1234568']", outputs=[
        new_output("error", ename="KeyError", evalue="'900101-1234568'", traceback=TRACEBACK),
    ])  # fmt: skip
    extracted = run(
        notebook_bytes(markdown, code, failing, kernelspec={"name": "python3", "display_name": "Py"})
    )

    found = texts(extracted)
    assert found["cell 1 (markdown) source"] == "# Cohort\n\nSee ![km](attachment:km.png)"
    assert found["cell 1 (markdown) attachment names"] == "km.png"
    assert "patient_rrn_column" in found["cell 2 (code) source"]
    assert found["cell 2 output 1 (stdout)"] == "569 rows\n"
    assert found["cell 2 output 2 (text/plain) (base64-decoded)"] == PHONE
    assert found["cell 2 output 3 (text/html)"].splitlines() == ["stage n", "0 I 12", "1 II 7"]
    assert found["cell 3 output 1 (error)"].splitlines() == [
        "KeyError: '900101-1234568'",
        "---------------------------------------------------------------------------",
        "KeyError: '900101-1234568'",
    ]
    assert '"display_name": "Py"' in found["notebook metadata"]

    [table] = extracted.tables
    assert table.location == "cell 2 output 3 (text/html) table 1"
    assert table.table.columns == ["column 1", "stage", "n"]
    assert table.table.rows() == [("0", "I", "12"), ("1", "II", "7")]

    assert [(image.location, image.data, image.kind) for image in extracted.images] == [
        ("cell 1 (markdown) attachment 'km.png' (image/png)", attachment, FileKind.PNG),
        ("cell 2 output 3 (image/png)", figure, FileKind.PNG),
    ]
    assert any("terminal escape sequences" in note for note in extracted.notes)


def test_json_svg_and_other_text_outputs(png: ImageBuilder) -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><text>Kim</text></svg>'
    cell = new_code_cell(
        "show()",
        outputs=[
            new_output(
                "display_data",
                data={
                    "application/json": {"patients": ["Kim"]},
                    "image/svg+xml": svg,
                    "text/markdown": "**Kim**",
                    "application/vnd.example.report": b64(PHONE.encode()),
                },
                metadata={"note": "from Dr Kim"},
            )
        ],
    )
    found = texts(run(notebook_bytes(cell)))
    assert json.loads(found["cell 1 output 1 (application/json)"]) == {"patients": ["Kim"]}
    assert found["cell 1 output 1 (image/svg+xml)"] == svg
    assert found["cell 1 output 1 (text/markdown)"] == "**Kim**"
    assert found["cell 1 output 1 (application/vnd.example.report) (base64-decoded)"] == PHONE
    assert json.loads(found["cell 1 output 1 metadata"]) == {"note": "from Dr Kim"}


def test_binary_payloads_of_other_types_are_refused() -> None:
    pdf = b"%PDF-1.7\n" + bytes(range(256))
    cell = new_code_cell("x", outputs=[new_output("display_data", data={"application/pdf": b64(pdf)})])
    with pytest.raises(ForbiddenFileType, match=r"cell 1 output 1 \(application/pdf\).*binary"):
        run(notebook_bytes(cell))


def test_an_image_output_that_is_not_its_declared_type_is_refused(png: ImageBuilder) -> None:
    cell = new_code_cell("x", outputs=[new_output("display_data", data={"image/jpeg": b64(png())})])
    with pytest.raises(ForbiddenFileType, match="not a JPEG image"):
        run(notebook_bytes(cell))


def test_invalid_notebook_json_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match="not valid JSON"):
        run(b'{"cells": [], "nbformat": 4, "metadata": {}')


def test_a_notebook_that_breaks_the_schema_is_unreadable_without_quoting_content() -> None:
    document = json.loads(notebook_bytes(new_markdown_cell("hi")))
    document["cells"][0]["source"] = 9001011234568
    with pytest.raises(UnreadableFile, match="/cells/0/source") as refused:
        run(json.dumps(document).encode())
    assert "9001011234568" not in str(refused.value)


def test_other_nbformat_versions_are_unreadable() -> None:
    document = json.loads(notebook_bytes(new_markdown_cell("hi")))
    document["nbformat"] = 5
    with pytest.raises(UnreadableFile, match="only nbformat 4"):
        run(json.dumps(document).encode())


def test_missing_cell_ids_become_a_note_not_a_warning() -> None:
    document = json.loads(notebook_bytes(new_markdown_cell("hi")))
    del document["cells"][0]["id"]
    extracted = run(json.dumps(document).encode())
    assert texts(extracted)["cell 1 (markdown) source"] == "hi"
    assert "notebook: some cells have no id (nbformat 4.5 requires one)" in extracted.notes


def test_cell_sources_stored_as_lists_of_lines_are_joined() -> None:
    document = json.loads(notebook_bytes(new_code_cell("a = 1\nb = 2\n")))
    document["cells"][0]["source"] = ["a = 1\n", "b = 2\n"]
    assert texts(run(json.dumps(document).encode()))["cell 1 (code) source"] == "a = 1\nb = 2\n"
