"""``galdb eval review``: a simulated reviewer through the real review loop.

The task's catalog labels are the truth. A stratified test share is held out; the rest is
the pool the reviewer may be asked about. A fresh evaluation task (its own name, so the
user's task is untouched) starts from N random pool labels; then, each round:

1. a :class:`~galdb.review.session.ReviewSession` (the reviewer role's connection, the real
   queue with its strategy, leases and decisions) labels ``batch`` galaxies, answering from
   the truth; galaxies outside the pool (test galaxies, galaxies without a catalog label) are
   skipped, as a reviewer would skip what they cannot answer;
2. a ``retrain`` job is enqueued and the worker runs it: a new head version is trained on the
   effective labels, materialized and switched in;
3. the current version's predictions are scored on the test share (AUC; for a rare class
   also its recall at 90% precision), beside a head fitted on the same number of random
   pool labels (the labelling effort without the queue).

Every decision the simulated reviewer takes stays in the audit (reviewer ``oracle``).
"""

from __future__ import annotations

import csv
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from psycopg import sql
from sklearn.metrics import precision_recall_curve

from galdb.db.connect import connect, connect_reviewer
from galdb.db.settings import Settings
from galdb.errors import GaldbError
from galdb.eval.fewshot import FewshotConfig, draw, head_scores, load_data, score
from galdb.heads.kinds.classification import probability_column
from galdb.heads.materialize import current_predictions
from galdb.jobs.queue import enqueue
from galdb.jobs.worker import run_worker
from galdb.labels.store import import_labels
from galdb.labels.tasks import Task, create_task, get_task, set_retrain_threshold
from galdb.lvm.registry import lookup
from galdb.review.queue import QUEUE_STRATEGIES
from galdb.review.session import ReviewSession

ORACLE = "oracle"


@dataclass(frozen=True)
class ReviewEvalConfig:
    strategy: str = "margin"
    rounds: int = 5
    batch: int = 20
    start: int = 20
    test_fraction: float = 0.3
    seed: int = 0
    random_draws: int = 3  # random-label heads averaged per round
    rare_class: str | None = None  # also report this class's recall at 90% precision


@dataclass(frozen=True)
class RoundResult:
    round: int
    n_labels: int
    version: int
    queue_auc: float
    random_auc: float
    random_auc_std: float
    queue_rare_recall: float | None
    random_rare_recall: float | None
    asked: int  # galaxies the reviewer was shown this round (labelled + skipped)
    seconds: float


def recall_at_precision(probability: np.ndarray, positive: np.ndarray, precision=0.9) -> float:
    """The highest recall of ``positive`` at a threshold whose precision is ``precision`` or
    more (0 when no threshold reaches it)."""
    if not positive.any():
        return float("nan")
    p, r, _ = precision_recall_curve(positive, probability)
    ok = p >= precision
    return float(r[ok].max()) if ok.any() else 0.0


def _eval_task(conn, task: Task, seed: int) -> Task:
    name = f"{task.name[:26]}_rev{seed}_{uuid.uuid4().hex[:6]}"
    t = create_task(
        conn,
        name,
        task.kind,
        classes=list(task.classes or ()),
        unit=task.unit,
        description=f"galdb eval review of {task.name}",
    )
    # retraining is enqueued once per round by the evaluation itself
    set_retrain_threshold(conn, t, 1_000_000_000)
    conn.commit()
    return t


def _retrain(settings: Settings, conn, task: Task, model_id: int) -> Task:
    enqueue(conn, "retrain", {"task": task.name, "model_id": model_id})
    conn.commit()
    run_worker(settings, once=True, log=lambda _: None)
    new = get_task(conn, task.name)
    conn.commit()
    if new.current_version is None or new.current_version == task.current_version:
        row = conn.execute(
            "SELECT error FROM galdb.jobs WHERE payload->>'task' = %s ORDER BY job_id DESC LIMIT 1",
            (task.name,),
        ).fetchone()
        raise GaldbError(f"the retrain job did not publish a version: {row[0] if row else '?'}")
    return new


