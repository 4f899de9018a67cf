"""Votes: a label is the number of volunteer votes for each answer of one question.

A vote task's answers are stored as its ``classes`` (they name the view's ``p_<answer>``
columns, as classes do). A label is ``labels.counts``, a ``real[]`` in answer order (counts
made from fractions times a total need not be integers); for a galaxy, the label that counts
is the sum of every label's votes (the volunteers' counts plus each reviewer's vote, see
``galdb.effective_labels_of``). A head's target is that vector; it predicts the expected
fraction per answer. The predictions table has ``class_index`` (the answer with the largest
expected fraction, the view's ``label``), ``p_<answer>`` (expected fraction), ``sd_<answer>``
(its standard deviation), ``concentration`` (the Dirichlet's total: how sharply the fractions
are known), and ``confidence``, ``margin``, ``entropy`` of the expected fractions, so the
review queue orders a vote task as it does a classification.

A review decision answers with one answer; it becomes the reviewer's human label of
``vote_weight`` votes (``galdb task set NAME --vote-weight W``) for that answer, added to the
galaxy's other votes. Import takes per-answer counts, or fractions with a total
(:func:`counts_from`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from psycopg import sql

from galdb.errors import GaldbError
from galdb.heads.kinds.base import Spread
from galdb.heads.kinds.classification import Classification, probability_column
from galdb.review.strategies import order_by_sql, queue_order

FRACTION_SUM_TOLERANCE = 0.02  # fractions of one question's answers sum to 1 within this


def sigma_column(answer: str) -> str:
    """The column of a vote task's view with the standard deviation of an answer's fraction."""
    return f"sd_{answer}"


def _number(text, what: str) -> float:
    try:
        number = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} {text!r} is not finite")
    return number


def counts_from(
    raw: Mapping | Sequence | str, n_answers: int, answers: Sequence[str] = ()
) -> list[float]:
    """Vote counts from what an import or a file gives.

    ``raw`` is a sequence of ``n_answers`` counts, a text ``"n1,n2,…"``, ``{"counts": […]}``
    or ``{"fractions": […], "total": N}`` (the fractions of every answer, summing to 1, and
    the number of votes they were measured on).

    Raises
    ------
    ValueError
        A count or fraction that is not a finite number >= 0, the wrong number of them, no
        vote at all, fractions not summing to 1, or fractions without a total; the message
        starts with the label as given.
    """
    given = raw
    fractions, total = None, None
    if isinstance(raw, Mapping):
        if "fractions" in raw:
            fractions, total = raw["fractions"], raw.get("total")
            if total is None or (isinstance(total, float) and math.isnan(total)):
                raise ValueError(
                    f"label {list(fractions)!r}: fractions need the number of votes (a total "
                    "column or a fixed total) to become counts"
                )
            raw = fractions
        else:
            raw = raw["counts"]
    if isinstance(raw, str):
        raw = [p for p in raw.replace(";", ",").split(",")]
    values = [_number(v, f"label {given!r}: value") for v in raw]
    if len(values) != n_answers:
        names = f" ({', '.join(answers)})" if answers else ""
        raise ValueError(
            f"label {given!r} has {len(values)} values, not one per answer{names}: "
            f"{n_answers} expected"
        )
    if any(v < 0 for v in values):
        raise ValueError(f"label {given!r} has a negative value")
    if fractions is not None:
        n = _number(total, f"label {given!r}: total")
        if n <= 0:
            raise ValueError(f"label {given!r}: total {total!r} must be more than 0")
        if any(v > 1 for v in values) or abs(sum(values) - 1) > FRACTION_SUM_TOLERANCE:
            raise ValueError(
                f"label {given!r}: fractions must lie in [0, 1] and sum to 1 over the answers "
                f"(they sum to {sum(values):.3g})"
            )
        values = [v * n for v in values]
    if not sum(values) > 0:
        raise ValueError(f"label {given!r} has no vote")
    return values


class Votes(Classification):
    """Predictions (for :meth:`score` and :meth:`review_order`) are ``(n, K)`` expected
    fractions; targets are ``(n, K)`` vote counts."""

    name = "votes"
    label_column = "counts"
    label_type = "real[]"
    answer_column = "class"  # review_decisions.answer_class/shown_class: one answer
    target_type = "real[]"
    discrete = False
    metric = "auc"  # of each answer's expected fraction against the majority answer
    summary_metrics = ("cv_mae", "cv_nll", "cv_within_1sigma")
    tunable = ("l2",)

    @classmethod
    def check_definition(cls, classes, unit) -> list[str]:
        if unit:
            raise GaldbError("a vote task has answers (--answers a,b,c), not a unit")
        try:
            return super().check_definition(classes, unit)
        except GaldbError as exc:
            raise GaldbError(
                str(exc).replace("class names", "answers").replace("classes", "answers")
            ) from None

    @classmethod
    def derived_columns(cls, classes) -> list[tuple[str, str]]:
        return [
            *super().derived_columns(classes),
            *((f"column for answer {c!r}", sigma_column(c)) for c in classes or ()),
        ]

    # labels

    def parse_label(self, raw, mapping=None) -> list[float]:
        """Vote counts (see :func:`counts_from`); ``mapping`` does not apply to counts."""
        if raw is None or (isinstance(raw, float) and math.isnan(raw)) or str(raw).strip() == "":
            raise ValueError("empty label")
        if isinstance(raw, str):
            raw = raw.strip()
        return counts_from(raw, len(self.classes), self.classes)

    def parse_answer(self, raw) -> str:
        """A reviewer's answer: one of the task's answers."""
        return Classification.parse_label(self, raw)

    def vote_weight(self, conn) -> float:
        """Votes a review decision adds to its answer, as the task has it now."""
        (weight,) = conn.execute(
            "SELECT vote_weight FROM galdb.tasks WHERE task_id = %s", (self.task.task_id,)
        ).fetchone()
        return float(weight)

    def human_label(self, conn, answer: str) -> list[float]:
        """The reviewer's label for ``answer``: the task's vote weight in votes for it, none
        for the others (added to the galaxy's other votes)."""
        weight = self.vote_weight(conn)
        return [weight if c == answer else 0.0 for c in self.classes]

    def targets(self, labels: list) -> np.ndarray:
        return np.array(labels, dtype=np.float64).reshape(len(labels), len(self.classes))

    def labels(self, targets: np.ndarray) -> list:
        return np.asarray(targets, dtype=np.float64).tolist()

    def label_sql(self, target: sql.Composable) -> sql.Composable:
        return target

    def label_counts(self, targets: np.ndarray) -> dict:
        totals = np.asarray(targets).sum(axis=0)
        return {c: float(n) for c, n in zip(self.classes, totals, strict=True)}

    # heads

    def new_head(self, **hyperparameters):
        from galdb.heads.votes import VoteHead

        return VoteHead(len(self.classes), **hyperparameters)

    def load_head(self, data: bytes):
        from galdb.heads.votes import VoteHead

        return VoteHead.from_bytes(data)

    def predict(self, head, vectors: np.ndarray) -> np.ndarray:
        return head.predict(vectors)[0]

    def score(self, truth: np.ndarray, prediction: np.ndarray) -> float:
        from galdb.heads.classify import auc

        return auc(prediction, np.asarray(truth).argmax(axis=1))

    def spread(self, adjacency, seeds, targets, fixed, alpha) -> Spread:
        raise GaldbError(
            f"task {self.task.name}: vote counts are not propagated (a neighbour's votes are "
            "not votes); train a head (galdb head train) to predict the fractions"
        )

    def review_order(self, strategy, prediction, labelled, rng, exclude):
        counts = np.asarray(labelled, dtype=np.float64).reshape(-1, len(self.classes))
        return queue_order(
            strategy, prediction, label_counts=counts.sum(axis=0), rng=rng, exclude=exclude
        )

    def baseline(self, train_images, targets, test_images, config) -> np.ndarray:
        raise GaldbError(f"task {self.task.name}: no from-scratch baseline for vote tasks")

    # predictions table and view

    def prediction_columns(self) -> list[tuple[str, str]]:
        return [
            ("class_index", "int2"),
            *((probability_column(c), "float4") for c in self.classes),
            *((sigma_column(c), "float4") for c in self.classes),
            ("concentration", "float4"),
            ("confidence", "float4"),
            ("margin", "float4"),
            ("entropy", "float4"),
        ]

    # review

    def order_sql(self, conn, strategy: str) -> sql.Composable:
        if strategy != "rare":
            return super().order_sql(conn, strategy)
        totals = conn.execute(
            "SELECT array_agg(s ORDER BY i) FROM (SELECT u.i, sum(u.n) AS s FROM galdb.labels l "
            "CROSS JOIN LATERAL unnest(l.counts) WITH ORDINALITY u(n, i) WHERE l.task_id = %s "
            "AND l.source IN ('human', 'catalog') GROUP BY u.i) t",
            (self.task.task_id,),
        ).fetchone()[0] or [0] * len(self.classes)
        rarest = self.classes[int(np.argmin(totals))]
        return sql.SQL(order_by_sql("rare", rare_class_column=probability_column(rarest)))

    def disagreement(self, joins: list) -> sql.Composable:
        raise GaldbError("strategy disagreement needs a classification task, not votes")
