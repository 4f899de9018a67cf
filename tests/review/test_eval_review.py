"""galdb eval review: a simulated reviewer through the real queue, jobs and worker."""

from __future__ import annotations

import numpy as np

from galdb.cli import main
from galdb.eval.review import ReviewEvalConfig, recall_at_precision, run_review_eval


def test_recall_at_precision():
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.1])
    positive = np.array([True, True, False, True, False])
    assert recall_at_precision(p, positive) == 2 / 3  # 0.8 keeps precision 1; 0.6 only 3/4
    assert recall_at_precision(p, positive, precision=0.75) == 1.0


def test_review_eval_runs_the_real_loop(conn, settings, make_task, tmp_path):
    source = make_task(n_labels=400)
    conn.commit()
    config = ReviewEvalConfig(
        strategy="margin", rounds=2, batch=10, start=9, rare_class="merger", random_draws=1
    )
    results = run_review_eval(
        settings, source.task.name, config, out_dir=tmp_path, log=lambda _: None
    )
    assert [r.n_labels for r in results] == [9, 19, 29]
    assert len({r.version for r in results}) == 3  # a version published per round
    assert all(0.5 < r.queue_auc <= 1 and 0 <= r.queue_rare_recall <= 1 for r in results)
    # the oracle's decisions are in the audit, through the reviewer role
    n = conn.execute(
        "SELECT count(*) FROM galdb.review_decisions WHERE reviewer = 'oracle' "
        "AND action = 'label' AND origin = 'eval review'"
    ).fetchone()[0]
    assert n >= 20
    assert (tmp_path / f"review_{source.task.name}_margin.csv").exists()
    assert (tmp_path / f"review_{source.task.name}_margin.png").stat().st_size > 1000


def test_cli_eval_review(settings, make_task, conn, tmp_path, capsys):
    source = make_task(n_labels=400)
    conn.commit()
    args = ["eval", "review", "--task", source.task.name, "--rounds", "1", "--batch", "5"]
    assert main([*args, "--start", "6", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| round | labels |" in out and "queue AUC" in out
