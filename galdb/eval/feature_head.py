"""Structural parameters from the backbone's feature maps rather than its pooled vector.

The pooled embedding averages the feature maps over position, and with it most of what says
how big a galaxy is and how its light falls off from the centre. This head keeps the maps:
the frozen LVM encoder (timm ``features_only`` with the backbone's weights, as the
restoration network uses it) gives its stride-8 and stride-16 maps; each is reduced by a 1x1
convolution, the coarser one upsampled onto the finer, and a small convolution + MLP
regresses every target at once (standardised). The encoder stays frozen, so its maps are
computed once per image and training is cheap.

The images go in through the model's own preprocessing (:func:`galdb.lvm.preprocess.to_tensor`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from galdb.lvm.preprocess import to_tensor
from galdb.lvm.specs import LoadedModel
from galdb.restore.network import check_rebuildable, features_encoder, load_backbone_weights

LEVELS = (8, 16)  # strides of the maps the head reads


class FeatureMaps:
    """The frozen encoder of a backbone, returning the maps at :data:`LEVELS` strides."""

    def __init__(self, loaded: LoadedModel) -> None:
        check_rebuildable(loaded)
        self.prep = loaded.preprocessing
        self.encoder = features_encoder(loaded.arch, len(self.prep.channels))
        load_backbone_weights(self.encoder, loaded)
        self.encoder.eval()
        reductions = self.encoder.feature_info.reduction()
        self.index = [reductions.index(s) for s in LEVELS]
        self.channels = [self.encoder.feature_info.channels()[i] for i in self.index]

    @torch.inference_mode()
    def __call__(self, images: np.ndarray, bands: list[str], batch_size: int = 64):
        """(N, bands, H, W) flux → one (N, C, h, w) float32 tensor per level."""
        out = [[] for _ in self.index]
        for start in range(0, len(images), batch_size):
            x = torch.stack([to_tensor(im, bands, self.prep) for im in images[start:][:batch_size]])
            maps = self.encoder(x)
            for level, i in enumerate(self.index):
                out[level].append(maps[i].clone())
        return [torch.cat(parts) for parts in out]


class MapHead(nn.Module):
    def __init__(self, channels: list[int], size: int, n_targets: int, width: int = 64):
        super().__init__()
        self.reduce = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels)
        self.mix = nn.Sequential(
            nn.Conv2d(width * len(channels), width, 3, padding=1), nn.GELU(), nn.Dropout(0.1)
        )
        self.mlp = nn.Sequential(
            nn.Flatten(), nn.Linear(width * size * size, 256), nn.GELU(), nn.Dropout(0.2),
            nn.Linear(256, n_targets),
        )  # fmt: skip

    def forward(self, maps: list[torch.Tensor]) -> torch.Tensor:
        size = maps[0].shape[-2:]
        parts = [
            F.interpolate(r(m), size=size, mode="bilinear", align_corners=False)
            for r, m in zip(self.reduce, maps, strict=True)
        ]
        return self.mlp(self.mix(torch.cat(parts, dim=1)))


@dataclass
class FeatureHead:
    """A trained :class:`MapHead` and the target standardisation it predicts in."""

    head: MapHead
    mean: np.ndarray
    std: np.ndarray

    @torch.inference_mode()
    def predict(self, maps: list[torch.Tensor]) -> np.ndarray:
        self.head.eval()
        return self.head(maps).numpy() * self.std + self.mean


def fit_feature_head(
    maps: list[torch.Tensor],
    targets: np.ndarray,
    *,
    epochs: int = 80,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> FeatureHead:
    """Fit a head on precomputed maps to (N, T) targets by mean squared error."""
    torch.manual_seed(seed)
    mean, std = targets.mean(axis=0), targets.std(axis=0) + 1e-9
    y = torch.from_numpy(((targets - mean) / std).astype(np.float32))
    head = MapHead([m.shape[1] for m in maps], maps[0].shape[-1], targets.shape[1])
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(y) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=gen).split(batch_size):
            loss = F.mse_loss(head([m[batch] for m in maps]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return FeatureHead(head, mean, std)
