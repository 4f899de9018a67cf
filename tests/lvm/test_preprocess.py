"""Preprocessing: the stretch, band mapping, display images, crop/resize; deterministic."""

import numpy as np
import pytest
import torch

from galdb.lvm.preprocess import Preprocessing, crop_resize, stretch_flux, to_tensor, to_unit


def test_flux_stretch_maps_bands_by_name_and_handles_nan():
    p = Preprocessing()
    pixels = np.zeros((3, 8, 8), np.float32)
    pixels[0] = 0.5  # g
    pixels[2] = np.nan  # z: no data
    out = stretch_flux(pixels, ["g", "r", "z"], p)
    assert out.shape == (3, 8, 8)
    # channels are (z, r, g): NaN z -> 0, empty r -> 0, g stretched above 0
    assert np.all(out[0] == 0) and np.all(out[1] == 0)
    expected = np.arcsinh(0.5 / p.softening["g"]) / np.arcsinh(p.full_scale["g"] / p.softening["g"])
    assert out[2, 0, 0] == pytest.approx(expected, rel=1e-6)
    assert 0 < out.max() <= 1


def test_missing_band_is_a_zero_channel_and_unknown_bands_use_the_first_plane():
    p = Preprocessing()
    two = stretch_flux(np.ones((2, 4, 4), np.float32), ["r", "z"], p)
    assert np.all(two[2] == 0) and np.all(two[0] > 0)
    single = stretch_flux(np.ones((1, 4, 4), np.float32), [""], p)
    assert np.all(single == single[0]) and single.max() > 0


def test_display_images_scale_and_grey_repeats():
    p = Preprocessing()
    rgb = np.full((3, 4, 4), 255, np.uint8)
    assert np.all(to_unit(rgb, ["r", "g", "b"], p) == 1.0)
    grey = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    out = to_unit(grey, ["L"], p)
    assert out.shape == (3, 4, 4) and np.all(out[0] == out[2])


def test_crop_and_resize_shape():
    p = Preprocessing(input_size=32, crop_fraction=0.5)
    x = torch.rand(3, 100, 80)
    assert crop_resize(x, p).shape == (3, 32, 32)
    assert crop_resize(x.unsqueeze(0), p).shape == (1, 3, 32, 32)


def test_to_tensor_is_deterministic_and_normalised():
    p = Preprocessing(input_size=48)
    rng = np.random.default_rng(0)
    pixels = rng.normal(0, 0.05, (3, 64, 64)).astype(np.float32)
    a, b = to_tensor(pixels, ["g", "r", "z"], p), to_tensor(pixels.copy(), ["g", "r", "z"], p)
    assert a.shape == (3, 48, 48) and torch.equal(a, b)
    assert a.min() >= (0 - max(p.mean)) / min(p.std) - 1e-6


def test_preprocessing_round_trips_through_a_dict():
    p = Preprocessing(input_size=64, crop_fraction=0.7)
    assert Preprocessing.from_dict(p.to_dict()) == p
