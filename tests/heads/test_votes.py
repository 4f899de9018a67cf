"""Vote tasks: volunteer vote counts per answer, a Dirichlet-multinomial head, a view with the
expected fractions, and review decisions that add weighted votes."""

from __future__ import annotations

import csv
import uuid

import numpy as np
import pytest
from scipy.special import softmax

from galdb.cli import main
from galdb.datasets.vectors import clustered_vectors, store_vectors
from galdb.errors import GaldbError
from galdb.heads.materialize import materialize
from galdb.heads.versions import train_head
from galdb.heads.votes import VoteHead
from galdb.ingest.runs import release_id_of
from galdb.labels.store import effective_labels, import_labels, vote_chunks
from galdb.labels.tasks import create_task, get_task
from galdb.review.decisions import decide, undo
from galdb.review.queue import Item


def _sphere(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _truth(rng, d=6, k=3):
    weights = rng.normal(size=(k, d)) * 2.5
    return lambda x: softmax(x @ weights.T, axis=1)


def test_head_recovers_the_fractions_the_votes_were_drawn_from():
    """2,000 galaxies with 5 to 40 votes each, drawn from known fractions. One galaxy's
    observed fraction is off by its sampling noise, sqrt(p(1-p)/N) (about 0.08 here); the head
    pools every galaxy's votes through 28 parameters, so its error must be a small part of
    that: under a quarter of it on average, and the fitted concentration must be large (no
    scatter beyond the multinomial's was put in)."""
    rng = np.random.default_rng(3)
    fractions_of = _truth(rng)
    x = _sphere(rng, 2000, 6)
    p = fractions_of(x)
    votes = rng.integers(5, 41, len(x))
    counts = np.array([rng.multinomial(n, q) for n, q in zip(votes, p, strict=True)], float)
    head = VoteHead(3)
    metrics = head.fit(x, counts, seed=0)
    sampling = np.sqrt(p * (1 - p) / votes[:, None]).mean()
    test = _sphere(rng, 1000, 6)
    predicted, concentration = head.predict(test)
    error = np.abs(predicted - fractions_of(test)).mean()
    assert error < 0.25 * sampling, (error, sampling)
    assert np.median(concentration) > 100
    observed = counts / votes[:, None]
    assert metrics["cv_mae"] < np.abs(observed - p).mean() * 1.2  # CV error: mostly noise
    assert 0.55 < metrics["cv_within_1sigma"] < 0.9  # honest 1-sigma intervals


def test_head_learns_the_scatter_of_the_fractions():
    """Fractions drawn from a Dirichlet of concentration 8 around the truth, 60 votes each:
    the head's concentration must come out near 8 (not the multinomial's infinity)."""
    rng = np.random.default_rng(4)
    fractions_of = _truth(rng, k=2)
    x = _sphere(rng, 2000, 6)
    mean = fractions_of(x)
    p = np.array([rng.dirichlet(8 * m + 1e-9) for m in mean])
    counts = np.array([rng.multinomial(60, q) for q in p], float)
    head = VoteHead(2)
    head.fit(x, counts, seed=0)
    _, concentration = head.predict(x)
    assert 6 < np.median(concentration) < 11


def _votes_release(conn, release, n=60, seed=1):
    vectors, _ = clustered_vectors(n, 8, 2, seed=seed)
    record, ids = store_vectors(conn, vectors, release, f"synthetic:{release}")
    return vectors, record, release_id_of(conn, release)


def test_fractions_without_a_total_are_refused(settings, conn, unique_release, tmp_path):
    _votes_release(conn, unique_release, n=4)
    name = f"vt_{uuid.uuid4().hex[:8]}"
    assert main(["task", "create", name, "--kind", "votes", "--answers", "ring,no_ring"]) == 0
    path = tmp_path / "votes.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source_id", "ring_fraction", "no_ring_fraction", "n", "ring", "no_ring"])
        w.writerow(["v00000000", 0.25, 0.75, 40, 10, 30])
        w.writerow(["v00000001", 0.5, 0.5, "", 1, 1])  # no total on this row
    base = ["label", "import", str(path), "-t", name, "-r", unique_release]
    fractions = ["--fraction-cols", "ring_fraction,no_ring_fraction"]
    with pytest.raises(GaldbError, match="fractions need the number of votes"):
        list(vote_chunks(path, "source_id", fraction_columns=["ring_fraction", "x"]))
    assert main([*base, *fractions]) == 1  # refused before anything is read or stored
    assert main([*base, *fractions, "--total-col", "n"]) == 0
    task = get_task(conn, name)
    labels = effective_labels(conn, task)
    assert labels.targets.tolist() == [[10.0, 30.0]]  # the row without a total is a problem
    summary = import_labels(
        conn,
        task,
        release_id_of(conn, unique_release),
        vote_chunks(
            path,
            "source_id",
            fraction_columns=["ring_fraction", "no_ring_fraction"],
            total_column="n",
        ),
        author="again",
    )
    assert summary.invalid == 1 and "fractions need the number of votes" in (
        summary.problems[0].reason
    )
    assert main([*base, "--count-cols", "ring,no_ring", "--author", "counts"]) == 0
    assert main([*base, "--label-col", "ring"]) == 1  # a vote task needs vote columns


