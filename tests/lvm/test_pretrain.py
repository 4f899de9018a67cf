"""Pretraining: augmentations, the loss, the schedule, and a tiny end-to-end run."""

import math

import pytest
import torch

from galdb.db.connect import connect
from galdb.ingest import ingest
from galdb.lvm.augment import Augment
from galdb.lvm.pretrain import PretrainConfig, learning_rate, nt_xent, pretrain
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
