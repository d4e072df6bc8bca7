"""Resource limits applied while sniffing and extracting one file."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds for one file; exceeding any of them refuses the file.

    ``max_decoded_bytes`` bounds everything extraction produces (text, table cells, images, including
    payloads decoded from base64 or decompressed), so a small file cannot expand without bound.
    """

    #: Largest accepted file (OpenSAFELY's default output limit).
    max_file_bytes: int = 16 * 1024 * 1024
    #: Rows x columns of all tables of one file together.
    max_cells: int = 5_000_000
    #: Width x height of one image, checked from its header before any pixel is decoded.
    max_image_pixels: int = 40_000_000
    #: Nesting depth of JSON documents and notebooks.
    max_json_depth: int = 64
    #: Text, table and image segments of one file together.
    max_segments: int = 100_000
    #: Total size of everything extracted from one file.
    max_decoded_bytes: int = 64 * 1024 * 1024
