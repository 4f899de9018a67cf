"""Real frames with reference detection lists, for the detection benchmark.

The references are pipeline catalogs (SExtractor, the LSST stack / SEP, the GLIMPSE point
source catalog), not truth: recall against them says how much of what a standard pipeline
finds a detector finds too, and a detection missing from them is not necessarily false.
Frames are read as :func:`galdb.detect.fields.noise_matched` makes them (background
subtracted, noise scaled to the simulator's), so a detector trained on simulated fields and
SEP run on them with unchanged settings. Pixel scales differ from the simulator's 0.262"/px
(NTT/EMMI ~0.27", HSC 0.168", Spitzer 1.2"), so the objects' sizes in pixels differ too.
"""

from __future__ import annotations

import pathlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from galdb.detect.fields import FieldImage, noise_matched

HSC_GRZ = (0, 1, 3)  # g, r, z planes of the g, r, i, z, y stamps


@dataclass(frozen=True)
class RealFrame:
    name: str
    field: FieldImage  # noise-matched
    reference: np.ndarray  # (n, 2) 0-based x, y
    source: str


def real_frames(root) -> Iterator[RealFrame]:
    """The frames of ``root`` (``../shared/data/real``) that have reference positions; sets
    that are absent are skipped."""
    root = pathlib.Path(root)
    ntt = root / "sep_ntt_emmi_field"
    if (ntt / "image.fits").exists():
        from astropy.io import ascii

        with warnings.catch_warnings():  # the ESO-LOG cards are not standard FITS
            warnings.simplefilter("ignore", AstropyUserWarning)
            with fits.open(ntt / "image.fits") as hdus:
                image = np.asarray(hdus[0].data, dtype=np.float32)
        cat = ascii.read(ntt / "image.cat", format="sextractor")
        ref = np.column_stack([cat["X_IMAGE"] - 1.0, cat["Y_IMAGE"] - 1.0])
        field = FieldImage("sep_ntt_emmi_field", image[None], ["r"], None, None)
        yield RealFrame(field.name, noise_matched(field), ref, "SExtractor catalog (65)")
    for stem in ("hsc_cosmos_35", "hsc_cosmos"):
        path = root / "scarlet_hsc_cosmos_blends" / f"{stem}.npz"
        if path.exists():
            data = np.load(path, allow_pickle=False)
            images = data["images"][list(HSC_GRZ)].astype(np.float32)
            cat = data["catalog"]
            ref = np.column_stack([cat["x"], cat["y"]]).astype(np.float64)
            field = FieldImage(stem, images, ["g", "r", "z"], None, None)
            yield RealFrame(stem, noise_matched(field), ref, f"scarlet catalog ({len(ref)})")
    glimpse = root / "photutils_spitzer_glimpse"
    if (glimpse / "spitzer_example_image.fits").exists():
        from astropy.table import Table
        from astropy.wcs import WCS, FITSFixedWarning

        with fits.open(glimpse / "spitzer_example_image.fits") as hdus:
            header, data = hdus[0].header, np.asarray(hdus[0].data, dtype=np.float32)
        table = Table.read(glimpse / "spitzer_example_catalog.xml")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            x, y = WCS(header).world_to_pixel_values(table["l"], table["b"])
        field = FieldImage("photutils_spitzer_glimpse", data[None],
                           ["r"], None, None)  # fmt: skip
        ref = np.column_stack([x, y])
        yield RealFrame(field.name, noise_matched(field), ref, f"GLIMPSE catalog ({len(ref)})")
