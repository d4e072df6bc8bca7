"""Builders for the file-intake tests; every input is made in memory by the test that uses it.

Fixtures:

* ``png`` — ``png(size=(64, 32), text=None, **save_options) -> bytes``: a real PNG from Pillow,
  optionally with ``text`` drawn in black on white (large default font, legible to OCR).
* ``jpeg`` — the same as a JPEG.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from PIL import Image, ImageDraw, ImageFont

ImageBuilder = Callable[..., bytes]


def _image(
    image_format: str, size: tuple[int, int] = (64, 32), text: str | None = None, **options: Any
) -> bytes:
    image = Image.new("RGB", size, "white")
    if text is not None:
        ImageDraw.Draw(image).text((10, 10), text, fill="black", font=ImageFont.load_default(size=18))
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


@pytest.fixture
def png() -> ImageBuilder:
    return lambda *args, **kwargs: _image("PNG", *args, **kwargs)


@pytest.fixture
def jpeg() -> ImageBuilder:
    return lambda *args, **kwargs: _image("JPEG", *args, **kwargs)
