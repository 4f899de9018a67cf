"""The detector: an LVM backbone's feature maps and a light CenterNet-like head.

The backbone is the registered LVM's architecture and weights (any ``timm:``, ``hf-hub:`` or
``checkpoint:`` spec, see :func:`galdb.lvm.specs.load_model`) rebuilt with timm's
``features_only=True``; its maps at strides 4 and 8 are projected to ``width`` channels,
summed at stride 4 and read by three 1x1 outputs per stride-4 cell:

- a centre heat map per kind (galaxy, star): the probability that an object's centre falls
  in the cell, trained with CenterNet's penalty-reduced focal loss against Gaussians;
- the sub-cell offset of that centre (x, y in [0, 1) cells);
- the log of the object's observed half-light radius in pixels (the box is a square of side
  ``BOX_PER_RADIUS`` radii).

Decoding keeps local maxima (3x3) above a score threshold. Positions are 0-based pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import timm
import torch
import torch.nn.functional as F
from torch import nn

from galdb.errors import GaldbError
from galdb.lvm.specs import LoadedModel

KINDS = ("galaxy", "star")
STRIDE = 4
LEVELS = (4, 8)  # backbone reductions used
BOX_PER_RADIUS = 4.0
MAX_DETECTIONS = 1000


class Detector(nn.Module):
    """Backbone feature maps -> (heat-map logits, offsets, log radius) at stride 4."""

    def __init__(self, backbone: nn.Module, indices: list[int], width: int = 64) -> None:
        super().__init__()
        self.backbone = backbone
        self.indices = indices
        channels = backbone.feature_info.channels()
        self.lateral = nn.ModuleList(nn.Conv2d(channels[i], width, 1) for i in indices)
        self.neck = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True))
        self.heat = nn.Conv2d(width, len(KINDS), 1)
        self.offset = nn.Conv2d(width, 2, 1)
        self.size = nn.Conv2d(width, 1, 1)
        nn.init.constant_(self.heat.bias, -2.19)  # prior 0.1, as CenterNet

    def forward(self, x: torch.Tensor):
        maps = self.backbone(x)
        out_hw = (math.ceil(x.shape[-2] / STRIDE), math.ceil(x.shape[-1] / STRIDE))
        fused = 0
        for lateral, i in zip(self.lateral, self.indices, strict=True):
            m = lateral(maps[i])
            if m.shape[-2:] != out_hw:
                m = F.interpolate(m, size=out_hw, mode="bilinear", align_corners=False)
            fused = fused + m
        h = self.neck(fused)
        return self.heat(h), torch.sigmoid(self.offset(h)), self.size(h)


def features_backbone(loaded: LoadedModel) -> tuple[nn.Module, list[int]]:
    """The LVM's architecture as a ``features_only`` network with the LVM's weights, and the
    indices of its stride-4 and stride-8 maps."""
    arch = loaded.model.pretrained_cfg.get("architecture", loaded.arch) or loaded.arch

    def features(**options):
        # 'getter' wraps the model itself (its state-dict keys are the LVM's under "model."),
        # where timm's default flattens module names (stages.0 -> stages_0).
        return timm.create_model(
            arch, pretrained=False, features_only=True, feature_cls="getter",
            in_chans=loaded.in_chans, **options,
        )  # fmt: skip

    try:
        reductions = features().feature_info.reduction()
    except Exception as exc:  # timm raises several types for unsupported architectures
        raise GaldbError(f"{loaded.spec}: timm cannot give feature maps of {arch} ({exc})") from exc
    missing = [r for r in LEVELS if r not in reductions]
    if missing:
        raise GaldbError(f"{loaded.spec}: {arch} has no feature map at stride {missing[0]}")
    # Only the stages up to the deepest map used are built.
    net = features(out_indices=tuple(reductions.index(r) for r in LEVELS))
    state = {f"model.{k}": v for k, v in loaded.model.state_dict().items()}
    wanted = net.state_dict()
    if any(k not in state or state[k].shape != v.shape for k, v in wanted.items()):
        raise GaldbError(f"{loaded.spec}: its weights do not fit {arch}'s feature network")
    net.load_state_dict({k: state[k] for k in wanted})
    return net, list(range(len(LEVELS)))


def build_detector(loaded: LoadedModel, width: int = 64, seed: int = 0) -> Detector:
    """A detector on the LVM's weights; the head is initialised from ``seed``."""
    backbone, indices = features_backbone(loaded)
    torch.manual_seed(seed)
    return Detector(backbone, indices, width)


