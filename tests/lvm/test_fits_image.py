"""The plain-FITS image reader against astropy: the same pixels wherever it answers, and
None (astropy reads it instead) wherever it does not."""

from __future__ import annotations

import gzip

import numpy as np
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from galdb.lvm.fits_image import read_image
from galdb.lvm.pixels import PixelRef, read_pixels
from tests.conftest import real_dir


def astropy_image(path, ext: int = 0) -> np.ndarray:
    with fits.open(path, memmap=False) as hdul:
        return np.asarray(hdul[ext].data, dtype=np.float32)


@settings(max_examples=40, deadline=None)
@given(
    bitpix=st.sampled_from([8, 16, 32, 64, -32, -64]),
    shape=st.sampled_from([(5, 7), (3, 4, 6), (1, 9, 2)]),
    scaled=st.booleans(),
    ext=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_same_pixels_as_astropy(tmp_path_factory, bitpix, shape, scaled, ext, seed):
    rng = np.random.default_rng(seed)
    dtype = {8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64}.get(bitpix)
    if dtype is None:
        data = rng.normal(0, 3, shape).astype(np.float32 if bitpix == -32 else np.float64)
        data.flat[0] = np.nan  # NaN pixels stay NaN
    else:
        info = np.iinfo(dtype)
        data = rng.integers(max(info.min, -1000), min(info.max, 1000), shape).astype(dtype)
    hdus = [fits.PrimaryHDU(data if ext == 0 else None)]
    hdus += [fits.ImageHDU(rng.normal(size=(2, 3)).astype(np.float32)) for _ in range(ext - 1)]
    if ext:
        hdus.append(fits.ImageHDU(data))
    target = hdus[ext]
    target.header["BITPIX"] = bitpix
    if scaled:
        target.header["BSCALE"], target.header["BZERO"] = 0.25, -3.5
    target.header["COMMENT"] = "a comment card / with a slash"
    target.header["OBJECT"] = "it's a 'quoted' name"
    path = tmp_path_factory.mktemp("fits") / "image.fits"
    fits.HDUList(hdus).writeto(path)
    ours = read_image(path, ext)
    assert ours is not None and ours.dtype == np.float32
    np.testing.assert_allclose(ours, astropy_image(path, ext), rtol=1e-6, equal_nan=True)


def test_unsigned_16_bit_by_bzero(tmp_path):
    data = np.array([[0, 1, 40000, 65535]], np.uint16)
    path = tmp_path / "u16.fits"
    fits.PrimaryHDU(data).writeto(path)  # stored as int16 with BZERO = 32768
    assert np.array_equal(read_image(path), data.astype(np.float32))


def test_what_it_does_not_handle_is_left_to_astropy(tmp_path):
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    cases = {}
    cases["compressed"] = tmp_path / "tile.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image)]).writeto(cases["compressed"])
    blank = fits.PrimaryHDU(np.arange(64, dtype=np.int16).reshape(8, 8))
    blank.header["BLANK"] = 5
    cases["blank"] = tmp_path / "blank.fits"
    blank.writeto(cases["blank"])
    cases["gzip"] = tmp_path / "image.fits.gz"
    buffer = tmp_path / "plain.fits"
    fits.PrimaryHDU(image).writeto(buffer)
    cases["gzip"].write_bytes(gzip.compress(buffer.read_bytes()))
    cases["truncated"] = tmp_path / "cut.fits"
    cases["truncated"].write_bytes(buffer.read_bytes()[: 2880 + 100])
    cases["one axis"] = tmp_path / "line.fits"
    fits.PrimaryHDU(np.arange(10, dtype=np.float32)).writeto(cases["one axis"])
    cases["not fits"] = tmp_path / "text.fits"
    cases["not fits"].write_text("hello")
    for name, path in cases.items():
        ext = 1 if name == "compressed" else 0
        assert read_image(path, ext) is None, name
    # read_pixels still reads them, through astropy
    assert np.array_equal(read_pixels(PixelRef(str(cases["compressed"]), "1"))[0], image)
    assert np.isnan(read_pixels(PixelRef(str(cases["blank"])))[0][0, 5])
    assert np.array_equal(read_pixels(PixelRef(str(cases["gzip"])))[0], image)
    assert read_image(tmp_path / "gone.fits") is None  # missing: astropy names the error


def test_real_legacy_survey_cutouts_read_alike():
    files = sorted((real_dir("decals_dr9_grz_fits_lvm") / "fits").glob("*.fits"))[:20]
    assert files
    for path in files:
        ours = read_image(path)
        assert ours is not None, path
        np.testing.assert_array_equal(ours, astropy_image(path), err_msg=str(path))


def test_an_empty_primary_then_the_image(tmp_path):
    image = np.ones((2, 4, 4), np.float32)
    path = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(image)]).writeto(path)
    assert read_image(path, 0) is None  # no data there: astropy's answer stands
    assert np.array_equal(read_image(path, 1), image)
    assert read_image(path, 2) is None  # no such HDU
