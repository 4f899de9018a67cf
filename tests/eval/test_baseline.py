"""The from-scratch CNN baseline on synthetic galaxies whose answer is known: disks vs rings."""

import numpy as np
import pytest
import timm
import torch
from sklearn.metrics import r2_score, roc_auc_score

from galdb.eval.baseline import (
    BaselineConfig,
    inverse_frequency_weights,
    predict_proba,
    predict_values,
    random_dihedral,
    train_from_scratch,
    train_regressor_from_scratch,
)

SIDE = 32
# timm's own test network (0.4 M parameters) trains in about a second; resnet10t takes ~5.
ARCH = "test_resnet" if timm.list_models("test_resnet") else "resnet10t"
QUICK = BaselineConfig(arch=ARCH, epochs=1, min_steps=30, batch_size=32, lr=3e-3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run faster on one thread, and much faster when other jobs share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _galaxies(
    n_disks: int, n_rings: int, seed: int, radii: np.ndarray | None = None, noise: float = 0.3
) -> tuple[torch.Tensor, np.ndarray]:
    """Single-band images: a bright centred disk (class 0) or a thin ring (class 1), noisy."""
    rng = np.random.default_rng(seed)
    n = n_disks + n_rings
    labels = np.array([0] * n_disks + [1] * n_rings)
    radii = rng.uniform(5, 10, n) if radii is None else radii
    centre = (SIDE - 1) / 2 + rng.uniform(-2, 2, (n, 2))
    yy, xx = np.mgrid[:SIDE, :SIDE]
    distance = np.hypot(yy[None] - centre[:, 0, None, None], xx[None] - centre[:, 1, None, None])
    r = radii[:, None, None]
    disk = distance < r
    ring = (distance < r) & (distance > r - 2)
    pixels = np.where(labels[:, None, None] == 0, disk, ring).astype(np.float32)
    pixels += rng.normal(0, noise, pixels.shape).astype(np.float32)
    return torch.from_numpy(pixels[:, None] - 0.25), labels


def test_separable_classes_reach_high_auc_on_fresh_samples():
    images, labels = _galaxies(32, 32, seed=0)
    model = train_from_scratch(images, labels, 2, QUICK)
    assert not model.training
    test_images, test_labels = _galaxies(50, 50, seed=1)
    proba = predict_proba(model, test_images)
    assert proba.shape == (100, 2) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    assert roc_auc_score(test_labels, proba[:, 1]) > 0.9


def test_same_seed_gives_identical_predictions_and_another_seed_does_not():
    images, labels = _galaxies(12, 12, seed=2)
    config = BaselineConfig(arch=ARCH, epochs=1, min_steps=4, batch_size=8)
    first = predict_proba(train_from_scratch(images, labels, 2, config), images)
    again = predict_proba(train_from_scratch(images, labels, 2, config), images)
    other = BaselineConfig(arch=ARCH, epochs=1, min_steps=4, batch_size=8, seed=1)
    different = predict_proba(train_from_scratch(images, labels, 2, other), images)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, different)


def test_class_weights_are_inverse_frequencies():
    weights = inverse_frequency_weights(np.array([0] * 10 + [1] * 2), 3)
    np.testing.assert_allclose(weights.numpy(), [12 / 30, 12 / 6, 0.0], rtol=1e-6)


def test_rare_class_is_still_predicted_with_imbalanced_labels():
    # Noisy enough that without class weights most rare-class samples are called common.
    images, labels = _galaxies(10, 2, seed=3, noise=0.6)
    model = train_from_scratch(images, labels, 2, QUICK)
    test_images, test_labels = _galaxies(20, 20, seed=4, noise=0.6)
    predicted = predict_proba(model, test_images).argmax(1)
    assert (predicted[test_labels == 1] == 1).mean() > 0.7
    assert (predicted[test_labels == 0] == 0).mean() > 0.7


def test_regressor_learns_disk_radius():
    rng = np.random.default_rng(5)
    radii = rng.uniform(3, 12, 64)
    images, _ = _galaxies(64, 0, seed=5, radii=radii)
    config = BaselineConfig(arch=ARCH, epochs=1, min_steps=40, batch_size=32, lr=3e-3)
    model = train_regressor_from_scratch(images, radii * 10, config)
    test_radii = np.random.default_rng(6).uniform(3, 12, 64)
    test_images, _ = _galaxies(64, 0, seed=6, radii=test_radii)
    predicted = predict_values(model, test_images)
    assert predicted.shape == (64,) and predicted.dtype == np.float64
    assert r2_score(test_radii * 10, predicted) > 0.5


def test_a_remainder_of_one_image_is_fine_and_progress_is_reported():
    class Steps:
        def start(self, total, description=""):
            self.total, self.done = total, 0

        def advance(self, n=1):
            self.done += n

    images, labels = _galaxies(17, 16, seed=7)
    steps = Steps()
    config = BaselineConfig(arch=ARCH, epochs=1, min_steps=3, batch_size=32)
    model = train_from_scratch(images, labels, 2, config, progress=steps)
    assert steps.total == steps.done == 3
    assert np.isfinite(predict_proba(model, images, batch_size=32)).all()


def test_steps_are_clamped_between_min_and_max():
    config = BaselineConfig(epochs=30, min_steps=60, batch_size=64)
    assert config.steps(10) == 60
    assert config.steps(1000) == 30 * 16
    assert BaselineConfig(max_steps=100).steps(1000) == 100


def test_random_dihedral_only_flips_and_rotates():
    x = torch.arange(2 * 16, dtype=torch.float32).view(2, 1, 4, 4).repeat(50, 1, 1, 1)
    out = random_dihedral(x, torch.Generator().manual_seed(0))
    for before, after in zip(x, out, strict=True):
        candidates = [
            torch.rot90(v, k, (-2, -1)) for v in (before, before.flip(-1)) for k in range(4)
        ]
        assert any(torch.equal(after, c) for c in candidates)
    assert len({tuple(o.flatten().tolist()) for o in out[::2]}) == 8  # all 8 symmetries occur


@pytest.mark.parametrize(
    ("labels", "message"), [([0, 1, 2], "labels must lie"), ([0, 1], "2 labels for 3 images")]
)
def test_bad_labels_are_rejected(labels, message):
    with pytest.raises(ValueError, match=message):
        train_from_scratch(torch.zeros(3, 1, 8, 8), np.array(labels), 2, QUICK)
