"""Train a head on a task's labels and record it as a new head version.

A version records the task, the LVM model, the algorithm and its hyperparameters, the label
sources used, the number of labels and their per-class counts, the cross-validated metrics,
the fitted parameters, and a snapshot of the exact labels (``galdb.head_labels``), so a
prediction can always be traced back to what it was learned from, even after reviewers
change the labels.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import psycopg
import torch
from psycopg import sql

from galdb.errors import GaldbError
from galdb.heads import load_head, new_head
from galdb.labels.store import LabelSet, effective_labels
from galdb.labels.tasks import Task
from galdb.lvm.registry import ModelRecord
from galdb.lvm.vectors import load_embeddings

TRAINING_SOURCES = ("human", "catalog")  # propagated labels would feed a head its own guesses


@dataclass(frozen=True)
class HeadVersion:
    version_id: int
    task: str
    model_id: int
    algorithm: str
    n_labels: int
    metrics: dict
    status: str
    predictions_table: str | None
    n_predictions: int | None


def labelled_vectors(
    conn: psycopg.Connection, task: Task, record: ModelRecord, sources: tuple[str, ...]
) -> tuple[LabelSet, np.ndarray, int]:
    """The task's effective labels that have an embedding, their vectors, and how many
    labelled galaxies had none."""
    labels = effective_labels(conn, task, sources)
    if not len(labels.galaxy_ids):
        raise GaldbError(
            f"task {task.name} has no labels from {', '.join(sources)}: "
            "import some with galdb label import"
        )
    ids, vectors = load_embeddings(conn, record, labels.galaxy_ids)
    keep = np.isin(labels.galaxy_ids, ids)
    if not keep.any():
        raise GaldbError(
            f"none of the {len(keep):,} labelled galaxies of {task.name} has an embedding "
            f"from model {record.model_id} ({record.spec}): run galdb embed first"
        )
    subset = LabelSet(*(getattr(labels, f)[keep] for f in LabelSet.__dataclass_fields__))
    return subset, vectors, int((~keep).sum())


def train_head(
    conn: psycopg.Connection,
    task: Task,
    record: ModelRecord,
    *,
    sources: tuple[str, ...] = TRAINING_SOURCES,
    hyperparameters: dict | None = None,
    seed: int = 0,
) -> HeadVersion:
    """Fit a head on the effective labels of ``sources`` and store it as a new version.

    Does not commit: the caller commits the version (with whatever goes with it, e.g. the
    retrain job's progress) or rolls it back.
    """
    labels, vectors, without = labelled_vectors(conn, task, record, sources)
    head = new_head(task, **(hyperparameters or {}))
    started = time.perf_counter()
    metrics = head.fit(vectors, labels.targets, seed=seed)
    seconds = time.perf_counter() - started
    metrics["labelled_without_embedding"] = without
    return _record(conn, task, record, head, sources, labels, metrics, seconds, seed)


def train_finetuned_head(
    conn: psycopg.Connection,
    task: Task,
    record: ModelRecord,
    config=None,
    *,
    sources: tuple[str, ...] = TRAINING_SOURCES,
    progress=None,
) -> HeadVersion:
    """Fine-tune the model's backbone on the task's labelled cutouts (see
    :mod:`galdb.heads.finetune`) and store it as a new version (its whole network).

    The labels are those of galaxies embedded by the model, as for a frozen head. Does not
    commit (as :func:`train_head`).
    """
    from galdb.eval.fewshot import load_images
    from galdb.heads.finetune import FinetuneConfig, fit_finetuned
    from galdb.lvm.pixels import pixel_refs
    from galdb.lvm.pretrain import CutoutStream
    from galdb.lvm.registry import load_registered

    if not task.kind_spec.discrete or task.kind_spec.name != "classification":
        raise GaldbError(f"--finetune trains classification heads; {task.name} is {task.kind}")
    config = config or FinetuneConfig()
    labels, _, without = labelled_vectors(conn, task, record, sources)
    loaded = load_registered(conn, record)
    stream = CutoutStream(
        pixel_refs(conn, labels.galaxy_ids, "a fine-tuned head"), loaded.preprocessing
    )
    cutouts = torch.stack([stream[i] for i in range(len(stream))])
    centred = load_images(conn, labels.galaxy_ids, loaded.preprocessing, progress)
    started = time.perf_counter()
    head, metrics = fit_finetuned(
        loaded, cutouts, centred, labels.targets, len(task.classes), config, progress
    )
    seconds = time.perf_counter() - started
    metrics["labelled_without_embedding"] = without
    return _record(conn, task, record, head, sources, labels, metrics, seconds, config.seed)


def _record(conn, task, record, head, sources, labels, metrics, seconds, seed) -> HeadVersion:
    """Insert a fitted head as a new version, with the snapshot of its labels."""
    version_id = conn.execute(
        "INSERT INTO galdb.head_versions (task_id, model_id, algorithm, hyperparameters, "
        "label_sources, n_labels, label_counts, metrics, parameters, train_seconds) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING version_id",
        (
            task.task_id,
            record.model_id,
            head.algorithm,
            json.dumps(head.hyperparameters | {"seed": seed}),
            list(sources),
            len(labels.targets),
            json.dumps(task.kind_spec.label_counts(labels.targets)),
            json.dumps(_finite(metrics)),
            head.to_bytes(),
            seconds,
        ),
    ).fetchone()[0]
    _snapshot(conn, task, version_id, labels)
    return get_version(conn, task, version_id)


def _snapshot(conn, task: Task, version_id: int, labels: LabelSet) -> None:
    """The exact labels of the version, in the label column of the task's kind."""
    kind = task.kind_spec
    copy = sql.SQL(
        "COPY galdb.head_labels (version_id, galaxy_id, label_id, source, {}) FROM STDIN"
    ).format(sql.Identifier(kind.label_column))
    with conn.cursor().copy(copy) as cp:
        for row in zip(
            labels.galaxy_ids.tolist(),
            labels.label_ids.tolist(),
            labels.sources,
            kind.labels(labels.targets),
            strict=True,
        ):
            cp.write_row((version_id, *row))


def _finite(metrics: dict) -> dict:
    """JSON has no NaN: metrics that could not be measured are stored as null."""
    unmeasured = {k for k, v in metrics.items() if isinstance(v, float) and not np.isfinite(v)}
    return {k: None if k in unmeasured else v for k, v in metrics.items()}


_VERSION = (
    "SELECT v.version_id, t.name, v.model_id, v.algorithm, v.n_labels, v.metrics, v.status, "
    "v.predictions_table, v.n_predictions FROM galdb.head_versions v JOIN galdb.tasks t "
    "USING (task_id)"
)


def get_version(conn: psycopg.Connection, task: Task, version_id: int | None = None):
    """A version of the task (its newest when ``version_id`` is None)."""
    row = conn.execute(
        _VERSION + " WHERE v.task_id = %s AND (%s::int IS NULL OR v.version_id = %s) "
        "ORDER BY v.version_id DESC LIMIT 1",
        (task.task_id, version_id, version_id),
    ).fetchone()
    if row is None:
        what = f"version {version_id}" if version_id else "any head version"
        raise GaldbError(f"task {task.name} has no {what}: train one with galdb head train")
    return HeadVersion(*row)


def list_versions(conn: psycopg.Connection, task: Task) -> list[HeadVersion]:
    rows = conn.execute(
        _VERSION + " WHERE v.task_id = %s ORDER BY v.version_id", (task.task_id,)
    ).fetchall()
    return [HeadVersion(*r) for r in rows]


def load_version_head(conn: psycopg.Connection, task: Task, version_id: int):
    """The fitted head and its model id, as stored."""
    model_id, data = conn.execute(
        "SELECT model_id, parameters FROM galdb.head_versions WHERE version_id = %s",
        (version_id,),
    ).fetchone()
    return load_head(task, bytes(data)), model_id
