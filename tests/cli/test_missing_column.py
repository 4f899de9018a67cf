"""`--column X` naming a catalog column that no galaxy has is an error naming X and the
columns that exist; a column that exists keeps working, even when nothing matches."""

from __future__ import annotations

import csv
import uuid

import pytest

from galdb.cli import main
from galdb.sim import simulate_release

SPEC = "timm:test_efficientnet_gn"


@pytest.fixture(scope="module")
def release(settings, tmp_path_factory):
    """12 simulated galaxies with their catalog (plus a column left empty), embedded."""
    out = tmp_path_factory.mktemp("sim")
    catalog = simulate_release(out, 12, seed=21, size=32)
    with catalog.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with catalog.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [*rows[0], "notes"])
        writer.writeheader()
        writer.writerows({**row, "notes": ""} for row in rows)
    name = f"cols-{uuid.uuid4().hex[:6]}"
    assert main(["ingest", str(out), "-r", name, "--catalog", str(catalog)]) == 0
    assert main(["embed", "-m", SPEC, "-r", name, "--input-size", "32", "--workers", "0"]) == 0
    return name, rows[0]["source_id"]


def _one_line(capsys) -> str:
    """The error message: one line, the last (a progress bar may stand above it)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == lines[-1:], lines
    return lines[-1]


def test_label_import_of_a_column_no_galaxy_has(release, capsys):
    name, _ = release
    task = f"m_{uuid.uuid4().hex[:6]}"
    assert main(["task", "create", task, "--classes", "elliptical,spiral"]) == 0
    capsys.readouterr()
    code = main(["label", "import", "-t", task, "-r", name, "--column", "morph_klass"])
    err = _one_line(capsys)
    assert code == 1
    assert "'morph_klass'" in err and name in err
    assert "morph_class" in err and "mag_r" in err  # the columns that exist
    # a column every galaxy has, but empty: the rows are reported as empty labels, as before
    assert main(["label", "import", "-t", task, "-r", name, "--column", "notes"]) == 5
    out = capsys.readouterr()
    assert "empty label" in out.out and "catalog column" not in out.err


def test_label_import_of_an_existing_column_still_works(release, capsys):
    name, _ = release
    task = f"m_{uuid.uuid4().hex[:6]}"
    classes = "elliptical,lenticular,spiral,edge_on,merger"
    assert main(["task", "create", task, "--classes", classes]) == 0
    assert main(["label", "import", "-t", task, "-r", name, "--column", "morph_class"]) == 0
    assert "12 of 12 labels stored" in capsys.readouterr().out


def test_search_filter_on_a_column_no_galaxy_has(release, capsys):
    name, source_id = release
    like = f"{name}::{source_id}"
    args = ["search", "-m", SPEC, "--like", like, "-r", name, "--column", "mag_rr", "--max", "30"]
    code = main(args)
    err = _one_line(capsys)
    assert code == 1
    assert "'mag_rr'" in err and name in err and "mag_r" in err
    # without --release: every release is concerned
    assert main(["search", "-m", SPEC, "--like", like, "--column", "mag_rr", "--min", "0"]) == 1
    assert "'mag_rr'" in _one_line(capsys)


def test_search_filter_on_an_existing_column(release, capsys):
    name, source_id = release
    like = f"{name}::{source_id}"
    base = ["search", "-m", SPEC, "--like", like, "-r", name, "-k", "3", "--column", "mag_r"]
    assert main([*base, "--max", "99"]) == 0
    assert "3 nearest" in capsys.readouterr().out
    # nothing matches the range: an empty answer, not an error
    assert main([*base, "--max", "-99"]) == 0
    assert "0 nearest" in capsys.readouterr().out


def test_search_bounds_need_a_column_and_a_column_needs_bounds(release, capsys):
    name, source_id = release
    like = f"{name}::{source_id}"
    assert main(["search", "-m", SPEC, "--like", like, "--max", "18"]) == 1
    assert "--column" in _one_line(capsys)
    assert main(["search", "-m", SPEC, "--like", like, "--column", "mag_r"]) == 1
    assert "--min" in _one_line(capsys)


def test_search_bounds_on_a_text_column(release, capsys):
    name, source_id = release
    like = f"{name}::{source_id}"
    args = ["search", "-m", SPEC, "--like", like, "--column", "morph_class", "--max", "3"]
    assert main(args) == 1
    err = _one_line(capsys)
    assert "'morph_class'" in err and "not a number" in err


def test_search_in_an_unknown_release_is_an_error(release, capsys):
    name, source_id = release
    like = f"{name}::{source_id}"
    assert main(["search", "-m", SPEC, "--like", like, "-r", "no-such-release"]) == 1
    err = _one_line(capsys)
    assert "no release 'no-such-release'" in err and name in err
