"""Fine-tuned heads: which weights train, the stored network, materialized predictions from
pixels (resumable), and the CLI, on simulated cutouts with a tiny real backbone."""

import uuid

import numpy as np
import pytest
import torch

from galdb.cli import main
from galdb.db.connect import connect, database_url
from galdb.errors import GaldbError
from galdb.heads.finetune import FinetuneConfig, FinetunedHead, trainable_names
from galdb.heads.materialize import materialize, table_names
from galdb.heads.versions import load_version_head, train_finetuned_head
from galdb.ingest import ingest
from galdb.labels.store import catalog_chunks, import_labels
from galdb.labels.tasks import create_task, get_task
from galdb.lvm.embed import embed
from galdb.lvm.pixels import PixelRef, pixel_columns, read_pixels
from galdb.lvm.preprocess import to_tensor
from galdb.lvm.registry import load_registered, lookup, register
from galdb.lvm.specs import load_model
from galdb.sim import simulate_release

SPEC = "timm:test_resnet"
N = 40
CONFIG = FinetuneConfig(max_epochs=3, patience=1, batch_size=8)


@pytest.fixture(scope="module")
def labelled(settings, tmp_path_factory):
    """40 simulated galaxies embedded with a tiny backbone, labelled with their class."""
    from galdb.ingest.runs import release_id_of

    out = tmp_path_factory.mktemp("ft")
    catalog = simulate_release(out, N, seed=41, size=32)
    release = f"ft-{uuid.uuid4().hex[:6]}"
    with connect(settings) as conn:
        ingest(conn, out, release, catalog=catalog)
        rid = release_id_of(conn, release)
        # a preprocessing of its own: a model no other test module registers or looks up
        loaded = load_model(SPEC, input_size=32, crop_fraction=0.77)
        embed(conn, database_url(settings), loaded, release_id=rid, workers=0)
        model = str(register(conn, loaded).model_id)
        task = create_task(
            conn,
            f"ft_{uuid.uuid4().hex[:8]}",
            "classification",
            classes=["elliptical", "lenticular", "spiral", "edge_on", "merger"],
        )
        import_labels(conn, task, rid, catalog_chunks(conn, rid, "morph_class"), author="sim")
        conn.commit()
    return task, model


def test_only_the_last_stages_train():
    backbone = load_model(SPEC).model
    names = trainable_names(backbone, 2)
    assert names and all(n.startswith(("layer3.", "layer4.")) for n in names)
    assert any(n.startswith("layer3.") for n in names)
    assert len(trainable_names(backbone, 5)) == len(list(backbone.parameters()))
    with pytest.raises(GaldbError, match="5 stages"):
        trainable_names(backbone, 6)


def test_finetuned_version_stores_its_network_and_predicts_every_galaxy(settings, labelled):
    labelled, model = labelled
    with connect(settings) as conn:
        record = lookup(conn, model)
        before = load_registered(conn, record).model.state_dict()
        version = train_finetuned_head(conn, labelled, record, CONFIG)
        conn.commit()
        assert version.algorithm == "finetuned-backbone" and version.n_labels == N
        m = version.metrics
        assert 1 <= m["best_epoch"] <= m["epochs_run"] <= 3 and m["holdout_n"] == 8
        assert m["holdout_auc"] is None or 0 <= m["holdout_auc"] <= 1
        head, model_id = load_version_head(conn, labelled, version.version_id)
        assert isinstance(head, FinetunedHead) and model_id == record.model_id
        after = head.net.backbone.state_dict()
        # frozen stages kept the model's weights (and batch-norm statistics); the rest moved
        assert torch.equal(after["layer1.0.conv1.weight"], before["layer1.0.conv1.weight"])
        assert torch.equal(after["bn1.running_mean"], before["bn1.running_mean"])
        assert not torch.equal(after["layer4.0.conv1.weight"], before["layer4.0.conv1.weight"])

        n = materialize(conn, labelled, version.version_id)
        assert n == N
        rows = conn.execute(
            "SELECT p.galaxy_id, p.p_elliptical + p.p_lenticular + p.p_spiral + p.p_edge_on "
            f"+ p.p_merger, p.p_spiral, {pixel_columns('g')} "
            f"FROM {table_names(version.version_id).qualified} p "
            "JOIN galdb.galaxies g USING (galaxy_id) ORDER BY galaxy_id"
        ).fetchall()
        assert len(rows) == N and all(abs(r[1] - 1) < 1e-4 for r in rows)
        # a row is the stored network's forward pass over that galaxy's cutout
        ref = PixelRef.from_row(rows[3][3:])
        x = to_tensor(read_pixels(ref), ref.bands, head.preprocessing)[None]
        assert head.predict_proba(x)[0, 2] == pytest.approx(rows[3][2], abs=1e-5)
        task = get_task(conn, labelled.name)
        assert task.current_version == version.version_id