def _test_probabilities(conn, task: Task, galaxy_ids: np.ndarray) -> np.ndarray:
    table = current_predictions(conn, task).table
    columns = sql.SQL(", ").join(sql.Identifier(probability_column(c)) for c in task.classes)
    rows = conn.execute(
        sql.SQL("SELECT galaxy_id, {} FROM {} WHERE galaxy_id = ANY(%s)").format(columns, table),
        (galaxy_ids.tolist(),),
    ).fetchall()
    conn.commit()
    by_id = {r[0]: r[1:] for r in rows}
    return np.array([by_id[int(g)] for g in galaxy_ids], dtype=np.float64)


def run_review_eval(
    settings: Settings,
    task_name: str,
    config: ReviewEvalConfig,
    *,
    model: str | None = None,
    out_dir: Path = Path("."),
    log=print,
) -> list[RoundResult]:
    """Run the evaluation (see the module docstring); writes ``review_<task>_<strategy>.csv``
    and ``.png`` into ``out_dir`` and returns the rounds."""
    if config.strategy not in QUEUE_STRATEGIES or config.strategy in ("similar", "flagged"):
        raise GaldbError(
            f"strategy {config.strategy!r}: use margin, entropy, least_confident, "
            "rare, random or disagreement"
        )
    rng = np.random.default_rng(config.seed)
    with connect(settings) as conn:
        source = get_task(conn, task_name)
        if source.kind_spec.metric != "auc":
            raise GaldbError(
                f"galdb eval review scores AUC: {source.name} is a {source.kind} task "
                f"(its metric is {source.kind_spec.metric})"
            )
        record = lookup(conn, model)
        data = load_data(
            conn,
            source,
            record,
            FewshotConfig(test_fraction=config.test_fraction, seed=config.seed),
        )
        rare = None
        if config.rare_class is not None:
            if config.rare_class not in source.classes:
                raise GaldbError(
                    f"--rare-class {config.rare_class!r} is not a class of "
                    f"{source.name} ({', '.join(source.classes)})"
                )
            rare = source.classes.index(config.rare_class)
        pool = np.flatnonzero(~data.test)
        test_ids = data.galaxy_ids[data.test]
        labels = source.kind_spec.labels(data.targets[pool])
        truth = dict(zip(data.galaxy_ids[pool].tolist(), labels, strict=True))
        start = draw(data.targets, pool, config.start, rng, source.kind_spec.discrete)
        task = _eval_task(conn, source, config.seed)
        _import_start(conn, task, data, start)
        log(
            f"{task.name}: {len(pool)} pool and {len(test_ids)} test galaxies, "
            f"{len(start)} starting labels, strategy {config.strategy}"
        )
        task = _retrain(settings, conn, task, record.model_id)
        results = [
            _score_round(conn, task, data, 0, len(start), config, rng, rare, test_ids, pool, 0, 0.0)
        ]
        log(_line(results[-1]))
        labelled = len(start)
        with connect_reviewer(settings) as rconn:
            for round_no in range(1, config.rounds + 1):
                started = time.perf_counter()
                session = ReviewSession(
                    rconn,
                    get_task(rconn, task.name),
                    ORACLE,
                    strategy=config.strategy,
                    origin="eval review",
                )
                got, asked = 0, 0
                while got < config.batch:
                    item = session.next_item()
                    if item is None:
                        break
                    asked += 1
                    answer = truth.get(item.galaxy_id)
                    if answer is None:
                        session.decide(item, "skip")
                    else:
                        session.decide(item, "label", answer=answer)
                        got += 1
                session.close()
                labelled += got
                task = _retrain(settings, conn, task, record.model_id)
                results.append(
                    _score_round(
                        conn,
                        task,
                        data,
                        round_no,
                        labelled,
                        config,
                        rng,
                        rare,
                        test_ids,
                        pool,
                        asked,
                        time.perf_counter() - started,
                    )
                )
                log(_line(results[-1]))
                if got < config.batch:
                    log("the queue ran out of galaxies the reviewer can answer")
                    break
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"review_{source.name}_{config.strategy}"
    write_csv(results, stem.with_suffix(".csv"))
    plot(
        results,
        stem.with_suffix(".png"),
        f"{source.name}: {config.strategy} queue vs random "
        f"labels (start {config.start}, batch {config.batch})",
        config.rare_class,
    )
    return results


