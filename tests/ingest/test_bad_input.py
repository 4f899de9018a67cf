"""Bad input: one quarantine row each with a clear reason; the good rows still go in."""

import time
from pathlib import Path

import pytest

from galdb.cli import main
from galdb.datasets.bad_inputs import (
    write_bad_catalog,
    write_bad_cutouts,
    write_huge_hdf5,
    write_wide_csv,
)
from galdb.errors import GaldbError
from galdb.ingest import ingest
from galdb.ingest.limits import MAX_COLUMNS, MAX_HEADER_BYTES
from galdb.ingest.loader import Loader
from galdb.ingest.records import Candidate, Galaxy
from galdb.ingest.runs import ensure_release, ingest_run


def _quarantine(conn, run_id):
    return conn.execute(
        "SELECT source, item, code, reason FROM galdb.quarantine WHERE run_id = %s", (run_id,)
    ).fetchall()


def test_bad_cutouts_each_quarantined_once(conn, tmp_path, unique_release):
    root = tmp_path / "cutouts"
    expected = write_bad_cutouts(root)
    summary = ingest(conn, root, unique_release)
    good = sorted(name.rsplit(".", 1)[0] for name, code in expected.items() if code is None)
    stored = [
        r[0]
        for r in conn.execute(
            "SELECT source_id FROM galdb.catalog WHERE release = %s ORDER BY 1", (unique_release,)
        )
    ]
    assert stored == good
    rows = _quarantine(conn, summary.run_id)
    got = {Path(source).relative_to(root).as_posix(): code for source, _, code, _ in rows}
    assert got == {name: code for name, code in expected.items() if code is not None}
    assert len(rows) == len(got)  # exactly one row per bad file
    assert all(reason for *_, reason in rows)
    assert summary.inserted == len(good) and summary.quarantined == len(got)


def test_bad_catalog_rows_each_quarantined_once(conn, tmp_path, unique_release):
    catalog, expected = write_bad_catalog(tmp_path)
    summary = ingest(conn, tmp_path, unique_release, catalog=catalog)
    rows = _quarantine(conn, summary.run_id)
    got = {int(item.split()[1]): code for _, item, code, _ in rows}
    assert got == {row: code for row, code in expected.items() if code is not None}
    stored = conn.execute(
        "SELECT source_id, ra, dec, props->>'note' FROM galdb.catalog WHERE release = %s "
        "ORDER BY 1",
        (unique_release,),
    ).fetchall()
    assert stored == [("a", 10.0, 20.0, "note a"), ("g", 359.999, -89.5, "note g")]
    assert all(str(catalog) == source for source, *_ in rows)
    assert all(len(item) < 100 for _, item, _, _ in rows)  # a 10,000-character id is cut short


def test_catalog_in_another_encoding(settings, conn, tmp_path, unique_release, capsys):
    catalog, _ = write_bad_catalog(tmp_path)
    argv = ["ingest", str(tmp_path), "--catalog", str(catalog), "--release", unique_release]
    assert main([*argv, "--encoding", "latin-1"]) == 0
    (note,) = conn.execute(
        "SELECT props->>'note' FROM galdb.catalog WHERE release = %s AND source_id = 'h\xe9'",
        (unique_release,),
    ).fetchone()
    assert note == "note h\xe9"
    assert main([*argv, "--encoding", "no-such-codec"]) == 1
    assert "no-such-codec" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("n_columns", "message"),
    [(1_000_000, f"longer than {MAX_HEADER_BYTES:,} bytes"), (MAX_COLUMNS + 1, "columns")],
)
def test_huge_csv_header_fails_fast(conn, tmp_path, unique_release, n_columns, message):
    wide = write_wide_csv(tmp_path / "wide.csv", n_columns)
    started = time.perf_counter()
    with pytest.raises(GaldbError, match=message) as err:
        ingest(conn, wide, unique_release)
    assert str(wide) in str(err.value)
    assert time.perf_counter() - started < 5


def test_hdf5_images_over_the_pixel_limit_are_refused(conn, tmp_path, unique_release):
    path = write_huge_hdf5(tmp_path / "huge.h5", side=4100)
    with pytest.raises(GaldbError, match="4100x4100 pixels; the limit is 16,777,216") as err:
        ingest(conn, path, unique_release)
    assert str(path) in str(err.value)


def test_widest_allowed_csv_is_read(conn, tmp_path, unique_release):
    wide = write_wide_csv(tmp_path / "wide.csv", MAX_COLUMNS)
    assert ingest(conn, wide, unique_release).inserted == 1


def test_wrong_catalog_column_is_a_clear_error(conn, tmp_path, unique_release):
    catalog, _ = write_bad_catalog(tmp_path)
    from galdb.errors import GaldbError
    from galdb.ingest import Columns

    with pytest.raises(GaldbError, match="no column 'objid' for the id"):
        ingest(conn, tmp_path, unique_release, catalog=catalog, columns=Columns(id="objid"))


def test_cli_exit_status_and_summary(settings, tmp_path, unique_release, capsys):
    write_bad_cutouts(tmp_path / "mixed")
    assert main(["ingest", str(tmp_path / "mixed"), "--release", unique_release]) == 0
    out = capsys.readouterr().out
    assert "5 inserted" in out and "quarantined" in out and "fits_corrupt" in out

    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "junk.fits").write_bytes(b"SIMPLE  = nonsense")
    assert main(["ingest", str(only_bad), "--release", unique_release + "-bad"]) == 5
    assert "nothing from" in capsys.readouterr().err


def test_any_error_reading_one_input_is_quarantined(conn, unique_release):
    def broken():
        return 1 / 0  # stands for a reader bug or an error no reader anticipated

    release_id = ensure_release(conn, unique_release, "test")
    with ingest_run(conn, release_id, "mixed", "cutouts", {}) as run_id:
        loader = Loader(conn, release_id, run_id)
        loader.feed(
            [
                Candidate("ok", "good.fits", "", lambda: Galaxy("ok", 1.0, 2.0)),
                Candidate("boom", "boom.fits", "", broken),
            ]
        )
    assert loader.counts.inserted == 1
    ((source, _, code, reason),) = _quarantine(conn, run_id)
    assert (source, code) == ("boom.fits", "read_failed")
    assert reason.startswith("ZeroDivisionError")


def test_ids_beyond_int64_are_kept_exactly(conn, unique_release, tmp_path):
    path = tmp_path / "big_ids.csv"
    path.write_text("source_id,ra,dec\n9223372036854775808,10.0,-5.0\n1,10.1,-5.1\n")
    ingest(conn, path, unique_release)
    ids = {
        r[0]
        for r in conn.execute(
            "SELECT source_id FROM galdb.catalog WHERE release = %s", (unique_release,)
        )
    }
    assert ids == {"9223372036854775808", "1"}
