"""The review queue of a task: which galaxies a reviewer sees next, and their leases.

Candidates come from the task's current predictions table, ordered by a strategy
(:data:`QUEUE_STRATEGIES`) and narrowed by filters (:class:`QueueFilters`). Each galaxy handed
out is leased to one reviewer session until an expiry: :func:`claim` picks candidates the
reviewer may see, then ``galdb.lease_review_items`` locks their galaxy rows ``FOR NO KEY
UPDATE SKIP LOCKED`` and writes the leases, so concurrent reviewers never get the same
galaxy and never wait for each other. A lease past its expiry is free again;
:func:`renew` extends a session's leases while they are on screen, :func:`release` ends
them.

Invariants:

- a galaxy is *decided* for a task (SQL ``galdb.review_decided_set``) when it has a human label
  (from a label or accept decision, or imported with ``--source human``), a flag that is not
  undone (by anyone) or a skip by this reviewer that is not undone; decided galaxies are
  left out unless ``redo`` (``flagged`` instead asks for flagged ones), and the lease
  function checks it again, so a galaxy decided while candidates were chosen is not handed
  out;
- nothing here commits: the caller owns the transaction (the CLI and the app commit after
  each claim so the leases are visible to others at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from galdb.errors import GaldbError
from galdb.heads.materialize import Current, current_predictions
from galdb.labels.tasks import Task
from galdb.review.strategies import STRATEGIES

QUEUE_STRATEGIES: tuple[str, ...] = (*STRATEGIES, "disagreement", "similar", "flagged")
LEASE_SECONDS = 600.0
SIMILAR_K = 200  # look-alikes considered by the ``similar`` strategy


@dataclass(frozen=True)
class QueueFilters:
    """What part of the catalog a review session covers (all optional)."""

    release: str | None = None
    cone: tuple[float, float, float] | None = None  # ra, dec, radius (deg)
    column: str | None = None  # a catalog column in props, with min and/or max
    min: float | None = None
    max: float | None = None
    predicted_class: str | None = None


@dataclass(frozen=True)
class Item:
    """One galaxy handed to a reviewer, with the prediction shown."""

    galaxy_id: int
    release: str
    source_id: str
    ra: float | None
    dec: float | None
    head_version: int
    predicted: str | float  # class name, or value for a regression
    confidence: float | None  # top class probability (classification)
    uncertainty: float | None  # 1 sigma (regression)
    probabilities: dict[str, float] | None


_NOT_DECIDED = sql.SQL("p.galaxy_id NOT IN (SELECT galdb.review_decided_set({task}, {reviewer}))")
_FLAGGED = sql.SQL(
    "EXISTS (SELECT 1 FROM galdb.review_decisions d WHERE d.task_id = {task} "
    "AND d.galaxy_id = p.galaxy_id AND d.action = 'flag' AND NOT EXISTS (SELECT 1 FROM "
    "galdb.review_decisions u WHERE u.undoes = d.decision_id) AND NOT EXISTS (SELECT 1 FROM "
    "galdb.review_decisions a WHERE a.task_id = d.task_id AND a.galaxy_id = d.galaxy_id "
    "AND a.action IN ('label', 'accept') AND a.decision_id > d.decision_id))"
)


def candidates_sql(
    conn: psycopg.Connection,
    task: Task,
    strategy: str,
    filters: QueueFilters,
    *,
    redo: bool = False,
    similar_to: int | None = None,
    current: Current | None = None,
) -> tuple[sql.Composed, dict]:
    """The query that lists candidate galaxy ids in review order (``%(limit)s`` rows), from
    ``current`` (the task's current version when not given)."""
    if strategy not in QUEUE_STRATEGIES:
        raise GaldbError(f"unknown strategy {strategy!r}; known: {', '.join(QUEUE_STRATEGIES)}")
    current = current or current_predictions(conn, task)
    params: dict = {"task": task.task_id}
    joins: list[sql.Composable] = []
    where: list[sql.Composable] = []
    task_p, reviewer_p = sql.Placeholder("task"), sql.Placeholder("reviewer")
    if strategy == "flagged":
        where.append(_FLAGGED.format(task=task_p))
    elif not redo:
        where.append(_NOT_DECIDED.format(task=task_p, reviewer=reviewer_p))
    if filters.release or filters.column:
        joins.append(sql.SQL("JOIN galdb.galaxies g USING (galaxy_id)"))
    if filters.release:
        joins.append(sql.SQL("JOIN galdb.releases r ON r.release_id = g.release_id"))
        where.append(sql.SQL("r.name = %(release)s"))
        params["release"] = filters.release
    if filters.column:
        where.append(sql.SQL("g.props ? %(column)s"))
        params["column"] = filters.column
        for bound, op in (("min", ">="), ("max", "<=")):
            if getattr(filters, bound) is not None:
                where.append(
                    sql.SQL(
                        "CASE WHEN jsonb_typeof(g.props->%(column)s) = 'number' "
                        "THEN (g.props->>%(column)s)::float8 END {} %({})s"
                    ).format(sql.SQL(op), sql.SQL(bound))
                )
                params[bound] = getattr(filters, bound)
    if filters.cone:
        joins.append(
            sql.SQL(
                "JOIN galdb.cone_search(%(cone_ra)s, %(cone_dec)s, %(cone_r)s) c USING (galaxy_id)"
            )
        )
        params.update(cone_ra=filters.cone[0], cone_dec=filters.cone[1], cone_r=filters.cone[2])
    if filters.predicted_class:
        clause, values = task.kind_spec.predicted_filter(filters.predicted_class)
        where.append(clause)
        params.update(values)
    if strategy == "similar":
        if similar_to is None:
            raise GaldbError("the similar strategy needs a galaxy (--similar-to ID)")
        joins.append(
            sql.SQL(
                "JOIN galdb.similar(%(similar_to)s, %(similar_k)s, %(model)s) s USING (galaxy_id)"
            )
        )
        params.update(similar_to=similar_to, similar_k=SIMILAR_K, model=str(current.model_id))
        order: sql.Composable = sql.SQL("s.distance, galaxy_id")
    elif strategy == "disagreement":
        order = task.kind_spec.disagreement(joins)
    elif strategy == "flagged":
        order = sql.SQL("galaxy_id")
    else:
        order = task.kind_spec.order_sql(conn, strategy)
    query = sql.SQL(
        "SELECT p.galaxy_id FROM {table} p {joins} {where} ORDER BY {order} LIMIT %(limit)s"
    )
    return (
        query.format(
            table=current.table,
            joins=sql.SQL(" ").join(joins),
            where=sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
            order=order,
        ),
        params,
    )


def claim(
    conn: psycopg.Connection,
    task: Task,
    reviewer: str,
    session: str,
    *,
    n: int = 1,
    strategy: str = "margin",
    filters: QueueFilters = QueueFilters(),
    redo: bool = False,
    similar_to: int | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> list[Item]:
    """Lease the next ``n`` galaxies of the queue to ``session``; fewer when the queue is
    running out. Does not commit."""
    current = current_predictions(conn, task)
    query, params = candidates_sql(
        conn, task, strategy, filters, redo=redo, similar_to=similar_to, current=current
    )
    leased: list[int] = []
    limit = 4 * n + 16
    for _ in range(4):  # others may hold the first candidates: look further down each time
        ids = [r[0] for r in conn.execute(query, params | {"reviewer": reviewer, "limit": limit})]
        fresh = [i for i in ids if i not in leased]
        leased += [
            r[0]
            for r in conn.execute(
                "SELECT * FROM galdb.lease_review_items(%s, %s, %s, %s, %s, %s, %s)",
                (
                    task.task_id,
                    reviewer,
                    session,
                    fresh,
                    n - len(leased),
                    lease_seconds,
                    not redo and strategy != "flagged",
                ),
            )
        ]
        if len(leased) >= n or len(ids) < limit:
            break
        limit *= 4
    return items(conn, task, leased, current)


def items(
    conn: psycopg.Connection, task: Task, galaxy_ids: list[int], current: Current | None = None
) -> list[Item]:
    """The galaxies with ``current``'s (the current version's) prediction, in the order given."""
    if not galaxy_ids:
        return []
    version, _, table = current or current_predictions(conn, task)
    kind = task.kind_spec
    rows = conn.execute(
        sql.SQL(
            "SELECT p.galaxy_id, r.name, g.source_id, g.ra, g.dec, {extra} FROM {table} p "
            "JOIN galdb.galaxies g USING (galaxy_id) JOIN galdb.releases r USING (release_id) "
            "WHERE p.galaxy_id = ANY(%s)"
        ).format(extra=kind.shown_fields(), table=table),
        (galaxy_ids,),
    ).fetchall()
    by_id = {r[0]: r for r in rows}
    out = []
    for gid in galaxy_ids:
        if gid not in by_id:
            continue
        gid, release, source_id, ra, dec, *rest = by_id[gid]
        shown = kind.shown(tuple(rest))
        out.append(
            Item(
                gid,
                release,
                source_id,
                ra,
                dec,
                version,
                shown.predicted,
                shown.confidence,
                shown.uncertainty,
                shown.probabilities,
            )
        )
    return out


def renew(conn: psycopg.Connection, session: str, lease_seconds: float = LEASE_SECONDS) -> int:
    """Extend every lease of a session (the app calls it while items are on screen)."""
    return conn.execute(
        "UPDATE galdb.review_leases SET expires_at = clock_timestamp() + make_interval(secs => %s) "
        "WHERE session = %s",
        (lease_seconds, session),
    ).rowcount


def release(conn: psycopg.Connection, session: str, galaxy_ids: list[int] | None = None) -> int:
    """End a session's leases (all, or those of ``galaxy_ids``): the galaxies go back to the
    queue."""
    if galaxy_ids is None:
        return conn.execute(
            "DELETE FROM galdb.review_leases WHERE session = %s", (session,)
        ).rowcount
    return conn.execute(
        "DELETE FROM galdb.review_leases WHERE session = %s AND galaxy_id = ANY(%s)",
        (session, galaxy_ids),
    ).rowcount
