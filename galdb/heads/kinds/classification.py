"""Classification: a label is one of the task's fixed classes.

Stored as the class name (``labels.class``); a head's target is the class index; the
predictions table has ``class_index``, ``p_<class>`` per class, ``confidence``, ``margin`` and
``entropy``; the review queue orders by the strategies of :mod:`galdb.review.strategies`.
"""

from __future__ import annotations

import re

import numpy as np
from psycopg import sql

from galdb.errors import GaldbError
from galdb.heads.kinds.base import Shown, Spread, TaskKind
from galdb.review.strategies import order_by_sql, queue_order

CLASS = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")
COMMAND_KEYS = set("fsunq?")  # the review app's own keys (flag, skip, undo, …)
BAR = 24  # width of a probability bar in the review app


def probability_column(cls: str) -> str:
    """The column of a classification task's view (and predictions tables) for a class."""
    return f"p_{cls}"


def class_keys(classes: tuple[str, ...]) -> dict[str, str]:
    """Key -> class: digits 1..9 for the first nine classes, and each class's initial when it
    is unique among the classes and not a command key."""
    keys = {str(i + 1): c for i, c in enumerate(classes[:9])}
    initials = [c[0] for c in classes]
    for c in classes:
        if initials.count(c[0]) == 1 and c[0] not in COMMAND_KEYS and not c[0].isdigit():
            keys[c[0]] = c
    return keys


