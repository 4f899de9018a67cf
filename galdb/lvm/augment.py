"""Galaxy-appropriate augmentations on batches (B, C, H, W) in [0, 1], all vectorised in torch.

A galaxy has no preferred orientation or handedness, so any rotation and flips are free; small
shifts and zooms stand for centring and distance; noise and PSF blur for depth and seeing;
small per-channel gains for calibration and colour scatter.

Four more, off by default, bridge the gap between simulated flux cutouts and survey display
images (JPEG/PNG) that a model trained on simulations will embed (:data:`DOMAIN_BRIDGE`):
a random stretch (``gamma``), a random black point (``background``: the sky of a display
image sits higher or lower than an asinh-stretched FITS sky), a colour tilt between the red
and blue channels (``colour_tilt``: survey colour schemes differ, SDSS gri JPEGs are redder)
and up to ``stars`` unresolved field stars or compact neighbours (simulated cutouts have none).
Each is drawn independently per view, so the encoder learns to ignore them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augment:
    """Strengths of each augmentation (set one to 0 to switch it off)."""

    max_shift: float = 0.08  # fraction of the side
    zoom: tuple[float, float] = (0.85, 1.25)
    noise_sigma: float = 0.04
    blur_sigma_px: float = 1.5
    gain: float = 0.15
    gamma: float = 0.0  # stretch: x ** exp(U(-gamma, gamma))
    background: float = 0.0  # black point moved by U(-background, background)
    colour_tilt: float = 0.0  # red channel x (1 + t), blue x (1 - t), t ~ U(-tilt, tilt)
    stars: int = 0  # up to this many point sources per view

    def __call__(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = self._geometry(x, gen)
        if self.stars:
            x = x + self._stars(x, gen)
        x = self._blur(x, gen)
        b, c = x.shape[:2]
        if self.gamma or self.background or self.colour_tilt:
            x = self._display(x.clamp(0, 1), gen)
        gains = 1 + self.gain * (2 * torch.rand(b, c, 1, 1, generator=gen) - 1)
        x = x * gains + self.noise_sigma * torch.rand(b, 1, 1, 1, generator=gen) * torch.randn(
            x.shape, generator=gen
        )
        return x.clamp(0, 1)

    def _geometry(self, x: torch.Tensor, gen) -> torch.Tensor:
        """Random rotation (any angle), flip, zoom and shift, as one affine resampling."""
        b = x.shape[0]
        angle = 2 * math.pi * torch.rand(b, generator=gen)
        flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
        lo, hi = self.zoom
        scale = 1 / (lo + (hi - lo) * torch.rand(b, generator=gen))
        shift = self.max_shift * 2 * (2 * torch.rand(b, 2, generator=gen) - 1)
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack(
            [
                torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                torch.stack([sin * flip, cos, shift[:, 1]], 1),
            ],
            1,
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _blur(self, x: torch.Tensor, gen) -> torch.Tensor:
        """Gaussian PSF blur with a random width per image (one grouped convolution)."""
        if self.blur_sigma_px <= 0:
            return x
        b, c, h, w = x.shape
        sigma = 0.1 + self.blur_sigma_px * torch.rand(b, generator=gen)
        radius = int(math.ceil(3 * self.blur_sigma_px))
        t = torch.arange(-radius, radius + 1, dtype=x.dtype)
        k1 = torch.exp(-(t[None, :] ** 2) / (2 * sigma[:, None] ** 2))
        k1 = k1 / k1.sum(1, keepdim=True)
        kernel = (k1[:, :, None] * k1[:, None, :]).repeat_interleave(c, 0)[:, None]
        out = F.conv2d(x.reshape(1, b * c, h, w), kernel, padding=radius, groups=b * c)
        return out.reshape(b, c, h, w)

    def _stars(self, x: torch.Tensor, gen) -> torch.Tensor:
        """Up to ``stars`` Gaussian point sources per image, away from the centre, each with
        its own brightness, width (0.6-1.6 px before the PSF blur) and colour."""
        b, c, h, w = x.shape
        k = self.stars
        pos = 2 * torch.rand(b, k, 2, generator=gen) - 1  # in [-1, 1] of the half-sides
        present = (torch.rand(b, k, generator=gen) < 0.6) & (pos.norm(dim=2) > 0.35)
        amp = (0.15 + 0.85 * torch.rand(b, k, generator=gen)) * present
        width = 0.6 + torch.rand(b, k, generator=gen)
        colour = 0.6 + 0.8 * torch.rand(b, k, c, generator=gen)
        ys = torch.linspace(-1, 1, h) * (h / 2)
        xs = torch.linspace(-1, 1, w) * (w / 2)
        dy = ys.view(1, 1, h, 1) - (pos[..., 1] * h / 2).view(b, k, 1, 1)
        dx = xs.view(1, 1, 1, w) - (pos[..., 0] * w / 2).view(b, k, 1, 1)
        spots = torch.exp(-(dx**2 + dy**2) / (2 * width.view(b, k, 1, 1) ** 2))
        spots = spots * amp.view(b, k, 1, 1)  # (b, k, h, w)
        return torch.einsum("bkhw,bkc->bchw", spots, colour)

    def _display(self, x: torch.Tensor, gen) -> torch.Tensor:
        """Random stretch, black point and red-blue colour tilt, as display images vary."""
        b, c = x.shape[:2]
        gamma = torch.exp(self.gamma * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1))
        x = x.clamp_min(1e-6) ** gamma
        black = self.background * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
        x = (x - black) / (1 - black)
        tilt = self.colour_tilt * (2 * torch.rand(b, 1, 1, 1, generator=gen) - 1)
        ramp = torch.linspace(1, -1, c).view(1, c, 1, 1)  # channels are reddest first
        return x * (1 + tilt * ramp)


# The augmentation galdb:default was trained with (scripts/train_default_encoder.py): the
# standard one plus the display-image bridge above.
DOMAIN_BRIDGE = Augment(gain=0.2, gamma=0.4, background=0.06, colour_tilt=0.25, stars=3)
