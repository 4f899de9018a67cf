"""Pretraining: augmentations, the loss, the schedule, and a tiny end-to-end run."""

import math
from pathlib import Path

import pytest
import torch

from galdb.db.connect import connect
from galdb.errors import GaldbError
from galdb.ingest import ingest
from galdb.lvm.augment import Augment
from galdb.lvm.pretrain import (
    PretrainConfig,
    learning_rate,
    nt_xent,
    pretrain,
    resolve_device,
    simsiam_loss,
    state_path,
)
from galdb.lvm.specs import load_model
from galdb.sim import simulate_release


def test_augment_keeps_shape_and_range_and_is_seeded():
    x = torch.rand(4, 3, 40, 40)
    a = Augment()(x, torch.Generator().manual_seed(3))
    b = Augment()(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_augment_rotations_preserve_a_round_galaxy():
    yy, xx = torch.meshgrid(torch.arange(41.0), torch.arange(41.0), indexing="ij")
    blob = torch.exp(-((xx - 20) ** 2 + (yy - 20) ** 2) / 50).expand(1, 3, 41, 41)
    aug = Augment(max_shift=0, zoom=(1, 1), noise_sigma=0, blur_sigma_px=0, gain=0)
    out = aug(blob, torch.Generator().manual_seed(0))
    assert torch.allclose(out, blob, atol=0.03)


def test_nt_xent_prefers_matching_pairs():
    z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    matched = nt_xent(z, z, 0.2)
    shuffled = nt_xent(z, z[torch.randperm(8)], 0.2)
    assert matched < shuffled
    assert matched >= 0


def test_learning_rate_schedule():
    assert learning_rate(1.0, 0.0) == 0.0
    assert learning_rate(1.0, 0.05) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.05)))
    assert learning_rate(1.0, 0.5) == pytest.approx(0.5)
    assert learning_rate(1.0, 1.0) == 0.0


def test_tiny_pretrain_writes_a_checkpoint_embed_can_load(settings, tmp_path):
    out = tmp_path / "sim"
    simulate_release(out, 24, seed=5, size=32)
    with connect(settings) as conn:
        ingest(conn, out, "pretrain-test", catalog=out / "catalog.csv")
        cfg = PretrainConfig(
            arch="resnet10t",
            input_size=24,
            batch_size=8,
            epochs=2,
            minutes=2,
            releases=("pretrain-test",),
        )
        summary = pretrain(conn, cfg, tmp_path / "tiny.pt")
    assert summary.epochs == 2 and summary.steps == 6 and summary.images == 24
    assert all(math.isfinite(v) for v in summary.losses)
    loaded = load_model(f"checkpoint:{tmp_path / 'tiny.pt'}")
    assert loaded.arch == "resnet10t" and loaded.preprocessing.input_size == 24
    assert loaded.preprocessing.crop_fraction == cfg.crop_fraction


def test_simsiam_loss_prefers_matching_pairs_and_stops_gradients():
    z = torch.randn(8, 16, requires_grad=True)
    assert simsiam_loss(z, z, z, z).item() == pytest.approx(-1.0)
    assert simsiam_loss(z, z[torch.randperm(8)], z, z[torch.randperm(8)]) > -1.0
    p = torch.randn(8, 16, requires_grad=True)
    simsiam_loss(p, z, p, z).backward()
    assert z.grad is None and p.grad is not None  # the target side gets no gradient


def test_device_auto_is_cpu_without_a_gpu_and_cuda_refused():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(GaldbError, match="no GPU"):
        resolve_device("cuda")


@pytest.fixture
def sim_release(settings, tmp_path):
    """A release of 24 simulated cutouts of this test's own (named after its directory)."""
    out, name = tmp_path / "sim", f"pt-{tmp_path.name[-30:]}"
    simulate_release(out, 24, seed=5, size=32)
    with connect(settings) as conn:
        ingest(conn, out, name, catalog=out / "catalog.csv")
        conn.commit()
    return name


