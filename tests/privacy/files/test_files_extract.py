"""Taking files apart for the checks (privacy.files.extract): segments, locations and refusals."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from privacy.files import (
    BombDetected,
    Extracted,
    FileKind,
    ForbiddenFileType,
    Limits,
    UnreadableFile,
    extract,
    sniff,
)

ImageBuilder = Callable[..., bytes]
PHONE = "Patient Kim 010-1234-5678"


def run(name: str, data: bytes, limits: Limits = Limits()) -> Extracted:
    return extract(name, data, sniff(name, data, limits=limits), limits=limits)


def texts(extracted: Extracted) -> dict[str, str]:
    return {segment.location: segment.text for segment in extracted.texts}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def chunk(chunk_type: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + chunk_type + body + struct.pack(">I", zlib.crc32(chunk_type + body))


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` grayscale pixels, with a one-row IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# --- text and markdown ---------------------------------------------------------------------------


def test_text_is_one_segment_for_the_whole_file() -> None:
    extracted = run("notes.txt", "line one\n둘째 줄\n".encode())
    assert texts(extracted) == {"": "line one\n둘째 줄\n"}
    assert extracted.tables == [] and extracted.images == [] and extracted.notes == []


def test_base64_encoded_text_is_decoded_into_its_own_segment() -> None:
    extracted = run("notes.txt", f"token: {b64(PHONE)}\n".encode())
    assert texts(extracted)["(base64-decoded)"] == PHONE


def test_url_safe_unpadded_and_wrapped_base64_is_decoded() -> None:
    long_text = PHONE + " and a long explanation " * 5
    encoded = base64.encodebytes(long_text.encode()).decode()  # wrapped at 76 characters
    assert encoded.count("\n") > 1
    extracted = run(
        "notes.txt", f"{encoded}\n{base64.urlsafe_b64encode(b'Kim?>>>~~~~~~~~~~~~~~').decode()}".encode()
    )
    decoded = [segment.text for segment in extracted.texts if segment.location == "(base64-decoded)"]
    assert decoded == [long_text, "Kim?>>>~~~~~~~~~~~~~~"]


def test_binary_base64_and_long_identifiers_are_not_text() -> None:
    sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    extracted = run(
        "notes.txt",
        f"{sha}\n{base64.b64encode(bytes(range(64))).decode()}\nAVeryLongIdentifierNameForAColumn\n".encode(),
    )
    assert list(texts(extracted)) == [""]


def test_base64_is_unwrapped_two_levels_deep_and_refused_beyond() -> None:
    extracted = run("notes.txt", b64("inner: " + b64(PHONE)).encode())
    assert texts(extracted)["(base64-decoded) (base64-decoded)"] == PHONE
    with pytest.raises(UnreadableFile, match="nested more than 2 levels"):
        run("notes.txt", b64(b64(b64(PHONE))).encode())


def test_markdown_data_uri_images_become_image_segments(png: ImageBuilder) -> None:
    image = png()
    document = f"# Figure\n\n![km](data:image/png;base64,{base64.b64encode(image).decode()})\n"
    extracted = run("report.md", document.encode())
    assert texts(extracted)[""].startswith("# Figure")
    [segment] = extracted.images
    assert (segment.location, segment.data, segment.kind) == ("data URI 1 (image/png)", image, FileKind.PNG)


def test_data_uris_are_numbered_in_order_and_end_where_the_payload_ends(
    png: ImageBuilder, jpeg: ImageBuilder
) -> None:
    first, second = base64.b64encode(png()).decode(), base64.b64encode(jpeg()).decode()
    document = f"data:image/png;base64,{first}\nnext line\n\n<img src='data:image/jpeg;base64,{second}'>"
    extracted = run("report.md", document.encode())
    assert [(image.location, image.kind) for image in extracted.images] == [
        ("data URI 1 (image/png)", FileKind.PNG),
        ("data URI 2 (image/jpeg)", FileKind.JPEG),
    ]
    html = f'<img src="data:image/png;base64,{first}"><img src="data:image/jpeg;base64,{second}">'
    assert [image.location for image in run("report.html", html.encode()).images] == [
        "data URI 1 (image/png)",
        "data URI 2 (image/jpeg)",
    ]


def test_markdown_data_uri_of_another_binary_type_is_refused() -> None:
    gif = base64.b64encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00;").decode()
    with pytest.raises(ForbiddenFileType, match="binary image/gif"):
        run("report.md", f"![x](data:image/gif;base64,{gif})".encode())


def test_a_data_uri_declared_png_that_is_not_one_is_refused() -> None:
    with pytest.raises(ForbiddenFileType, match="not a PNG image"):
        run("report.md", f"![x](data:image/png;base64,{b64('just text, no image here')})".encode())


# --- CSV and TSV -----------------------------------------------------------------------------------


def test_csv_becomes_one_all_string_table_exactly_as_written() -> None:
    data = "\ufeffid,stage,n,mean\n007,I,12,1.50\n008,II, 5 ,2e3\n009,III,,NA\n".encode()
    extracted = run("counts.csv", data)
    assert extracted.texts == []
    [segment] = extracted.tables
    assert segment.location == "table"
    assert segment.table.schema == pl.Schema(dict.fromkeys(["id", "stage", "n", "mean"], pl.String))
    assert segment.table.rows() == [
        ("007", "I", "12", "1.50"),
        ("008", "II", " 5 ", "2e3"),
        ("009", "III", "", "NA"),
    ]


def test_tsv_and_quoted_fields() -> None:
    extracted = run("counts.tsv", b'stage\tnote\nI\t"tab\there"\nII\t"line\nbreak"\n')
    assert extracted.tables[0].table.rows() == [("I", "tab\there"), ("II", "line\nbreak")]


def test_csv_comment_preamble_is_kept_as_text_and_noted() -> None:
    extracted = run("counts.csv", b"# cohort: 2019-2023\n# contact 010-1234-5678\nstage,n\nI,12\n")
    assert texts(extracted) == {"preamble (lines 1-2)": "# cohort: 2019-2023\n# contact 010-1234-5678\n"}
    assert extracted.tables[0].table.rows() == [("I", "12")]
    assert any("before the header" in note for note in extracted.notes)


def test_csv_cells_with_base64_text_are_decoded_with_their_position() -> None:
    extracted = run("counts.csv", f"stage,note\nI,ok\nII,{b64(PHONE)}\n".encode())
    assert texts(extracted) == {"table row 2, column 'note' (base64-decoded)": PHONE}


def test_csv_repeated_headers_and_formulas_are_noted() -> None:
    extracted = run("counts.csv", b'n,n\n=HYPERLINK("http://x"),1\n')
    assert extracted.tables[0].table.columns == ["n", "n_2"]
    assert any("suffixes" in note for note in extracted.notes)
    assert any("formulas" in note for note in extracted.notes)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"stage,n\nI,12\nII\n", "line 3 has 1 fields but the header has 2"),
        (b"stage,n\nI,12,extra\n", "line 2 has 3 fields"),
        (b'stage,n\n"I"x,12\n', "malformed CSV"),
        (b'stage,n\n"I,12\n', "malformed CSV"),
    ],
)
def test_ragged_or_malformed_csv_is_unreadable(data: bytes, message: str) -> None:
    with pytest.raises(UnreadableFile, match=message):
        run("counts.csv", data)


def test_csv_beyond_the_cell_limit_is_a_bomb() -> None:
    data = b"a,b\n" + b"1,2\n" * 100
    assert run("counts.csv", data, Limits(max_cells=200)).tables[0].table.height == 100
    with pytest.raises(BombDetected, match="199 cells"):
        run("counts.csv", data, Limits(max_cells=199))


# --- JSON ------------------------------------------------------------------------------------------


def test_json_strings_and_numbers_are_located_by_json_pointer() -> None:
    document = """{"results": [{"name": "Kim", "n": 1.50, "ci": [0.1, 2.00]}], "tags": ["x", 3, null],
                   "a/b": {"~": "tilde"}, "rows": [["a", 1], {"b": "c"}]}"""
    extracted = run("model.json", document.encode())
    assert texts(extracted) == {
        "/results/0/name": "Kim",
        "/results/0/n": "1.50",
        "/results/0/ci": "0.1\n2.00",
        "/tags": "x\n3\nnull",
        "/a~1b/~0": "tilde",
        "/rows/0": "a\n1",
        "/rows/1/b": "c",
        "object keys": "results\ntags\na/b\nrows\nname\nn\nci\n~\nb",
    }
    assert extracted.tables == []


def test_lists_of_records_are_tables() -> None:
    document = '[{"stage": "I", "n": 12, "mean": 1.50}, {"stage": "II", "n": 7, "ok": true, "mean": null}]'
    extracted = run("counts.json", document.encode())
    [segment] = extracted.tables
    assert segment.location == "table"
    assert segment.table.columns == ["stage", "n", "mean", "ok"]
    assert segment.table.rows() == [("I", "12", "1.50", None), ("II", "7", None, "true")]
    assert texts(extracted) == {"object keys": "stage\nn\nmean\nok"}
    nested = run("model.json", b'{"model": "cox", "results": [{"term": "age", "hr": "1.02"}]}')
    assert [(table.location, table.table.rows()) for table in nested.tables] == [
        ("/results", [("age", "1.02")])
    ]
    assert texts(nested)["/model"] == "cox"


def test_an_export_of_many_records_stays_within_the_segment_limit() -> None:
    document = json.dumps([{"id": i, "name": f"name {i}", "v": i / 2} for i in range(60_000)])
    extracted = run("export.json", document.encode())
    assert extracted.tables[0].table.shape == (60_000, 3)
    assert len(extracted.texts) == 1


def test_json_nested_1000_deep_is_a_bomb() -> None:
    with pytest.raises(BombDetected, match="nested deeper than 64 levels"):
        run("deep.json", b"[" * 1000 + b"]" * 1000)
    with pytest.raises(BombDetected, match="deeper than 64"):
        run("deep.json", b'{"a":' * 65 + b"1" + b"}" * 65)
    assert texts(run("deep.json", b'{"a":' * 64 + b'"x"' + b"}" * 64))["/a" * 64] == "x"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"name": "Kim", "name": "Lee"}', "same key more than once"),
        (b'{"name": "Kim",}', "not valid JSON"),
        (b"", "not valid JSON"),
    ],
)
def test_json_that_hides_values_or_does_not_parse_is_unreadable(data: bytes, message: str) -> None:
    with pytest.raises(UnreadableFile, match=message):
        run("model.json", data)


# --- Parquet ---------------------------------------------------------------------------------------


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def test_parquet_becomes_an_all_string_table_with_its_metadata_as_text() -> None:
    table = pa.table({"stage": ["I", "II"], "n": [12, 7], "mean": [1.5, None]})
    table = table.replace_schema_metadata({"note": "made by Kim"})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    extracted = run("counts.parquet", buffer.getvalue())
    [segment] = extracted.tables
    assert segment.table.schema == pl.Schema(dict.fromkeys(["stage", "n", "mean"], pl.String))
    assert segment.table.rows() == [("I", "12", "1.5"), ("II", "7", None)]
    assert texts(extracted)["metadata 'note'"] == "made by Kim"


def test_parquet_beyond_the_cell_limit_is_refused_before_reading_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = parquet_bytes(pl.DataFrame({"id": range(10_000), "n": range(10_000)}))

    def no_read(*_: object, **__: object) -> None:
        raise AssertionError("data pages must not be read")

    monkeypatch.setattr(pq.ParquetFile, "read", no_read)
    with pytest.raises(BombDetected, match="declares 20,000 cells"):
        run("ids.parquet", data, Limits(max_cells=1_000))


def test_parquet_that_expands_beyond_the_decoded_limit_is_a_bomb() -> None:
    plain = io.BytesIO()
    pq.write_table(pa.table({"x": ["a" * 1000] * 200}), plain, use_dictionary=False, compression="zstd")
    with pytest.raises(BombDetected, match="expands to 2"):
        run("wide.parquet", plain.getvalue(), Limits(max_decoded_bytes=100_000))
    # One dictionary entry repeated: the footer's uncompressed size is small, the expansion is measured
    # on the dictionary-encoded column before any value is materialised.
    repeated = io.BytesIO()
    pq.write_table(pa.table({"x": ["a" * 100_000] * 1_000}), repeated, compression="zstd")
    assert len(repeated.getvalue()) < 10_000
    with pytest.raises(BombDetected, match="expands to 100,00"):
        run("wide.parquet", repeated.getvalue(), Limits(max_decoded_bytes=1_000_000))


def test_parquet_with_prefix_encoding_is_refused() -> None:
    buffer = io.BytesIO()
    pq.write_table(
        pa.table({"x": ["a" * 1000] * 100}),
        buffer,
        use_dictionary=False,
        column_encoding={"x": "DELTA_BYTE_ARRAY"},
    )
    with pytest.raises(BombDetected, match="DELTA_BYTE_ARRAY"):
        run("wide.parquet", buffer.getvalue())


def test_parquet_with_nested_columns_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match="nested column"):
        run("nested.parquet", parquet_bytes(pl.DataFrame({"ids": [[1, 2], [3]]})))


def test_corrupt_parquet_is_unreadable() -> None:
    data = parquet_bytes(pl.DataFrame({"n": [1, 2]}))
    with pytest.raises(UnreadableFile, match="Parquet"):
        run("counts.parquet", data[:4] + b"\x00" * (len(data) - 8) + data[-4:])


# --- HTML ------------------------------------------------------------------------------------------

PANDAS_HTML = """<table border="1" class="dataframe">
  <thead>
    <tr style="text-align: right;"><th></th><th></th><th>n</th><th>mean</th></tr>
    <tr><th>site</th><th>stage</th><th></th><th></th></tr>
  </thead>
  <tbody>
    <tr><th rowspan="2" valign="top">Seoul</th><th>I</th><td>12</td><td>1.50</td></tr>
    <tr><th>II</th><td>7</td><td>2.25</td></tr>
    <tr><th>Busan</th><th>I</th><td>3</td><td>0.90</td></tr>
  </tbody>