# --- targets and loss ------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """Training targets of a batch at stride 4 (see :func:`make_targets`)."""

    heat: torch.Tensor  # (N, K, h, w) Gaussians, 1 at centres
    mask: torch.Tensor  # (N, h, w) bool, centre cells
    offset: torch.Tensor  # (N, 2, h, w)
    log_radius: torch.Tensor  # (N, 1, h, w)


def make_targets(objects: list[np.ndarray], hw: tuple[int, int]) -> Targets:
    """Targets for images of input size ``hw`` from per-image arrays of rows
    ``(x, y, kind_index, radius_px)``."""
    h, w = math.ceil(hw[0] / STRIDE), math.ceil(hw[1] / STRIDE)
    n = len(objects)
    heat = np.zeros((n, len(KINDS), h, w), np.float32)
    mask = np.zeros((n, h, w), bool)
    offset = np.zeros((n, 2, h, w), np.float32)
    log_radius = np.zeros((n, 1, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for b, rows in enumerate(objects):
        for x, y, kind, radius in rows:
            u, v = x / STRIDE, y / STRIDE
            j, i = int(u), int(v)
            if not (0 <= i < h and 0 <= j < w):
                continue
            sigma = max(0.7, radius / STRIDE / 2.0)
            g = np.exp(-((xx - j) ** 2 + (yy - i) ** 2) / (2 * sigma**2))
            heat[b, int(kind)] = np.maximum(heat[b, int(kind)], g)
            mask[b, i, j] = True
            offset[b, :, i, j] = (u - j, v - i)
            log_radius[b, 0, i, j] = math.log(max(radius, 0.5))
    return Targets(*(torch.from_numpy(a) for a in (heat, mask, offset, log_radius)))


def loss(outputs, targets: Targets) -> torch.Tensor:
    """CenterNet's focal loss on the heat map plus L1 on offset and log radius at centres."""
    logits, offset, log_radius = outputs
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = targets.heat.eq(1).float()
    neg_weight = (1 - targets.heat) ** 4
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * neg_weight * p**2 * torch.log(1 - p))
    n_pos = pos.sum().clamp(min=1.0)
    m = targets.mask.unsqueeze(1).float()
    l_off = (m * (offset - targets.offset).abs()).sum() / n_pos
    l_size = (m * (log_radius - targets.log_radius).abs()).sum() / n_pos
    return focal.sum() / n_pos + l_off + 0.1 * l_size


# --- decoding --------------------------------------------------------------------------------


def decode(outputs, threshold: float, max_detections: int = MAX_DETECTIONS) -> list[np.ndarray]:
    """Per image, rows ``(x, y, radius_px, score, kind_index)`` of the local heat-map maxima
    scoring at least ``threshold``, best first."""
    logits, offset, log_radius = outputs
    p = torch.sigmoid(logits)
    score, kind = p.max(dim=1)
    peaks = score.eq(F.max_pool2d(score, 3, stride=1, padding=1)) & score.ge(threshold)
    result = []
    for b in range(p.shape[0]):
        i, j = torch.nonzero(peaks[b], as_tuple=True)
        s = score[b, i, j]
        order = torch.argsort(s, descending=True)[:max_detections]
        i, j, s = i[order], j[order], s[order]
        x = (j.float() + offset[b, 0, i, j]) * STRIDE
        y = (i.float() + offset[b, 1, i, j]) * STRIDE
        r = torch.exp(log_radius[b, 0, i, j])
        rows = torch.stack([x, y, r, s, kind[b, i, j].float()], dim=1)
        result.append(rows.detach().cpu().numpy().astype(np.float64))
    return result
