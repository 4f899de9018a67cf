"""Self-supervised pretraining of a timm backbone on the catalog's own cutouts.

Two augmented views of each cutout (see :mod:`galdb.lvm.augment`) are made to agree. Two
methods (``PretrainConfig.method``):

* ``simclr`` — the views of one cutout are pulled together and pushed from the other cutouts
  of the batch (NT-Xent loss, Chen et al. 2020); wants large batches.
* ``simsiam`` — no negatives: a predictor on one view regresses the stop-gradient projection
  of the other (Chen & He 2021); works with small batches.

Cutouts are streamed from their files (:class:`CutoutStream`, read and preprocessed per
batch, optionally in DataLoader workers): only the references are held. A run checkpoints
every ``checkpoint_minutes`` (the embed-ready ``out`` and, beside it, ``out.state`` with the
optimizer, the random state and the position in the epoch) and resumes from ``out.state``
(``resume=True``) at the step it reached, so an interrupted run ends where an uninterrupted
one would. On a GPU it trains in bfloat16 autocast.

``init`` (a model spec: ``galdb:default``, ``checkpoint:PATH``, ...) starts the backbone from
that model's weights instead of random ones: continued pretraining, e.g. the shipped encoder
adapted to a survey's own unlabelled cutouts. The projection head starts afresh.

Budgets: ``epochs``, wall ``minutes`` and ``cpu_minutes`` (this process's CPU time, all its
threads, ``time.process_time()``; DataLoader worker processes are not counted). CPU time is
the equal-compute budget on a shared machine, where wall minutes depend on the neighbours.
Loss, wall and CPU seconds and images per second of each epoch go into the checkpoint's
metadata (``epoch_log``).
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
from galdb.lvm.specs import atomic_save, save_checkpoint
from galdb.progress import NoProgress, Progress

METHODS = ("simclr", "simsiam", "masked")
# Fields that may differ when a run resumes: budgets and where it runs, not what it learns.
RESUMABLE_CHANGES = {
    "epochs",
    "minutes",
    "cpu_minutes",
    "threads",
    "device",
    "workers",
    "checkpoint_minutes",
}


@dataclass(frozen=True)
class PretrainConfig:
    """Hyperparameters; all recorded in the checkpoint's metadata."""

    arch: str = "resnet10t"  # the best per CPU-minute in the recipe comparisons
    method: str = "simclr"
    input_size: int = 64
    crop_fraction: float = 0.6
    batch_size: int = 128
    epochs: int = 100
    minutes: float = 30.0  # training time over all resumed sessions together
    cpu_minutes: float | None = None  # this process's CPU time, all resumed sessions together
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 0.2
    projection_dim: int = 128
    patch_size: int | None = None  # a ViT's patch side (built for input_size); None: timm's
    mask_ratio: float = 0.6  # masked: fraction of the mask patches blanked
    mask_patch: int = 8  # masked: side of a blanked square, pixels
    max_images: int = 200_000
    seed: int = 0
    threads: int | None = None
    releases: tuple[str, ...] = ()
    init: str | None = None  # a model spec whose weights the backbone starts from
    augment: Augment = field(default_factory=Augment)
    device: str = "auto"  # auto (cuda when present), cpu or cuda
    workers: int = 0  # DataLoader processes reading cutouts
    checkpoint_minutes: float = 5.0

    def __post_init__(self):
        if self.method not in METHODS:
            raise GaldbError(f"unknown method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise GaldbError(f"unknown device {self.device!r}: use auto, cpu or cuda")
        if self.cpu_minutes is not None and self.cpu_minutes <= 0:
            raise GaldbError(f"cpu_minutes must be positive, not {self.cpu_minutes}")
        if self.method == "masked":
            if not 0 < self.mask_ratio < 1:
                raise GaldbError(f"mask_ratio must be in (0, 1), not {self.mask_ratio}")
            if self.mask_patch < 1 or self.input_size % self.mask_patch:
                raise GaldbError(
                    f"mask_patch {self.mask_patch} must divide input_size {self.input_size}"
                )

    def to_dict(self) -> dict:
        return {**asdict(self), "augment": asdict(self.augment), "releases": list(self.releases)}


@dataclass
class PretrainSummary:
    checkpoint: Path
    images: int
    epochs: int
    steps: int
    seconds: float
    losses: list[float]
    cpu_seconds: float = 0.0
    device: str = "cpu"
    resumed_at_step: int = 0
    complete: bool = True


def state_path(out: Path) -> Path:
    """The resume state written beside a pretraining checkpoint."""
    return out.with_suffix(out.suffix + ".state")


def cutout_refs(conn: psycopg.Connection, cfg: PretrainConfig) -> list[PixelRef]:
    """References (not pixels) of every cutout of ``cfg.releases``, at most ``max_images``."""
    where = "pixel_uri IS NOT NULL" + (" AND release = ANY(%s)" if cfg.releases else "")
    rows = conn.execute(
        f"SELECT {pixel_columns()} FROM galdb.catalog WHERE {where} ORDER BY galaxy_id",
        (list(cfg.releases),) if cfg.releases else None,
    ).fetchall()
    if not rows:
        raise GaldbError("no cutouts to pretrain on: ingest a release with pixels first")
    if len(rows) > cfg.max_images:
        rng = np.random.default_rng(cfg.seed)
        rows = [rows[i] for i in sorted(rng.choice(len(rows), cfg.max_images, replace=False))]
    return [PixelRef.from_row(row) for row in rows]


class CutoutStream(torch.utils.data.Dataset):
    """Cutouts read from their files on demand, as uint8 (C, S, S) with headroom for the
    augmentations' zoom and shifts (``S = 1.25 * input_size``)."""

    def __init__(self, refs: list[PixelRef], prep: Preprocessing):
        self.refs = refs
        self.prep = replace(prep, input_size=int(round(prep.input_size * 1.25)))

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> torch.Tensor:
        ref = self.refs[i]
        unit = torch.from_numpy(to_unit(read_pixels(ref), ref.bands, self.prep))
        return (crop_resize(unit, self.prep) * 255).round().to(torch.uint8)


class _Batches(torch.utils.data.Sampler):
    """Index batches of one epoch's permutation, from a given batch on (resume mid-epoch)."""

    def __init__(self, order: torch.Tensor, batch: int, first: int):
        self.order, self.batch, self.first = order, batch, first

    def __len__(self) -> int:
        return len(self.order) // self.batch - self.first

    def __iter__(self):
        for s in range(self.first, len(self.order) // self.batch):
            yield self.order[s * self.batch : (s + 1) * self.batch].tolist()


def _mlp(width: int, hidden: int, out: int, *, bn_last: bool) -> torch.nn.Sequential:
    layers = [
        torch.nn.Linear(width, hidden),
        torch.nn.BatchNorm1d(hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, out),
    ]
    return torch.nn.Sequential(*layers, *([torch.nn.BatchNorm1d(out)] if bn_last else []))


def backbone_kwargs(arch: str, input_size: int, patch_size: int | None = None) -> dict:
    """The ``timm.create_model`` arguments beyond the name that a backbone needs at
    ``input_size``: none for a CNN; ``img_size`` (and ``patch_size`` when given) for a model
    with a fixed patch grid (a ViT). Recorded in the checkpoint so that it loads again."""
    if patch_size is not None:
        return {"img_size": input_size, "patch_size": patch_size}
    probe = timm.create_model(arch, pretrained=False, num_classes=0)
    grid = getattr(getattr(probe, "patch_embed", None), "img_size", None)
    if grid is not None and tuple(grid) != (input_size, input_size):
        return {"img_size": input_size}
    return {}


def create_backbone(cfg: PretrainConfig) -> torch.nn.Module:
    """The timm backbone (no classifier: its output is the pooled embedding)."""
    kwargs = backbone_kwargs(cfg.arch, cfg.input_size, cfg.patch_size)
    try:
        model = timm.create_model(cfg.arch, pretrained=False, num_classes=0, **kwargs)
    except TypeError as exc:
        raise GaldbError(f"timm cannot build {cfg.arch!r} with {kwargs}: {exc}") from exc
    model.galdb_kwargs = kwargs
    return model


class SimCLR(torch.nn.Module):
    """Backbone plus the projection head used only during pretraining."""

    n_views = 2

    def __init__(self, backbone: torch.nn.Module, projection_dim: int, temperature: float = 0.2):
        super().__init__()
        self.backbone = backbone
        width = self.backbone.num_features
        self.head = torch.nn.Sequential(
            torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, projection_dim)
        )
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(x)), dim=1)

    def loss(self, views: list[torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        v1, v2 = views
        return nt_xent(self(v1).float(), self(v2).float(), self.temperature)


class SimSiam(torch.nn.Module):
    """Backbone, projector and predictor; the loss needs no negatives (small batches)."""

    n_views = 2

    def __init__(self, backbone: torch.nn.Module, projection_dim: int):
        super().__init__()
        self.backbone = backbone
        width = self.backbone.num_features
        self.head = _mlp(width, width, projection_dim, bn_last=True)
        self.predictor = _mlp(
            projection_dim, max(projection_dim // 2, 16), projection_dim, bn_last=False
        )

    def loss(self, views: list[torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        v1, v2 = views
        z1, z2 = self.head(self.backbone(v1)), self.head(self.backbone(v2))
        p1, p2 = self.predictor(z1), self.predictor(z2)
        return simsiam_loss(p1.float(), z2.float(), p2.float(), z1.float())


class MaskedReconstruction(torch.nn.Module):
    """SimMIM: blank random squares of the input, predict their pixels from the last feature
    map with a 1x1 convolution and a pixel shuffle (the light decoder), L1 on the blanked
    pixels. Blanked pixels are set to 0, the dataset mean after normalisation."""

    n_views = 1

    def __init__(
        self, backbone: torch.nn.Module, input_size: int, mask_ratio: float, mask_patch: int
    ):
        super().__init__()
        self.backbone = backbone
        self.input_size, self.mask_ratio, self.mask_patch = input_size, mask_ratio, mask_patch
        was_training = backbone.training
        backbone.eval()
        with torch.no_grad():
            fmap = self.feature_map(torch.zeros(1, 3, input_size, input_size))
        backbone.train(was_training)
        self.stride = math.ceil(input_size / fmap.shape[-1])
        self.decoder = torch.nn.Sequential(
            torch.nn.Conv2d(fmap.shape[1], 3 * self.stride**2, kernel_size=1),
            torch.nn.PixelShuffle(self.stride),
        )

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) from the backbone's last stage; a ViT's patch tokens laid on the grid."""
        f = self.backbone.forward_features(x)
        if f.ndim == 3:  # tokens (B, N, D): drop class/register tokens, square grid
            f = f[:, getattr(self.backbone, "num_prefix_tokens", 0) :]
            side = math.isqrt(f.shape[1])
            f = f.transpose(1, 2).reshape(f.shape[0], f.shape[2], side, side)
        return f

    def mask(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        """(B, 1, S, S) with 1 on the blanked pixels: ``mask_ratio`` of the squares, drawn
        from ``gen`` (so a resumed run blanks the same squares)."""
        side = self.input_size // self.mask_patch
        n, k = side * side, round(self.mask_ratio * side * side)
        ranks = torch.rand(batch, n, generator=gen).argsort(1).argsort(1)
        squares = (ranks < k).float().reshape(batch, 1, side, side)
        return squares.repeat_interleave(self.mask_patch, 2).repeat_interleave(self.mask_patch, 3)

    def loss(self, views: list[torch.Tensor], gen: torch.Generator) -> torch.Tensor:
        (x,) = views
        m = self.mask(x.shape[0], gen).to(x.device)
        pred = self.decoder(self.feature_map(x * (1 - m))).float()
        if pred.shape[-1] != x.shape[-1]:
            pred = F.interpolate(pred, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return masked_l1(pred, x.float(), m)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """The SimCLR loss for two batches of normalised projections of the same images."""
    z = torch.cat([z1, z2])
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def simsiam_loss(p1, z2, p2, z1) -> torch.Tensor:
    """Symmetrised negative cosine of predictions against stop-gradient projections (-1 best)."""
    return (
        -(
            F.cosine_similarity(p1, z2.detach(), dim=1).mean()
            + F.cosine_similarity(p2, z1.detach(), dim=1).mean()
        )
        / 2
    )


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the pixels where ``mask`` (B, 1, H, W) is 1, all channels."""
    return ((pred - target).abs() * mask).sum() / (mask.sum() * target.shape[1]).clamp(min=1)


def build(cfg: PretrainConfig) -> torch.nn.Module:
    backbone = create_backbone(cfg)
    if cfg.method == "simsiam":
        return SimSiam(backbone, cfg.projection_dim)
    if cfg.method == "masked":
        return MaskedReconstruction(backbone, cfg.input_size, cfg.mask_ratio, cfg.mask_patch)
    return SimCLR(backbone, cfg.projection_dim, cfg.temperature)


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when torch sees a GPU, else cpu; ``cuda`` without one is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise GaldbError("--device cuda, but torch sees no GPU: use --device auto or cpu")
    return torch.device(name)


def augmented_view(
    batch_u8: torch.Tensor, augment: Augment, prep: Preprocessing, gen
) -> torch.Tensor:
    """One augmented, normalised view at ``prep.input_size`` of :class:`CutoutStream` items."""
    v = augment(batch_u8.float() / 255, gen)
    v = F.interpolate(
        v, size=(prep.input_size,) * 2, mode="bilinear", antialias=True, align_corners=False
    )
    return normalise(v, prep)


def _views(batch_u8: torch.Tensor, n: int, cfg: PretrainConfig, prep: Preprocessing, gen):
    return [augmented_view(batch_u8, cfg.augment, prep, gen) for _ in range(n)]


def learning_rate(peak: float, done: float, warmup: float = 0.05) -> float:
    """Linear warm-up to ``peak`` over the first ``warmup`` of training, then cosine to 0."""
    done = min(max(done, 0.0), 1.0)
    return (
        peak * min(1.0, done / warmup) * 0.5 * (1 + math.cos(math.pi * done)) if done < 1 else 0.0
    )


@dataclass
class _State:
    """Where a run is: what ``out.state`` stores besides the weights and the optimizer."""

    epoch: int = 0
    step_in_epoch: int = 0
    steps: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    epoch_losses: list[float] = field(default_factory=list)  # the current epoch's so far
    epoch_seconds: float = 0.0
    epoch_cpu_seconds: float = 0.0
    epoch_log: list[dict] = field(default_factory=list)
    init_weights_sha256: str | None = None  # of cfg.init's weights, when there is one


def start_from(backbone: torch.nn.Module, cfg: PretrainConfig) -> str:
    """Copy the weights of the model ``cfg.init`` names into ``backbone``; their sha256."""
    from galdb.lvm.specs import load_model

    loaded = load_model(cfg.init)
    try:
        backbone.load_state_dict(loaded.model.state_dict())
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise GaldbError(
            f"--init {cfg.init}: its {loaded.arch} weights do not fit the {cfg.arch} backbone "
            f"at input size {cfg.input_size} ({first}); use --arch {loaded.arch}"
        ) from exc
    return loaded.weights_sha256


def _load_state(path: Path, cfg: PretrainConfig, model, opt, gen) -> _State:
    if not path.exists():
        raise GaldbError(f"--resume: no resume state {path} (the run never checkpointed)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GaldbError(f"--resume: {path} is not readable ({exc})") from exc
    # a setting added after the state was written ran as its default then
    old = PretrainConfig().to_dict() | saved["config"]
    new = cfg.to_dict()
    changed = sorted(k for k in new if k not in RESUMABLE_CHANGES and old.get(k) != new[k])
    if changed:
        diffs = ", ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in changed)
        raise GaldbError(f"--resume: {path} was written with other settings ({diffs})")
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    gen.set_state(saved["generator"])
    return _State(**saved["state"])


def _meta(cfg: PretrainConfig, images: int, state: _State, device, complete: bool) -> dict:
    return {
        "config": cfg.to_dict(),
        "images": images,
        "epochs": len(state.epoch_log),
        "steps": state.steps,
        "seconds": state.seconds,
        "cpu_seconds": state.cpu_seconds,
        "device": str(device),
        "complete": complete,
        "loss_per_epoch": [e["loss"] for e in state.epoch_log],
        "epoch_log": state.epoch_log,
        "init_weights_sha256": state.init_weights_sha256,
    }


def _save(out: Path, cfg, prep, model, opt, gen, state: _State, images, device, complete):
    """The embed-ready checkpoint, then the resume state (each written atomically)."""
    save_checkpoint(
        out,
        cfg.arch,
        model.backbone,
        prep,
        _meta(cfg, images, state, device, complete),
        model_kwargs=model.backbone.galdb_kwargs,
    )
    payload = {
        "config": cfg.to_dict(),
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "generator": gen.get_state(),
        "state": asdict(state),
    }
    atomic_save(payload, state_path(out))


def pretrain(
    conn: psycopg.Connection,
    cfg: PretrainConfig,
    out: Path,
    progress: Progress | None = None,
    *,
    resume: bool = False,
    stop_after_steps: int | None = None,
) -> PretrainSummary:
    """Pretrain ``cfg.arch`` on the catalog's cutouts until ``cfg.epochs``, ``cfg.minutes``
    or ``cfg.cpu_minutes``.

    Writes ``out`` (for ``galdb embed --model checkpoint:OUT``) and ``out.state`` every
    ``cfg.checkpoint_minutes`` and at the end. ``resume`` continues from ``out.state``;
    ``stop_after_steps`` ends this session after that many steps (checkpointed, incomplete),
    as an interruption would.
    """
    progress = progress or NoProgress()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    prep = Preprocessing(input_size=cfg.input_size, crop_fraction=cfg.crop_fraction)
    stream = CutoutStream(cutout_refs(conn, cfg), prep)
    if len(stream) < 16:
        raise GaldbError(f"only {len(stream)} cutouts: pretraining needs at least 16")
    model = build(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    if resume:
        state = _load_state(state_path(out), cfg, model, opt, gen)
    else:
        state = _State(init_weights_sha256=start_from(model.backbone, cfg) if cfg.init else None)
    model.to(device)
    # the optimizer's moments follow the parameters to the device
    opt.load_state_dict(opt.state_dict())
    resumed_at = state.steps
    _train(model, opt, gen, stream, cfg, prep, state, device, progress, out, stop_after_steps)
    complete = len(state.epoch_log) >= cfg.epochs or _over_budget(state, cfg)
    model.cpu()
    _save(out, cfg, prep, model, opt, gen, state, len(stream), device, complete)
    losses = [e["loss"] for e in state.epoch_log]
    return PretrainSummary(
        out,
        len(stream),
        len(losses),
        state.steps,
        state.seconds,
        losses,
        state.cpu_seconds,
        str(device),
        resumed_at,
        complete,
    )


def _over_budget(state: _State, cfg: PretrainConfig) -> bool:
    return state.seconds >= 60 * cfg.minutes or (
        cfg.cpu_minutes is not None and state.cpu_seconds >= 60 * cfg.cpu_minutes
    )


def _budget_used(state: _State, cfg: PretrainConfig, total_steps: int) -> float:
    """The fraction of the run done, by whichever budget is nearest its end."""
    cpu = state.cpu_seconds / (60 * cfg.cpu_minutes) if cfg.cpu_minutes else 0.0
    return max(state.steps / total_steps, state.seconds / (60 * cfg.minutes), cpu)


def _train(model, opt, gen, stream, cfg, prep, state: _State, device, progress, out, stop_after):
    """Epochs until ``cfg.epochs`` or a time budget, checkpointing as it goes."""
    batch = min(cfg.batch_size, len(stream))
    steps_per_epoch = len(stream) // batch
    total_steps = steps_per_epoch * cfg.epochs
    amp = device.type == "cuda"
    progress.start(total_steps, f"pretrain {cfg.arch} ({cfg.method}, {device.type})")
    progress.advance(state.steps)
    model.train()
    session_steps = 0
    last_save = time.perf_counter()
    while state.epoch < cfg.epochs and not _over_budget(state, cfg):
        # the permutation depends on the epoch only, so a resumed epoch continues the same one
        order = torch.randperm(
            len(stream), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + state.epoch)
        )
        loader = torch.utils.data.DataLoader(
            stream,
            batch_sampler=_Batches(order, batch, state.step_in_epoch),
            num_workers=cfg.workers,
            pin_memory=amp,
        )
        tick, cpu_tick = time.perf_counter(), time.process_time()
        for cutouts in loader:
            views = [
                v.to(device, non_blocking=True)
                for v in _views(cutouts, model.n_views, cfg, prep, gen)
            ]
            for group in opt.param_groups:
                group["lr"] = learning_rate(cfg.lr, _budget_used(state, cfg, total_steps))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                loss = model.loss(views, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            now, cpu_now = time.perf_counter(), time.process_time()
            state.seconds += now - tick
            state.epoch_seconds += now - tick
            state.cpu_seconds += cpu_now - cpu_tick
            state.epoch_cpu_seconds += cpu_now - cpu_tick
            tick, cpu_tick = now, cpu_now
            state.steps += 1
            state.step_in_epoch += 1
            session_steps += 1
            state.epoch_losses.append(loss.item())
            progress.advance(1)
            stopping = _over_budget(state, cfg) or (stop_after and session_steps >= stop_after)
            if stopping:
                break
            if now - last_save > 60 * cfg.checkpoint_minutes:
                model.cpu()
                _save(out, cfg, prep, model, opt, gen, state, len(stream), device, False)
                model.to(device)
                opt.load_state_dict(opt.state_dict())
                last_save = tick = time.perf_counter()
                cpu_tick = time.process_time()
        if state.step_in_epoch >= steps_per_epoch or _over_budget(state, cfg):
            _end_epoch(state, batch)
        if stop_after and session_steps >= stop_after:
            return


def _end_epoch(state: _State, batch: int) -> None:
    if state.epoch_losses:
        n = len(state.epoch_losses)
        state.epoch_log.append(
            {
                "epoch": state.epoch + 1,
                "loss": float(np.mean(state.epoch_losses)),
                "steps": n,
                "seconds": round(state.epoch_seconds, 3),
                "cpu_seconds": round(state.epoch_cpu_seconds, 3),
                "images_per_second": round(n * batch / max(state.epoch_seconds, 1e-9), 2),
            }
        )
    state.epoch += 1
    state.step_in_epoch = 0
    state.epoch_losses = []
    state.epoch_seconds = 0.0
    state.epoch_cpu_seconds = 0.0