</table>"""


def test_html_text_attributes_comments_code_and_tables(png: ImageBuilder) -> None:
    image = base64.b64encode(png()).decode()
    html = f"""<!doctype html><html><head><title>Report</title>
    <script>var patient = "010-1111-2222";</script><style>p {{ color: red }}</style></head>
    <body><h1>Survival</h1><p>Treated by <b>Dr Kim</b> &amp; team.</p>
    <img alt="photo of Kim" src="data:image/png;base64,{image}">
    <a href="https://example.org" title="tip">x</a>
    <!-- reviewer: remove 900101-1234568 -->{PANDAS_HTML}</body></html>"""
    extracted = run("report.html", html.encode())
    found = texts(extracted)
    assert "Treated by Dr Kim & team." in found[""].splitlines()
    assert "Report" in found[""]
    assert "010-1111-2222" not in found[""]
    assert found["script and style code"].splitlines()[:2] == [
        'var patient = "010-1111-2222";',
        "p { color: red }",
    ]
    assert found["attributes"] == "photo of Kim\nhttps://example.org\ntip"
    assert found["comments"] == " reviewer: remove 900101-1234568 "
    [table] = extracted.tables
    assert table.location == "table 1"
    assert table.table.columns == ["site", "stage", "n", "mean"]
    assert table.table.rows() == [
        ("Seoul", "I", "12", "1.50"),
        ("Seoul", "II", "7", "2.25"),
        ("Busan", "I", "3", "0.90"),
    ]
    [picture] = extracted.images
    assert picture.location == "data URI 1 (image/png)"
    assert (
        "HTML contains <script> elements; not executed, not rendered (their code is scanned)"
        in extracted.notes
    )
    assert any("external resources" in note for note in extracted.notes)


def test_html_tables_without_header_and_with_huge_spans_are_bounded() -> None:
    extracted = run("t.html", b"<table><tr><td>a<td>b<tr><td>c</table>")
    assert extracted.tables[0].table.columns == ["column 1", "column 2"]
    assert extracted.tables[0].table.rows() == [("a", "b"), ("c", None)]
    bomb = (
        b"<table>" + b'<tr><td colspan="1000" rowspan="65534">x</td></tr>' + b"<tr></tr>" * 200 + b"</table>"
    )
    with pytest.raises(BombDetected, match="more than 100,000 cells"):
        run("t.html", bomb, Limits(max_cells=100_000))


# --- SVG -------------------------------------------------------------------------------------------


def test_svg_text_title_description_and_comments(png: ImageBuilder) -> None:
    image = base64.b64encode(png()).decode()
    svg = f"""<?xml version="1.0" encoding="utf-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">
  <title>Kaplan-Meier</title><desc>Made for Dr Kim</desc>
  <!-- Patient 010-1234-5678 -->
  <style>text {{ font: 10px sans-serif }}</style>
  <g><text x="1" y="2">Patient <tspan>010</tspan>-<tspan>1234</tspan>-5678</text></g>
  <image xlink:href="data:image/png;base64,{image}" width="1" height="1"/>
