"""A corpus of broken survey inputs, each paired with the quarantine code galdb must give it.

:func:`write_bad_cutouts` makes a directory where every broken file sits beside good ones;
:func:`write_bad_catalog` makes a catalog whose bad rows sit between good rows.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from PIL import Image


def _good_fits(path: Path, ra: float, dec: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    header = fits.Header()
    header.update(
        CTYPE1="RA---TAN",
        CTYPE2="DEC--TAN",
        CRVAL1=ra,
        CRVAL2=dec,
        CRPIX1=16.5,
        CRPIX2=16.5,
        CD1_1=-0.262 / 3600,
        CD2_2=0.262 / 3600,
        CD1_2=0.0,
        CD2_1=0.0,
        BANDS="grz",
    )
    fits.PrimaryHDU(rng.normal(0, 1, (3, 32, 32)).astype(np.float32), header).writeto(path)


def write_bad_cutouts(root: Path) -> dict[str, str | None]:
    """Write good and broken cutouts; return {file name: expected code, or None if good}."""
    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str | None] = {}
    for i in range(3):
        _good_fits(root / f"good_{i}.fits", 10.0 + i, -5.0, i)
        expected[f"good_{i}.fits"] = None
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(root / "good_rgb.jpg")
    expected["good_rgb.jpg"] = None

    (root / "random_bytes.fits").write_bytes(np.random.default_rng(0).bytes(5000))
    expected["random_bytes.fits"] = "fits_corrupt"
    _good_fits(root / "full.fits", 12.0, 1.0, 9)
    data = (root / "full.fits").read_bytes()
    (root / "truncated.fits").write_bytes(data[: len(data) // 2])
    (root / "full.fits").unlink()
    expected["truncated.fits"] = "fits_corrupt"
    fits.PrimaryHDU(np.full((3, 16, 16), np.nan, np.float32)).writeto(root / "all_nan.fits")
    expected["all_nan.fits"] = "all_nan"
    fits.PrimaryHDU(np.zeros((2, 2, 8, 8), np.float32)).writeto(root / "four_d.fits")
    expected["four_d.fits"] = "bad_shape"
    fits.PrimaryHDU(np.zeros((4, 4), np.float32)).writeto(root / "tiny.fits")
    expected["tiny.fits"] = "bad_shape"
    Table({"a": [1, 2]}).write(root / "table_only.fits")
    expected["table_only.fits"] = "no_image_data"
    (root / "README.txt").write_text("notes from the observer, not an image\n")
    expected["README.txt"] = "not_an_image"
    (root / "text_named.png").write_text("this is not a PNG\n")
    expected["text_named.png"] = "not_an_image"
    Image.fromarray(np.full((64, 64, 3), 200, np.uint8)).save(root / "whole.jpg")
    whole = (root / "whole.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 3])
    (root / "whole.jpg").unlink()
    expected["truncated.jpg"] = "image_unreadable"
    return expected


def write_bad_catalog(root: Path) -> tuple[Path, dict[int, str | None]]:
    """A CSV catalog + images; return its path and {row number: expected code or None}."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    for name in ("a", "b", "c", "d"):
        Image.fromarray(np.full((32, 32), 90, np.uint8)).save(images / f"{name}.png")
    rows = [
        ("a", "10.0", "20.0", "images/a.png", None),
        ("b", "", "", "images/b.png", "no_coordinates"),
        ("c", "11.0", "95.0", "images/c.png", "coord_out_of_range"),
        ("d", "400", "10", "images/d.png", "coord_out_of_range"),
        ("a", "10.5", "20.5", "images/a.png", "duplicate_id"),
        ("e", "12.0", "21.0", "images/missing.png", "file_missing"),
        ("", "13.0", "22.0", "images/a.png", "missing_id"),
        ("f", "abc", "1", "images/a.png", "no_coordinates"),
        ("g", "359.999", "-89.5", "images/d.png", None),
    ]
    path = root / "catalog.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["source_id", "ra", "dec", "image_file", "note"])
        for row in rows:
            writer.writerow([*row[:4], f"note {row[0]}"])
    return path, {i + 1: row[4] for i, row in enumerate(rows)}
