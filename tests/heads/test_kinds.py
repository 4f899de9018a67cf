"""The registry of task kinds: every kind knows its labels, predictions, view and head."""

from __future__ import annotations

import numpy as np
import pytest

from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.db.connect import connect
from galdb.errors import GaldbError
from galdb.heads import load_head, new_head
from galdb.heads.kinds import KINDS, kind_class
from galdb.heads.kinds.regression import Regression
from galdb.heads.materialize import prediction_columns, view_sql
from galdb.heads.versions import train_head
from galdb.ingest.runs import release_id_of
from galdb.labels.store import import_labels
from galdb.labels.tasks import Task, create_task, derived_identifiers

# one definition and one raw label per registered kind: a new kind must add its own
EXAMPLES = {
    "classification": ((" elliptical", "spiral", "merger"), " spiral "),
    "regression": (None, " 1.25 "),
    "votes": (("ring", "no_ring"), " 3, 1 "),
}
SPREADS = {"classification", "regression"}  # vote counts are not propagated


def _task(kind: str) -> Task:
    classes, _ = EXAMPLES[kind]
    stored = kind_class(kind).check_definition(list(classes) if classes else None, None)
    return Task(7, f"t_{kind}", kind, tuple(stored) if stored else None, None, (), None)


def _fitted(task: Task, rng):
    vectors = rng.normal(size=(40, 8))
    kind = task.kind_spec
    _, raw = EXAMPLES[task.kind]
    targets = kind.targets([kind.parse_label(raw)] * 40)
    if targets.ndim == 2:  # votes: counts per answer
        targets = targets + np.outer(vectors[:, 0] > 0, np.ones(targets.shape[1])) * [0, 5]
    else:
        targets = (
            np.arange(40) % len(task.classes) if task.classes else targets + vectors[:, 0]
        ).astype(targets.dtype)
    head = new_head(task)
    head.fit(vectors, targets, seed=0)
    return head, vectors, targets


def test_every_kind_has_an_example():
    assert set(EXAMPLES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_label_round_trips_through_targets(kind):
    spec = _task(kind).kind_spec
    label = spec.parse_label(EXAMPLES[kind][1])
    targets = spec.targets([label, label])
    assert spec.labels(targets) == [label, label]
    assert not spec.differs(label, label) and spec.differs(label, None)
    with pytest.raises(ValueError, match="empty label"):
        spec.parse_label("  ")
    with pytest.raises(ValueError, match="label 'not a label'"):
        spec.parse_label("not a label")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_head_writes_the_prediction_columns_of_its_kind(kind):
    task = _task(kind)
    head, vectors, targets = _fitted(task, np.random.default_rng(0))
    columns = head.prediction_columns(vectors[:5])
    table = prediction_columns(task)
    assert table[0] == ("galaxy_id", "int8")
    assert len(columns) == len(table) - 1  # materialize zips the head's columns with these
    assert all(len(v) == 5 for v in columns.values())
    again = load_head(task, head.to_bytes())
    assert all(
        np.allclose(a, b)
        for a, b in zip(
            columns.values(), again.prediction_columns(vectors[:5]).values(), strict=True
        )
    )
    spec = task.kind_spec
    score = spec.score(targets[:10], spec.predict(head, vectors[:10]))
    assert np.isfinite(score)
    assert set(spec.label_counts(targets))
    assert set(spec.summary_metrics) <= set(head.fit(vectors, targets, seed=1))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_view_reads_every_prediction_column(conn, kind):
    task = _task(kind)
    text = view_sql(task, 3, "v3").as_string(conn)
    assert "galdb_tasks" in text and '"galdb_predictions"."v3"' in text
    for name, _ in prediction_columns(task)[2:]:
        assert name in text


def test_kinds_that_do_not_spread_say_so():
    from galdb.propagate.spreading import knn_adjacency

    adjacency = knn_adjacency(np.array([0]), np.array([1]), np.array([0.9]), 2)
    for kind in sorted(set(KINDS) - SPREADS):
        spec = _task(kind).kind_spec
        targets = spec.targets([spec.parse_label(EXAMPLES[kind][1])])
        with pytest.raises(GaldbError, match="not propagated"):
            spec.spread(adjacency, np.array([0]), targets, np.array([True, False]), 0.9)


@pytest.mark.parametrize("kind", sorted(SPREADS))
def test_spread_keeps_seeds_and_reaches_neighbours(kind):
    from galdb.propagate.spreading import knn_adjacency

    task = _task(kind)
    spec = task.kind_spec
    label = spec.parse_label(EXAMPLES[kind][1])
    adjacency = knn_adjacency(np.array([0, 1]), np.array([1, 2]), np.array([0.9, 0.9]), 4)
    fixed = np.array([True, False, False, False])
    spread = spec.spread(adjacency, np.array([0]), spec.targets([label]), fixed, 0.9)
    assert spread.reached.tolist() == [True, True, True, False]
    assert spec.labels(spread.targets[:3]) == [label] * 3


def test_unknown_kind_names_the_registered_ones():
    with pytest.raises(GaldbError, match="use classification or regression"):
        kind_class("detection")


def test_a_registered_kind_is_used_without_new_branches(monkeypatch):
    class Ordinal(Regression):
        name = "ordinal"

        @classmethod
        def derived_columns(cls, classes):
            return [("column for the rank", "rank_of_the_galaxy")]

    monkeypatch.setitem(KINDS, "ordinal", Ordinal)
    task = Task(1, "stage", "ordinal", None, None, (), None)
    assert isinstance(task.kind_spec, Ordinal)
    assert ("column for the rank", "rank_of_the_galaxy") in derived_identifiers(
        "stage", "ordinal", None
    )
    assert prediction_columns(task)[1:] == Ordinal(task).prediction_columns()


def test_train_head_leaves_the_commit_to_its_caller(settings, conn, unique_release):
    """A trained version rolled back by its caller is gone (train_head used to commit)."""
    vectors, _ = clustered_vectors(30, 8, 2, seed=1)
    record, ids = store_vectors(conn, vectors, unique_release, f"synthetic:{unique_release}")
    rid = release_id_of(conn, unique_release)
    task = create_task(conn, f"k{rid}_{len(ids)}", "regression", unit="arcsec")
    chunk = [(i, f"v{i:08d}", float(v)) for i, v in enumerate(vectors[:, 0])]
    import_labels(conn, task, rid, [chunk], author="test catalog")
    version = train_head(conn, task, record)
    conn.rollback()
    with connect(settings) as other:
        left = other.execute(
            "SELECT count(*) FROM galdb.head_versions WHERE version_id = %s",
            (version.version_id,),
        ).fetchone()[0]
    assert left == 0
