"""The seed paper's baseline: a CNN trained from scratch on the labelled images alone.

``galdb eval fewshot`` compares the LVM heads against it at every number of labels. The
classifier uses a class-weighted cross entropy (inverse class frequency), so a handful of
imbalanced labels still teaches the rare class; the regressor fits standardised targets with
MSE. Both share one loop: AdamW with a cosine schedule, batches drawn from reshuffled epochs,
and random flips and 90-degree rotations (a galaxy has no preferred orientation). Training is
on the device of ``images`` and is deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import timm
import torch
import torch.nn.functional as F

from galdb.progress import NoProgress, Progress

_BATCH_NORMS = (
    torch.nn.BatchNorm1d,
    torch.nn.BatchNorm2d,
    torch.nn.BatchNorm3d,
    torch.nn.SyncBatchNorm,
)


@dataclass(frozen=True)
class BaselineConfig:
    """Architecture and optimisation of the from-scratch baseline."""

    arch: str = "resnet18"  # any timm name
    epochs: int = 30
    min_steps: int = 60  # few labels still get enough optimisation steps
    max_steps: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    augment: bool = True
    seed: int = 0

    def steps(self, n_images: int) -> int:
        """``epochs * ceil(N / batch_size)``, at least ``min_steps``, at most ``max_steps``."""
        steps = max(self.epochs * math.ceil(n_images / self.batch_size), self.min_steps)
        return steps if self.max_steps is None else min(steps, self.max_steps)


def train_from_scratch(
    images: torch.Tensor,
    labels: np.ndarray,
    n_classes: int,
    config: BaselineConfig = BaselineConfig(),
    progress: Progress | None = None,
) -> torch.nn.Module:
    """Train a classifier from random weights.

    Parameters
    ----------
    images
        (N, C, H, W) float32, already normalised.
    labels
        (N,) integers in ``[0, n_classes)``.
    n_classes
        Number of classes (a class without labels gets no weight).
    config
        Architecture, optimisation and seed.
    progress
        Receives one advance per optimisation step.

    Returns
    -------
    torch.nn.Module
        The model in eval mode; see :func:`predict_proba`.
    """
    labels = np.asarray(labels)
    if labels.shape != (len(images),):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    targets = torch.as_tensor(labels, dtype=torch.long, device=images.device)
    weights = inverse_frequency_weights(labels, n_classes).to(images.device)

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(output, target, weight=weights)

    return _fit(images, targets, n_classes, loss, config, progress)


def inverse_frequency_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Cross-entropy class weights ``N / (n_classes * count)``; 0 for a class without labels.

    Every class then carries the same total weight, as if the labels were balanced.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    weights = np.zeros(n_classes)
    np.divide(counts.sum(), n_classes * counts, out=weights, where=counts > 0)
    return torch.as_tensor(weights, dtype=torch.float32)


def predict_proba(
    model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256
) -> np.ndarray:
    """(N, n_classes) softmax probabilities as float64."""
    logits = _outputs(model, images, batch_size)
    return torch.softmax(logits.double(), dim=1).numpy()


def train_regressor_from_scratch(
    images: torch.Tensor,
    values: np.ndarray,
    config: BaselineConfig = BaselineConfig(),
    progress: Progress | None = None,
) -> torch.nn.Module:
    """Train a one-output regressor from random weights (MSE on standardised targets).

    The target mean and std are stored on the model as buffers ``target_mean`` and
    ``target_std``; :func:`predict_values` undoes the standardisation.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(images),):
        raise ValueError(f"{len(values)} values for {len(images)} images")
    if not np.isfinite(values).all():
        raise ValueError("regression targets must be finite")
    mean = float(values.mean()) if values.size else 0.0
    std = float(values.std()) if values.size else 0.0
    std = std if std > 0 else 1.0  # constant targets: nothing to scale
    targets = torch.as_tensor((values - mean) / std, dtype=torch.float32, device=images.device)

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(output.squeeze(1), target)

    model = _fit(images, targets, 1, loss, config, progress)
    model.register_buffer("target_mean", torch.tensor(mean, dtype=torch.float64))
    model.register_buffer("target_std", torch.tensor(std, dtype=torch.float64))
    return model


def predict_values(
    model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256
) -> np.ndarray:
    """(N,) predictions of a :func:`train_regressor_from_scratch` model, in target units."""
    scaled = _outputs(model, images, batch_size)[:, 0].double()
    return (scaled * model.target_std.cpu() + model.target_mean.cpu()).numpy()


def random_dihedral(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flip and rotate each image of (B, C, H, W) by a random multiple of 90 degrees.

    Non-square images are only rotated by 0 or 180 degrees, which keeps their shape.
    """
    b = x.shape[0]
    quarter_turns = torch.randint(4, (b,), generator=gen)
    if x.shape[-1] != x.shape[-2]:
        quarter_turns = quarter_turns // 2 * 2
    flip = torch.rand(b, generator=gen) < 0.5
    out = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
    for k in (1, 2, 3):
        chosen = (quarter_turns == k).to(x.device)
        if chosen.any():
            out[chosen] = torch.rot90(out[chosen], k, dims=(-2, -1))
    return out


def _fit(
    images: torch.Tensor,
    targets: torch.Tensor,
    n_outputs: int,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    config: BaselineConfig,
    progress: Progress | None,
) -> torch.nn.Module:
    """The training loop shared by the classifier and the regressor."""
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    n = len(images)
    if n < 2 or config.batch_size < 2:
        raise ValueError("training from scratch needs at least 2 images, in batches of 2 or more")
    progress = progress or NoProgress()
    steps = config.steps(n)
    batch = min(config.batch_size, n)  # equal batches: BatchNorm fails on a batch of one
    # Seed locally so that a run neither depends on nor disturbs the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = timm.create_model(
            config.arch, pretrained=False, num_classes=n_outputs, in_chans=images.shape[1]
        ).to(images.device)
    gen = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    progress.start(steps, f"train {config.arch} from scratch")
    model.train()
    order = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        if len(order) < batch:  # drop an epoch's remainder rather than repeat images in a batch
            order = torch.randperm(n, generator=gen)
        index, order = order[:batch].to(images.device), order[batch:]
        x = images[index]
        if config.augment:
            x = random_dihedral(x, gen)
        optimizer.zero_grad(set_to_none=True)
        loss(model(x), targets[index]).backward()
        optimizer.step()
        schedule.step()
        progress.advance(1)
    _recalibrate_batchnorm(model, images, batch)
    return model.eval()


def _recalibrate_batchnorm(model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> None:
    """Set BatchNorm running statistics to their average over the training images.

    After a few dozen steps the running averages (momentum 0.1) still trail the weights, and
    eval-mode predictions can collapse onto the majority class; one pass with the final
    weights fixes that ("precise BN", Wu & Johnson 2021).
    """
    norms = [m for m in model.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    model.eval()  # dropout and drop-path off: statistics as the model will be used
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the chunks below
        m.train()
    # Near-equal chunks: a chunk of one image would fail in BatchNorm on 1x1 feature maps.
    chunks = math.ceil(len(images) / batch_size)
    with torch.no_grad():
        for chunk in torch.tensor_split(images, chunks):
            model(chunk)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


def _outputs(model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Raw model outputs (N, outputs) on the CPU, in eval mode, without gradients."""
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        parts = [
            model(images[i : i + batch_size].to(device)).float().cpu()
            for i in range(0, len(images), batch_size)
        ]
    if not parts:
        return torch.empty(0, getattr(model, "num_classes", 1))
    return torch.cat(parts)