def _cfg(release, **kw):
    base = dict(
        arch="resnet10t",
        input_size=24,
        batch_size=8,
        epochs=3,
        minutes=30,
        releases=(release,),
        device="cpu",
        threads=1,
    )
    return PretrainConfig(**{**base, **kw})


@pytest.mark.parametrize("method", ["simclr", "simsiam"])
def test_interrupted_run_resumes_to_the_uninterrupted_weights(
    settings, sim_release, tmp_path, method
):
    """3 epochs of 3 steps straight through == 4 steps, stop, resume for the other 5."""
    cfg = _cfg(sim_release, method=method)
    with connect(settings) as conn:
        whole = pretrain(conn, cfg, tmp_path / "whole.pt")
        part = pretrain(conn, cfg, tmp_path / "part.pt", stop_after_steps=4)
        assert not part.complete and part.steps == 4 and part.epochs == 1
        assert state_path(tmp_path / "part.pt").exists()
        # the partial checkpoint is already usable, and says it is partial
        meta = torch.load(tmp_path / "part.pt", weights_only=True)["meta"]
        assert meta["complete"] is False and meta["steps"] == 4
        rest = pretrain(conn, cfg, tmp_path / "part.pt", resume=True)
    assert rest.complete and rest.resumed_at_step == 4 and rest.steps == whole.steps == 9
    assert rest.losses == pytest.approx(whole.losses, rel=1e-4)
    a = load_model(f"checkpoint:{tmp_path / 'whole.pt'}").model.state_dict()
    b = load_model(f"checkpoint:{tmp_path / 'part.pt'}").model.state_dict()
    for name in a:
        assert torch.allclose(a[name].float(), b[name].float(), atol=1e-4), name
    log = torch.load(tmp_path / "part.pt", weights_only=True)["meta"]["epoch_log"]
    assert [e["epoch"] for e in log] == [1, 2, 3] and all(e["steps"] == 3 for e in log)
    assert all(e["images_per_second"] > 0 and e["seconds"] > 0 for e in log)


def test_resume_refuses_other_settings_and_a_missing_state(settings, sim_release, tmp_path):
    with connect(settings) as conn:
        with pytest.raises(GaldbError, match="no resume state"):
            pretrain(conn, _cfg(sim_release), tmp_path / "none.pt", resume=True)
        pretrain(conn, _cfg(sim_release), tmp_path / "a.pt", stop_after_steps=1)
        with pytest.raises(GaldbError, match="batch_size: 8 -> 12"):
            pretrain(conn, _cfg(sim_release, batch_size=12), tmp_path / "a.pt", resume=True)


def test_pretrain_streams_and_names_an_unreadable_cutout(settings, sim_release, tmp_path):
    with connect(settings) as conn:
        uri = conn.execute(
            "SELECT pixel_uri FROM galdb.catalog WHERE release = %s LIMIT 1", (sim_release,)
        ).fetchone()[0]
    Path(uri).write_bytes(b"not a fits file")
    with connect(settings) as conn, pytest.raises(GaldbError, match=Path(uri).name):
        pretrain(conn, _cfg(sim_release, epochs=1), tmp_path / "b.pt")


def test_unknown_method_is_refused():
    with pytest.raises(GaldbError, match="unknown method"):
        PretrainConfig(method="mae")


def test_cli_pretrain_stops_and_resumes(settings, sim_release, tmp_path, capsys):
    from galdb.cli import main

    out = tmp_path / "cli.pt"
    args = [
        "lvm",
        "pretrain",
        "--out",
        str(out),
        "--arch",
        "resnet10t",
        "--method",
        "simsiam",
        "--input-size",
        "24",
        "--batch-size",
        "8",
        "--release",
        sim_release,
    ]
    assert main([*args, "--epochs", "1", "--device", "cpu"]) == 0
    assert "simsiam, cpu" in capsys.readouterr().out and state_path(out).exists()
    assert main([*args, "--epochs", "2", "--device", "auto", "--resume"]) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["epochs"] == 2 and meta["steps"] == 6 and meta["complete"]
    assert main([*args[:2], "--out", str(tmp_path / "x.pt"), "--device", "tpu"]) != 0
    assert "unknown device" in capsys.readouterr().err
