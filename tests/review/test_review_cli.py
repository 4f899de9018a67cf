"""galdb review apply / export / stats, galdb worker and galdb jobs, end to end."""

from __future__ import annotations

import csv

from astropy.table import Table

from galdb.cli import main
from galdb.labels.tasks import get_task

CLASSES = ("disk", "bulge", "merger")


def _predictions(conn, task, n):
    """(source_id, predicted class) of the task's first n galaxies by id."""
    table = conn.execute(
        "SELECT predictions_table FROM galdb.head_versions WHERE version_id = %s",
        (task.current_version,),
    ).fetchone()[0]
    table = table if "." in table else f"galdb.{table}"
    return conn.execute(
        f"SELECT g.source_id, p.class_index FROM {table} p JOIN galdb.galaxies g "
        "USING (galaxy_id) ORDER BY galaxy_id LIMIT %s",
        (n,),
    ).fetchall()


def _write(path, rows, header=("source_id", "answer", "action")):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_apply_crosses_the_threshold_and_the_worker_publishes(
    conn, settings, make_task, tmp_path, capsys
):
    r = make_task(threshold=4)
    conn.commit()
    preds = _predictions(conn, r.task, 6)
    rows = [(sid, CLASSES[(ci + 1) % 3], "label") for sid, ci in preds[:4]]  # 4 corrections
    rows += [(preds[4][0], "", "accept"), ("no-such-id", "disk", "label")]
    rows += [(preds[5][0], "spiral", "label")]  # not a class
    path = tmp_path / "decisions.csv"
    _write(path, rows)
    args = ["review", "apply", str(path), "--task", r.task.name, "-r", r.release]
    assert main([*args, "--reviewer", "gz", "--action-col", "action"]) == 0
    out = capsys.readouterr().out
    assert "5 of 7 decisions applied (4 corrections)" in out
    assert "no-such-id" in out and "not a class" in out
    job = out.split("retrain jobs: ")[1].split()[0]
    assert job.isdigit()
    assert main(["worker", "--once"]) == 0
    capsys.readouterr()
    task = get_task(conn, r.task.name)
    assert task.current_version != r.task.current_version
    assert main(["jobs", "show", job]) == 0
    shown = capsys.readouterr().out
    assert "done" in shown and r.task.name in shown and "version_id" in shown
    assert main(["jobs", "list", "--kind", "retrain", "--status", "done"]) == 0
    assert f"│ {job} " in capsys.readouterr().out

    out_file = tmp_path / "audit.csv"
    assert main(["review", "export", "--task", r.task.name, "--out", str(out_file)]) == 0
    audit = Table.read(out_file, format="ascii.csv")
    assert len(audit) == 5 and list(audit["action"]).count("label") == 4
    assert set(audit["reviewer"]) == {"gz"}
    assert audit["source_id"][0] == preds[0][0]


def test_stats_give_kappa_between_reviewers(conn, settings, make_task, tmp_path, capsys):
    r = make_task()
    conn.commit()
    preds = _predictions(conn, r.task, 10)
    a = [(sid, CLASSES[ci]) for sid, ci in preds]
    b = [
        (sid, CLASSES[ci] if i < 8 else CLASSES[(ci + 1) % 3]) for i, (sid, ci) in enumerate(preds)
    ]
    for who, rows in (("ann", a), ("ben", b)):
        path = tmp_path / f"{who}.csv"
        _write(path, rows, header=("source_id", "answer"))
        args = ["review", "apply", str(path), "--task", r.task.name, "-r", r.release]
        assert main([*args, "--reviewer", who]) == 0
    capsys.readouterr()
    assert main(["review", "stats", "--task", r.task.name]) == 0
    out = capsys.readouterr().out
    assert "ann" in out and "ben" in out and "100.0%" in out and "80.0%" in out
    assert "Cohen" in out and "10" in out
    assert "2 of 20 corrections toward the next retrain" in out


def test_task_set_retrain_threshold(conn, settings, make_task, capsys):
    r = make_task()
    conn.commit()
    assert main(["task", "set", r.task.name, "--retrain-threshold", "7"]) == 0
    assert main(["task", "set", r.task.name, "--retrain-threshold", "0"]) == 2
    capsys.readouterr()
    assert main(["review", "stats", "--task", r.task.name]) == 0
    assert "0 of 7 corrections toward the next retrain" in capsys.readouterr().out
