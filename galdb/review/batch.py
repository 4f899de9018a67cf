"""Decisions made outside the app: ``galdb review apply`` (a table of decisions, e.g. a
citizen-science export) and ``galdb review export`` (the audit, joined to the catalog).

Applied rows go through :func:`galdb.review.decisions.decide`, exactly as a reviewer's keys
do: each becomes an audit row, a human label and, when it crosses the threshold, a retrain
job. The prediction recorded as shown is the task's current version's for that galaxy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from galdb.errors import GaldbError
from galdb.ingest.catalog import column_values, read_chunks
from galdb.labels.tasks import Task
from galdb.review.decisions import decide
from galdb.review.queue import items

MAX_PROBLEMS = 1000


@dataclass
class ApplySummary:
    read: int = 0
    applied: int = 0
    corrections: int = 0
    jobs: list[int] = field(default_factory=list)
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # row, id, reason
    n_problems: int = 0

    def note(self, row: int, source_id: str, reason: str) -> None:
        self.n_problems += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append((row, source_id, reason))


def decision_rows(
    path: Path, id_col: str, answer_col: str, action_col: str | None
) -> Iterator[list[tuple[int, str, object, str, str | None, str]]]:
    """Chunks of (row, source id, answer, action, flag reason, note) from a table file."""
    row = 1
    for table in read_chunks(path):
        for name in (id_col, answer_col, action_col):
            if name and name not in table.colnames:
                raise GaldbError(f"{path}: no column {name!r} (columns: {table.colnames})")
        n = len(table)

        def col(name, n=n, table=table):
            return column_values(table, name) if name and name in table.colnames else [None] * n

        ids, answers = col(id_col), col(answer_col)
        actions, reasons, notes = col(action_col), col("flag_reason"), col("note")
        yield [
            (
                row + i,
                str(ids[i]) if ids[i] is not None else "",
                answers[i],
                str(actions[i] or "label").strip().lower(),
                reasons[i],
                str(notes[i] or ""),
            )
            for i in range(n)
        ]
        row += n


def apply_decisions(
    conn: psycopg.Connection,
    task: Task,
    release_id: int,
    chunks,
    reviewer: str,
    *,
    origin: str = "",
) -> ApplySummary:
    """Apply decision rows for galaxies of one release. Commits once per chunk (a bulk load:
    an interrupted apply keeps whole chunks; every row is still one decision)."""
    summary = ApplySummary()
    for chunk in chunks:
        summary.read += len(chunk)
        ids = dict(
            conn.execute(
                "SELECT source_id, galaxy_id FROM galdb.galaxies WHERE release_id = %s "
                "AND source_id = ANY(%s)",
                (release_id, [r[1] for r in chunk]),
            ).fetchall()
        )
        shown = {i.galaxy_id: i for i in items(conn, task, list(ids.values()))}
        for row, source_id, answer, action, reason, note in chunk:
            galaxy_id = ids.get(source_id)
            if galaxy_id is None:
                summary.note(row, source_id, "no galaxy with this id in the release")
                continue
            if galaxy_id not in shown:
                summary.note(row, source_id, "the current version has no prediction for it")
                continue
            try:
                with conn.transaction():
                    d = decide(
                        conn,
                        task,
                        shown[galaxy_id],
                        reviewer,
                        action,
                        answer=answer if action == "label" else None,
                        flag_reason=reason if action == "flag" else None,
                        note=note,
                        origin=origin,
                    )
            except GaldbError as exc:
                summary.note(row, source_id, str(exc))
                continue
            summary.applied += 1
            summary.corrections += d.correction
            if d.retrain_job:
                summary.jobs.append(d.retrain_job)
        conn.commit()
    return summary


EXPORT_COLUMNS = [
    "decision_id",
    "task",
    "release",
    "source_id",
    "ra",
    "dec",
    "reviewer",
    "decided_at",
    "action",
    "answer",
    "head_version",
    "shown",
    "shown_confidence",
    "correction",
    "flag_reason",
    "note",
    "undoes",
    "origin",
]


def export_sql() -> str:
    """Every decision of a task, oldest first, with the galaxy's identity and position."""
    return (
        "SELECT d.decision_id, t.name, r.name, g.source_id, g.ra, g.dec, d.reviewer, "
        "d.decided_at, d.action, coalesce(d.answer_class, d.answer_value::text), "
        "d.head_version, coalesce(d.shown_class, d.shown_value::text), d.shown_confidence, "
        "d.correction, d.flag_reason, d.note, d.undoes, d.origin "
        "FROM galdb.review_decisions d JOIN galdb.tasks t USING (task_id) "
        "JOIN galdb.galaxies g USING (galaxy_id) JOIN galdb.releases r USING (release_id) "
        "WHERE d.task_id = %s ORDER BY d.decision_id"
    )
