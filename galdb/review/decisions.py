"""Reviewers' decisions: the append-only audit, the human labels they make, and the retrain
trigger.

:func:`decide` is the one service function behind every decision, whoever takes it (the
review app, ``galdb review apply``, the simulated reviewer of ``galdb eval review``). In the
caller's transaction (nothing here commits) it

1. appends a row to ``galdb.review_decisions`` (reviewer, time, galaxy, task, the head version
   and prediction shown, the answer, the action, a flag reason, a note);
2. for a label or an accept, writes the reviewer's ``human`` label (one per task, galaxy and
   reviewer; a later answer replaces it), as the task's kind makes it from the answer (for a
   vote task: the task's ``vote_weight`` votes for the answer, added to the galaxy's votes);
   an undo restores the label the reviewer had before the undone decision, or removes it;
3. counts the corrections (labels that differ from the prediction shown, minus undone ones)
   against the task's current version and, when this decision makes the count reach a
   multiple of the task's ``retrain_threshold``, enqueues one ``retrain`` job. The count is
   taken under a per-task transaction lock, and the job's dedupe key names the crossing, so
   reviewers crossing the threshold at the same moment make exactly one job.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from galdb.db import locks
from galdb.errors import GaldbError
from galdb.jobs.queue import enqueue
from galdb.labels.tasks import Task
from galdb.review.queue import Item

ACTIONS = ("label", "accept", "flag", "skip", "undo")
FLAG_REASONS = ("artefact", "interesting", "unsure")
RETRAIN_LOCK = locks.RETRAIN_COUNT  # (namespace, task_id) around the threshold count


@dataclass(frozen=True)
class Decision:
    decision_id: int
    galaxy_id: int
    action: str
    answer: str | float | None
    correction: int
    retrain_job: int | None  # the job this decision enqueued, if it crossed the threshold


def _answer(task: Task, answer) -> str | float:
    """A reviewer's answer as the task's kind stores it (parsed as an imported label is)."""
    try:
        return task.kind_spec.parse_answer(answer)
    except ValueError as exc:
        raise GaldbError(f"reviewer's answer: {exc}") from None


def decide(
    conn: psycopg.Connection,
    task: Task,
    item: Item,
    reviewer: str,
    action: str,
    *,
    answer=None,
    flag_reason: str | None = None,
    note: str = "",
    session: str = "",
    origin: str = "",
) -> Decision:
    """Record one decision on a galaxy shown with ``item``'s prediction (see the module
    docstring). ``answer`` is needed for ``label``; ``accept`` takes the prediction shown.
    Does not commit."""
    if action not in ACTIONS or action == "undo":
        raise GaldbError(f"action {action!r}: use one of label, accept, flag, skip (undo: undo())")
    if not reviewer or len(reviewer) > 100:
        raise GaldbError("a reviewer name of 1 to 100 characters is needed")
    if action == "flag" and flag_reason not in FLAG_REASONS:
        raise GaldbError(f"flag reason {flag_reason!r}: use one of {', '.join(FLAG_REASONS)}")
    if action != "flag" and flag_reason is not None:
        raise GaldbError("a flag reason goes with the flag action only")
    if action == "label":
        if answer is None:
            raise GaldbError("a label decision needs an answer")
        answer = _answer(task, answer)
    elif action == "accept":
        answer = item.predicted
    else:
        answer = None
    correction = int(action == "label" and task.kind_spec.differs(answer, item.predicted))
    decision_id = _insert(
        conn, task, item, reviewer, action, answer, correction, flag_reason, note, session, origin
    )
    if answer is not None:
        _set_label(conn, task, item.galaxy_id, reviewer, answer, f"review:{decision_id}")
    job = _maybe_retrain(conn, task) if correction else None
    return Decision(decision_id, item.galaxy_id, action, answer, correction, job)


def _insert(
    conn,
    task,
    item,
    reviewer,
    action,
    answer,
    correction,
    flag_reason,
    note,
    session,
    origin,
    undoes=None,
) -> int:
    column = task.kind_spec.answer_column  # answer_<column>, shown_<column>
    return conn.execute(
        sql.SQL(
            "INSERT INTO galdb.review_decisions (task_id, galaxy_id, reviewer, session, action, "
            "{answer}, head_version, {shown}, shown_confidence, correction, flag_reason, note, "
            "undoes, origin) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING decision_id"
        ).format(
            answer=sql.Identifier(f"answer_{column}"), shown=sql.Identifier(f"shown_{column}")
        ),
        (
            task.task_id,
            item.galaxy_id,
            reviewer,
            session,
            action,
            answer,
            item.head_version,
            item.predicted,
            item.confidence,
            correction,
            flag_reason,
            note,
            undoes,
            origin,
        ),
    ).fetchone()[0]


def _set_label(conn, task: Task, galaxy_id: int, reviewer: str, answer, origin: str) -> None:
    """The reviewer's human label that ``answer`` makes (the kind's: the answer itself, or
    for a vote task the reviewer's weighted vote for it)."""
    conn.execute(
        sql.SQL(
            "INSERT INTO galdb.labels "
            "(task_id, galaxy_id, source, author, {column}, origin, created_at) "
            "VALUES (%s, %s, 'human', %s, %s, %s, now()) ON CONFLICT (task_id, galaxy_id, "
            "source, author) DO UPDATE SET {column} = EXCLUDED.{column}, "
            # EXCLUDED, not now(): Citus refuses non-immutable functions in DO UPDATE
            "origin = EXCLUDED.origin, created_at = EXCLUDED.created_at"
        ).format(column=sql.Identifier(task.kind_spec.label_column)),
        (task.task_id, galaxy_id, reviewer, task.kind_spec.human_label(conn, answer), origin),
    )


