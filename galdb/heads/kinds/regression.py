"""Regression: a label is a finite number in the task's unit.

Stored as ``labels.value``; a head's target is the value; the predictions table has
``value`` and ``uncertainty`` (1 sigma); every uncertainty strategy of the review queue
means "least certain first".
"""

from __future__ import annotations

import math

import numpy as np
from psycopg import sql

from galdb.errors import GaldbError
from galdb.heads.kinds.base import Shown, Spread, TaskKind

UNCERTAINTY_STRATEGIES = ("margin", "entropy", "least_confident")


class Regression(TaskKind):
    """Predictions (for :meth:`score` and :meth:`review_order`) are ``(n, 2)`` arrays:
    value, 1-sigma uncertainty (NaN where unknown)."""

    name = "regression"
    label_column = "value"
    label_type = "float8"
    target_type = "float8"
    discrete = False
    metric = "r2"
    summary_metrics = ("cv_r2", "cv_rmse", "cv_within_1sigma")

    @classmethod
    def check_definition(cls, classes, unit) -> None:
        if classes:
            raise GaldbError("a regression task has no classes (give --unit instead)")
        return None

    # labels

    def _parse(self, text: str, mapping: dict[str, str]) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"label {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"label {text!r} is not finite")
        return value

    def targets(self, labels: list) -> np.ndarray:
        return np.array(labels, dtype=np.float64)

    def labels(self, targets: np.ndarray) -> list:
        return np.asarray(targets, dtype=np.float64).tolist()

    def label_sql(self, target: sql.Composable) -> sql.Composable:
        return target

    def label_counts(self, targets: np.ndarray) -> dict:
        return {
            "min": float(targets.min()),
            "max": float(targets.max()),
            "mean": float(targets.mean()),
        }

    def differs(self, answer, shown) -> bool:
        if shown is None:
            return True
        return not math.isclose(float(answer), float(shown), rel_tol=1e-6, abs_tol=1e-12)

    # heads

    def new_head(self, **hyperparameters):
        from galdb.heads.regress import RegressionHead

        return RegressionHead(**hyperparameters)

    def load_head(self, data: bytes):
        from galdb.heads.regress import RegressionHead

        return RegressionHead.from_bytes(data)

    def predict(self, head, vectors: np.ndarray) -> np.ndarray:
        return np.column_stack(head.predict(vectors))

    def score(self, truth: np.ndarray, prediction: np.ndarray) -> float:
        residual = np.sum((truth - prediction[:, 0]) ** 2)
        return float(1 - residual / np.sum((truth - truth.mean()) ** 2))

    def spread(self, adjacency, seeds, targets, fixed, alpha) -> Spread:
        from galdb.propagate.spreading import value_spreading

        values = np.full(adjacency.shape[0], np.nan)
        values[seeds] = targets
        estimate, weight = value_spreading(adjacency, values, fixed=fixed, alpha=alpha)
        reached = np.isfinite(estimate)
        guess = np.where(reached, estimate, np.nanmean(values))  # unreached: the seeds' mean
        return Spread(estimate, weight, reached, _with_sigma(guess), -1)

    def review_order(self, strategy, prediction, labelled, rng, exclude):
        # the most uncertain galaxies first, whatever the strategy (as it has always been)
        order = np.argsort(-prediction[:, 1], kind="stable")
        return np.array([i for i in order if not exclude[i]], dtype=np.int64)

    def baseline(self, train_images, targets, test_images, config) -> np.ndarray:
        from galdb.eval.baseline import predict_values, train_regressor_from_scratch

        model = train_regressor_from_scratch(train_images, targets, config)
        return _with_sigma(predict_values(model, test_images))

    # predictions table and view

    def prediction_columns(self) -> list[tuple[str, str]]:
        return [("value", "float8"), ("uncertainty", "float8")]

    def view_fields(self) -> list[sql.Composable]:
        return [sql.SQL("p.value"), sql.SQL("p.uncertainty")]

    # review

    def queue_index_keys(self) -> list[str]:
        return ["uncertainty DESC, galaxy_id"]

    def order_sql(self, conn, strategy: str) -> sql.Composable:
        if strategy == "random":
            return sql.SQL("random()")
        if strategy not in UNCERTAINTY_STRATEGIES:
            raise GaldbError(f"strategy {strategy} needs a classification task")
        return sql.SQL("uncertainty DESC, galaxy_id")

    def shown_fields(self) -> sql.Composable:
        return sql.SQL("p.value, p.uncertainty")

    def shown(self, row: tuple) -> Shown:
        value, uncertainty = row
        return Shown(float(value), None, float(uncertainty), None)

    def prediction_text(self, item, keys: dict[str, str]) -> str:
        return f"predicted {item.predicted:.4g} ± {item.uncertainty:.2g}"

    def typed_answer_starts(self, key: str) -> bool:
        return bool(key) and (key.isdigit() or key in "-.")


def _with_sigma(values: np.ndarray) -> np.ndarray:
    """Values as a prediction without an uncertainty."""
    return np.column_stack([values, np.full(len(values), np.nan)])