class Classification(TaskKind):
    name = "classification"
    label_column = "class"
    label_type = "text"
    target_type = "int2"
    discrete = True
    metric = "auc"
    summary_metrics = ("cv_auc", "cv_balanced_accuracy", "cv_ece")
    tunable = ("C",)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.task.classes

    @classmethod
    def check_definition(cls, classes, unit) -> list[str]:
        classes = [c.strip() for c in classes or []]
        bad = [c for c in classes if not CLASS.match(c)]
        if bad:
            raise GaldbError(
                f"class names {bad} must be lowercase letters, digits and _ (they become "
                "columns p_<class>); map other spellings at import with --map"
            )
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise GaldbError(f"a classification needs at least 2 distinct classes, got {classes}")
        return classes

    @classmethod
    def derived_columns(cls, classes) -> list[tuple[str, str]]:
        return [(f"column for class {c!r}", probability_column(c)) for c in classes or ()]

    # labels

    def _parse(self, text: str, mapping: dict[str, str]) -> str:
        name = mapping.get(text, text)
        if name not in self.classes:
            raise ValueError(
                f"label {text!r} is not a class of {self.task.name} ({', '.join(self.classes)})"
            )
        return name

    def targets(self, labels: list) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[c] for c in labels], dtype=np.int64)

    def labels(self, targets: np.ndarray) -> list:
        return [self.classes[t] for t in np.asarray(targets).tolist()]

    def label_sql(self, target: sql.Composable) -> sql.Composable:
        return sql.SQL("(t.classes)[{} + 1]").format(target)

    def label_counts(self, targets: np.ndarray) -> dict:
        counts = np.bincount(targets, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, counts, strict=True)}

    def differs(self, answer, shown) -> bool:
        return shown is None or answer != shown

    # heads

    def new_head(self, **hyperparameters):
        from galdb.heads.classify import ClassificationHead

        return ClassificationHead(len(self.classes), **hyperparameters)

    def load_head(self, data: bytes):
        from galdb.heads.classify import ClassificationHead

        return ClassificationHead.from_bytes(data)

    def predict(self, head, vectors: np.ndarray) -> np.ndarray:
        return head.predict_proba(vectors)

    def score(self, truth: np.ndarray, prediction: np.ndarray) -> float:
        from galdb.heads.classify import auc

        return auc(prediction, truth)

    def spread(self, adjacency, seeds, targets, fixed, alpha) -> Spread:
        from galdb.propagate.spreading import label_spreading

        seeded = np.full(adjacency.shape[0], -1, np.int64)
        seeded[seeds] = targets
        s = label_spreading(adjacency, seeded, len(self.classes), fixed=fixed, alpha=alpha)
        reached = s.label >= 0
        return Spread(s.label, s.confidence, reached, s.scores.astype(np.float64), s.iterations)

    def review_order(self, strategy, prediction, labelled, rng, exclude):
        counts = np.bincount(labelled, minlength=len(self.classes))
        return queue_order(strategy, prediction, label_counts=counts, rng=rng, exclude=exclude)

    def baseline(self, train_images, targets, test_images, config) -> np.ndarray:
        from galdb.eval.baseline import predict_proba, train_from_scratch

        model = train_from_scratch(train_images, targets, len(self.classes), config)
        return predict_proba(model, test_images)

    # predictions table and view

    def prediction_columns(self) -> list[tuple[str, str]]:
        return [
            ("class_index", "int2"),
            *((probability_column(c), "float4") for c in self.classes),
            ("confidence", "float4"),
            ("margin", "float4"),
            ("entropy", "float4"),
        ]

    def view_fields(self) -> list[sql.Composable]:
        label = sql.SQL("(ARRAY[{}])[p.class_index + 1] AS label").format(
            sql.SQL(", ").join(sql.Literal(c) for c in self.classes)
        )
        return [label] + [
            sql.SQL("p.{}").format(sql.Identifier(name))
            for name, _ in self.prediction_columns()[1:]
        ]

    # review

    def queue_index_keys(self) -> list[str]:
        orders = [order_by_sql(s) for s in ("margin", "entropy", "least_confident")]
        return orders + [
            order_by_sql("rare", rare_class_column=probability_column(c)) for c in self.classes
        ]

    def order_sql(self, conn, strategy: str) -> sql.Composable:
        if strategy != "rare":
            return sql.SQL(order_by_sql(strategy))
        counts = dict(
            conn.execute(
                "SELECT class, count(*) FROM galdb.labels WHERE task_id = %s "
                "AND source IN ('human', 'catalog') GROUP BY class",
                (self.task.task_id,),
            ).fetchall()
        )
        rarest = self.classes[int(np.argmin([counts.get(c, 0) for c in self.classes]))]
        return sql.SQL(order_by_sql("rare", rare_class_column=probability_column(rarest)))

    def disagreement(self, joins: list) -> sql.Composable:
        classes = sql.SQL(", ").join(sql.Literal(c) for c in self.classes)
        joins.append(
            sql.SQL(
                "JOIN LATERAL (SELECT count(*) AS n FROM galdb.labels l WHERE l.task_id = "
                "%(task)s AND l.galaxy_id = p.galaxy_id AND l.source IN ('propagated', 'catalog') "
                "AND l.class IS DISTINCT FROM (ARRAY[{}])[p.class_index + 1]) dis ON dis.n > 0"
            ).format(classes)
        )
        return sql.SQL("dis.n DESC, p.confidence DESC, galaxy_id")

    def predicted_filter(self, predicted: str) -> tuple[sql.Composable, dict]:
        if predicted not in self.classes:
            raise GaldbError(
                f"--predicted {predicted!r}: not a class of {self.task.name} "
                f"({', '.join(self.classes)})"
            )
        return (
            sql.SQL("p.class_index = %(class_index)s"),
            {"class_index": self.classes.index(predicted)},
        )

    def shown_fields(self) -> sql.Composable:
        probabilities = sql.SQL(", ").join(
            sql.Identifier(probability_column(c)) for c in self.classes
        )
        return sql.SQL("p.class_index, p.confidence, ") + probabilities

    def shown(self, row: tuple) -> Shown:
        index, confidence, *probabilities = row
        return Shown(
            self.classes[index],
            float(confidence),
            None,
            {c: float(p) for c, p in zip(self.classes, probabilities, strict=True)},
        )

    def prediction_text(self, item, keys: dict[str, str]) -> str:
        by_class = {c: [k for k, v in keys.items() if v == c] for c in item.probabilities}
        lines = []
        for c, p in sorted(item.probabilities.items(), key=lambda kv: -kv[1]):
            bar = "█" * round(p * BAR)
            marker = "▶" if c == item.predicted else " "
            lines.append(f"{marker} [{'/'.join(by_class[c])}] {c:<14} {bar:<{BAR}} {p:6.1%}")
        return "\n".join(lines)

    def answer_keys(self) -> dict[str, str]:
        return class_keys(self.classes)
