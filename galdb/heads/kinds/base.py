"""What a task kind is: everything that differs between a classification, a regression and
any later kind (detection, restoration), in one object.

A :class:`TaskKind` is bound to one task (``task.kind_spec``); the code that stores labels,
trains heads, writes predictions, orders the review queue, records decisions, propagates
labels and evaluates calls it instead of asking which kind the task is. Two forms of a
label travel through galdb:

- the *label*, as stored in ``galdb.labels`` (column :attr:`TaskKind.label_column` of SQL
  type :attr:`TaskKind.label_type`): a class name, a value;
- the *target*, what a head learns and predicts (SQL type :attr:`TaskKind.target_type`): a
  class index, a value.

A new kind subclasses :class:`TaskKind` in its own module of :mod:`galdb.heads.kinds` and is
registered there (one line); the ``tasks.kind`` CHECK constraint gains its name in a new
migration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import psycopg
from psycopg import sql

from galdb.errors import GaldbError

if TYPE_CHECKING:
    from galdb.labels.tasks import Task
    from galdb.review.queue import Item


@dataclass(frozen=True)
class Spread:
    """Labels spread over a graph from seed targets (see :meth:`TaskKind.spread`).

    Attributes
    ----------
    targets : np.ndarray
        ``(n,)`` the target each node gets (meaningful where ``reached``).
    confidence : np.ndarray
        ``(n,)`` float32 in [0, 1].
    reached : np.ndarray
        ``(n,)`` bool, nodes some seed reached.
    prediction : np.ndarray
        Per node, the form :meth:`TaskKind.score` takes (a guess for every node).
    iterations : int
        Iterations run (-1 where the algorithm does not count them).
    """

    targets: np.ndarray
    confidence: np.ndarray
    reached: np.ndarray
    prediction: np.ndarray
    iterations: int


@dataclass(frozen=True)
class Shown:
    """A prediction as the review queue shows it (see :class:`galdb.review.queue.Item`)."""

    predicted: str | float
    confidence: float | None
    uncertainty: float | None
    probabilities: dict[str, float] | None


class TaskKind:
    """One kind of task, bound to a task. Subclasses set the class attributes and implement
    every method that raises ``NotImplementedError`` here."""

    name: ClassVar[str]
    label_column: ClassVar[str]  # column of galdb.labels; review_decisions has answer_/shown_<it>
    label_type: ClassVar[str]  # SQL type of that column
    target_type: ClassVar[str]  # SQL type of a target (staging of propagated labels)
    discrete: ClassVar[bool]  # targets are categories: one per category drawn first, stratified
    metric: ClassVar[str]  # what :meth:`score` measures (e.g. "auc", "r2")
    summary_metrics: ClassVar[tuple[str, ...]]  # cross-validated metrics listed per version
    tunable: ClassVar[tuple[str, ...]] = ()  # hyperparameters the CLI may set (e.g. "C")

    def __init__(self, task: Task) -> None:
        self.task = task

    # definition (before the task exists)

    @classmethod
    def check_definition(cls, classes: list[str] | None, unit: str | None) -> list[str] | None:
        """The task's classes as stored (None when the kind has none); raises GaldbError."""
        raise NotImplementedError

    @classmethod
    def derived_columns(cls, classes) -> list[tuple[str, str]]:
        """(what, identifier) of the view columns named after the task's definition."""
        return []

    # labels

    def parse_label(self, raw: object, mapping: dict[str, str] | None = None) -> str | float:
        """A raw label (file cell, catalog value, reviewer's answer) as stored.

        Raises
        ------
        ValueError
            Empty or not a label of this task; the message starts with what was given.
        """
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() == "":
            raise ValueError("empty label")
        return self._parse(str(raw).strip(), mapping or {})

    def _parse(self, text: str, mapping: dict[str, str]) -> str | float:
        raise NotImplementedError

    @property
    def answer_column(self) -> str:
        """What a review decision's answer is: ``review_decisions.answer_<it>`` and
        ``shown_<it>`` (the label column, unless the kind answers otherwise)."""
        return self.label_column

    def parse_answer(self, raw: object) -> str | float:
        """A reviewer's answer as stored in :attr:`answer_column` (raises ValueError)."""
        return self.parse_label(raw)

    def human_label(self, conn: psycopg.Connection, answer):
        """The reviewer's human label (in :attr:`label_column`) that an answer makes now."""
        return answer

    def targets(self, labels: list) -> np.ndarray:
        """Stored labels as head targets."""
        raise NotImplementedError

    def labels(self, targets: np.ndarray) -> list:
        """Head targets as stored labels."""
        raise NotImplementedError

    def label_sql(self, target: sql.Composable) -> sql.Composable:
        """SQL turning a target expression into the stored label (``galdb.tasks`` as ``t``)."""
        raise NotImplementedError

    def label_counts(self, targets: np.ndarray) -> dict:
        """What a head version records about its labels (``head_versions.label_counts``)."""
        raise NotImplementedError

    def differs(self, answer, shown) -> bool:
        """Whether a reviewer's answer corrects the prediction shown."""
        raise NotImplementedError

    # heads

    def new_head(self, **hyperparameters):
        raise NotImplementedError

    def load_head(self, data: bytes):
        raise NotImplementedError

    def predict(self, head, vectors: np.ndarray) -> np.ndarray:
        """A fitted head's prediction, in the form :meth:`score` and :meth:`review_order`
        take."""
        raise NotImplementedError

    def score(self, truth: np.ndarray, prediction: np.ndarray) -> float:
        """:attr:`metric` of a prediction against true targets."""
        raise NotImplementedError

    def spread(self, adjacency, seeds: np.ndarray, targets: np.ndarray, fixed, alpha) -> Spread:
        """Spread ``targets`` at node indices ``seeds`` over the graph."""
        raise NotImplementedError

    def review_order(self, strategy: str, prediction, labelled: np.ndarray, rng, exclude):
        """Indices of ``prediction``'s rows in review order, without the ``exclude``d ones
        (the numpy form of :meth:`order_sql`; ``labelled`` are the targets so far)."""
        raise NotImplementedError

    def baseline(self, train_images, targets: np.ndarray, test_images, config) -> np.ndarray:
        """Prediction of a network trained from scratch on the images (the seed paper's
        baseline of ``galdb eval fewshot``)."""
        raise NotImplementedError

    # predictions table and view

    def prediction_columns(self) -> list[tuple[str, str]]:
        """(column, SQL type) of a predictions table after ``galaxy_id``, in the order of the
        head's ``prediction_columns``."""
        raise NotImplementedError

    def view_fields(self) -> list[sql.Composable]:
        """The task view's prediction fields, from a predictions table aliased ``p``."""
        raise NotImplementedError

    # review

    def queue_index_keys(self) -> list[str]:
        """Key of each index a predictions table gets, one per review-queue order
        (:meth:`order_sql`), so the next item is an index scan even on millions of rows."""
        raise NotImplementedError

    def order_sql(self, conn: psycopg.Connection, strategy: str) -> sql.Composable:
        """ORDER BY of a queue strategy over the predictions table ``p``."""
        raise NotImplementedError

    def disagreement(self, joins: list) -> sql.Composable:
        """The ``disagreement`` strategy: appends its join, returns its ORDER BY."""
        raise GaldbError(f"strategy disagreement needs a classification task, not {self.name}")

    def predicted_filter(self, predicted: str) -> tuple[sql.Composable, dict]:
        """WHERE clause (and its parameters) keeping galaxies predicted as ``predicted``."""
        raise GaldbError(
            f"--predicted {predicted!r}: {self.task.name} is a {self.name} task, without classes"
        )

    def shown_fields(self) -> sql.Composable:
        """Columns of the predictions table ``p`` that :meth:`shown` reads."""
        raise NotImplementedError

    def shown(self, row: tuple) -> Shown:
        raise NotImplementedError

    def prediction_text(self, item: Item, keys: dict[str, str]) -> str:
        """The prediction as the review app prints it."""
        raise NotImplementedError

    def answer_keys(self) -> dict[str, str]:
        """Key -> answer for one-key labels in the review app."""
        return {}

    def typed_answer_starts(self, key: str) -> bool:
        """Whether ``key`` opens a typed answer (e.g. a number) in the review app."""
        return False
