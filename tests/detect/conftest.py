"""Fixtures of the detection tests: small simulated fields and a detector trained briefly."""

from __future__ import annotations

import pytest
import torch

from galdb.detect.train import TrainConfig, train_detector
from galdb.lvm.specs import load_model
from galdb.sim.fields import simulate_fields

SPEC = "timm:test_resnet"  # a tiny random-init timm ResNet: fast on a shared CPU
SIZE = 256


@pytest.fixture(scope="session")
def train_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fields-train")
    simulate_fields(out, 12, seed=5, size=SIZE)
    return out


@pytest.fixture(scope="session")
def test_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fields-test")
    simulate_fields(out, 6, seed=6, size=SIZE)
    return out


@pytest.fixture(scope="session")
def loaded():
    return load_model(SPEC)


@pytest.fixture(scope="session")
def trained(train_dir, loaded):
    """120 steps of 4 crops of 64 px: seconds on one core, enough for bright objects."""
    torch.set_num_threads(1)
    return train_detector(loaded, train_dir, TrainConfig(steps=120, batch=4, crop=64, lr=3e-3))
