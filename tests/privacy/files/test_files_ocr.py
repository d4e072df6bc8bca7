"""Text in images read by Tesseract (privacy.files.ocr_text)."""

from __future__ import annotations

import io
import re

import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFont

from privacy.files import OcrUnavailable, UnreadableFile, ocr_available, ocr_text


def test_tesseract_is_installed() -> None:
    """`make test` installs tesseract-ocr (scripts/system-deps.sh); OCR tests never silently skip."""
    assert ocr_available()


def rendered(text: str, *, size: int, image_format: str = "PNG", transparent: bool = False) -> bytes:
    """``text`` drawn in black with Pillow's scalable default font, as matplotlib draws figure labels."""
    mode, background = ("RGBA", (255, 255, 255, 0)) if transparent else ("RGB", "white")
    image = Image.new(mode, (24 * size, 3 * size), background)
    ImageDraw.Draw(image).text((size, size), text, fill="black", font=ImageFont.load_default(size=size))
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.mark.parametrize(
    ("size", "image_format", "transparent"),
    [(24, "PNG", False), (11, "PNG", False), (14, "PNG", True), (16, "JPEG", False)],
    ids=["large", "small figure label (upscaled)", "transparent background", "jpeg"],
)
def test_rendered_text_is_read_back(size: int, image_format: str, transparent: bool) -> None:
    text = ocr_text(
        rendered("Patient 010-1234-5678", size=size, image_format=image_format, transparent=transparent)
    )
    assert "Patient" in text
    assert "01012345678" in digits(text)


def test_a_corrupt_image_is_unreadable() -> None:
    data = rendered("Patient 010-1234-5678", size=16)
    with pytest.raises(UnreadableFile):
        ocr_text(data[: len(data) // 2])
    with pytest.raises(UnreadableFile):
        ocr_text(b"not an image at all")


def test_without_tesseract_ocr_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert not ocr_available()
    with pytest.raises(OcrUnavailable) as refused:
        ocr_text(rendered("Patient", size=16))
    assert refused.value.rule == "ocr_unavailable"
