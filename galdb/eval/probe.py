"""How good are a model's embeddings for a labelled task? kNN accuracy and linear probes.

Labels and the train/test split come from catalog columns (``props``) of a release, e.g.
``spiral`` and ``source_split`` for the GZ2 set. Without a split column a stratified 80/20
split is drawn (seeded). The linear probe is a logistic regression on standardised frozen
embeddings trained on ``n`` labels drawn (stratified) from the training rows, repeated with
different draws; its AUC is measured on all test rows (one-vs-rest macro AUC for >2 classes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from galdb.errors import GaldbError
from galdb.lvm.registry import ModelRecord


@dataclass
class LabelledSet:
    vectors: np.ndarray
    labels: np.ndarray
    train: np.ndarray  # boolean mask
    classes: list[str]
    galaxy_ids: np.ndarray | None = None


@dataclass
class ProbeRow:
    n_labels: int | str
    auc_mean: float
    auc_std: float
    repeats: int


def load_labelled(
    conn: psycopg.Connection,
    record: ModelRecord,
    release: str,
    label: str,
    split: str | None = None,
    train_value: str = "train",
    test_value: str | None = None,
    seed: int = 0,
) -> LabelledSet:
    """Embeddings and labels of a release's galaxies that have both."""
    register_vector(conn)
    rows = conn.execute(
        f"SELECT e.embedding, c.props->>%s, c.props->>%s, c.galaxy_id "
        f"FROM galdb.{record.partition} e "
        "JOIN galdb.catalog c USING (galaxy_id) WHERE c.release = %s AND c.props ? %s "
        "ORDER BY c.galaxy_id",
        (label, split or "", release, label),
    ).fetchall()
    if not rows:
        raise GaldbError(f"no embedded galaxies of {release!r} with a {label!r} column")
    vectors = np.stack([r[0].to_numpy() for r in rows]).astype(np.float32)
    labels = np.array([r[1] for r in rows])
    ids = np.array([r[3] for r in rows], dtype=np.int64)
    splits = np.array([r[2] for r in rows]) if split else None
    return labelled_set(vectors, labels, ids, splits, train_value, test_value, seed)


def labelled_set(
    vectors: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    splits: np.ndarray | None = None,
    train_value: str = "train",
    test_value: str | None = None,
    seed: int = 0,
) -> LabelledSet:
    """Train rows are those whose ``splits`` value is ``train_value`` (test rows: the others,
    or only ``test_value`` ones); without ``splits`` a stratified 80/20 split (``seed``)."""
    if splits is not None:
        train = splits == train_value
        if test_value is not None:
            keep = train | (splits == test_value)
            vectors, labels, train, ids = vectors[keep], labels[keep], train[keep], ids[keep]
    else:
        idx_train, _ = train_test_split(
            np.arange(len(labels)), test_size=0.2, random_state=seed, stratify=labels
        )
        train = np.zeros(len(labels), bool)
        train[idx_train] = True
    return LabelledSet(vectors, labels, train, sorted(set(labels)), ids)


def knn_accuracy(data: LabelledSet, k: int = 10) -> float:
    """Majority vote of the k nearest training galaxies (cosine), accuracy on the test rows."""
    unit = data.vectors / np.linalg.norm(data.vectors, axis=1, keepdims=True).clip(1e-12)
    train, test = unit[data.train], unit[~data.train]
    neighbours = np.argsort(-(test @ train.T), axis=1)[:, :k]
    votes = data.labels[data.train][neighbours]
    predicted = np.array([max(set(v), key=list(v).count) for v in votes])
    return float(np.mean(predicted == data.labels[~data.train]))


def auc_of(y_true: np.ndarray, proba: np.ndarray, classes: list) -> float:
    """Test AUC (macro one-vs-rest for more than two classes) of probabilities per class."""
    if len(classes) == 2:
        return float(roc_auc_score(y_true == classes[1], proba[:, 1]))
    return float(roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes))


def draw_labels(y_train: np.ndarray, n_labels: int | None, seed: int) -> np.ndarray:
    """Indices of ``n_labels`` training rows, stratified (all of them for None or more)."""
    if n_labels and n_labels < len(y_train):
        pick, _ = train_test_split(
            np.arange(len(y_train)), train_size=n_labels, random_state=seed, stratify=y_train
        )
        return pick
    return np.arange(len(y_train))


def linear_probe(
    data: LabelledSet, n_labels: int | None, repeats: int = 5, seed: int = 0
) -> ProbeRow:
    """Mean and std of the test AUC of a logistic regression on ``n_labels`` training labels."""
    x_train, y_train = data.vectors[data.train], data.labels[data.train]
    x_test, y_test = data.vectors[~data.train], data.labels[~data.train]
    aucs = []
    for r in range(repeats if n_labels else 1):
        pick = draw_labels(y_train, n_labels, seed + r)
        if len(set(y_train[pick])) < 2:
            continue
        scaler = StandardScaler().fit(x_train[pick])
        clf = LogisticRegression(max_iter=2000, C=0.1, class_weight="balanced")
        clf.fit(scaler.transform(x_train[pick]), y_train[pick])
        proba = np.zeros((len(y_test), len(data.classes)))
        proba[:, [data.classes.index(c) for c in clf.classes_]] = clf.predict_proba(
            scaler.transform(x_test)
        )
        aucs.append(auc_of(y_test, proba, data.classes))
    return ProbeRow(n_labels or "all", float(np.mean(aucs)), float(np.std(aucs)), len(aucs))
