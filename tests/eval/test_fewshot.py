"""The few-shot evaluation runs end to end on a small simulated labelled set."""

import uuid

import numpy as np
import pytest
from PIL import Image

from galdb.cli import main
from galdb.db.connect import database_url
from galdb.errors import GaldbError
from galdb.eval.baseline import BaselineConfig
from galdb.eval.curves import read_csv
from galdb.eval.fewshot import FewshotConfig, draw, run_fewshot
from galdb.ingest import ingest
from galdb.labels.store import catalog_chunks, import_labels
from galdb.labels.tasks import create_task
from galdb.lvm.embed import embed
from galdb.lvm.registry import lookup, preprocessing_of
from galdb.lvm.specs import load_model
from galdb.sim import simulate_release


@pytest.fixture(scope="module")
def labelled(settings, tmp_path_factory):
    """60 simulated galaxies embedded with a tiny backbone; task = disk-like or not."""
    from galdb.db.connect import connect
    from galdb.ingest.runs import release_id_of

    out = tmp_path_factory.mktemp("sim")
    catalog = simulate_release(out, 60, seed=21, size=32)
    release = f"fewshot-{uuid.uuid4().hex[:6]}"
    with connect(settings) as conn:
        ingest(conn, out, release, catalog=catalog)
        rid = release_id_of(conn, release)
        loaded = load_model("timm:test_resnet", input_size=32)
        embed(conn, database_url(settings), loaded, release_id=rid, workers=0)
        task = create_task(
            conn,
            f"fs_{uuid.uuid4().hex[:8]}",
            "classification",
            classes=["elliptical", "lenticular", "spiral", "edge_on", "merger"],
        )
        import_labels(conn, task, rid, catalog_chunks(conn, rid, "morph_class"), author="sim")
    return task


def test_fewshot_end_to_end(settings, conn, labelled, tmp_path):
    record = lookup(conn, "timm:test_resnet")
    config = FewshotConfig(
        label_counts=(10, 20),
        repeats=2,
        k=5,
        baseline=BaselineConfig(arch="test_resnet", epochs=1, min_steps=3, batch_size=16),
    )
    logged = []
    points = run_fewshot(
        conn,
        labelled,
        record,
        config,
        tmp_path,
        preprocessing=preprocessing_of(conn, record),
        log=logged.append,
    )
    methods = {p.method for p in points}
    assert methods == {"head", "propagation", "head+reviewer", "resnet18_scratch"}
    pool = 60 - 18  # 30% of 60 held out
    assert sorted({p.n_labels for p in points}) == [10, 20, pool]
    assert len(points) == 4 * 3 * 2
    assert all(0 <= p.value <= 1 for p in points)
    assert read_csv(tmp_path / f"fewshot_{labelled.name}.csv") == points
    with Image.open(tmp_path / f"fewshot_{labelled.name}.png") as png:
        assert png.size[0] > 300
    table = (tmp_path / f"fewshot_{labelled.name}.md").read_text()
    assert "head+reviewer" in table and "| 10 |" in table.replace("  ", " ")
    assert "held out" in logged[0]


def test_fewshot_cli_without_baseline(settings, labelled, tmp_path, capsys):
    code = main(
        [
            "eval", "fewshot", "-t", labelled.name, "-m", "timm:test_resnet", "--labels", "10",
            "--repeats", "1", "--k", "5", "--methods", "head,propagation", "-o", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    assert (tmp_path / f"fewshot_{labelled.name}.png").exists()
    assert "propagation" in capsys.readouterr().out
    bad = ["eval", "fewshot", "-t", labelled.name, "--strategy", "oldest", "-o", str(tmp_path)]
    assert main(bad) == 1
    assert "use one of margin" in capsys.readouterr().err


def test_draw_takes_one_per_class_first():
    targets = np.array([0] * 50 + [1] * 3 + [2] * 2)
    pool = np.arange(55)
    picked = draw(targets, pool, 5, np.random.default_rng(0), True)
    assert len(set(picked)) == 5 and set(targets[picked]) == {0, 1, 2}
    everything = draw(targets, pool, 100, np.random.default_rng(0), True)
    assert sorted(everything) == list(pool)
    assert set(targets[everything[:3]]) == {0, 1, 2}  # the front is not the sorted pool's head


@pytest.fixture(scope="module")
def two_releases(settings, tmp_path_factory):
    """A task labelled on two simulated releases (40 + 24 galaxies), both embedded."""
    from galdb.db.connect import connect
    from galdb.ingest.runs import release_id_of

    names = [f"fs-train-{uuid.uuid4().hex[:6]}", f"fs-test-{uuid.uuid4().hex[:6]}"]
    with connect(settings) as conn:
        task = create_task(
            conn,
            f"fs2_{uuid.uuid4().hex[:8]}",
            "classification",
            classes=["elliptical", "lenticular", "spiral", "edge_on", "merger"],
        )
        loaded = load_model("timm:test_resnet", input_size=32)
        for name, n, seed in zip(names, (40, 24), (31, 32), strict=True):
            out = tmp_path_factory.mktemp(name)
            catalog = simulate_release(out, n, seed=seed, size=32)
            ingest(conn, out, name, catalog=catalog)
            rid = release_id_of(conn, name)
            embed(conn, database_url(settings), loaded, release_id=rid, workers=0)
            import_labels(conn, task, rid, catalog_chunks(conn, rid, "morph_class"), author="sim")
    return task, names


def test_fewshot_on_a_designated_test_release(settings, conn, two_releases, tmp_path, capsys):
    from galdb.eval.fewshot import load_data, release_mask

    task, (train_release, test_release) = two_releases
    record = lookup(conn, "timm:test_resnet")
    data = load_data(conn, task, record, FewshotConfig(test_release=test_release))
    assert int(data.test.sum()) == 24 and int((~data.test).sum()) == 40
    # the test rows are exactly the galaxies of that release
    assert release_mask(conn, data.galaxy_ids[data.test], test_release).all()
    assert not release_mask(conn, data.galaxy_ids[~data.test], test_release).any()
    code = main(
        [
            "eval", "fewshot", "-t", task.name, "-m", "timm:test_resnet", "--labels", "10",
            "--repeats", "1", "--methods", "head", "--test-release", test_release,
            "-o", str(tmp_path),
        ]
    )  # fmt: skip
    assert code == 0
    out = " ".join(capsys.readouterr().out.split())  # undo the console's wrapping
    assert f"24 (release {test_release}) for testing" in out
    points = read_csv(tmp_path / f"fewshot_{task.name}.csv")
    assert sorted(p.n_labels for p in points) == [10, 40]  # all = every other release's label
    bad = ["eval", "fewshot", "-t", task.name, "-m", "timm:test_resnet", "--methods", "head",
           "--test-release", "no-such-release", "-o", str(tmp_path)]  # fmt: skip
    assert main(bad) == 1 and "no release 'no-such-release'" in capsys.readouterr().err
    empty = f"fs-empty-{uuid.uuid4().hex[:6]}"  # a release with none of the task's labels
    ingest(conn, tmp_path / "e", empty, catalog=simulate_release(tmp_path / "e", 3, seed=4))
    with pytest.raises(GaldbError, match="0 of the 64 labelled galaxies"):
        load_data(conn, task, record, FewshotConfig(test_release=empty))
