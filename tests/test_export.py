"""Table files: units and UCDs of the columns galdb knows, chunked writing equal to one write."""

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.table import Table

from galdb.errors import GaldbError
from galdb.export import TableOutput, write_table

COLUMNS = ["galaxy_id", "ra", "dec", "sep_arcsec", "p_spiral", "confidence", "note"]
TYPES = ["int8", "float8", "float8", "float8", "float8", "float8", "text"]
ROWS = [
    (1, 150.1, 2.2, 0.5, 0.9, 0.9, "a"),
    (2, None, -1.0, None, 0.1, 0.9, None),
    (3, 359.9, -89.0, 12.0, None, None, "a longer note, with a comma"),
]


def test_votable_fields_carry_units_and_ucds(tmp_path):
    out = tmp_path / "t.vot"
    write_table(COLUMNS, ROWS, out)
    fields = {f.name: f for f in parse_single_table(str(out)).fields}
    assert (fields["ra"].ucd, str(fields["ra"].unit)) == ("pos.eq.ra;meta.main", "deg")
    assert (fields["dec"].ucd, str(fields["dec"].unit)) == ("pos.eq.dec;meta.main", "deg")
    assert (fields["sep_arcsec"].ucd, str(fields["sep_arcsec"].unit)) == (
        "pos.angDistance",
        "arcsec",
    )
    assert fields["p_spiral"].ucd == fields["confidence"].ucd == "stat.probability"
    assert fields["galaxy_id"].ucd is None


def test_fits_carries_units(tmp_path):
    out = tmp_path / "t.fits"
    write_table(COLUMNS, ROWS, out)
    header = fits.getheader(out, 1)
    units = {header[f"TTYPE{i}"]: header.get(f"TUNIT{i}") for i in range(1, len(COLUMNS) + 1)}
    assert units["ra"] == units["dec"] == "deg" and units["sep_arcsec"] == "arcsec"
    assert Table.read(out)["ra"].unit == u.deg


@pytest.mark.parametrize("suffix", [".ecsv", ".parquet"])
def test_astropy_formats_carry_units_and_ucds(tmp_path, suffix):
    out = tmp_path / f"t{suffix}"
    write_table(COLUMNS, ROWS, out)
    table = Table.read(out)
    assert table["dec"].unit == u.deg and table["dec"].meta["ucd"] == "pos.eq.dec;meta.main"


@pytest.mark.parametrize("suffix", [".csv", ".ecsv", ".vot", ".fits", ".parquet"])
def test_chunks_make_the_same_table_as_one_write(tmp_path, suffix):
    whole, chunked = tmp_path / f"whole{suffix}", tmp_path / f"chunked{suffix}"
    with TableOutput(whole) as out:
        out.write(COLUMNS, [ROWS], TYPES)
    with TableOutput(chunked) as out:  # NULLs and longer strings only in later chunks
        assert out.write(COLUMNS, [ROWS[:1], [], ROWS[1:2], ROWS[2:]], TYPES) == 3
    a, b = Table.read(whole), Table.read(chunked)
    assert a.colnames == b.colnames == COLUMNS and len(b) == 3
    for name in COLUMNS:
        assert list(np.ma.filled(a[name], 0)) == list(np.ma.filled(b[name], 0)), name
    assert list(b["note"])[2] == "a longer note, with a comma"
    assert bool(np.ma.is_masked(b["ra"][1]))


@pytest.mark.parametrize("suffix", [".csv", ".ecsv", ".vot"])
def test_no_rows_is_a_table_with_columns(tmp_path, suffix):
    out = tmp_path / f"empty{suffix}"
    with TableOutput(out) as o:
        assert o.write(COLUMNS, [], TYPES) == 0
    assert Table.read(out).colnames == COLUMNS


def test_output_is_refused_when_it_exists(tmp_path):
    out = tmp_path / "t.csv"
    out.write_text("x\n")
    with pytest.raises(GaldbError, match="exists"):
        TableOutput(out)


def test_failed_write_leaves_nothing(tmp_path):
    def chunks():
        yield ROWS[:1]
        raise GaldbError("the query failed")

    with pytest.raises(GaldbError), TableOutput(tmp_path / "t.vot") as out:
        out.write(COLUMNS, chunks(), TYPES)
    assert list(tmp_path.iterdir()) == []
