"""Galaxy-appropriate augmentations on batches (B, C, H, W) in [0, 1], all vectorised in torch.

A galaxy has no preferred orientation or handedness, so any rotation and flips are free; small
shifts and zooms stand for centring and distance; noise and PSF blur for depth and seeing;
small per-channel gains for calibration and colour scatter.
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

    def __call__(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = self._geometry(x, gen)
        x = self._blur(x, gen)
        b, c = x.shape[:2]
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
