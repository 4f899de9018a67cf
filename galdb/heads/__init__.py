"""Downstream heads on frozen LVM embeddings, one per kind of task.

A head exposes ``fit(vectors, targets, seed) -> metrics``, ``prediction_columns(vectors)``
(the columns of its predictions table), ``to_bytes``/``from_bytes``, ``algorithm`` and
``hyperparameters``. Which head a task gets is its kind's choice
(:mod:`galdb.heads.kinds`): ``task.kind_spec.new_head()``.

Which functions commit
----------------------
Library functions leave the transaction to their caller (the CLI, the review app, the
worker), so a change and what it triggers are one atomic change. The exceptions are bulk
work too long for one transaction; each says so in its docstring, with its invariant:

- :func:`galdb.heads.materialize.materialize`: one transaction per chunk of predictions into
  the version's ``_build`` table, which no reader sees until the switch (one transaction);
- :func:`galdb.labels.store.import_labels`: one transaction per chunk of labels; an
  upsert, so re-running an interrupted import replaces rather than duplicates;
- :func:`galdb.propagate.run.propagate`: builds the kNN graph (its own transactions, see
  :mod:`galdb.propagate.graph`), then replaces the task's propagated labels in one
  transaction, so a reader sees one run's labels or the next one's;
- :func:`galdb.labels.tasks.create_task` commits the new task.

:func:`galdb.heads.versions.train_head` does not commit: the caller commits the new version
(the retrain job with the job's progress, in the same transaction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from galdb.labels.tasks import Task


def new_head(task: Task, **hyperparameters):
    """An unfitted head for the task's kind."""
    return task.kind_spec.new_head(**hyperparameters)


def load_head(task: Task, data: bytes):
    """A stored head (``head_versions.parameters``): the task kind's, or a fine-tuned network
    (:mod:`galdb.heads.finetune`, which predicts from pixels)."""
    from galdb.heads.finetune import FinetunedHead, is_finetuned

    if is_finetuned(data):
        return FinetunedHead.from_bytes(data)
    return task.kind_spec.load_head(data)
