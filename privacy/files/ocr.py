"""Text in images (figures, screenshots) read with Tesseract, for the PII scanner."""

from __future__ import annotations

import io
import math
import shutil
from typing import Final

import pytesseract
from PIL import Image, ImageOps

from privacy.files._images import pillow_errors
from privacy.files.errors import OcrUnavailable, UnreadableFile

#: Upscaled images stay below this many pixels (Tesseract's memory and time grow with it).
MAX_OCR_PIXELS: Final = 40_000_000
# Tesseract reads glyphs of about 20-30 px best; figure text is often 10-14 px, so small images are
# enlarged (3x up to 1000 px on the long side, 2x up to 2000 px).
_UPSCALE: Final = ((1000, 3), (2000, 2))
# Sparse text: figures hold scattered labels rather than paragraphs.
_TESSERACT_CONFIG: Final = "--psm 11"


def ocr_available() -> bool:
    """Whether the Tesseract binary and its English model are installed."""
    if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
        return False
    return "eng" in _languages()


def ocr_text(data: bytes, *, timeout: float = 30) -> str:
    """The text Tesseract reads in the PNG or JPEG ``data`` (English, plus Korean when installed).

    The image is flattened onto white, converted to grayscale and enlarged when small, which is what
    makes rendered figure text legible to Tesseract. Raises :class:`OcrUnavailable` without Tesseract
    or its English model, :class:`UnreadableFile` for a corrupt image or when OCR takes longer than
    ``timeout`` seconds, :class:`BombDetected` for decompression bombs.
    """
    languages = _languages() if shutil.which(pytesseract.pytesseract.tesseract_cmd) else set()
    if "eng" not in languages:
        raise OcrUnavailable("OCR is unavailable: install tesseract-ocr with its English model (eng)")
    with pillow_errors("image"), Image.open(io.BytesIO(data), formats=["PNG", "JPEG"]) as image:
        image.load()
        prepared = _prepare(image)
    try:
        text: str = pytesseract.image_to_string(
            prepared,
            lang="eng+kor" if "kor" in languages else "eng",
            config=_TESSERACT_CONFIG,
            timeout=timeout,
        )
    except pytesseract.TesseractNotFoundError:
        raise OcrUnavailable("OCR is unavailable: the tesseract binary cannot be run") from None
    except pytesseract.TesseractError as error:
        raise UnreadableFile(f"OCR failed: {error.message}") from None
    except RuntimeError:  # pytesseract's timeout
        raise UnreadableFile(f"OCR did not finish within {timeout:g} seconds") from None
    return text


def _languages() -> set[str]:
    try:
        return set(pytesseract.get_languages())
    except (pytesseract.TesseractNotFoundError, pytesseract.TesseractError):
        return set()


def _prepare(image: Image.Image) -> Image.Image:
    """Grayscale on a white background (transparent figures would turn black), enlarged when small."""
    image = ImageOps.exif_transpose(image)
    if image.mode in {"RGBA", "LA", "PA"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, "white")
        image = Image.alpha_composite(background, rgba)
    gray = image.convert("L")
    longest = max(gray.size)
    scale = next((factor for bound, factor in _UPSCALE if longest <= bound), 1)
    scale = max(1, min(scale, math.isqrt(MAX_OCR_PIXELS // max(gray.width * gray.height, 1))))
    if scale > 1:
        gray = gray.resize((gray.width * scale, gray.height * scale), Image.Resampling.LANCZOS)
    # A white border: Tesseract misses glyphs that touch the image edge.
    return ImageOps.expand(gray, border=10, fill=255)
