"""`galdb sql`: reads work, every kind of write or escape is refused, nothing changes."""

import dataclasses

import pytest
from astropy.table import Table

from galdb.db.readonly import run_readonly
from galdb.errors import GaldbError, ReadOnlyViolation
from galdb.export import write_table

WRITES = [
    "UPDATE galdb.galaxies SET ra = 0",
    "DELETE FROM galdb.galaxies",
    "INSERT INTO galdb.surveys (name) VALUES ('evil')",
    "DROP TABLE galdb.galaxies",
    "TRUNCATE galdb.quarantine",
    "CREATE TABLE galdb.evil (x int)",
    "CREATE TEMP TABLE evil (x int)",
    "ALTER TABLE galdb.galaxies DROP COLUMN props",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/galdb-pwned'",
    "COPY galdb.surveys FROM PROGRAM 'echo 99'",
    "SELECT 1; DROP TABLE galdb.galaxies",
    "SELECT 1; COMMIT; DELETE FROM galdb.galaxies",
    "WITH d AS (DELETE FROM galdb.galaxies RETURNING 1) SELECT count(*) FROM d",
    "SELECT nextval('galdb.galaxies_galaxy_id_seq')",
    "SELECT setval('galdb.galaxies_galaxy_id_seq', 1)",
    "SELECT lo_import('/etc/hostname')",
    "SELECT pg_read_file('/etc/hostname')",
    "SET ROLE postgres",
    "SELECT set_config('role', 'postgres', false)",
    "GRANT ALL ON galdb.galaxies TO galdb_reader",
    "CREATE FUNCTION galdb.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "SELECT pg_reload_conf()",
]


@pytest.fixture
def seeded(conn, unique_release):
    conn.execute("INSERT INTO galdb.surveys (name) VALUES ('ro-test') ON CONFLICT DO NOTHING")
    conn.execute(
        "INSERT INTO galdb.releases (survey_id, name) "
        "SELECT survey_id, %s FROM galdb.surveys WHERE name = 'ro-test'",
        (unique_release,),
    )
    conn.execute(
        "INSERT INTO galdb.galaxies (release_id, source_id, ra, dec, props) "
        "SELECT release_id, 'g' || i, i, 0, jsonb_build_object('mag', 18 + i / 10.0) "
        "FROM galdb.releases, generate_series(1, 5) AS i WHERE name = %s",
        (unique_release,),
    )
    conn.commit()
    return unique_release


def _snapshot(conn):
    return conn.execute(
        "SELECT (SELECT count(*) FROM galdb.galaxies), (SELECT count(*) FROM galdb.surveys), "
        "(SELECT sum(ra) FROM galdb.galaxies), "
        "(SELECT last_value FROM galdb.galaxies_galaxy_id_seq)"
    ).fetchone()


def test_select_works(settings, seeded):
    result = run_readonly(
        settings,
        "SELECT source_id, (props->>'mag')::float AS mag FROM galdb.catalog "
        f"WHERE release = '{seeded}' ORDER BY source_id",
    )
    assert result.columns == ["source_id", "mag"]
    assert [r[0] for r in result.rows] == ["g1", "g2", "g3", "g4", "g5"]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_are_refused_and_change_nothing(settings, conn, seeded, statement):
    before = _snapshot(conn)
    with pytest.raises(ReadOnlyViolation, match="refused"):
        run_readonly(settings, statement)
    conn.rollback()
    assert _snapshot(conn) == before


def test_statement_timeout_cannot_be_lifted(settings):
    quick = dataclasses.replace(settings, statement_timeout_ms=300)
    with pytest.raises(GaldbError, match="timeout"):
        run_readonly(quick, "SELECT set_config('statement_timeout', '0', true), pg_sleep(3)")


def test_syntax_error_is_a_clear_message(settings):
    with pytest.raises(GaldbError, match="SQL error: .*syntax"):
        run_readonly(settings, "SELEKT 1")


def test_max_rows_truncates(settings):
    result = run_readonly(settings, "SELECT generate_series(1, 50) AS i", max_rows=10)
    assert len(result.rows) == 10 and result.truncated


@pytest.mark.parametrize("suffix", [".csv", ".ecsv", ".fits", ".parquet", ".vot"])
def test_export_round_trip(settings, seeded, tmp_path, suffix):
    result = run_readonly(
        settings,
        "SELECT galaxy_id, source_id, ra, props, NULL::float AS missing FROM galdb.catalog "
        f"WHERE release = '{seeded}' ORDER BY source_id",
    )
    out = tmp_path / f"result{suffix}"
    write_table(result.columns, result.rows, out)
    table = Table.read(out)
    assert len(table) == 5
    assert list(table["source_id"]) == ["g1", "g2", "g3", "g4", "g5"]
    assert list(table["ra"]) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_unknown_export_suffix(tmp_path):
    with pytest.raises(GaldbError, match="output format"):
        write_table(["a"], [(1,)], tmp_path / "x.xlsx")
