"""benchmarks/eval_detection.py end to end on a small input; real frames where present."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from galdb.detect.baselines import sep_detect
from galdb.detect.evaluate import score_at
from galdb.eval.detection_real import real_frames
from tests.conftest import REAL, real_dir

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_detection.py"


def _run(args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_eval_script_end_to_end(tmp_path):
    out = _run(["--work", str(tmp_path), "--sizes", "2", "--n-test", "2", "--field-size", "64",
                "--model", "timm:test_resnet", "--steps", "3", "--rcnn-steps", "1", "--batch",
                "2", "--crop", "64"])  # fmt: skip
    with (tmp_path / "eval_detection.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["method"], r["n_train"]) for r in rows] == [
        (m, n) for n in ("2",) for m in ("lvm", "sep", "photutils", "rcnn")
    ]
    for r in rows:
        assert 0 <= float(r["f1"]) <= 1 and int(r["tp"]) + int(r["fn"]) > 0
    # the classical methods find most objects of these fields whatever the training size
    assert all(float(r["recall"]) > 0.5 for r in rows if r["method"] in ("sep", "photutils"))
    assert (tmp_path / "eval_detection.png").stat().st_size > 1000
    assert "| method | n_train |" in out


@pytest.mark.realdata
def test_sep_recovers_the_sextractor_catalog_of_the_ntt_frame():
    real_dir("sep_ntt_emmi_field")
    frames = {f.name: f for f in real_frames(REAL)}
    frame = frames["sep_ntt_emmi_field"]
    assert len(frame.reference) == 65
    found = sep_detect(frame.field.pixels)
    # SEP at SExtractor's settings on the same frame: every catalog source within 3 px
    assert score_at([found], [frame.reference], -np.inf).recall > 0.95
    assert {"hsc_cosmos_35", "hsc_cosmos", "photutils_spitzer_glimpse"} <= set(frames)
