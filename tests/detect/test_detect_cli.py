"""galdb simulate-fields and galdb detect through the command line."""

import csv
import uuid

from galdb.cli import main


def test_simulate_fields_train_run_list(settings, tmp_path, capsys):
    out = tmp_path / "fields"
    assert main(["simulate-fields", str(out), "--n", "3", "--size", "96", "--seed", "3"]) == 0
    assert "wrote 3 fields" in capsys.readouterr().out
    with (out / "truth.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) >= 6  # at least one galaxy and one star each
    args = ["detect", "train", str(out), "--model", "timm:test_resnet", "--steps", "5",
            "--batch", "2", "--crop", "64"]  # fmt: skip
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "detector version" in text and "3 fields" in text
    version = int(text.split("detector version ")[1].split()[0])
    release = f"cli-{uuid.uuid4().hex[:6]}"
    args = ["detect", "run", str(out), "--release", release, "--version", str(version),
            "--threshold", "0.0"]  # fmt: skip
    assert main(args) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"galdb_detections.{release}" in text and "in 3 fields" in text
    query = f'SELECT count(DISTINCT field) AS n FROM galdb_detections."{release}"'
    assert main(["sql", query]) == 0
    assert "3" in capsys.readouterr().out
    assert main(["detect", "list", "--release", release]) == 0
    assert release in capsys.readouterr().out


def test_bad_input_is_one_clear_line(settings, tmp_path, capsys):
    assert main(["detect", "train", str(tmp_path), "--model", "timm:test_resnet"]) != 0
    assert "no .fits fields" in capsys.readouterr().err
    assert main(["detect", "switch", "--release", "nosuch", "--run", "999999"]) != 0
    assert "not a ready run" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for command in (["detect", "run"], ["detect", "train"], ["simulate-fields"]):
        assert main([*command, "--help"]) == 0
        assert "Example" in capsys.readouterr().out