def undo(
    conn: psycopg.Connection, task: Task, reviewer: str, *, session: str = "", origin: str = ""
) -> Decision | None:
    """Undo the reviewer's latest decision on the task that is not undone yet (a new audit row
    naming it); the human label goes back to what it was before. ``None`` when there is
    nothing to undo. Does not commit."""
    row = conn.execute(
        sql.SQL(
            "SELECT d.decision_id, d.galaxy_id, d.action, d.head_version, d.{shown}, "
            "d.shown_confidence, d.correction FROM galdb.review_decisions d "
            "WHERE d.task_id = %s AND d.reviewer = %s AND d.action <> 'undo' "
            "AND (%s = '' OR d.session = %s) AND NOT EXISTS (SELECT 1 FROM "
            "galdb.review_decisions u WHERE u.undoes = d.decision_id) "
            "ORDER BY d.decision_id DESC LIMIT 1"
        ).format(shown=sql.Identifier(f"shown_{task.kind_spec.answer_column}")),
        (task.task_id, reviewer, session, session),
    ).fetchone()
    if row is None:
        return None
    undone, galaxy_id, action, version, shown, confidence, correction = row
    item = Item(galaxy_id, "", "", None, None, version, shown, confidence, None, None)
    decision_id = _insert(
        conn,
        task,
        item,
        reviewer,
        "undo",
        None,
        -correction,
        None,
        "",
        session,
        origin,
        undoes=undone,
    )
    if action in ("label", "accept"):
        _restore_label(conn, task, galaxy_id, reviewer, decision_id)
    return Decision(decision_id, galaxy_id, "undo", None, -correction, None)


def _restore_label(conn, task: Task, galaxy_id: int, reviewer: str, decision_id: int) -> None:
    """The reviewer's label of a galaxy becomes their latest answer that still stands."""
    previous = conn.execute(
        sql.SQL(
            "SELECT d.{answer}, d.decision_id FROM galdb.review_decisions d "
            "WHERE d.task_id = %s AND d.galaxy_id = %s AND d.reviewer = %s "
            "AND d.action IN ('label', 'accept') AND NOT EXISTS (SELECT 1 FROM "
            "galdb.review_decisions u WHERE u.undoes = d.decision_id) "
            "ORDER BY d.decision_id DESC LIMIT 1"
        ).format(answer=sql.Identifier(f"answer_{task.kind_spec.answer_column}")),
        (task.task_id, galaxy_id, reviewer),
    ).fetchone()
    if previous is None:
        conn.execute(
            "DELETE FROM galdb.labels WHERE task_id = %s AND galaxy_id = %s "
            "AND source = 'human' AND author = %s",
            (task.task_id, galaxy_id, reviewer),
        )
        return
    answer, decision = previous
    _set_label(conn, task, galaxy_id, reviewer, answer, f"review:{decision}")


def corrections_since_current(conn: psycopg.Connection, task: Task) -> tuple[int, int]:
    """(corrections against the current version, the task's retrain threshold)."""
    return conn.execute(
        "SELECT coalesce(sum(d.correction), 0)::int, t.retrain_threshold FROM galdb.tasks t "
        "LEFT JOIN galdb.review_decisions d ON d.task_id = t.task_id "
        "AND d.head_version = t.current_version AND d.correction <> 0 "
        "WHERE t.task_id = %s GROUP BY t.retrain_threshold",
        (task.task_id,),
    ).fetchone()


def _maybe_retrain(conn, task: Task) -> int | None:
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (RETRAIN_LOCK, task.task_id))
    count, threshold = corrections_since_current(conn, task)
    if count <= 0 or count % threshold:
        return None
    version = conn.execute(
        "SELECT current_version FROM galdb.tasks WHERE task_id = %s", (task.task_id,)
    ).fetchone()[0]
    return enqueue(
        conn,
        "retrain",
        {"task": task.name, "after_version": version, "corrections": count},
        dedupe_key=f"retrain:{task.task_id}:v{version}:{count // threshold}",
    )
