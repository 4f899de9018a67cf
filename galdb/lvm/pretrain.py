"""Self-supervised pretraining (SimCLR) of a timm backbone on the catalog's own cutouts.

Two augmented views of each cutout (see :mod:`galdb.lvm.augment`) are pulled together and
pushed from the other cutouts of the batch (NT-Xent loss, Chen et al. 2020). The result is a
``checkpoint:`` file that ``galdb embed`` uses, with the preprocessing it was trained with.

Cutouts are preprocessed once into an in-memory uint8 cache (about ``3 * side**2`` bytes
each, e.g. 19 kB at 80 px), capped by ``max_images`` (a random sample beyond it).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import psycopg
import timm
import torch
import torch.nn.functional as F

from galdb.errors import GaldbError
from galdb.lvm.augment import Augment
from galdb.lvm.pixels import PixelRef, pixel_columns, read_pixels
from galdb.lvm.preprocess import Preprocessing, crop_resize, normalise, to_unit
from galdb.lvm.specs import save_checkpoint
from galdb.progress import NoProgress, Progress


@dataclass(frozen=True)
class PretrainConfig:
    """Hyperparameters; all recorded in the checkpoint's metadata."""

    arch: str = "resnet18"
    input_size: int = 64
    crop_fraction: float = 0.6
    batch_size: int = 128
    epochs: int = 100
    minutes: float = 30.0
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    projection_dim: int = 128
    max_images: int = 200_000
    seed: int = 0
    threads: int | None = None
    releases: tuple[str, ...] = ()
    augment: Augment = field(default_factory=Augment)


@dataclass
class PretrainSummary:
    checkpoint: Path
    images: int
    epochs: int
    steps: int
    seconds: float
    losses: list[float]


def cache_images(
    conn: psycopg.Connection, cfg: PretrainConfig, prep: Preprocessing, progress: Progress
) -> torch.Tensor:
    """Every cutout with pixels (of ``cfg.releases``), preprocessed to uint8 at the cache size."""
    where = "pixel_uri IS NOT NULL" + (" AND release = ANY(%s)" if cfg.releases else "")
    rows = conn.execute(
        f"SELECT {pixel_columns()} FROM galdb.catalog WHERE {where} ORDER BY galaxy_id",
        (list(cfg.releases),) if cfg.releases else None,
    ).fetchall()
    if not rows:
        raise GaldbError("no cutouts to pretrain on: ingest a release with pixels first")
    rng = np.random.default_rng(cfg.seed)
    if len(rows) > cfg.max_images:
        rows = [rows[i] for i in sorted(rng.choice(len(rows), cfg.max_images, replace=False))]
    side = int(round(cfg.input_size * 1.25))  # headroom for zoom and shifts
    cache_prep = replace(prep, input_size=side)
    cache = torch.empty((len(rows), len(prep.channels), side, side), dtype=torch.uint8)
    progress.start(len(rows), "preprocess")
    for i, row in enumerate(rows):
        ref = PixelRef.from_row(row)
        unit = torch.from_numpy(to_unit(read_pixels(ref), ref.bands, cache_prep))
        cache[i] = (crop_resize(unit, cache_prep) * 255).round().to(torch.uint8)
        progress.advance(1)
    return cache


class SimCLR(torch.nn.Module):
    """Backbone plus the projection head used only during pretraining."""

    def __init__(self, arch: str, projection_dim: int):
        super().__init__()
        self.backbone = timm.create_model(arch, pretrained=False, num_classes=0)
        width = self.backbone.num_features
        self.head = torch.nn.Sequential(
            torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, projection_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(x)), dim=1)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The SimCLR loss for two batches of normalised projections of the same images."""
    z = torch.cat([z1, z2])
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(logits, targets)


def _views(batch_u8: torch.Tensor, cfg: PretrainConfig, prep: Preprocessing, gen):
    x = batch_u8.float() / 255
    views = []
    for _ in range(2):
        v = cfg.augment(x, gen)
        v = F.interpolate(
            v, size=(cfg.input_size,) * 2, mode="bilinear", antialias=True, align_corners=False
        )
        views.append(normalise(v, prep))
    return views


def pretrain(
    conn: psycopg.Connection, cfg: PretrainConfig, out: Path, progress: Progress | None = None
) -> PretrainSummary:
    """Pretrain ``cfg.arch`` on the catalog's cutouts for ``cfg.minutes``; write ``out``."""
    progress = progress or NoProgress()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    prep = Preprocessing(input_size=cfg.input_size, crop_fraction=cfg.crop_fraction)
    cache = cache_images(conn, cfg, prep, progress)
    if len(cache) < 16:
        raise GaldbError(f"only {len(cache)} cutouts: SimCLR needs at least 16")
    model = SimCLR(cfg.arch, cfg.projection_dim)
    started = time.perf_counter()
    steps, losses = _train(model, cache, cfg, prep, progress)
    seconds = time.perf_counter() - started
    meta = {
        "config": {**asdict(cfg), "augment": asdict(cfg.augment)},
        "images": len(cache),
        "epochs": len(losses),
        "steps": steps,
        "seconds": seconds,
        "loss_per_epoch": losses,
    }
    save_checkpoint(out, cfg.arch, model.backbone, prep, meta)
    return PretrainSummary(out, len(cache), len(losses), steps, seconds, losses)


def learning_rate(peak: float, done: float, warmup: float = 0.05) -> float:
    """Linear warm-up to ``peak`` over the first ``warmup`` of training, then cosine to 0."""
    done = min(max(done, 0.0), 1.0)
    return (
        peak * min(1.0, done / warmup) * 0.5 * (1 + math.cos(math.pi * done)) if done < 1 else 0.0
    )


def _train(
    model: SimCLR, cache: torch.Tensor, cfg: PretrainConfig, prep: Preprocessing, progress: Progress
) -> tuple[int, list[float]]:
    """Epochs of SimCLR until ``cfg.epochs`` or the time budget; (steps, loss per epoch)."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    batch = min(cfg.batch_size, len(cache))
    steps_per_epoch = len(cache) // batch
    total_steps = steps_per_epoch * cfg.epochs
    started = time.perf_counter()
    deadline = started + 60 * cfg.minutes
    progress.start(steps_per_epoch * cfg.epochs, f"pretrain {cfg.arch}")
    model.train()
    steps, losses = 0, []
    while len(losses) < cfg.epochs and time.perf_counter() < deadline:
        order = torch.randperm(len(cache), generator=gen)
        epoch_loss = []
        for s in range(steps_per_epoch):
            v1, v2 = _views(cache[order[s * batch : (s + 1) * batch]], cfg, prep, gen)
            loss = nt_xent(model(v1), model(v2), cfg.temperature)
            # Whichever ends first, epochs or minutes, sets how far along the schedule we are.
            done = max(steps / total_steps, (time.perf_counter() - started) / (deadline - started))
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg.lr, done)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            epoch_loss.append(loss.item())
            progress.advance(1)
            if time.perf_counter() > deadline:
                break
        losses.append(float(np.mean(epoch_loss)))
    return steps, losses
