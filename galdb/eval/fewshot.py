"""``galdb eval fewshot``: how many labels does each way of learning a task need?

On the labelled galaxies of a task (its catalog and human labels) that have an embedding, a
stratified test set is held out once. Then, for each number of labels ``n`` and each repeat,
``n`` training labels are drawn from the rest (at least one per class, the others at random,
as an astronomer labelling a random sample would), and four learners get the same labels:

- ``head``: the task's head on the frozen LVM embeddings, fitted as ``galdb head train``
  fits it (regularisation chosen by cross-validation when the labels allow);
- ``propagation``: label spreading over the exact k-NN graph of the labelled galaxies'
  embeddings (the algorithm ``galdb propagate`` runs over the whole catalog);
- ``head+reviewer``: half of the ``n`` labels drawn at random, the other half asked of an
  oracle (the held-back true labels) for the top of the review queue, in rounds, with the
  head retrained after each round; the queue strategy is one of
  :data:`galdb.review.strategies.STRATEGIES` (the review app uses the same ones);
- ``resnet18_scratch``: the seed paper's baseline, a ResNet18 trained from scratch on the
  images with the same labels, up to all of them.

The test set is a stratified random share of the labelled galaxies, or (``test_release``) every
labelled galaxy of a designated release, the labels being drawn from the other releases only:
a test of how a head carries over to a release it never saw.

The score is the AUC on the test set (macro one-vs-rest for more than two classes), or R²
for a regression task. :mod:`galdb.eval.curves` turns the points into a CSV, a plot and the
label ratio at which the baseline catches up.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import psycopg
import torch
from sklearn.model_selection import train_test_split

from galdb.errors import GaldbError
from galdb.eval import curves
from galdb.eval.baseline import BaselineConfig
from galdb.heads.classify import unit_rows
from galdb.heads.kinds import TaskKind
from galdb.heads.versions import labelled_vectors
from galdb.ingest.runs import release_id_of
from galdb.labels.tasks import Task
from galdb.lvm.pixels import pixel_refs, read_pixels
from galdb.lvm.preprocess import Preprocessing, to_tensor
from galdb.lvm.registry import ModelRecord
from galdb.propagate.spreading import knn_adjacency
from galdb.review.strategies import STRATEGIES

METHODS = ("head", "propagation", "head+reviewer", "resnet18_scratch")


@dataclass(frozen=True)
class FewshotConfig:
    label_counts: tuple[int, ...] = (10, 20, 50, 100, 200, 500)
    include_all: bool = True  # also every training label
    repeats: int = 3
    test_fraction: float = 0.3
    k: int = 15
    alpha: float = 0.9
    reviewer_rounds: int = 3
    strategy: str = "margin"
    methods: tuple[str, ...] = METHODS
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    baseline_max_labels: int | None = None  # cap the (slow) baseline; None: up to all
    seed: int = 0
    test_release: str | None = None  # test on this release, train on the others


@dataclass
class FewshotData:
    vectors: np.ndarray
    targets: np.ndarray
    galaxy_ids: np.ndarray
    test: np.ndarray  # bool mask
    task: Task

    @property
    def kind(self) -> TaskKind:
        return self.task.kind_spec


def load_data(
    conn: psycopg.Connection, task: Task, record: ModelRecord, config: FewshotConfig
) -> FewshotData:
    labels, vectors, _ = labelled_vectors(conn, task, record, ("human", "catalog"))
    if len(labels.targets) < 20:
        raise GaldbError(f"{task.name} has {len(labels.targets)} usable labels; need 20 or more")
    if config.test_release is not None:
        test = release_mask(conn, labels.galaxy_ids, config.test_release)
        others = int((~test).sum())
        if not test.any() or others < 2:
            raise GaldbError(
                f"--test-release {config.test_release}: {int(test.sum())} of the "
                f"{len(test)} labelled galaxies of {task.name} with embeddings are in it and "
                f"{others} elsewhere; both sides need some"
            )
        return FewshotData(vectors, labels.targets, labels.galaxy_ids, test, task)
    index = np.arange(len(labels.targets))
    stratify = labels.targets if task.kind_spec.discrete else None
    _, test_index = train_test_split(
        index, test_size=config.test_fraction, random_state=config.seed, stratify=stratify
    )
    test = np.zeros(len(index), bool)
    test[test_index] = True
    return FewshotData(vectors, labels.targets, labels.galaxy_ids, test, task)


def release_mask(conn: psycopg.Connection, galaxy_ids: np.ndarray, release: str) -> np.ndarray:
    """Which of ``galaxy_ids`` belong to ``release`` (an unknown release is an error)."""
    rid = release_id_of(conn, release)
    inside = conn.execute(
        "SELECT galaxy_id FROM galdb.galaxies WHERE release_id = %s AND galaxy_id = ANY(%s)",
        (rid, galaxy_ids.tolist()),
    ).fetchall()
    return np.isin(galaxy_ids, np.array([r[0] for r in inside], dtype=np.int64))


def load_images(
    conn: psycopg.Connection, galaxy_ids: np.ndarray, prep: Preprocessing, progress=None
) -> torch.Tensor:
    """The galaxies' cutouts as the LVM sees them (same preprocessing), for the baseline."""
    refs = pixel_refs(conn, galaxy_ids, "the baseline")
    if progress is not None:
        progress.start(len(refs), "reading cutouts")
    tensors = []
    for ref in refs:
        tensors.append(to_tensor(read_pixels(ref), ref.bands, prep))
        if progress is not None:
            progress.advance()
    return torch.stack(tensors)


