"""galdb restore through the command line, and the evaluation script end to end."""

import csv
import os
import subprocess
import sys
import uuid
from pathlib import Path

from galdb.cli import main
from galdb.db.connect import connect
from galdb.lvm.specs import load_model
from galdb.restore.network import from_backbone
from galdb.restore.versions import store_version

ROOT = Path(__file__).resolve().parents[2]


def test_train_run_list_use_eval(settings, pairs, tmp_path, capsys):
    d, spec = str(pairs.dir), pairs.spec
    assert main(["restore", "train", d, "-m", spec, "--epochs", "1", "--limit", "8"]) == 0
    out = capsys.readouterr().out
    assert "restoration version" in out and "val_psnr" in out
    version = out.split("restoration version ")[1].split()[0]
    release = f"cli-restore-{uuid.uuid4().hex[:6]}"
    assert main(["ingest", d, "-r", release, "--catalog", f"{d}/pairs.csv"]) == 0
    restored = tmp_path / "restored"
    args = ["restore", "run", "-r", release, "--version", version, "-o", str(restored)]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"restored {pairs.n} cutouts of {release} with version {version}" in out
    assert len(list((restored / f"v{version}").glob("*.fits"))) == pairs.n
    assert main(args) == 0  # resumed: nothing left to do
    assert "restored 0 cutouts" in capsys.readouterr().out
    assert main(["restore", "use", version]) == 0
    with connect(settings) as conn:  # a version without metrics (as a benchmark stores one)
        net = from_backbone(load_model(spec))
        store_version(conn, net, model_spec=spec, backbone_sha256="", hyperparameters={},
                      pairs="", metrics={})  # fmt: skip
        conn.commit()
    assert main(["restore", "list"]) == 0
    assert version in capsys.readouterr().out
    scores = tmp_path / "scores.csv"
    args = ["restore", "eval", d, "--tune-pairs", d, "--tune-limit", "4", "--out", str(scores)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "wiener" in out and f"network v{version}" in out
    with scores.open() as fh:
        assert len(list(csv.DictReader(fh))) == 4 * pairs.n


def test_bad_input_is_named(settings, pairs, tmp_path, capsys):
    assert main(["restore", "train", str(tmp_path), "-m", pairs.spec]) != 0
    assert "pairs.csv not found" in capsys.readouterr().err
    assert main(["restore", "run", "-r", "no-such-release"]) != 0
    assert "no release 'no-such-release'" in capsys.readouterr().err


def test_eval_script_end_to_end(pairs, tmp_path):
    scores = tmp_path / "scores.csv"
    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "eval_restoration.py"),
        "--model", pairs.spec, "--train-dir", str(pairs.dir), "--n-train", "12",
        "--test-dir", str(tmp_path / "test"), "--n-test", "4", "--size", str(pairs.size),
        "--epochs", "1", "--tune", "4", "--csv", str(scores),
    ]  # fmt: skip
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert done.returncode == 0, done.stderr
    for method in ("no-op", "gaussian", "wiener", "network", "Wiener PSNR"):
        assert method in done.stdout
    with scores.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 * 4 and all(float(r["psnr"]) > 0 for r in rows)
