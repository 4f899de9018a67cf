"""Restoration pairs: the degraded half is the release's cutout, the clean half its truth."""

import csv

import numpy as np
import pytest
from astropy.io import fits

from galdb.cli import main
from galdb.errors import GaldbError
from galdb.restore.pairs import load_pairs
from galdb.sim import simulate_galaxy, simulate_release
from galdb.sim.pairs import PAIR_COLUMNS


def test_degraded_is_the_release_cutout_and_clean_is_sharp_and_noise_free(pairs, tmp_path):
    release, pairs_dir = tmp_path / "release", pairs.dir
    simulate_release(release, 3, pairs.seed, size=pairs.size)
    with (pairs_dir / "pairs.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == pairs.n and tuple(rows[0]) == PAIR_COLUMNS
    for i, row in enumerate(rows[:3]):
        degraded = fits.getdata(pairs_dir / row["file"])
        same = fits.getdata(release / row["file"])
        assert degraded.tobytes() == same.tobytes()
        clean, header = fits.getdata(pairs_dir / row["clean_file"], header=True)
        assert header["PSFTYPE"] == "GAUSSIAN" and header["PSFFWHMR"] == 0.5
        # the same galaxy: the flux of the noise-free degraded image, band by band
        blurred = simulate_galaxy(pairs.seed, i, size=pairs.size, noise=False).image
        assert clean.sum(axis=(1, 2)) == pytest.approx(blurred.sum(axis=(1, 2)), rel=0.1)
        assert clean[1].max() > degraded[1].max()  # sharper: a higher peak
        assert clean.min() > -1e-6  # no noise: no negative sky pixels
        assert degraded.min() < 0


def test_load_pairs_and_its_errors(pairs, tmp_path):
    pairs_dir, size = pairs.dir, pairs.size
    loaded = load_pairs(pairs_dir, limit=5)
    assert loaded.degraded.shape == loaded.clean.shape == (5, 3, size, size)
    assert loaded.psf_fwhm.shape == (5, 3) and np.all(loaded.psf_fwhm > 1.0)
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(GaldbError, match="pairs.csv not found"):
        load_pairs(bad)
    text = (pairs_dir / "pairs.csv").read_text().splitlines()
    (bad / "pairs.csv").write_text("\n".join(text[:3]) + "\n")
    with pytest.raises(GaldbError, match=r"pairs.csv line 2: file .*not found"):
        load_pairs(bad)
    header = text[0].replace("clean_file", "clean")
    (bad / "pairs.csv").write_text(header + "\n")
    with pytest.raises(GaldbError, match="lacks the column"):
        load_pairs(bad)


def test_cli_pairs_option_keeps_plain_simulate(tmp_path):
    assert main(["simulate", str(tmp_path / "p"), "--n", "2", "--size", "16", "--pairs"]) == 0
    assert (tmp_path / "p" / "pairs.csv").is_file()
    assert len(list((tmp_path / "p" / "clean").iterdir())) == 2
    assert main(["simulate", str(tmp_path / "s"), "--n", "2", "--size", "16"]) == 0
    assert (tmp_path / "s" / "catalog.csv").is_file() and not (tmp_path / "s" / "clean").exists()