</svg>"""
    extracted = run("figure.svg", svg.encode())
    found = texts(extracted)
    assert found[""].splitlines() == ["Kaplan-Meier", "Made for Dr Kim", "Patient 010-1234-5678"]
    assert found["comments"] == " Patient 010-1234-5678 "
    assert found["script and style code"] == "text { font: 10px sans-serif }"
    assert [image.location for image in extracted.images] == ["data URI 1 (image/png)"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE svg [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&lol3;</text></svg>"""


@pytest.mark.parametrize(
    ("svg", "message"),
    [
        (BILLION_LAUGHS, "DOCTYPE or ENTITY"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "<script>"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><h:script xmlns:h="http://www.w3.org/1999/xhtml"/></svg>',
            "<script>",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(1)"></svg>', "event handler"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><a href="javascript:alert(1)">x</a></svg>', "javascript:"),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><set attributeName="href" to=" JavaScript:x()"/></svg>',
            "javascript:",
        ),
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject>'
            b'<iframe xmlns="http://www.w3.org/1999/xhtml" src="https://example.org"/></foreignObject></svg>',
            "<iframe>",
        ),
    ],
)
def test_svg_that_could_run_or_expand_is_refused(svg: bytes, message: str) -> None:
    with pytest.raises(ForbiddenFileType, match=message):
        run("figure.svg", svg)


