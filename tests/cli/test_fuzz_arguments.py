"""Property-based: arbitrary strings in every CLI argument that becomes an SQL identifier or
value give a clear error or a correct result, never a traceback, and change the schema only
as the command should (none of these commands creates a table, view, function or schema).

Arguments arrive from a shell, so they never hold NUL; anything else goes: quotes, ``;``,
SQL, markup brackets, option-like dashes, very long and non-ASCII strings. Positional
arguments follow ``--``, as a script passing arbitrary values would write them.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as fuzz_settings
from hypothesis import strategies as st

from galdb.cli import main
from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.db.connect import connect

NASTY = [
    "",
    " ",
    "-",
    "--",
    "--help",
    "-r",
    "'",
    '"',
    ";",
    "'; DROP TABLE galdb.galaxies; --",
    "galdb.galaxies",
    "embeddings_m1",
    "catalog",
    "pg_catalog.pg_class",
    "[bold]x[/]",
    "[/]",
    "%s",
    "%(x)s",
    "{}",
    "\\",
    "a" * 300,
    "Ångström",
    "名前",
    "e\u0301",
    "1e309",
    "nan",
    "-0",
    "0x10",
    "$HOME",
    "`id`",
    "*",
    "%",
    "_",
    "NULL",
    "null",
]
TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40),
)
EXIT = {0, 1, 2, 5}  # success, usage or input error, typer usage error, nothing ingested
FUZZ = fuzz_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def schema(conn) -> set:
    conn.rollback()
    rows = conn.execute(
        "SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'galdb%%' "
        "UNION ALL SELECT n.nspname, p.proname || '(' || "
        "pg_get_function_identity_arguments(p.oid) || ')', 'f' FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname LIKE 'galdb%%' "
        "UNION ALL SELECT nspname, '', 'n' FROM pg_namespace"
    ).fetchall()
    conn.rollback()
    return set(rows)


@pytest.fixture(scope="module")
def world(settings):
    """A release with embeddings and a task, so valid-looking arguments reach the database."""
    release = f"fuzz-{uuid.uuid4().hex[:6]}"
    vectors, _ = clustered_vectors(60, 8, 2, seed=1)
    with connect(settings) as conn:
        record, _ = store_vectors(conn, vectors, release, f"synthetic:{release}")
        conn.commit()
    task = f"fuzz_{uuid.uuid4().hex[:6]}"
    assert main(["task", "create", task, "--classes", "a,b"]) == 0
    return {"release": release, "model": str(record.model_id), "task": task}


def run(conn, capsys, argv: list[str]) -> int:
    before = schema(conn)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in EXIT, (argv, code, err)
    if code:  # one clear line, or typer's usage message
        assert err.strip(), argv
        assert "Traceback" not in err, err
    assert schema(conn) == before, argv
    return code


@FUZZ
@given(name=TEXT, classes=st.lists(TEXT, min_size=1, max_size=3))
def test_task_create(conn, capsys, name, classes):
    code = run(conn, capsys, ["task", "create", "--classes", ",".join(classes), "--", name])
    if code == 0:  # the task is there, under exactly that name
        row = conn.execute("SELECT name FROM galdb.tasks WHERE name = %s", (name,)).fetchone()
        conn.rollback()
        assert row == (name,)


@FUZZ
@given(unit=TEXT)
def test_regression_task_unit(conn, capsys, unit):
    name = f"fz_{uuid.uuid4().hex[:8]}"
    if run(conn, capsys, ["task", "create", name, "--kind", "regression", "--unit", unit]) == 0:
        got = conn.execute("SELECT unit FROM galdb.tasks WHERE name = %s", (name,)).fetchone()
        conn.rollback()
        assert got == (unit,)


@FUZZ
@given(task=TEXT, release=TEXT, column=TEXT)
def test_label_import_column(conn, capsys, world, task, release, column):
    run(conn, capsys, ["label", "import", "--task", task, "-r", release, "--column", column])
    run(conn, capsys, ["label", "import", "--task", world["task"], "-r", world["release"],
                       "--column", column])  # fmt: skip


@FUZZ
@given(ra=TEXT, dec=TEXT, radius=TEXT, release=TEXT)
def test_cone(conn, capsys, ra, dec, radius, release):
    run(conn, capsys, ["cone", "--", ra, dec, radius])
    run(conn, capsys, ["cone", "10", "-5", "2arcmin", "--release", release])


@FUZZ
@given(model=TEXT, like=TEXT, column=TEXT, release=TEXT)
def test_search(conn, capsys, world, model, like, column, release):
    run(conn, capsys, ["search", "-m", model, "--like", like])
    run(conn, capsys, ["search", "-m", world["model"], "--like", like, "--release", release])
    run(conn, capsys, ["search", "-m", world["model"], "--like", "v00000001", "--column",
                       column, "--min", "0"])  # fmt: skip


@FUZZ
@given(release=TEXT, survey=TEXT, source_id=TEXT)
def test_ingest_names(conn, capsys, tmp_path_factory, release, survey, source_id):
    path = tmp_path_factory.mktemp("fuzz") / "cat.csv"
    quoted = '"' + source_id.replace('"', '""') + '"'
    path.write_text(f"source_id,ra,dec\n{quoted},10.0,-5.0\nok1,10.1,-5.1\n", encoding="utf-8")
    code = run(conn, capsys, ["ingest", str(path), "--release", release, "--survey", survey])
    if code == 0:
        got = conn.execute(
            "SELECT count(*) FROM galdb.catalog WHERE release = %s AND source_id = 'ok1'",
            (release,),
        ).fetchone()
        conn.rollback()
        assert got == (1,)


@FUZZ
@given(task=TEXT, model=TEXT, reviewer=TEXT)
def test_head_review_and_jobs(conn, capsys, world, task, model, reviewer):
    run(conn, capsys, ["head", "train", "--task", task, "--model", model, "--no-predict"])
    run(conn, capsys, ["head", "list", "--task", task])
    run(conn, capsys, ["review", "stats", "--task", task])
    run(conn, capsys, ["jobs", "show", task])
    run(conn, capsys, ["propagate", "--task", task, "--model", model])


@FUZZ
@given(new=TEXT, old=TEXT, radius=TEXT)
def test_release_match(conn, capsys, world, new, old, radius):
    run(conn, capsys, ["release", "match", "--to", old, "--radius", radius, "--", new])
    run(conn, capsys, ["release", "match", "--to", old, "--", world["release"]])
    run(conn, capsys, ["release", "match", "--to", world["release"], "--radius", radius, "--",
                       world["release"]])  # fmt: skip
