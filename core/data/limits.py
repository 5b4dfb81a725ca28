"""Size limits for untrusted uploads: files, rows, images and archives."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataLimits:
    """Caps applied while reading data; the defaults are generous, ``public()`` suits a shared demo.

    Args:
        max_bytes: largest data file read (or zip archive accepted).
        max_rows: most rows in a table.
        max_images: most images in an image dataset.
        max_image_pixels: largest width x height of one image (decompression bombs).
        max_zip_files: most entries in a zip archive.
        max_uncompressed_bytes: most bytes a zip may expand to.
    """

    max_bytes: int = 2 * 1024**3
    max_rows: int = 5_000_000
    max_images: int = 200_000
    max_image_pixels: int = 64_000_000
    max_zip_files: int = 250_000
    max_uncompressed_bytes: int = 8 * 1024**3

    @classmethod
    def public(cls) -> "DataLimits":
        """Stricter limits for the public demo, where anyone can upload."""
        return cls(
            max_bytes=100 * 1024**2,
            max_rows=200_000,
            max_images=20_000,
            max_image_pixels=4096 * 4096,
            max_zip_files=25_000,
            max_uncompressed_bytes=1024**3,
        )