@pytest.mark.parametrize(
    "svg",
    [b'<svg xmlns="http://www.w3.org/2000/svg"><text>unclosed</svg>', b"<html><svg></svg></html>"],
)
def test_malformed_svg_is_unreadable(svg: bytes) -> None:
    with pytest.raises(UnreadableFile):
        run("figure.svg", svg)


# --- PNG and JPEG ----------------------------------------------------------------------------------


def test_png_and_jpeg_are_one_image_segment(png: ImageBuilder, jpeg: ImageBuilder) -> None:
    for name, data, kind in [("f.png", png(), FileKind.PNG), ("f.jpg", jpeg(), FileKind.JPEG)]:
        extracted = run(name, data)
        assert [(image.location, image.data, image.kind) for image in extracted.images] == [("", data, kind)]
        assert extracted.texts == []


def test_image_text_metadata_is_extracted(png: ImageBuilder, jpeg: ImageBuilder) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Dr Kim")
    info.add_text("Comment", PHONE, zip=True)
    info.add_itxt("Title", "환자 목록")
    found = texts(run("f.png", png(pnginfo=info)))
    assert found == {
        "metadata 'Author'": "Dr Kim",
        "metadata 'Comment'": PHONE,
        "metadata 'Title'": "환자 목록",
    }
    exif = Image.Exif()
    exif[0x010E] = "Patient Kim"  # ImageDescription
    found = texts(run("f.jpg", jpeg(comment=b"scan of 010-1234-5678", exif=exif.tobytes())))
    assert found["metadata comment"] == "scan of 010-1234-5678"
    assert found["metadata EXIF tag 0x010e"] == "Patient Kim"


