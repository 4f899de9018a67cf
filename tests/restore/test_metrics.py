"""PSNR and SSIM against values worked out by hand and against scikit-image's reference."""

import math

import numpy as np
import pytest

from galdb.restore.metrics import band_scores, psnr, ssim


def test_psnr_known_values():
    truth = np.zeros((8, 8))
    truth[0, 0] = 1.0  # range 1
    assert psnr(truth, truth + 0.1) == pytest.approx(20.0)  # MSE 0.01 -> 10 log10(1 / 0.01)
    assert psnr(truth, truth + 0.01) == pytest.approx(40.0)
    assert psnr(truth * 10, truth * 10 + 0.1) == pytest.approx(40.0)  # range 10, MSE 0.01
    assert psnr(truth, truth + 0.1, data_range=2.0) == pytest.approx(20 + 20 * math.log10(2))
    assert psnr(truth, truth) == math.inf


def test_ssim_known_values():
    rng = np.random.default_rng(0)
    image = rng.random((24, 24))
    assert ssim(image, image) == pytest.approx(1.0)
    # a constant image against itself shifted: sigma terms vanish, only luminance is left;
    # with data_range 1: (2 mu1 mu2 + c1) / (mu1^2 + mu2^2 + c1), c1 = 0.01^2
    flat = np.full((24, 24), 0.5)
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.7 + c1) / (0.5**2 + 0.7**2 + c1)
    assert ssim(flat, flat + 0.2, data_range=1.0) == pytest.approx(expected)
    assert ssim(image, 1 - image) < 0  # anti-correlated structure


def test_against_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    truth = rng.gamma(2.0, size=(40, 33))
    noisy = truth + rng.normal(0, 0.3, truth.shape)
    rng_ = float(np.ptp(truth))
    expected = metrics.structural_similarity(
        truth, noisy, data_range=rng_, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    assert ssim(truth, noisy) == pytest.approx(expected, rel=1e-9)
    assert psnr(truth, noisy) == pytest.approx(
        metrics.peak_signal_noise_ratio(truth, noisy, data_range=rng_), rel=1e-9
    )


def test_band_scores_average_bands_and_reject_bad_input():
    rng = np.random.default_rng(2)
    truth = rng.random((3, 16, 16))
    estimate = truth.copy()
    estimate[1] += 0.05
    p, s = band_scores(truth, estimate)
    assert p == pytest.approx(np.mean([psnr(truth[b], estimate[b]) for b in range(3)]))
    assert s == pytest.approx(np.mean([ssim(truth[b], estimate[b]) for b in range(3)]))
    with pytest.raises(ValueError, match="constant"):
        psnr(np.ones((4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="2-D"):
        ssim(truth, truth)
