"""Where a galaxy's pixels are: one PixelRef, its columns, its bands, the one reader."""

from __future__ import annotations

import numpy as np
from astropy.io import fits

from galdb.lvm.pixels import PixelRef, parse_bands, pixel_columns, read_pixels
from galdb.search.grid import TILE, tile


def test_bands_parsed_once_in_place():
    assert parse_bands("g,r,z") == ("g", "r", "z")
    assert parse_bands("g,,z") == ("g", "", "z")  # a position is a plane: kept
    assert parse_bands(None) == parse_bands("") == ()


def test_row_without_pixels_is_none_and_columns_match_from_row(conn):
    assert PixelRef.from_row((None, None, None, None)) is None
    ref = PixelRef.from_row(("/a.h5", "images", 3, "g,r"))
    assert ref == PixelRef("/a.h5", "images", 3, ("g", "r"))
    assert pixel_columns("g") == "g.pixel_uri, g.pixel_member, g.pixel_index, g.bands"
    row = conn.execute(f"SELECT {pixel_columns()} FROM galdb.galaxies LIMIT 0")
    assert [c.name for c in row.description] == pixel_columns().split(", ")


def test_read_and_tile_a_fits_cube(tmp_path):
    cube = np.random.default_rng(0).normal(0.5, 0.2, (3, 32, 32)).astype(np.float32)
    path = tmp_path / "cube.fits"
    fits.PrimaryHDU(cube).writeto(path)
    ref = PixelRef(str(path), None, None, parse_bands("g,r,z"))
    assert np.array_equal(read_pixels(ref), cube)
    image = np.asarray(tile(ref))
    assert image.shape == (TILE, TILE, 3) and image.std() > 0  # not a flat placeholder
    missing = np.asarray(tile(PixelRef(str(tmp_path / "gone.fits"))))
    assert (missing == (90, 0, 0)).all()  # unreadable: the dark red tile
    assert (np.asarray(tile(None)) == (40, 40, 40)).all()  # no pixels: grey