def test_a_png_declaring_100000_by_100000_pixels_is_a_bomb_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_decoding(*_: object, **__: object) -> None:
        raise AssertionError("the image must not reach the decoder")

    monkeypatch.setattr(Image, "open", no_decoding)
    with pytest.raises(BombDetected, match="100000x100000") as refused:
        run("figure.png", png_declaring(100_000, 100_000))
    assert refused.value.rule == "bomb"


@pytest.mark.parametrize(("width", "height"), [(20_000, 10_000), (10_000, 10_000)])
def test_pillows_own_bomb_error_and_warning_are_bombs(width: int, height: int) -> None:
    # With our limit raised, Pillow's check fires: an error above 2 x 89M pixels, a warning above 89M.
    with pytest.raises(BombDetected, match="decompression bomb"):
        run("figure.png", png_declaring(width, height), Limits(max_image_pixels=10**12))


def test_truncated_and_corrupt_images_are_unreadable(png: ImageBuilder, jpeg: ImageBuilder) -> None:
    data = png((200, 100))
    with pytest.raises(UnreadableFile, match="truncated"):
        run("figure.png", data[: len(data) // 2])
    body_start = data.index(b"IDAT") + 8
    corrupt = data[:body_start] + bytes([data[body_start] ^ 0xFF]) + data[body_start + 1 :]
    with pytest.raises(UnreadableFile, match="corrupt"):
        run("figure.png", corrupt)
    photo = jpeg((200, 100))
    with pytest.raises(UnreadableFile, match="truncated"):
        run("figure.jpg", photo[: len(photo) // 2])


def test_data_hidden_after_the_image_end_is_refused(png: ImageBuilder, jpeg: ImageBuilder) -> None:
    hidden = b"PK\x03\x04 a zip with patients.csv"
    with pytest.raises(ForbiddenFileType, match="after its end"):
        run("figure.png", png() + hidden)
    with pytest.raises(ForbiddenFileType, match="after its end"):
        run("figure.jpg", jpeg() + hidden)


def test_unknown_png_chunks_and_animation_are_refused(png: ImageBuilder) -> None:
    data = png()
    end = data.rindex(b"IEND") - 4
    with pytest.raises(ForbiddenFileType, match="unknown chunk 'prVt'"):
        run("figure.png", data[:end] + chunk(b"prVt", b"id,name\n1,Kim\n") + data[end:])
    frames = [Image.new("RGB", (32, 16), colour) for colour in ("white", "black")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:])
    with pytest.raises(ForbiddenFileType, match="animated"):
        run("figure.png", buffer.getvalue())


# --- limits ----------------------------------------------------------------------------------------


def test_segment_and_decoded_size_limits_are_bombs() -> None:
    document = json.dumps({f"k{i}": f"value {i}" for i in range(20)}).encode()
    assert len(run("many.json", document).texts) == 21
    with pytest.raises(BombDetected, match="more than 10 parts"):
        run("many.json", document, Limits(max_segments=10))
    with pytest.raises(BombDetected, match="more than 100 bytes"):
        run("notes.txt", b"x" * 101, Limits(max_decoded_bytes=100))


def test_extract_refuses_a_kind_that_the_content_does_not_have(png: ImageBuilder) -> None:
    with pytest.raises(ForbiddenFileType, match="declared as csv"):
        extract("figure.png", png(), FileKind.CSV)
