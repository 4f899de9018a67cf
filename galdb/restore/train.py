"""Train a restoration network on pairs: degraded in, clean out, in the stretched space.

The loss adds two terms. The L1 distance between the restored and the clean images in the
network's unclipped asinh stretch weighs a galaxy's faint outskirts and its bright core
alike; the mean over images and bands of ``log(MSE / range^2)`` in flux (``range`` the clean
band's max - min) is minus the PSNR the evaluation reports, up to a constant factor, where
the bright core dominates. ``flux_weight`` balances them. Every batch is rotated by a random
multiple of 90 degrees and maybe flipped (a galaxy has no preferred orientation). A
``val_fraction`` of the pairs is held out; the version records their PSNR and SSIM in flux
against the clean truth, next to the no-op's.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from galdb.errors import GaldbError
from galdb.progress import NoProgress, Progress
from galdb.restore.baselines import mean_scores, noop
from galdb.restore.network import DECODER_WIDTH, RestorationNet, restore, stretch, unstretch_tensor
from galdb.restore.pairs import Pairs


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of :func:`train`."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    seed: int = 0
    flux_weight: float = 0.05

    def to_dict(self) -> dict:
        return asdict(self)


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices of ``n`` pairs; at least one pair on each side."""
    if n < 2:
        raise GaldbError(f"training needs 2 pairs or more, not {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _augment(x: torch.Tensor, y: torch.Tensor, gen: torch.Generator):
    turns = int(torch.randint(4, (1,), generator=gen))
    x, y = torch.rot90(x, turns, (-2, -1)), torch.rot90(y, turns, (-2, -1))
    if torch.rand(1, generator=gen) < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    return x, y


def _loss(out: torch.Tensor, clean: torch.Tensor, prep, flux_weight: float) -> torch.Tensor:
    l1 = torch.nn.functional.l1_loss(out, clean)
    if not flux_weight:
        return l1
    flux, truth = unstretch_tensor(out, prep), unstretch_tensor(clean, prep)
    mse = ((flux - truth) ** 2).mean(dim=(-2, -1))
    peak = truth.amax(dim=(-2, -1)) - truth.amin(dim=(-2, -1))
    return l1 + flux_weight * torch.log(mse / peak.clamp_min(1e-12) ** 2 + 1e-12).mean()


def train(
    net: RestorationNet, pairs: Pairs, config: TrainConfig, progress: Progress | None = None
) -> dict:
    """Train ``net`` in place; return the metrics a version records.

    Returns
    -------
    dict
        ``n_train``, ``n_val``, ``final_loss``, ``train_seconds``, ``val_psnr``,
        ``val_ssim``, ``val_psnr_noop``, ``val_ssim_noop``.
    """
    progress = progress or NoProgress()
    train_idx, val_idx = split(len(pairs), config.val_fraction, config.seed)
    prep = net.config.preprocessing
    x_all = torch.from_numpy(stretch(pairs.degraded[train_idx], pairs.bands, prep))
    y_all = torch.from_numpy(stretch(pairs.clean[train_idx], pairs.bands, prep))
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    optimiser = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(train_idx) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=steps)
    progress.start(steps, "train restoration")
    started, losses = time.perf_counter(), []
    net.train()
    for _ in range(config.epochs):
        for batch in torch.randperm(len(train_idx), generator=gen).split(config.batch_size):
            x, y = _augment(x_all[batch], y_all[batch], gen)
            loss = _loss(net(x), y, prep, config.flux_weight)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            progress.advance(1)
    net.eval()
    seconds = time.perf_counter() - started
    val = pairs.subset(val_idx)
    psnr_net, ssim_net = mean_scores(val, restore(net, val.degraded, val.bands))
    psnr_noop, ssim_noop = mean_scores(val, noop(val))
    return {
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "final_loss": float(np.mean(losses[-max(1, len(losses) // 10) :])),
        "train_seconds": seconds,
        "val_psnr": psnr_net,
        "val_ssim": ssim_net,
        "val_psnr_noop": psnr_noop,
        "val_ssim_noop": ssim_noop,
    }


def train_version(
    conn,
    folder: Path,
    spec: str,
    config: TrainConfig,
    *,
    limit: int | None = None,
    decoder_width: int = DECODER_WIDTH,
    progress: Progress | None = None,
):
    """Train a network on the LVM backbone ``spec`` from a pairs folder and store it as a
    new restoration version (not current; the caller commits). Returns the version."""
    from galdb.lvm.specs import load_model
    from galdb.restore.network import from_backbone
    from galdb.restore.pairs import load_pairs
    from galdb.restore.versions import store_version

    pairs = load_pairs(folder, limit)
    loaded = load_model(spec)
    net = from_backbone(loaded, decoder_width)
    metrics = train(net, pairs, config, progress)
    return store_version(
        conn,
        net,
        model_spec=spec,
        backbone_sha256=loaded.weights_sha256,
        hyperparameters=config.to_dict(),
        pairs=str(Path(folder).resolve()),
        metrics=metrics,
    )
