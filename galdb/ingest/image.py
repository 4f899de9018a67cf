"""JPEG/PNG (and other Pillow-readable) colour or greyscale cutouts."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from galdb.ingest.limits import MAX_PIXELS
from galdb.ingest.records import BadInput, Code, Pixels, coordinates_from_name

SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif"}
MIN_SIDE = 8
_BANDS = {"L": "L", "I;16": "L", "I": "L", "F": "L", "RGB": "r,g,b", "RGBA": "r,g,b,a"}


def inspect_image(path: Path) -> Pixels:
    """Decode an image fully (a truncated JPEG fails only on decode) and describe it.

    The size is checked from the header (``Image.open`` reads nothing more) before decoding,
    so an image declaring more than :data:`~galdb.ingest.limits.MAX_PIXELS` costs no memory.

    Raises
    ------
    BadInput
        Not an image, too large, truncated or undecodable, or too small.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                mode, (width, height) = img.mode, img.size
                _check_size(width, height)
                img.load()
    except UnidentifiedImageError as exc:
        raise BadInput(Code.NOT_AN_IMAGE, "not an image file Pillow can identify") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses it while reading the header; its limit is looser than ours.
        raise BadInput(Code.IMAGE_TOO_LARGE, f"{exc} (galdb's limit: {_LIMIT})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(Code.IMAGE_UNREADABLE, f"image cannot be decoded ({exc})") from exc
    if min(width, height) < MIN_SIDE:
        raise BadInput(Code.BAD_SHAPE, f"image is {width}x{height}; need at least {MIN_SIDE} px")
    bands = _BANDS.get(mode, mode)
    coords = coordinates_from_name(path.stem)
    return Pixels(
        uri=str(path),
        bands=bands,
        shape=(len(bands.split(",")), height, width),
        ra=coords[0] if coords else None,
        dec=coords[1] if coords else None,
    )


_LIMIT = f"{MAX_PIXELS:,} pixels per band"


def _check_size(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise BadInput(
            Code.IMAGE_TOO_LARGE, f"image is {width}x{height} pixels; the limit is {_LIMIT}"
        )