def draw(targets: np.ndarray, pool: np.ndarray, n: int, rng, discrete: bool) -> np.ndarray:
    """``n`` indices from ``pool``: one per class first (when the targets are ``discrete``
    and n allows), the rest in random order. With ``n`` >= the pool, all of it, in that order
    too: the reviewer simulation takes its random half from the front, which must not be the
    pool's (class-sorted) head."""
    n = min(n, len(pool))
    first = []
    if discrete:
        classes = np.unique(targets[pool])
        if n >= len(classes):
            first = [rng.choice(pool[targets[pool] == c]) for c in classes]
    rest = rng.choice(np.setdiff1d(pool, first), n - len(first), replace=False)
    return np.concatenate([np.asarray(first, dtype=np.int64), rest])


def score(data: FewshotData, predicted: np.ndarray) -> float:
    """The task kind's metric (AUC, R²) of a prediction of the test rows."""
    return data.kind.score(data.targets[data.test], predicted)


def head_scores(data: FewshotData, train: np.ndarray, rows: np.ndarray, seed: int):
    """Fit a head on ``train`` and predict ``rows`` (in the form the kind scores)."""
    head = data.kind.new_head()
    head.fit(data.vectors[train], data.targets[train], seed=seed)
    return data.kind.predict(head, data.vectors[rows])


def run_head(data: FewshotData, train: np.ndarray, seed: int) -> float:
    return score(data, head_scores(data, train, np.flatnonzero(data.test), seed))


