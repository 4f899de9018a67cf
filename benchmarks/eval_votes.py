"""Vote head against classification head on the GZ DECaLS rings set's vote fractions.

The rings set (``../shared/data/real/zoobot_gzdecals_rings``) has no ring vote counts: its
``ring`` label is a Talk tag (1 if any volunteer tagged the galaxy "ring"). What it has are
three Galaxy Zoo DECaLS vote fractions, one answer of three questions of the decision tree
(zoobot calls them the automatic, CNN-predicted fractions). So the comparison is made on
those three questions, each a two-answer vote task:

- ``featured``: featured-or-disk / smooth, asked of every volunteer: ``--total`` 40 votes
  (GZ DECaLS GZD-5 retired a galaxy after about 40 classifications);
- ``not_edge_on``: not edge-on / edge-on, asked of those who answered featured: 40 × the
  featured fraction votes (``--total-col``);
- ``no_arms``: no spiral arms / spiral arms, asked of featured, not edge-on answers:
  40 × featured × not-edge-on votes.

The sample was selected on these fractions (featured > 0.6, not edge-on > 0.75, no arms >
0.5), so thresholding at 0.5 would leave one class; the thresholded truth is "fraction above
the sample median" (balanced). For each question, each repeat holds out 30% (stratified on
the thresholded truth), then at 20 / 50 / 100 / all of the rest it fits the vote head
(Dirichlet-multinomial on the counts) and the classification head (logistic regression on the
thresholded labels), on the same galaxies, and reports on the held-out galaxies the AUC of
each head's score (the vote head's expected fraction, the classifier's probability) against
the thresholded truth and the mean absolute error of that score as a predicted fraction
(the classifier's probability is the only fraction it offers). ``const`` is the MAE of
predicting the training galaxies' mean fraction.

    python benchmarks/eval_votes.py --home /work/galdb-votes \
        --model checkpoint:/work/galdb-eval/ssl-gz2-r18-64.pt --repeats 10

The home must hold the release ``rings`` embedded with the model (``galdb ingest``, ``galdb
embed``). The script creates the vote tasks (``gzd_<question>``), imports the fractions with
their totals through :func:`galdb.labels.store.vote_chunks`, trains and materializes a vote
head on all the labels (so ``SELECT … FROM gzd_no_arms WHERE p_no_arms > 0.8`` works), then
runs the comparison in memory.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from galdb.db.connect import connect
from galdb.db.settings import Settings
from galdb.errors import GaldbError
from galdb.eval.fewshot import draw
from galdb.heads.classify import ClassificationHead
from galdb.heads.materialize import materialize
from galdb.heads.versions import labelled_vectors, train_head
from galdb.heads.votes import VoteHead
from galdb.ingest.runs import release_id_of
from galdb.labels.store import import_labels, vote_chunks
from galdb.labels.tasks import create_task, get_task
from galdb.lvm.registry import lookup

DATA = Path(__file__).parents[1] / ".." / "shared" / "data" / "real" / "zoobot_gzdecals_rings"
VOTES = 40.0  # classifications per galaxy in GZ DECaLS (GZD-5)
FEATURED = "smooth-or-featured_featured-or-disk_fraction"
NOT_EDGE_ON = "disk-edge-on_no_fraction"
NO_ARMS = "has-spiral-arms_no_fraction"
QUESTIONS = {  # task: (answers, fraction column of the first answer)
    "featured": (("featured", "smooth"), FEATURED),
    "not_edge_on": (("not_edge_on", "edge_on"), NOT_EDGE_ON),
    "no_arms": (("no_arms", "arms"), NO_ARMS),
}


def vote_table(catalog: Path, out: Path) -> None:
    """Both answers' fractions and the number of votes per question, one row per galaxy."""
    with catalog.open() as f:
        rows = list(csv.DictReader(f))
    with out.open("w", newline="") as f:
        w = csv.writer(f)
        header = ["iauname"]
        for q, (answers, _) in QUESTIONS.items():
            header += [f"{q}_{answers[0]}", f"{q}_{answers[1]}", f"{q}_votes"]
        w.writerow(header)
        for r in rows:
            featured, not_edge_on = float(r[FEATURED]), float(r[NOT_EDGE_ON])
            totals = {
                "featured": VOTES,
                "not_edge_on": VOTES * featured,
                "no_arms": VOTES * featured * not_edge_on,
            }
            line = [r["iauname"]]
            for q, (_, column) in QUESTIONS.items():
                f1 = float(r[column])
                line += [f1, 1 - f1, totals[q]]
            w.writerow(line)


