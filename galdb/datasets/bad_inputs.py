"""A corpus of broken survey inputs, each paired with the quarantine code galdb must give it.

:func:`write_bad_cutouts` makes a directory where every broken file sits beside good ones;
:func:`write_bad_catalog` makes a catalog whose bad rows sit between good rows. Inputs that
fail a whole run rather than one row are here too: :func:`write_wide_csv` (a header with too
many columns), :func:`write_huge_hdf5` (images over the pixel limit) and
:func:`write_misplaced_images` (a catalog ingested first with the wrong image directory, then
with the right one).
"""

from __future__ import annotations

import csv
import io
import os
import struct
import zlib
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


def write_png_header(path: Path, width: int, height: int) -> None:
    """A tiny PNG file that declares ``width`` x ``height`` grey pixels (a decompression bomb).

    Only the header is meaningful: the pixel data is a few bytes, so a reader that decodes
    before checking the size would try to allocate ``width * height`` bytes.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def write_fits_header(path: Path, width: int, height: int) -> None:
    """A FITS file declaring a ``height`` x ``width`` 8-bit image, its data a hole of zeros.

    The file is sparse (its data is never written), so it takes no disk space while a reader
    that loads the data before checking the header would allocate ``width * height`` bytes.
    """
    header = fits.Header()
    header.update(SIMPLE=True, BITPIX=8, NAXIS=2, NAXIS1=width, NAXIS2=height)
    block = 2880  # FITS files are made of 2880-byte blocks
    size = len(header.tostring()) + -(-width * height // block) * block
    with path.open("wb") as fh:
        fh.write(header.tostring().encode("ascii"))
        fh.truncate(size)


def write_bad_cutouts(root: Path) -> dict[str, str | None]:
    """Write good and broken cutouts; return {file name: expected code, or None if good}.

    Names are relative to ``root``. Beside broken files there are: images declaring more pixels
    than galdb accepts (a 30000x30000 PNG is a decompression bomb), a symbolic link to itself
    (``ELOOP``), a file whose name is not UTF-8, a subdirectory with a link back to ``root``
    (a cycle the walk must not follow twice) and, when not running as root, a directory nobody
    may read.
    """
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

    write_png_header(root / "bomb.png", 30_000, 30_000)  # Pillow refuses it as a bomb
    expected["bomb.png"] = "image_too_large"
    write_png_header(root / "over_limit.png", 4097, 4097)  # under Pillow's limit, over galdb's
    expected["over_limit.png"] = "image_too_large"
    write_fits_header(root / "huge.fits", 30_000, 30_000)
    expected["huge.fits"] = "image_too_large"
    (root / "loop.fits").symlink_to("loop.fits")
    expected["loop.fits"] = "unreadable_path"
    latin1 = os.fsdecode(os.fsencode(root) + b"/latin1_\xe9.png")  # not a UTF-8 name
    Image.fromarray(np.full((16, 16), 7, np.uint8)).save(latin1)
    expected["latin1_\\xe9.png"] = "encoding_error"  # as quarantine shows the name
    (root / "sub").mkdir()
    _good_fits(root / "sub" / "good_3.fits", 14.0, -5.0, 3)
    expected["sub/good_3.fits"] = None
    (root / "sub" / "up").symlink_to("..", target_is_directory=True)
    if os.geteuid() != 0:  # root reads every directory, whatever its mode
        (root / "locked").mkdir()
        (root / "locked").chmod(0)
        expected["locked"] = "unreadable_path"
    return expected


def write_bad_catalog(root: Path) -> tuple[Path, dict[int, str | None]]:
    """A CSV catalog + images; return its path and {row number: expected code or None}.

    The file is UTF-8 except for one row whose bytes are not (``encoding_error``); two rows
    have more or fewer fields than the header (``bad_row``).
    """
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
        ("x" * 10_000, "14.0", "23.0", "images/a.png", "id_too_long"),
        (None, "15.0", "24.0", "images/a.png", "encoding_error"),
        (b"i,16.0,25.0,images/a.png,note i,one field too many\r\n", "", "", "", "bad_row"),
        (b"j,17.0\r\n", "", "", "", "bad_row"),
        ("g", "359.999", "-89.5", "images/d.png", None),
    ]
    lines = []
    for row in [("source_id", "ra", "dec", "image_file", "note", None), *rows]:
        if row[0] is None:  # Latin-1 bytes in a UTF-8 file
            lines.append("h\xe9,15.0,24.0,images/a.png,note h\xe9\r\n".encode("latin-1"))
            continue
        if isinstance(row[0], bytes):  # a line written as it is
            lines.append(row[0])
            continue
        text = io.StringIO()
        note = "note" if row[0] == "source_id" else f"note {row[0]}"
        csv.writer(text).writerow([*row[:4], note])
        lines.append(text.getvalue().encode())
    path = root / "catalog.csv"
    path.write_bytes(b"".join(lines))
    return path, {i + 1: row[4] for i, row in enumerate(rows)}


def write_wide_csv(path: Path, n_columns: int) -> Path:
    """A CSV whose header has ``n_columns`` columns (``id``, ``c1``, …) and one data row."""
    names = ["id", *(f"c{i}" for i in range(1, n_columns))]
    values = ["1", *("0" for _ in range(1, n_columns))]
    path.write_text(",".join(names) + "\n" + ",".join(values) + "\n")
    return path


def write_huge_hdf5(path: Path, side: int, n: int = 1) -> Path:
    """An ssl-legacysurvey-like HDF5 file declaring ``n`` 3-band images of ``side`` pixels.

    The dataset is chunked and never written, so the file is small whatever ``side`` is.
    """
    import h5py

    with h5py.File(path, "w") as h5:
        h5.create_dataset("images", shape=(n, 3, side, side), dtype="f4", chunks=(1, 1, 64, 64))
        h5["ra"] = np.linspace(10.0, 11.0, n)
        h5["dec"] = np.linspace(-1.0, 1.0, n)
    return path


def write_misplaced_images(root: Path) -> tuple[Path, Path, Path]:
    """A catalog of three galaxies, the directory of their images, and a wrong (empty) one.

    Ingesting with the wrong directory quarantines every row (``file_missing``); the corrected
    run must then read the catalog again. Returns (catalog, images, wrong directory).
    """
    images, wrong = root / "images", root / "elsewhere"
    images.mkdir(parents=True, exist_ok=True)
    wrong.mkdir(exist_ok=True)
    lines = ["source_id,ra,dec,image_file"]
    for i, name in enumerate(("p", "q", "r")):
        Image.fromarray(np.full((32, 32), 40 * i, np.uint8)).save(images / f"{name}.png")
        lines.append(f"{name},{30.0 + i},{-2.0 - i},{name}.png")
    catalog = root / "catalog.csv"
    catalog.write_text("\n".join(lines) + "\n")
    return catalog, images, wrong
