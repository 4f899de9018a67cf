"""kNN accuracy and linear probes on synthetic embeddings whose answer is known."""

import numpy as np
import pytest

from galdb.eval.probe import LabelledSet, knn_accuracy, linear_probe


def _blobs(separation: float, n: int = 400, classes: int = 2, seed: int = 0) -> LabelledSet:
    rng = np.random.default_rng(seed)
    labels = np.array([str(i % classes) for i in range(n)])
    centres = rng.normal(size=(classes, 32)) * separation
    vectors = centres[labels.astype(int)] + rng.normal(size=(n, 32))
    train = rng.random(n) < 0.7
    return LabelledSet(vectors.astype(np.float32), labels, train, [str(i) for i in range(classes)])


def test_separable_classes_score_high():
    data = _blobs(3.0)
    assert knn_accuracy(data) > 0.95
    assert linear_probe(data, 32).auc_mean > 0.95


def test_random_labels_score_at_chance():
    data = _blobs(0.0)
    assert abs(linear_probe(data, None).auc_mean - 0.5) < 0.1
    assert abs(knn_accuracy(data) - 0.5) < 0.12


def test_multiclass_and_repeats():
    data = _blobs(2.0, classes=4)
    row = linear_probe(data, 100, repeats=3)
    assert row.repeats == 3 and row.n_labels == 100 and row.auc_mean > 0.9
    assert linear_probe(data, None).n_labels == "all"


@pytest.mark.parametrize("n", [8, 32])
def test_few_labels_still_work(n):
    assert linear_probe(_blobs(2.0), n, repeats=2).repeats == 2