class _Interrupt(Exception):
    pass


class _StopAfter:
    """A progress bar that interrupts the run after some galaxies."""

    def __init__(self, limit: int | None):
        self.limit, self.done, self.started_with = limit, 0, None

    def start(self, total, description=""):
        self.description = description

    def advance(self, n=1):
        if self.started_with is None:
            self.started_with = n
        self.done += n
        if self.limit is not None and self.done >= self.limit:
            raise _Interrupt


def test_an_interrupted_materialization_resumes(settings, labelled):
    labelled, model = labelled
    with connect(settings) as conn:
        version = train_finetuned_head(conn, labelled, lookup(conn, model), CONFIG)
        conn.commit()
        with pytest.raises(_Interrupt):
            materialize(conn, labelled, version.version_id, chunk_rows=16, progress=_StopAfter(16))
        build = table_names(version.version_id).build
        kept = conn.execute(f"SELECT count(*) FROM galdb_predictions.{build}").fetchone()[0]
        assert kept == 16
        status = conn.execute(
            "SELECT status FROM galdb.head_versions WHERE version_id = %s", (version.version_id,)
        ).fetchone()[0]
        assert status == "failed"
        progress = _StopAfter(None)
        assert materialize(conn, labelled, version.version_id, chunk_rows=16,
                           progress=progress) == N  # fmt: skip
        assert progress.started_with == 16 and "resumed" in progress.description
        table = table_names(version.version_id).qualified
        ids = [r[0] for r in conn.execute(f"SELECT galaxy_id FROM {table} ORDER BY 1")]
        assert len(ids) == len(set(ids)) == N


def test_galaxies_embedded_later_get_predictions_from_their_pixels(settings, labelled, tmp_path):
    """predict_missing runs the stored network over the new galaxies' cutouts."""
    from galdb.heads.materialize import predict_missing
    from galdb.ingest.runs import release_id_of

    labelled, model = labelled
    with connect(settings) as conn:
        version = train_finetuned_head(conn, labelled, lookup(conn, model), CONFIG)
        conn.commit()
        materialize(conn, labelled, version.version_id)
        release = f"ft-more-{uuid.uuid4().hex[:6]}"
        ingest(conn, tmp_path, release, catalog=simulate_release(tmp_path, 6, seed=42, size=32))
        loaded = load_model(SPEC, input_size=32, crop_fraction=0.77)
        embed(conn, database_url(settings), loaded, release_id=release_id_of(conn, release),
              workers=0)  # fmt: skip
        assert predict_missing(conn, labelled, version.version_id) == 6
        assert predict_missing(conn, labelled, version.version_id) == 0
        table = table_names(version.version_id).qualified
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == N + 6


def test_finetune_cli_and_refusals(settings, labelled, capsys):
    labelled, model = labelled
    code = main(
        ["head", "train", "-t", labelled.name, "-m", model, "--finetune", "--epochs", "1",
         "--no-predict"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "finetuned-backbone" in out and "holdout_auc" in out
    assert main(["head", "train", "-t", labelled.name, "-m", model, "--finetune",
                 "--unfreeze", "9", "--no-predict"]) == 1  # fmt: skip
    assert "5 stages" in capsys.readouterr().err
    with connect(settings) as conn:
        regression = create_task(conn, f"ftr_{uuid.uuid4().hex[:8]}", "regression", unit="px")
        with pytest.raises(GaldbError, match="classification"):
            train_finetuned_head(conn, regression, lookup(conn, model), CONFIG)
    assert np.isfinite(CONFIG.lr)
