"""Tasks: a classification over fixed classes, a regression with a unit, or votes over the
answers of one question.

A task's name is also its predictions view (``galdb_tasks.<name>``) and its classes name that
view's probability columns (``p_<class>``), so both must be plain SQL identifiers; they are
checked here, with a message that says what would be accepted.

Namespaces: user-named objects (the task views) live in the schema ``galdb_tasks`` and
nothing else does; galdb's own objects live in ``galdb`` under fixed names or names made of
galdb ids. A task name therefore never takes a name galdb needs, whatever it is. The
database's search_path ends with ``galdb, galdb_tasks`` so ``SELECT … FROM morphology``
works; a name that an object earlier on that path would shadow is refused, since the user's
query would silently read the other object.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property

import psycopg

from galdb.errors import GaldbError
from galdb.heads.kinds import TaskKind, kind_class

NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
SOURCES = ("catalog", "human", "propagated")
VIEW_SCHEMA = "galdb_tasks"
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are cut silently
# schemas before galdb_tasks on the search_path (pg_catalog is always searched first); the
# "$user" schema is left out: it differs per login and galdb does not create it
SHADOWING_SCHEMAS = ("pg_catalog", "public", "galdb")
SELECTABLE_KINDS = ("r", "v", "m", "p", "f", "S")  # what `SELECT … FROM name` can read


@dataclass(frozen=True)
class Task:
    """A task as stored; ``kind_spec`` is its kind (:mod:`galdb.heads.kinds`), bound to it."""

    task_id: int
    name: str
    kind: str
    classes: tuple[str, ...] | None
    unit: str | None
    source_precedence: tuple[str, ...]
    current_version: int | None

    @cached_property
    def kind_spec(self) -> TaskKind:
        """What is specific to this task's kind: labels, head, predictions, review."""
        return kind_class(self.kind)(self)


def derived_identifiers(
    name: str, kind: str, classes: list[str] | tuple[str, ...] | None
) -> list[tuple[str, str]]:
    """Every SQL identifier made from a task's name or classes, as (what, identifier).

    Prediction tables are named from version ids only (see :mod:`galdb.heads.materialize`),
    so this is all a task's text can reach; :func:`create_task` checks each fits 63 bytes.
    """
    return [(f"view {VIEW_SCHEMA}.{name}", name), *kind_class(kind).derived_columns(classes)]


def check_identifiers(name: str, kind: str, classes) -> None:
    """Refuse a task whose derived identifiers PostgreSQL would truncate."""
    for what, identifier in derived_identifiers(name, kind, classes):
        size = len(identifier.encode())
        if size > MAX_IDENTIFIER_BYTES:
            raise GaldbError(
                f"task {name!r}: its {what} would be {identifier!r}, {size} bytes; PostgreSQL "
                f"keeps {MAX_IDENTIFIER_BYTES}: choose a shorter name"
            )


def shadowing_object(conn: psycopg.Connection, name: str) -> str | None:
    """The relation `SELECT … FROM <name>` would read instead of the task's view, if any."""
    row = conn.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = %s AND n.nspname = ANY(%s) AND c.relkind::text = ANY(%s) "
        "ORDER BY array_position(%s, n.nspname::text) LIMIT 1",
        (name, list(SHADOWING_SCHEMAS), list(SELECTABLE_KINDS), list(SHADOWING_SCHEMAS)),
    ).fetchone()
    return row[0] if row else None


_COLUMNS = "task_id, name, kind, classes, unit, source_precedence, current_version"


def _task(row) -> Task:
    tid, name, kind, classes, unit, precedence, current = row
    return Task(
        tid, name, kind, tuple(classes) if classes else None, unit, tuple(precedence), current
    )


