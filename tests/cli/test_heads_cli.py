"""The task → label → head → predictions → propagation workflow through the command line."""

import uuid

import pytest

from galdb.cli import main
from galdb.db.connect import connect
from galdb.sim import simulate_release


@pytest.fixture(scope="module")
def sim_release(settings, tmp_path_factory):
    """40 simulated galaxies, ingested and embedded with a tiny random-init backbone."""
    out = tmp_path_factory.mktemp("sim")
    catalog = simulate_release(out, 40, seed=4, size=32)
    release = f"cli-{uuid.uuid4().hex[:6]}"
    assert main(["ingest", str(out), "-r", release, "--catalog", str(catalog)]) == 0
    assert main(["embed", "-m", "timm:test_efficientnet", "-r", release, "--input-size", "32"]) == 0
    return release


def test_classification_workflow(settings, sim_release, capsys):
    task = f"morph_{uuid.uuid4().hex[:6]}"
    classes = "elliptical,lenticular,spiral,edge_on,merger"
    assert main(["task", "create", task, "--classes", classes]) == 0
    code = main(["label", "import", "-t", task, "-r", sim_release, "--column", "morph_class"])
    assert code == 0
    assert "40 of 40 labels stored" in capsys.readouterr().out
    assert main(["head", "train", "-t", task, "-m", "timm:test_efficientnet"]) == 0
    out = capsys.readouterr().out
    assert "cv_auc" in out and "40 predictions" in out
    assert main(["sql", f"SELECT label, count(*) FROM {task} GROUP BY label"]) == 0
    assert main(["head", "list", "-t", task]) == 0
    assert "ready" in capsys.readouterr().out
    assert main(["propagate", "-t", task, "--k", "5", "-m", "timm:test_efficientnet"]) == 0
    # every galaxy is labelled by the catalog, so there is nothing to propagate to
    assert "0 propagated labels from 40 seeds" in capsys.readouterr().out
    rebuilt = ["propagate", "-t", task, "--k", "5", "-m", "timm:test_efficientnet"]
    assert main([*rebuilt, "--rebuild-graph", "--graph-method", "blocks"]) == 0
    assert "k=5, built" in capsys.readouterr().out
    assert main([*rebuilt, "--graph-method", "hnsw"]) != 0  # not a method
    capsys.readouterr()
    assert main(["task", "list"]) == 0
    assert "morph_" in capsys.readouterr().out


def test_regression_workflow_and_bad_labels(settings, sim_release, tmp_path, capsys):
    task = f"hlr_{uuid.uuid4().hex[:6]}"
    assert main(["task", "create", task, "--kind", "regression", "--unit", "arcsec"]) == 0
    with connect(settings) as conn:
        rows = conn.execute(
            "SELECT source_id, props->>'half_light_radius_arcsec' FROM galdb.catalog "
            "WHERE release = %s ORDER BY source_id",
            (sim_release,),
        ).fetchall()
    path = tmp_path / "truth.csv"
    lines = [f"{sid},{value}" for sid, value in rows] + ["nosuch,1.0", f"{rows[0][0]},abc"]
    path.write_text("source_id,hlr\n" + "\n".join(lines) + "\n")
    args = ["label", "import", str(path), "-t", task, "-r", sim_release, "--label-col", "hlr"]
    assert main(args) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at 80 columns
    assert "1 ids not in" in out and "not a number" in out
    assert main(["head", "train", "-t", task, "-m", "timm:test_efficientnet"]) == 0
    assert "cv_r2" in capsys.readouterr().out
    assert main(["sql", f"SELECT count(*) FROM {task} WHERE uncertainty > 0"]) == 0
    assert "40" in capsys.readouterr().out


def test_clear_errors(settings, capsys):
    assert main(["head", "train", "-t", "no_such_task"]) == 1
    assert "no task 'no_such_task'" in capsys.readouterr().err
    assert main(["label", "import", "-t", "x", "-r", "y"]) == 1
    assert "either FILE" in capsys.readouterr().err
