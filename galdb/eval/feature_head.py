"""Structural parameters from the backbone's feature maps rather than its pooled vector.

The pooled embedding averages the feature maps over position, and with it most of what says
how big a galaxy is and how its light falls off from the centre. This head keeps the maps:
the frozen LVM encoder (timm ``features_only`` with the backbone's weights, as the
restoration network uses it) gives its stride-8 and stride-16 maps; each is reduced by a 1x1
convolution, the coarser one upsampled onto the finer, and a small convolution + MLP
regresses every target at once (standardised). The encoder stays frozen, so its maps are
computed once per image and training is cheap.

The images go in through the model's own preprocessing (:func:`galdb.lvm.preprocess.to_tensor`).

A second variant, :func:`fit_tuned_head`, fine-tunes the encoder together with the same
head on the images themselves (slower: every step runs the backbone forward and backward).
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


def _fit(module: nn.Module, loss_of, n: int, epochs, lr, weight_decay, batch_size, seed):
    """AdamW with a one-cycle schedule over shuffled batches; ``loss_of(batch, gen)``."""
    optimiser = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-n // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, lr, total_steps=steps)
    gen = torch.Generator().manual_seed(seed)
    module.train()
    for _ in range(epochs):
        for batch in torch.randperm(n, generator=gen).split(batch_size):
            loss = loss_of(batch, gen)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    module.eval()


def _standardise(targets: np.ndarray):
    mean, std = targets.mean(axis=0), targets.std(axis=0) + 1e-9
    return mean, std, torch.from_numpy(((targets - mean) / std).astype(np.float32))


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
    mean, std, y = _standardise(targets)
    head = MapHead([m.shape[1] for m in maps], maps[0].shape[-1], targets.shape[1])

    def loss_of(batch, gen):
        return F.mse_loss(head([m[batch] for m in maps]), y[batch])

    _fit(head, loss_of, len(y), epochs, lr, weight_decay, batch_size, seed)
    return FeatureHead(head, mean, std)


class TunedRegressor(nn.Module):
    """The whole encoder, fine-tuned, under a :class:`MapHead` (the second variant)."""

    def __init__(self, maps: FeatureMaps, size: int, n_targets: int) -> None:
        super().__init__()
        self.encoder, self.index = maps.encoder, maps.index
        self.head = MapHead(maps.channels, size // LEVELS[0], n_targets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.encoder(x)
        return self.head([features[i] for i in self.index])


@dataclass
class TunedHead:
    model: TunedRegressor
    prep: object
    clip: bool
    mean: np.ndarray
    std: np.ndarray

    @torch.inference_mode()
    def predict(self, images: np.ndarray, bands: list[str], batch_size: int = 64) -> np.ndarray:
        self.model.eval()
        out = [
            self.model(inputs(images[start:][:batch_size], bands, self.prep, self.clip)).numpy()
            for start in range(0, len(images), batch_size)
        ]
        return np.concatenate(out) * self.std + self.mean


def inputs(images: np.ndarray, bands: list[str], prep, clip: bool) -> torch.Tensor:
    return torch.stack([to_tensor(im, bands, prep, clip=clip) for im in images])


def fit_tuned_head(
    loaded: LoadedModel,
    images: np.ndarray,
    bands: list[str],
    targets: np.ndarray,
    *,
    clip: bool = False,
    epochs: int = 5,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 32,
    seed: int = 0,
    progress=None,
) -> TunedHead:
    """Fine-tune the encoder and a map head together on images (random 90° turns and flips:
    the targets do not change under them). ``clip=False`` feeds the unclipped stretch, so
    bright cores keep their profile."""
    torch.manual_seed(seed)
    maps = FeatureMaps(loaded)
    model = TunedRegressor(maps, maps.prep.input_size, targets.shape[1])
    mean, std, y = _standardise(targets)
    x_all = inputs(images, bands, maps.prep, clip)

    def loss_of(batch, gen):
        x = torch.rot90(x_all[batch], int(torch.randint(4, (1,), generator=gen)), (-2, -1))
        if torch.rand(1, generator=gen) < 0.5:
            x = x.flip(-1)
        if progress is not None:
            progress(len(batch))
        return F.mse_loss(model(x), y[batch])

    _fit(model, loss_of, len(y), epochs, lr, weight_decay, batch_size, seed)
    return TunedHead(model, maps.prep, clip, mean, std)
