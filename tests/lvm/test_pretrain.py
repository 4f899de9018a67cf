"""Pretraining: augmentations, the loss, the schedule, and a tiny end-to-end run."""

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from galdb.db.connect import connect
from galdb.errors import GaldbError
from galdb.ingest import ingest
from galdb.lvm.augment import Augment
from galdb.lvm.pretrain import (
    MaskedReconstruction,
    PretrainConfig,
    backbone_kwargs,
    create_backbone,
    learning_rate,
    masked_l1,
    nt_xent,
    pretrain,
    resolve_device,
    simsiam_loss,
    start_from,
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


@pytest.mark.parametrize("method", ["simclr", "simsiam", "masked"])
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
        # a state written before a setting existed ran with its default: it resumes
        state = torch.load(state_path(tmp_path / "a.pt"), weights_only=True)
        del state["config"]["mask_ratio"], state["config"]["mask_patch"]
        torch.save(state, state_path(tmp_path / "a.pt"))
        resumed = pretrain(conn, _cfg(sim_release), tmp_path / "a.pt", resume=True)
        assert resumed.complete and resumed.resumed_at_step == 1


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
    masked = tmp_path / "masked.pt"
    masked_args = ["lvm", "pretrain", "--out", str(masked), "--method", "masked", "--arch"]
    options = ["--input-size", "24", "--batch-size", "8", "--release", sim_release]
    assert (
        main([*masked_args, "resnet10t", *options, "--cpu-minutes", "0.002", "--mask-patch", "4"])
        == 0
    )
    assert "(masked, cpu)" in capsys.readouterr().out
    meta = torch.load(masked, weights_only=True)["meta"]
    assert meta["config"]["cpu_minutes"] == 0.002 and meta["config"]["mask_patch"] == 4
    assert main([*args, "--epochs", "2", "--device", "auto", "--resume"]) == 0
    meta = torch.load(out, weights_only=True)["meta"]
    assert meta["epochs"] == 2 and meta["steps"] == 6 and meta["complete"]
    assert main([*args[:2], "--out", str(tmp_path / "x.pt"), "--device", "tpu"]) != 0
    assert "unknown device" in capsys.readouterr().err


def test_masked_l1_counts_only_the_blanked_pixels():
    target = torch.zeros(2, 3, 8, 8)
    pred = torch.ones(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, :4] = 1
    assert masked_l1(pred, target, mask).item() == pytest.approx(1.0)
    pred[:, :, 4:] = 100.0  # errors outside the mask do not count
    pred[:, :, :4] = 0.5
    assert masked_l1(pred, target, mask).item() == pytest.approx(0.5)


def test_mask_blanks_the_asked_share_of_squares_from_the_generator():
    cfg = PretrainConfig(arch="resnet10t", method="masked", input_size=32, mask_patch=8)
    model = MaskedReconstruction(create_backbone(cfg), 32, 0.6, 8)
    a = model.mask(5, torch.Generator().manual_seed(1))
    b = model.mask(5, torch.Generator().manual_seed(1))
    assert a.shape == (5, 1, 32, 32) and torch.equal(a, b)
    squares = a[:, 0, ::8, ::8]  # one value per 8x8 square
    assert (squares.sum((1, 2)) == round(0.6 * 16)).all()
    assert torch.equal(a, squares.repeat_interleave(8, 1).repeat_interleave(8, 2).unsqueeze(1))
    assert not torch.equal(a[0], a[1])  # each image its own squares


def test_masked_config_is_checked():
    with pytest.raises(GaldbError, match="mask_patch 7 must divide input_size 64"):
        PretrainConfig(method="masked", mask_patch=7)
    with pytest.raises(GaldbError, match="mask_ratio"):
        PretrainConfig(method="masked", mask_ratio=1.0)
    with pytest.raises(GaldbError, match="cpu_minutes"):
        PretrainConfig(cpu_minutes=0)


def test_backbone_kwargs_size_a_vit_and_leave_a_cnn_alone():
    assert backbone_kwargs("resnet10t", 64) == {}
    assert backbone_kwargs("vit_tiny_patch16_224", 64) == {"img_size": 64}
    assert backbone_kwargs("vit_tiny_patch16_224", 64, 8) == {"img_size": 64, "patch_size": 8}
    with pytest.raises(GaldbError, match="cannot build 'resnet10t'"):
        create_backbone(PretrainConfig(arch="resnet10t", patch_size=8))


@pytest.mark.parametrize(
    ("arch", "size", "patch"),
    [("resnet10t", 24, None), ("convnext_atto", 32, None), ("vit_tiny_patch16_224", 32, 8)],
)
def test_masked_pretraining_lowers_its_loss_and_embeds(
    settings, sim_release, tmp_path, arch, size, patch
):
    """Reconstruction loss falls over a tiny run on every backbone kind, and the checkpoint
    (a ViT's img_size and patch_size included) loads and embeds at the trained size."""
    cfg = _cfg(sim_release, method="masked", arch=arch, input_size=size, patch_size=patch, epochs=8)
    with connect(settings) as conn:
        s = pretrain(conn, cfg, tmp_path / "m.pt")
    assert s.steps == 24 and all(math.isfinite(v) for v in s.losses)
    assert s.losses[-1] < 0.9 * s.losses[0], s.losses
    loaded = load_model(f"checkpoint:{tmp_path / 'm.pt'}")
    assert loaded.arch == arch and loaded.preprocessing.input_size == size
    with torch.inference_mode():
        assert loaded.model(torch.rand(2, 3, size, size)).shape == (2, loaded.embedding_dim)
    if patch:
        assert torch.load(tmp_path / "m.pt", weights_only=True)["model_kwargs"] == {
            "img_size": size,
            "patch_size": patch,
        }


def test_cpu_minutes_budget_stops_the_run_and_is_logged(settings, sim_release, tmp_path):
    """A CPU-time budget ends the run before the epochs do; CPU seconds go in the log."""
    cfg = _cfg(sim_release, epochs=50, cpu_minutes=0.002)  # 0.12 CPU-seconds
    with connect(settings) as conn:
        s = pretrain(conn, cfg, tmp_path / "c.pt")
    assert s.complete and 1 <= s.steps < 150 and s.cpu_seconds >= 0.12
    meta = torch.load(tmp_path / "c.pt", weights_only=True)["meta"]
    assert meta["cpu_seconds"] == pytest.approx(s.cpu_seconds)
    assert sum(e["cpu_seconds"] for e in meta["epoch_log"]) == pytest.approx(
        s.cpu_seconds, abs=0.01
    )
    # resuming with a larger CPU budget is allowed (a budget, not what is learnt)
    with connect(settings) as conn:
        more = pretrain(conn, replace(cfg, cpu_minutes=0.004), tmp_path / "c.pt", resume=True)
    assert more.steps > s.steps and more.cpu_seconds >= 0.24


def test_init_starts_from_a_trained_model_and_records_it(settings, sim_release, tmp_path):
    """--init: the backbone starts from the named model's weights (not random ones), the
    sha256 of those weights is in the metadata, and a mismatched architecture is named."""
    with connect(settings) as conn:
        pretrain(conn, _cfg(sim_release, epochs=1), tmp_path / "first.pt")
        first = load_model(f"checkpoint:{tmp_path / 'first.pt'}")
        cfg = _cfg(sim_release, epochs=1, init=f"checkpoint:{tmp_path / 'first.pt'}")
        backbone = create_backbone(cfg)
        assert start_from(backbone, cfg) == first.weights_sha256
        for name, value in first.model.state_dict().items():
            assert torch.equal(backbone.state_dict()[name], value), name
        # one step of training moves the weights a little from the start, nowhere near random
        pretrain(conn, cfg, tmp_path / "one.pt", stop_after_steps=1)
        stepped = load_model(f"checkpoint:{tmp_path / 'one.pt'}").model.state_dict()
        fresh = create_backbone(_cfg(sim_release)).state_dict()
        w = "conv1.0.weight"
        moved = (stepped[w] - first.model.state_dict()[w]).abs().max()
        assert moved < 0.2 * (fresh[w] - first.model.state_dict()[w]).abs().max()
        summary = pretrain(conn, cfg, tmp_path / "adapted.pt")
        meta = torch.load(tmp_path / "adapted.pt", weights_only=True)["meta"]
        assert summary.complete and meta["config"]["init"] == cfg.init
        assert meta["init_weights_sha256"] == first.weights_sha256
        wrong = replace(cfg, arch="resnet18")
        with pytest.raises(GaldbError, match="resnet10t weights do not fit the resnet18"):
            pretrain(conn, wrong, tmp_path / "wrong.pt")


def test_cli_init_takes_the_architecture_of_the_model(settings, sim_release, tmp_path, capsys):
    from galdb.cli import main

    options = ["--input-size", "24", "--batch-size", "8", "--release", sim_release]
    base = ["lvm", "pretrain", "--epochs", "1", "--device", "cpu", *options]
    assert main([*base, "--arch", "resnet10t", "--out", str(tmp_path / "a.pt")]) == 0
    capsys.readouterr()
    init = f"checkpoint:{tmp_path / 'a.pt'}"
    assert main([*base, "--init", init, "--out", str(tmp_path / "b.pt")]) == 0
    assert "pretrained resnet10t (simclr, cpu)" in capsys.readouterr().out
    assert torch.load(tmp_path / "b.pt", weights_only=True)["meta"]["config"]["init"] == init
