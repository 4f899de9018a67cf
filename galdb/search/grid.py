"""A labelled PNG grid of a query galaxy and its neighbours, for a quick look or a paper draft."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from galdb.lvm.pixels import PixelRef, read_pixels
from galdb.lvm.preprocess import Preprocessing, to_unit

TILE = 160
LABEL = 30


def display_rgb(pixels: np.ndarray, bands: tuple[str, ...], size: int = TILE) -> Image.Image:
    """Any survey pixels as an RGB tile (the preprocessing stretch, without normalisation)."""
    unit = to_unit(pixels, bands, Preprocessing())
    rgb = (np.moveaxis(unit[:3], 0, -1) * 255).clip(0, 255).astype(np.uint8)
    return Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR)


def tile(ref: PixelRef | None) -> Image.Image:
    """A galaxy's tile: grey without pixels, dark red when they cannot be read."""
    if ref is None:
        return Image.new("RGB", (TILE, TILE), (40, 40, 40))
    try:
        return display_rgb(read_pixels(ref), ref.bands)
    except Exception:  # a missing file must not spoil the whole grid
        return Image.new("RGB", (TILE, TILE), (90, 0, 0))


def save_grid(tiles: list[tuple[Image.Image, str]], out: Path, columns: int = 6) -> Path:
    """Tiles with a caption under each, ``columns`` per row, written as PNG."""
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * TILE, rows * (TILE + LABEL)), (0, 0, 0))
    draw = ImageDraw.Draw(sheet)
    for i, (img, caption) in enumerate(tiles):
        x, y = (i % columns) * TILE, (i // columns) * (TILE + LABEL)
        sheet.paste(img, (x, y))
        for line_no, line in enumerate(caption.split("\n")[:2]):
            draw.text((x + 4, y + TILE + 2 + 13 * line_no), line[:26], fill=(230, 230, 230))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