def test_view_has_the_expected_columns(settings, conn, unique_release, tmp_path):
    vectors, record, rid = _votes_release(conn, unique_release)
    task = create_task(conn, f"vt_{uuid.uuid4().hex[:8]}", "votes", classes=["ring", "no_ring"])
    rng = np.random.default_rng(0)
    ring = 1 / (1 + np.exp(-4 * vectors[:, 0] / np.abs(vectors[:, 0]).max()))
    chunk = []
    for i, q in enumerate(ring):
        n = int(rng.integers(10, 30))
        r = int(rng.binomial(n, q))
        chunk.append((i, f"v{i:08d}", {"counts": [r, n - r]}))
    summary = import_labels(conn, task, rid, [chunk], author="gz")
    assert summary.stored == len(vectors)
    version = train_head(conn, task, record)
    conn.commit()
    assert {"cv_mae", "cv_nll", "cv_within_1sigma"} <= set(version.metrics)
    assert materialize(conn, task, version.version_id) == len(vectors)
    cur = conn.execute(f"SELECT * FROM galdb_tasks.{task.name} LIMIT 0")
    columns = [c.name for c in cur.description]
    assert columns[: columns.index("head_version")] == [
        "galaxy_id", "release", "source_id", "ra", "dec", "label", "p_ring", "p_no_ring",
        "sd_ring", "sd_no_ring", "concentration", "confidence", "margin", "entropy",
    ]  # fmt: skip
    rows = conn.execute(
        f"SELECT label, p_ring, p_no_ring, sd_ring FROM {task.name} WHERE p_ring > 0.8"
    ).fetchall()
    assert rows and all(r[0] == "ring" and abs(r[1] + r[2] - 1) < 1e-5 for r in rows)
    assert all(0 < r[3] < 0.5 for r in rows)
    labelled = conn.execute(
        f"SELECT label = CASE WHEN p_ring >= p_no_ring THEN 'ring' ELSE 'no_ring' END "
        f"FROM {task.name}"
    ).fetchall()
    assert all(r[0] for r in labelled)
    snapshot = conn.execute(
        "SELECT counts FROM galdb.head_labels WHERE version_id = %s ORDER BY galaxy_id LIMIT 1",
        (version.version_id,),
    ).fetchone()[0]
    assert snapshot == chunk[0][2]["counts"]


def test_review_decisions_add_votes(settings, conn, unique_release):
    _, _, rid = _votes_release(conn, unique_release, n=4)
    task = create_task(conn, f"vt_{uuid.uuid4().hex[:8]}", "votes", classes=["ring", "no_ring"])
    import_labels(conn, task, rid, [[(0, "v00000000", "3,1")]], author="gz")
    assert main(["task", "set", task.name, "--vote-weight", "5"]) == 0
    (galaxy_id,) = effective_labels(conn, task).galaxy_ids.tolist()
    item = Item(galaxy_id, unique_release, "v00000000", None, None, None, "ring", 0.7, None, None)
    decision = decide(conn, task, item, "ada", "label", answer="no_ring")
    assert decision.correction == 1
    assert effective_labels(conn, task).targets.tolist() == [[3.0, 6.0]]
    decide(conn, task, item, "ben", "accept")  # ben accepts "ring": 5 more votes for ring
    assert effective_labels(conn, task).targets.tolist() == [[8.0, 6.0]]
    decide(conn, task, item, "ada", "label", answer="ring")  # ada changes her mind
    assert effective_labels(conn, task).targets.tolist() == [[13.0, 1.0]]
    undo(conn, task, "ada")
    assert effective_labels(conn, task).targets.tolist() == [[8.0, 6.0]]
    shown = conn.execute(
        "SELECT answer_class, shown_class FROM galdb.review_decisions WHERE task_id = %s "
        "ORDER BY decision_id LIMIT 1",
        (task.task_id,),
    ).fetchone()
    assert shown == ("no_ring", "ring")
    with pytest.raises(GaldbError, match="not a class"):
        decide(conn, task, item, "ada", "label", answer="bar")
    conn.rollback()
    with pytest.raises(GaldbError, match="a vote weight needs votes"):
        other = create_task(conn, f"c_{uuid.uuid4().hex[:8]}", "classification", classes=["a", "b"])
        from galdb.labels.tasks import set_vote_weight

        set_vote_weight(conn, other, 2)
