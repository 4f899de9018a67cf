"""`galdb sql` streams: it stops at the row limit, bounds the bytes it holds, writes `--out`
files as rows arrive (complete or not at all) and turns every SQL-level failure into one line."""

import os

import pytest
from astropy.table import Table

from galdb.cli import main
from galdb.db.connect import connect_reader
from galdb.db.readonly import ResultTooLarge, run_readonly, stream_readonly
from galdb.errors import GaldbError

# Row 1001 on fails: a result is correct only if nothing past the row limit is computed.
FAILS_PAST_1000 = (
    "SELECT CASE WHEN i > 1000 THEN 1 / (i - i) ELSE i END AS v FROM generate_series(1, 100000) i"
)
WIDE_ROWS = "SELECT i, repeat('x', 1000000) AS x FROM generate_series(1, 20) AS i"


def test_reading_stops_at_max_rows(settings):
    result = run_readonly(settings, FAILS_PAST_1000, max_rows=10)
    assert [r[0] for r in result.rows] == list(range(1, 11)) and result.truncated


def test_exactly_max_rows_is_not_truncated(settings):
    result = run_readonly(settings, "SELECT generate_series(1, 10) AS i", max_rows=10)
    assert len(result.rows) == 10 and not result.truncated


@pytest.mark.parametrize(
    ("statement", "column"),
    [
        ("SHOW work_mem", "work_mem"),
        ("EXPLAIN SELECT 1", "QUERY PLAN"),
        ("VALUES (1), (2)", "column1"),
        ("TABLE galdb.surveys", "survey_id"),
        ("WITH a AS (SELECT 1 AS x) SELECT * FROM a", "x"),
        ("(SELECT 1 AS x)", "x"),
        ("SELECT 1 AS x; ", "x"),
        ("SELECT 1 AS x -- a trailing comment", "x"),
    ],
)
def test_statements_that_return_rows(settings, statement, column):
    assert column in run_readonly(settings, statement).columns


def test_set_returns_no_columns(settings):
    assert run_readonly(settings, "SET work_mem = '8MB'").columns == []


def test_result_past_the_byte_bound_is_refused(settings, monkeypatch):
    monkeypatch.setenv("GALDB_SQL_MAX_BYTES", "5MiB")
    with pytest.raises(ResultTooLarge, match="GALDB_SQL_MAX_BYTES"):
        run_readonly(settings, WIDE_ROWS)


def test_one_row_past_the_byte_bound_is_refused_at_the_first_row(settings):
    with stream_readonly(settings, WIDE_ROWS, max_bytes=500_000) as result:
        with pytest.raises(ResultTooLarge):
            next(result.chunks())
        assert result.rows_read == 0


def test_bad_byte_bound_is_a_clear_error(settings, monkeypatch):
    monkeypatch.setenv("GALDB_SQL_MAX_BYTES", "lots")
    with pytest.raises(GaldbError, match="GALDB_SQL_MAX_BYTES='lots' is not a size"):
        run_readonly(settings, "SELECT 1")


def test_out_streams_past_the_bound_that_printing_hits(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GALDB_SQL_MAX_BYTES", "5MiB")
    assert main(["sql", WIDE_ROWS, "--max-rows", "100"]) == 1
    assert "GALDB_SQL_MAX_BYTES" in capsys.readouterr().err
    out = tmp_path / "wide.csv"
    assert main(["sql", WIDE_ROWS, "--out", str(out)]) == 0
    assert "wrote 20 rows" in capsys.readouterr().out
    assert list(Table.read(out)["i"]) == list(range(1, 21))


def test_copy_to_stdout_is_one_line(settings, capsys):
    assert main(["sql", "COPY (SELECT 1) TO STDOUT"]) == 1
    assert "COPY" in capsys.readouterr().err


# The REVOKE behind it needs a superuser to run the migrations (README: 'Your own PostgreSQL
# server' states the limit elsewhere).
@pytest.mark.embedded
def test_reader_sessions_cannot_signal_each_other(settings, capsys):
    with connect_reader(settings) as other:
        other.execute("SELECT 1")
        for fn in ("pg_terminate_backend", "pg_cancel_backend"):
            query = f"SELECT {fn}(pid) FROM pg_stat_activity WHERE usename = current_user"
            assert main(["sql", query]) == 4
            assert "refused" in capsys.readouterr().err
        assert other.execute("SELECT 2").fetchone() == (2,)  # still alive


def test_out_exists_needs_force(settings, tmp_path, capsys):
    out = tmp_path / "r.csv"
    out.write_text("precious\n")
    assert main(["sql", "SELECT 1 AS a", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err and out.read_text() == "precious\n"
    assert main(["sql", "SELECT 1 AS a", "--out", str(out), "--force"]) == 0
    assert list(Table.read(out)["a"]) == [1]


@pytest.mark.parametrize("suffix", [".csv", ".vot", ".fits"])
def test_failure_midway_leaves_the_old_file(settings, tmp_path, capsys, suffix):
    out = tmp_path / f"r{suffix}"
    out.write_text("precious\n")
    assert main(["sql", FAILS_PAST_1000, "--out", str(out), "--force"]) == 1
    assert "division by zero" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert os.listdir(tmp_path) == [out.name]  # no temporary file left behind


@pytest.mark.parametrize(
    ("where", "message"), [("missing/r.csv", "no directory"), ("adir.csv", "is a directory")]
)
def test_unwritable_out_is_reported_before_the_query(settings, tmp_path, capsys, where, message):
    (tmp_path / "adir.csv").mkdir()
    assert main(["sql", "SELEKT broken", "--out", str(tmp_path / where)]) == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert message in err and "syntax" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_out_in_a_read_only_directory(settings, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(["sql", "SELECT 1", "--out", str(locked / "r.csv")]) == 1
    assert "Permission denied" in " ".join(capsys.readouterr().err.split())


def test_a_long_value_is_printed_cut(settings, capsys):
    assert main(["sql", "SELECT repeat('x', 100000) AS x"]) == 0
    out = capsys.readouterr().out
    assert "100,000 characters" in " ".join(out.split()) and out.count("x") < 3000