def _import_start(conn, task: Task, data, start: np.ndarray) -> None:
    """The starting labels, as a human's (so the queue does not offer them again)."""
    by_release: dict[int, list] = {}
    for row in conn.execute(
        "SELECT galaxy_id, release_id, source_id FROM galdb.galaxies WHERE galaxy_id = ANY(%s)",
        (data.galaxy_ids[start].tolist(),),
    ):
        by_release.setdefault(row[1], []).append(row)
    labels = task.kind_spec.labels(data.targets[start])
    target = dict(zip(data.galaxy_ids[start].tolist(), labels, strict=True))
    for release_id, rows in by_release.items():
        chunk = [(i, sid, target[gid]) for i, (gid, _, sid) in enumerate(rows)]
        import_labels(
            conn,
            task,
            release_id,
            [chunk],
            source="human",
            author="eval-start",
            origin="galdb eval review: starting labels",
        )


def _score_round(
    conn, task, data, round_no, n_labels, config, rng, rare, test_ids, pool, asked, seconds
) -> RoundResult:
    probabilities = _test_probabilities(conn, task, test_ids)
    y = data.targets[data.test]
    random_auc, random_rare = [], []
    for _ in range(config.random_draws):
        train = draw(data.targets, pool, n_labels, rng, data.kind.discrete)
        p = head_scores(data, train, np.flatnonzero(data.test), int(rng.integers(1 << 31)))
        random_auc.append(score(data, p))
        if rare is not None:
            random_rare.append(recall_at_precision(p[:, rare], y == rare))
    return RoundResult(
        round_no,
        n_labels,
        task.current_version,
        score(data, probabilities),
        float(np.mean(random_auc)),
        float(np.std(random_auc)),
        None if rare is None else recall_at_precision(probabilities[:, rare], y == rare),
        None if rare is None else float(np.mean(random_rare)),
        asked,
        seconds,
    )


def _line(r: RoundResult) -> str:
    text = (
        f"round {r.round}: {r.n_labels} labels, version {r.version}: queue AUC "
        f"{r.queue_auc:.3f}, random {r.random_auc:.3f} ± {r.random_auc_std:.3f}"
    )
    if r.queue_rare_recall is not None:
        text += (
            f"; rare recall@90%P queue {r.queue_rare_recall:.2f}, random {r.random_rare_recall:.2f}"
        )
    return text


def write_csv(results: list[RoundResult], path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(asdict(results[0])))
        w.writeheader()
        for r in results:
            w.writerow(asdict(r))


def plot(results: list[RoundResult], path: Path, title: str, rare_class: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r.n_labels for r in results]
    panels = 2 if rare_class else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
    ax = axes[0, 0]
    ax.plot(n, [r.queue_auc for r in results], "o-", label="review queue (real loop)")
    ax.errorbar(
        n,
        [r.random_auc for r in results],
        [r.random_auc_std for r in results],
        fmt="s--",
        label="random labels",
    )
    ax.set_xlabel("labels")
    ax.set_ylabel("test AUC")
    ax.legend()
    if rare_class:
        ax = axes[0, 1]
        ax.plot(n, [r.queue_rare_recall for r in results], "o-", label="review queue")
        ax.plot(n, [r.random_rare_recall for r in results], "s--", label="random labels")
        ax.set_xlabel("labels")
        ax.set_ylabel(f"{rare_class} recall at 90% precision")
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(results: list[RoundResult], rare_class: str | None = None) -> str:
    """The rounds as a Markdown table for a note or a paper draft."""
    head = ["round", "labels", "version", "queue AUC", "random AUC (mean ± std)"]
    if rare_class:
        head += [f"queue {rare_class} recall@90%P", f"random {rare_class} recall@90%P"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [
            str(r.round),
            str(r.n_labels),
            str(r.version),
            f"{r.queue_auc:.3f}",
            f"{r.random_auc:.3f} ± {r.random_auc_std:.3f}",
        ]
        if rare_class:
            cells += [f"{r.queue_rare_recall:.2f}", f"{r.random_rare_recall:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
