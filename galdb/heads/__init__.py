"""Downstream heads on frozen LVM embeddings: one module per kind of task.

A head exposes ``fit(vectors, targets, seed) -> metrics``, ``prediction_columns(vectors)``
(the columns of its predictions table), ``to_bytes``/``from_bytes``, ``algorithm`` and
``hyperparameters``. Adding a kind of head is one new module registered in ``HEADS``.
"""

from __future__ import annotations

from galdb.heads.classify import ClassificationHead
from galdb.heads.regress import RegressionHead
from galdb.labels.tasks import Task

HEADS = {"classification": ClassificationHead, "regression": RegressionHead}


def new_head(task: Task, **hyperparameters):
    if task.is_classification:
        return ClassificationHead(len(task.classes), **hyperparameters)
    return RegressionHead(**hyperparameters)


def load_head(task: Task, data: bytes):
    return HEADS[task.kind].from_bytes(data)
