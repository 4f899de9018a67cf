"""The domain-bridge augmentations: off by default, seeded, in range, and each does its job."""

from __future__ import annotations

import torch

from galdb.lvm.augment import DOMAIN_BRIDGE, Augment

STILL = dict(max_shift=0, zoom=(1, 1), noise_sigma=0, blur_sigma_px=0, gain=0)


def _blob(side: int = 41) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(side * 1.0), torch.arange(side * 1.0), indexing="ij")
    c = (side - 1) / 2
    return (0.8 * torch.exp(-((xx - c) ** 2 + (yy - c) ** 2) / 50)).expand(2, 3, side, side)


def test_bridge_is_seeded_and_in_range():
    x = torch.rand(4, 3, 48, 48)
    a = DOMAIN_BRIDGE(x, torch.Generator().manual_seed(5))
    b = DOMAIN_BRIDGE(x, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.equal(a, DOMAIN_BRIDGE(x, torch.Generator().manual_seed(6)))


def test_the_bridge_is_off_by_default():
    """The new fields default to off and then draw no random numbers: the standard
    augmentation's stream, hence every earlier pretraining run, is unchanged."""
    x = torch.rand(2, 3, 32, 32)
    bridged_off = Augment(gamma=0, background=0, colour_tilt=0, stars=0)
    assert torch.equal(
        Augment()(x, torch.Generator().manual_seed(1)),
        bridged_off(x, torch.Generator().manual_seed(1)),
    )
    assert Augment().stars == 0 and Augment().gamma == 0


def test_stars_land_away_from_the_centre():
    empty = torch.zeros(64, 3, 41, 41)
    out = Augment(**STILL, stars=3)(empty, torch.Generator().manual_seed(0))
    assert out.amax(dim=(1, 2, 3)).gt(0.1).float().mean() > 0.5  # most views got a star
    centre = out[:, :, 19:22, 19:22]
    assert centre.max() < 0.05  # none on the galaxy itself


def test_colour_tilt_moves_red_against_blue():
    grey = torch.full((32, 3, 16, 16), 0.5)
    out = Augment(**STILL, colour_tilt=0.3)(grey, torch.Generator().manual_seed(0))
    red, green, blue = out[:, 0, 8, 8], out[:, 1, 8, 8], out[:, 2, 8, 8]  # away from the
    # corners, which the random rotation fills with zeros
    assert torch.allclose(green, grey[:, 1, 8, 8])  # the middle channel is the pivot
    assert torch.allclose(red - 0.5, 0.5 - blue, atol=1e-6)
    assert (red - blue).abs().max() > 0.15


def test_stretch_and_black_point_change_contrast_not_geometry():
    blob = _blob()
    out = Augment(**STILL, gamma=0.5, background=0.1)(blob, torch.Generator().manual_seed(0))
    assert not torch.allclose(out, blob, atol=0.02)
    flat = out.reshape(2, 3, -1)
    assert torch.equal(flat.argmax(-1), blob.reshape(2, 3, -1).argmax(-1))  # peak stays put