def ensure_task(conn, question: str, release: str, table: Path):
    name = f"gzd_{question}"
    answers, _ = QUESTIONS[question]
    try:
        task = get_task(conn, name)
    except GaldbError:
        task = create_task(conn, name, "votes", classes=list(answers))
    chunks = vote_chunks(
        table,
        "iauname",
        fraction_columns=[f"{question}_{a}" for a in answers],
        total_column=f"{question}_votes",
    )
    summary = import_labels(
        conn, task, release_id_of(conn, release), chunks, author="gz-decals", origin=str(table)
    )
    conn.commit()
    print(f"{name}: {summary.stored} of {summary.read} vote labels stored, {summary.invalid} bad")
    return task


def compare(vectors, counts, sizes, repeats, seed) -> dict:
    """{(size, method, metric): [value per repeat]}."""
    fraction = counts[:, 0] / counts.sum(axis=1)
    truth = (fraction > np.median(fraction)).astype(np.int64)
    results: dict = {}
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        pool, test = train_test_split(
            np.arange(len(truth)), test_size=0.3, stratify=truth, random_state=seed + r
        )
        for size in sizes:
            n = len(pool) if size == "all" else int(size)
            train = draw(truth, np.sort(pool), n, rng, discrete=True)
            vote = VoteHead(counts.shape[1])
            vote.fit(vectors[train], counts[train], seed=r)
            f_vote = vote.predict(vectors[test])[0][:, 0]
            cls = ClassificationHead(2)
            cls.fit(vectors[train], truth[train], seed=r)
            p_cls = cls.predict_proba(vectors[test])[:, 1]
            for method, score in (("vote", f_vote), ("class", p_cls)):
                results.setdefault((size, method, "auc"), []).append(
                    roc_auc_score(truth[test], score)
                )
                results.setdefault((size, method, "mae"), []).append(
                    float(np.abs(score - fraction[test]).mean())
                )
            const = fraction[train].mean()
            results.setdefault((size, "const", "mae"), []).append(
                float(np.abs(const - fraction[test]).mean())
            )
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--model", required=True, help="e.g. checkpoint:/path/ssl.pt")
    p.add_argument("--release", default="rings")
    p.add_argument("--catalog", type=Path, default=DATA / "catalog.csv")
    p.add_argument("--questions", default=",".join(QUESTIONS))
    p.add_argument("--sizes", default="20,50,100,all")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    started = time.perf_counter()
    settings = Settings.from_env(args.home)
    sizes = args.sizes.split(",")
    lines = []
    with connect(settings) as conn, tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "votes.csv"
        vote_table(args.catalog.resolve(), table)
        record = lookup(conn, args.model)
        for question in args.questions.split(","):
            task = ensure_task(conn, question, args.release, table)
            labels, vectors, without = labelled_vectors(conn, task, record, ("catalog",))
            version = train_head(conn, task, record, sources=("catalog",))
            conn.commit()
            materialize(conn, task, version.version_id)
            (above,) = conn.execute(
                f"SELECT count(*) FROM {task.name} WHERE p_{QUESTIONS[question][0][0]} > 0.8"
            ).fetchone()
            m = version.metrics
            print(
                f"{task.name} v{version.version_id} on {version.n_labels} galaxies: "
                f"cv_mae {m['cv_mae']:.3f}, cv_within_1sigma {m['cv_within_1sigma']:.2f}, "
                f"mean concentration {m['cv_mean_concentration']:.1f}; {above} galaxies with "
                f"p_{QUESTIONS[question][0][0]} > 0.8"
            )
            results = compare(vectors, labels.targets, sizes, args.repeats, args.seed)
            for size in sizes:

                def cell(method, metric, results=results, size=size):
                    v = np.array(results[(size, method, metric)])
                    return f"{v.mean():.3f} ± {v.std():.3f}"

                n = (
                    len(labels.targets) - round(0.3 * len(labels.targets))
                    if size == "all"
                    else size
                )
                lines.append(
                    f"| {question} | {n} | {cell('vote', 'auc')} | {cell('class', 'auc')} | "
                    f"{cell('vote', 'mae')} | {cell('class', 'mae')} | {cell('const', 'mae')} |"
                )
    print()
    print(f"{args.repeats} repeats, mean ± std; held-out 30% of {len(labels.targets)} galaxies")
    print()
    print(
        "| question | labels | AUC vote head | AUC class head | MAE vote head | "
        "MAE class head | MAE const |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