def create_task(
    conn: psycopg.Connection,
    name: str,
    kind: str,
    *,
    classes: list[str] | None = None,
    unit: str | None = None,
    description: str = "",
    precedence: list[str] | None = None,
) -> Task:
    """Create a task; fails clearly on a bad or taken name or a bad class list.

    ``precedence`` orders the label sources when a galaxy has several labels (default:
    human, propagated, catalog).
    """
    precedence = precedence or ["human", "propagated", "catalog"]
    if sorted(precedence) != sorted(SOURCES):
        raise GaldbError(f"precedence {precedence}: give each of {', '.join(SOURCES)} once")
    if not NAME.match(name):
        raise GaldbError(
            f"task name {name!r} must be lowercase letters, digits and _ (starting with a "
            f"letter, at most 41 characters): it becomes the SQL view {VIEW_SCHEMA}.<name>"
        )
    classes = kind_class(kind).check_definition(classes, unit)
    check_identifiers(name, kind, classes)
    if conn.execute("SELECT 1 FROM galdb.tasks WHERE name = %s", (name,)).fetchone():
        raise GaldbError(f"task {name!r} exists already (galdb task list)")
    shadow = shadowing_object(conn, name)
    if shadow:
        raise GaldbError(
            f"task name {name!r}: SELECT … FROM {name} would read {shadow}, not the task's "
            f"view {VIEW_SCHEMA}.{name}; choose another name"
        )
    row = conn.execute(
        "INSERT INTO galdb.tasks (name, kind, classes, unit, description, source_precedence) "
        f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
        (name, kind, classes, unit, description, precedence),
    ).fetchone()
    conn.commit()
    return _task(row)


def get_task(conn: psycopg.Connection, name: str) -> Task:
    row = conn.execute(f"SELECT {_COLUMNS} FROM galdb.tasks WHERE name = %s", (name,)).fetchone()
    if row is None:
        known = [r[0] for r in conn.execute("SELECT name FROM galdb.tasks ORDER BY name")]
        raise GaldbError(
            f"no task {name!r} (known: {', '.join(known) or 'none'}); create it with "
            "galdb task create"
        )
    return _task(row)


def set_retrain_threshold(conn: psycopg.Connection, task: Task, corrections: int) -> None:
    """How many review corrections against the current version enqueue a retrain job (see
    :mod:`galdb.review.decisions`). Does not commit."""
    if corrections < 1:
        raise GaldbError(
            f"a retrain threshold is a number of corrections, 1 or more: {corrections}"
        )
    conn.execute(
        "UPDATE galdb.tasks SET retrain_threshold = %s WHERE task_id = %s",
        (corrections, task.task_id),
    )


def set_vote_weight(conn: psycopg.Connection, task: Task, weight: float) -> None:
    """How many votes a review decision on a vote task adds to its answer (read when a
    decision is recorded, so running review sessions use the new weight). Does not commit."""
    if task.kind != "votes":
        raise GaldbError(f"task {task.name} is a {task.kind} task: a vote weight needs votes")
    if not (math.isfinite(weight) and weight > 0):
        raise GaldbError(f"a vote weight is a number of votes, more than 0: {weight}")
    conn.execute(
        "UPDATE galdb.tasks SET vote_weight = %s WHERE task_id = %s", (weight, task.task_id)
    )


def list_tasks(conn: psycopg.Connection) -> list[tuple]:
    """One row per task with its label counts by source and its current head version."""
    return conn.execute(
        "SELECT t.name, t.kind, coalesce(array_to_string(t.classes, ','), t.unit, ''), "
        "count(l.*) FILTER (WHERE l.source = 'catalog'), "
        "count(l.*) FILTER (WHERE l.source = 'human'), "
        "count(l.*) FILTER (WHERE l.source = 'propagated'), t.current_version, "
        "t.retrain_threshold, CASE WHEN t.kind = 'votes' THEN t.vote_weight END "
        "FROM galdb.tasks t LEFT JOIN galdb.labels l USING (task_id) "
        "GROUP BY t.task_id ORDER BY t.name"
    ).fetchall()
