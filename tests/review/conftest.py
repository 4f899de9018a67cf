"""A task with a trained and materialized head over synthetic embeddings, for review tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np
import pytest

from galdb.datasets.vectors import store_clusters
from galdb.db.connect import connect
from galdb.heads.materialize import materialize
from galdb.heads.versions import train_head
from galdb.labels.store import import_labels
from galdb.labels.tasks import Task, create_task, get_task, set_retrain_threshold

N = 400
CLASSES = ("disk", "bulge", "merger")


@dataclass
class Reviewable:
    task: Task
    release: str
    record: object
    ids: np.ndarray
    cluster: np.ndarray


@pytest.fixture(scope="module")
def reviewed_galaxies(settings):
    with connect(settings) as conn:
        c = store_clusters(conn, "review", N, 16, 3, spread=0.8, seed=5)
    return c.release, c.record, c.ids, c.cluster, c.release_id


@pytest.fixture
def make_task(conn, reviewed_galaxies):
    """Make a new task over the module's galaxies (see :func:`new_task`)."""
    return lambda **kw: new_task(conn, reviewed_galaxies, **kw)


def new_task(conn, reviewed_galaxies, *, threshold: int = 20, n_labels: int = 30) -> Reviewable:
    """A new task over the module's galaxies: catalog labels, one head version, current."""
    release, record, ids, cluster, release_id = reviewed_galaxies
    task = create_task(conn, f"r_{uuid.uuid4().hex[:10]}", "classification", classes=list(CLASSES))
    set_retrain_threshold(conn, task, threshold)
    picks = np.random.default_rng(1).choice(N, n_labels, replace=False)
    chunk = [(i, f"v{p:08d}", CLASSES[cluster[p]]) for i, p in enumerate(picks)]
    import_labels(conn, task, release_id, [chunk], author="catalog")
    version = train_head(conn, task, record)
    materialize(conn, task, version.version_id)
    return Reviewable(get_task(conn, task.name), release, record, ids, cluster)
