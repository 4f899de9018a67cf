"""One reviewer's session over a task's queue: what the review app (and the simulated reviewer
of ``galdb eval review``) drives.

A session owns its connection's transactions: every step (a claim, a decision, an undo, a
lease renewal) is committed at once, so leases and decisions are visible to the other
reviewers and to the worker immediately. The queue, lease and decision rules themselves are
in :mod:`galdb.review.queue` and :mod:`galdb.review.decisions`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import psycopg

from galdb.labels.store import shown_labels
from galdb.labels.tasks import Task
from galdb.lvm.pixels import PixelRef, pixel_columns
from galdb.review import queue
from galdb.review.decisions import Decision, corrections_since_current, decide, undo
from galdb.review.queue import Item, QueueFilters

PREFETCH = 3  # items leased ahead, so the next one shows without a round trip


@dataclass(frozen=True)
class Context:
    """What the app shows beside the prediction."""

    props: dict
    pixels: PixelRef | None  # None: a catalog-only galaxy
    labels: dict[str, str]  # source -> label (propagated, catalog, human by others)


@dataclass(frozen=True)
class Neighbour:
    galaxy_id: int
    source_id: str
    similarity: float
    label: str | None  # its effective label, if any
    pixels: PixelRef | None


@dataclass
class ReviewSession:
    conn: psycopg.Connection
    task: Task
    reviewer: str
    strategy: str = "margin"
    filters: QueueFilters = field(default_factory=QueueFilters)
    redo: bool = False
    similar_to: int | None = None
    session: str = field(default_factory=lambda: uuid.uuid4().hex)
    decisions: int = 0
    corrections: int = 0
    origin: str = "app"
    _ahead: list[Item] = field(default_factory=list)

    @property
    def prefetched(self) -> int:
        """Items leased ahead: the next call returns one of them without a round trip."""
        return len(self._ahead)

    def next_item(self) -> Item | None:
        """The next galaxy to review (leased to this session), or None when the queue is done."""
        if not self._ahead:
            self._ahead = queue.claim(
                self.conn,
                self.task,
                self.reviewer,
                self.session,
                n=PREFETCH,
                strategy=self.strategy,
                filters=self.filters,
                redo=self.redo,
                similar_to=self.similar_to,
            )
            self.conn.commit()
        return self._ahead.pop(0) if self._ahead else None

    def decide(self, item: Item, action: str, **kw) -> Decision:
        d = decide(
            self.conn,
            self.task,
            item,
            self.reviewer,
            action,
            session=self.session,
            origin=self.origin,
            **kw,
        )
        queue.release(self.conn, self.session, [item.galaxy_id])
        self.conn.commit()
        self.decisions += 1
        self.corrections += d.correction
        return d

    def undo(self) -> Item | None:
        """Undo the latest decision of this session; its galaxy is shown again (leased anew)."""
        d = undo(self.conn, self.task, self.reviewer, session=self.session, origin=self.origin)
        if d is None:
            self.conn.rollback()
            return None
        self.conn.execute(
            "SELECT * FROM galdb.lease_review_items(%s, %s, %s, %s, 1, %s, false)",
            (self.task.task_id, self.reviewer, self.session, [d.galaxy_id], queue.LEASE_SECONDS),
        )
        self.conn.commit()
        self.decisions += 1
        self.corrections += d.correction
        shown = queue.items(self.conn, self.task, [d.galaxy_id])
        return shown[0] if shown else None

    def put_back(self, item: Item) -> None:
        """Show ``item`` again before the others (after an undo, the current one waits)."""
        self._ahead.insert(0, item)

    def renew(self) -> None:
        queue.renew(self.conn, self.session)
        self.conn.commit()

    def close(self) -> None:
        """Quit: every lease of the session goes back to the queue."""
        self.conn.rollback()
        queue.release(self.conn, self.session)
        self.conn.commit()
        self._ahead.clear()

    # what the app shows around the item

    def context(self, item: Item) -> Context:
        props, *pixels = self.conn.execute(
            f"SELECT props, {pixel_columns()} FROM galdb.galaxies WHERE galaxy_id = %s",
            (item.galaxy_id,),
        ).fetchone()
        labels = {
            (src if src != "human" else f"human ({author})"): str(cls if cls is not None else val)
            for src, author, cls, val in self.conn.execute(
                "SELECT source, author, class, value FROM galdb.labels WHERE task_id = %s "
                "AND galaxy_id = %s ORDER BY source, created_at",
                (self.task.task_id, item.galaxy_id),
            )
        }
        self.conn.commit()
        return Context(props or {}, PixelRef.from_row(pixels), labels)

    def neighbours(self, item: Item, k: int = 6) -> list[Neighbour]:
        """The item's k most similar galaxies (for the current version's model) with labels."""
        (model,) = self.conn.execute(
            "SELECT model_id::text FROM galdb.head_versions WHERE version_id = %s",
            (item.head_version,),
        ).fetchone()
        rows = self.conn.execute(
            f"SELECT s.galaxy_id, g.source_id, 1 - s.distance, {pixel_columns('g')} "
            "FROM galdb.similar(%s, %s, %s) s JOIN galdb.galaxies g USING (galaxy_id) "
            "WHERE s.galaxy_id <> %s ORDER BY s.distance",
            (item.galaxy_id, k + 1, model, item.galaxy_id),
        ).fetchall()[:k]
        labels = shown_labels(self.conn, self.task, [r[0] for r in rows])
        self.conn.commit()
        return [
            Neighbour(r[0], r[1], float(r[2]), labels.get(r[0]), PixelRef.from_row(r[3:7]))
            for r in rows
        ]

    def status(self) -> dict:
        """Footer figures: decisions this session, corrections toward the threshold, version,
        the last retrain's metrics."""
        toward, threshold = corrections_since_current(self.conn, self.task)
        row = self.conn.execute(
            "SELECT v.version_id, v.metrics FROM galdb.tasks t JOIN galdb.head_versions v "
            "ON v.version_id = t.current_version WHERE t.task_id = %s",
            (self.task.task_id,),
        ).fetchone()
        self.conn.commit()
        version, metrics = row if row else (None, {})
        keys = ("cv_auc", "cv_balanced_accuracy", "cv_r2", "cv_rmse")
        return {
            "decisions": self.decisions,
            "corrections": self.corrections,
            "toward_retrain": toward,
            "threshold": threshold,
            "version": version,
            "metrics": {k: metrics[k] for k in keys if metrics and metrics.get(k) is not None},
        }