def run_reviewer(data: FewshotData, train: np.ndarray, config: FewshotConfig, rng) -> float:
    """Half the budget at random, the rest from the review queue in rounds (oracle answers)."""
    budget = len(train)
    first = len(data.task.classes or ()) or 2  # one per class drawn first, or two values
    labelled = list(train[: max(min(budget, first), budget // 2)])
    pool = np.flatnonzero(~data.test)
    rounds = max(1, config.reviewer_rounds)
    while len(labelled) < budget:
        ask = int(np.ceil((budget - len(labelled)) / rounds))
        rounds = max(1, rounds - 1)
        predicted = head_scores(data, np.array(labelled), pool, int(rng.integers(1 << 31)))
        exclude = np.isin(pool, labelled)
        order = data.kind.review_order(
            config.strategy, predicted, data.targets[labelled], rng, exclude
        )
        labelled += [int(pool[i]) for i in order[:ask]]
    return run_head(data, np.array(labelled), int(rng.integers(1 << 31)))


def exact_graph(vectors: np.ndarray, k: int):
    """The exact cosine k-NN graph of a (small) labelled set, as a sparse adjacency."""
    unit = unit_rows(vectors)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    k = min(k, len(vectors) - 1)
    nearest = np.argpartition(-sims, k, axis=1)[:, :k]
    sources = np.repeat(np.arange(len(vectors)), k)
    targets = nearest.ravel()
    return knn_adjacency(sources, targets, sims[sources, targets], len(vectors))


def run_propagation(data: FewshotData, adjacency, train: np.ndarray, alpha: float) -> float:
    fixed = np.zeros(len(data.targets), bool)
    fixed[train] = True
    spread = data.kind.spread(adjacency, train, data.targets[train], fixed, alpha)
    return score(data, spread.prediction[data.test])


def run_baseline(
    data: FewshotData, images: torch.Tensor, train: np.ndarray, config: BaselineConfig
) -> float:
    test_images = images[torch.from_numpy(np.flatnonzero(data.test))]
    train_images = images[torch.from_numpy(train)]
    return score(data, data.kind.baseline(train_images, data.targets[train], test_images, config))


def run_fewshot(
    conn: psycopg.Connection,
    task: Task,
    record: ModelRecord,
    config: FewshotConfig,
    out_dir: Path,
    *,
    preprocessing: Preprocessing | None = None,
    progress=None,
    log=print,
) -> list[curves.CurvePoint]:
    """Run every method at every label count; write ``fewshot_<task>.csv/.png/.md``."""
    if config.strategy not in STRATEGIES:
        raise GaldbError(f"queue strategy {config.strategy!r}: use one of {', '.join(STRATEGIES)}")
    if unknown := set(config.methods) - set(METHODS):
        raise GaldbError(f"unknown methods {sorted(unknown)}: use {', '.join(METHODS)}")
    data = load_data(conn, task, record, config)
    pool = np.flatnonzero(~data.test)
    counts = sorted({n for n in config.label_counts if n < len(pool)})
    if config.include_all or not counts:
        counts.append(len(pool))
    metric = data.kind.metric
    held = f"release {config.test_release}" if config.test_release else "held out"
    log(
        f"{task.name}: {len(data.targets)} labelled galaxies with embeddings; "
        f"{int(data.test.sum())} ({held}) for testing; label counts {counts}"
    )
    images = None
    if "resnet18_scratch" in config.methods:
        if preprocessing is None:
            raise GaldbError("the baseline needs the LVM's preprocessing to read the cutouts")
        images = load_images(conn, data.galaxy_ids, preprocessing, progress)
    adjacency = exact_graph(data.vectors, config.k) if "propagation" in config.methods else None
    points: list[curves.CurvePoint] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for repeat in range(config.repeats):
        for n in counts:
            rng = np.random.default_rng([config.seed, repeat, n])
            train = draw(data.targets, pool, n, rng, data.kind.discrete)
            results = {}
            if "head" in config.methods:
                results["head"] = run_head(data, train, repeat)
            if "propagation" in config.methods:
                results["propagation"] = run_propagation(data, adjacency, train, config.alpha)
            if "head+reviewer" in config.methods:
                results["head+reviewer"] = run_reviewer(data, train, config, rng)
            cap = config.baseline_max_labels
            if images is not None and (cap is None or n <= cap):
                baseline = replace(config.baseline, seed=config.baseline.seed + repeat)
                results["resnet18_scratch"] = run_baseline(data, images, train, baseline)
            for method, value in results.items():
                points.append(curves.CurvePoint(method, n, repeat, metric, value))
            log(f"repeat {repeat} n={n}: " + ", ".join(f"{m} {v:.3f}" for m, v in results.items()))
            curves.write_csv(points, out_dir / f"fewshot_{task.name}.csv")  # partial results
    model = record.spec.rsplit("/", 1)[-1]  # a checkpoint's file name, not its whole path
    title = f"{task.name}: {len(data.targets)} galaxies, model {record.model_id} ({model})"
    if config.test_release:
        title += f", tested on {config.test_release}"
    curves.plot(points, out_dir / f"fewshot_{task.name}.png", title=title)
    (out_dir / f"fewshot_{task.name}.md").write_text(curves.markdown_table(points) + "\n")
    return points
