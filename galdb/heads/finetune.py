"""A fine-tuned head: the LVM backbone's last stages trained with a linear classifier on top.

A frozen-embedding head (:mod:`galdb.heads.classify`) can only draw a boundary in the space
the LVM was pretrained into; this head moves the space too. Training:

- the backbone starts from the task model's weights (the registered ``checkpoint:`` or
  ``timm:`` model); its last ``unfreeze`` stages (timm's ``feature_info`` modules, and what
  follows them) train, the earlier ones stay frozen, their batch norms in eval mode;
- the images are the labelled galaxies' cutouts (:class:`galdb.lvm.pretrain.CutoutStream`)
  under the same astro augmentations as pretraining (:class:`galdb.lvm.augment.Augment`:
  rotations, flips, zoom, shift, PSF blur, noise, gains);
- the cross entropy is class-weighted (inverse frequency, as the from-scratch baseline's);
- a stratified held-out fold (``holdout``) stops training when its loss has not improved for
  ``patience`` epochs, and the weights of its best epoch are kept; its AUC, balanced accuracy
  and calibration error are the version's metrics (``holdout_*``; the frozen heads report
  cross-validated ``cv_*`` ones).

The version stores the whole network (:meth:`FinetunedHead.to_bytes`, tagged with
:data:`MAGIC`), so its predictions need a forward pass per galaxy:
:func:`galdb.heads.materialize.materialize` reads the pixels of every embedded galaxy for a
head whose ``needs_pixels`` is true (and resumes an interrupted build).
"""

from __future__ import annotations

import copy
import io
from dataclasses import asdict, dataclass, field

import numpy as np
import timm
import torch
import torch.nn.functional as F
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split

from galdb.errors import GaldbError
from galdb.eval.baseline import inverse_frequency_weights
from galdb.heads.classify import auc, expected_calibration_error, probability_columns
from galdb.lvm.augment import Augment
from galdb.lvm.preprocess import Preprocessing
from galdb.lvm.pretrain import augmented_view
from galdb.lvm.specs import LoadedModel
from galdb.progress import NoProgress, Progress
from galdb.restore.network import check_rebuildable

MAGIC = b"galdb-finetuned-head\n"


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters of a fine-tuned head; all stored with the version."""

    unfreeze: int = 2  # last backbone stages trained
    max_epochs: int = 30
    patience: int = 5
    batch_size: int = 32
    lr: float = 3e-4  # backbone
    head_lr: float = 3e-3
    weight_decay: float = 1e-4
    holdout: float = 0.2
    augment: Augment = field(default_factory=Augment)
    seed: int = 0

    def to_dict(self) -> dict:
        return {**asdict(self), "augment": asdict(self.augment)}


class FinetunedNet(torch.nn.Module):
    """A timm backbone (pooled features) and a linear classifier."""

    def __init__(self, arch: str, in_chans: int, n_classes: int):
        super().__init__()
        self.backbone = timm.create_model(arch, pretrained=False, num_classes=0, in_chans=in_chans)
        self.classifier = torch.nn.Linear(self.backbone.num_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.backbone(x))


def trainable_names(backbone: torch.nn.Module, unfreeze: int) -> set[str]:
    """Parameter names of the last ``unfreeze`` stages (timm ``feature_info``) and after."""
    stages = [f["module"] for f in getattr(backbone, "feature_info", [])]
    if not stages:
        raise GaldbError(f"{type(backbone).__name__} lists no stages (timm feature_info)")
    if not 1 <= unfreeze <= len(stages):
        raise GaldbError(f"--unfreeze {unfreeze}: the backbone has {len(stages)} stages")
    names = [n for n, _ in backbone.named_parameters()]
    if unfreeze == len(stages):  # the first stage is the stem, whatever its modules' names
        return set(names)
    first = stages[-unfreeze]
    start = next((i for i, n in enumerate(names) if n.startswith(first + ".")), None)
    if start is None:
        raise GaldbError(f"stage {first} of the backbone has no weights to train")
    return set(names[start:])


def _freeze(net: FinetunedNet, trainable: set[str]) -> None:
    for name, p in net.backbone.named_parameters():
        p.requires_grad_(name in trainable)


def _train_mode(net: FinetunedNet, trainable: set[str]) -> None:
    """Train mode, except the frozen stages' modules (their batch-norm statistics stay)."""
    net.train()
    for name, module in net.backbone.named_modules():
        own = list(module.parameters(recurse=False))
        if own and not any(
            f"{name}.{n}" in trainable for n, _ in module.named_parameters(recurse=False)
        ):
            module.eval()


@dataclass
class FinetunedHead:
    """A fine-tuned network and what it needs to predict: see the module docstring."""

    arch: str
    preprocessing: Preprocessing
    n_classes: int
    config: FinetuneConfig
    net: FinetunedNet
    algorithm = "finetuned-backbone"
    needs_pixels = True

    @property
    def hyperparameters(self) -> dict:
        return {"arch": self.arch, **self.config.to_dict()}

    @torch.inference_mode()
    def predict_proba(self, images: torch.Tensor, batch_size: int = 128) -> np.ndarray:
        """(N, classes) probabilities of normalised model inputs (N, C, size, size)."""
        self.net.eval()
        logits = [self.net(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return torch.softmax(torch.cat(logits).double(), dim=1).numpy()

    def prediction_columns(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """The columns of a predictions table for these galaxies' inputs (see materialize)."""
        return probability_columns(self.predict_proba(images))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(
            {
                "arch": self.arch,
                "preprocessing": self.preprocessing.to_dict(),
                "n_classes": self.n_classes,
                "config": self.config.to_dict(),
                "state_dict": self.net.state_dict(),
            },
            buffer,
        )
        return MAGIC + buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> FinetunedHead:
        payload = torch.load(io.BytesIO(data[len(MAGIC) :]), map_location="cpu", weights_only=True)
        prep = Preprocessing.from_dict(payload["preprocessing"])
        cfg = dict(payload["config"])
        cfg["augment"] = Augment(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg["augment"].items()}
        )
        net = FinetunedNet(payload["arch"], len(prep.channels), payload["n_classes"])
        net.load_state_dict(payload["state_dict"])
        return cls(payload["arch"], prep, payload["n_classes"], FinetuneConfig(**cfg), net.eval())


def is_finetuned(data: bytes) -> bool:
    """Whether stored head parameters are a :class:`FinetunedHead`'s."""
    return data.startswith(MAGIC)


def split_holdout(targets: np.ndarray, fraction: float, seed: int):
    """(train, held-out) indices: stratified where every class has two labels."""
    index = np.arange(len(targets))
    n_out = max(2, int(round(fraction * len(targets))))
    if len(targets) - n_out < 2:
        raise GaldbError(f"{len(targets)} labels: a fine-tuned head needs at least 4")
    counts = np.bincount(targets)
    stratify = targets if counts[counts > 0].min() >= 2 and n_out >= (counts > 0).sum() else None
    return train_test_split(index, test_size=n_out, random_state=seed, stratify=stratify)


def fit_finetuned(
    loaded: LoadedModel,
    cutouts: torch.Tensor,
    centred: torch.Tensor,
    targets: np.ndarray,
    n_classes: int,
    config: FinetuneConfig = FinetuneConfig(),
    progress: Progress | None = None,
) -> tuple[FinetunedHead, dict]:
    """Fine-tune ``loaded``'s backbone with a classifier on labelled cutouts.

    Parameters
    ----------
    loaded
        The task model's backbone (its weights are copied, not changed).
    cutouts
        (N, C, S, S) uint8 as :class:`galdb.lvm.pretrain.CutoutStream` gives them (the
        augmentations' input).
    centred
        (N, C, size, size) the model's normalised inputs, as embedding sees them (the held-out
        fold is scored on these).
    targets
        (N,) class indices.
    """
    progress = progress or NoProgress()
    check_rebuildable(loaded)
    counts = np.bincount(targets, minlength=n_classes)
    if (counts > 0).sum() < 2:
        raise GaldbError("a fine-tuned head needs labels of at least two classes")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    train, held = split_holdout(targets, config.holdout, config.seed)
    net = FinetunedNet(loaded.arch, loaded.in_chans, n_classes)
    net.backbone.load_state_dict(loaded.model.state_dict())
    trainable = trainable_names(net.backbone, config.unfreeze)
    _freeze(net, trainable)
    opt = torch.optim.AdamW(
        [
            {"params": [p for p in net.backbone.parameters() if p.requires_grad], "lr": config.lr},
            {"params": net.classifier.parameters(), "lr": config.head_lr},
        ],
        weight_decay=config.weight_decay,
    )
    weights = inverse_frequency_weights(targets[train], n_classes)
    y = torch.as_tensor(targets, dtype=torch.long)
    prep = loaded.preprocessing
    batch = min(config.batch_size, len(train))
    steps = len(train) // batch
    progress.start(config.max_epochs * steps, f"fine-tuning {loaded.arch}")
    best, best_loss, best_epoch, log = None, float("inf"), 0, []
    for epoch in range(1, config.max_epochs + 1):
        _train_mode(net, trainable)
        order = torch.from_numpy(train)[torch.randperm(len(train), generator=gen)]
        losses = []
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            x = augmented_view(cutouts[idx], config.augment, prep, gen)
            loss = F.cross_entropy(net(x), y[idx], weight=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            progress.advance(1)
        head = FinetunedHead(loaded.arch, prep, n_classes, config, net)
        p_held = head.predict_proba(centred[torch.from_numpy(held)])
        held_loss = float(
            F.nll_loss(
                torch.log(torch.from_numpy(p_held).float().clamp_min(1e-12)),
                y[held],
                weight=weights,
            )
        )
        log.append(
            {"epoch": epoch, "train_loss": float(np.mean(losses)), "holdout_loss": held_loss}
        )
        if held_loss < best_loss:
            best, best_loss, best_epoch = copy.deepcopy(net.state_dict()), held_loss, epoch
        elif epoch - best_epoch >= config.patience:
            break
    net.load_state_dict(best)
    head = FinetunedHead(loaded.arch, prep, n_classes, config, net.eval())
    p_held = head.predict_proba(centred[torch.from_numpy(held)])
    truth = targets[held]
    metrics = {
        "holdout_n": len(held),
        "holdout_loss": best_loss,
        "holdout_auc": auc(p_held, truth) if len(np.unique(truth)) >= 2 else float("nan"),
        "holdout_balanced_accuracy": float(balanced_accuracy_score(truth, p_held.argmax(1))),
        "holdout_ece": expected_calibration_error(p_held, truth),
        "best_epoch": best_epoch,
        "epochs_run": len(log),
        "trainable_parameters": int(sum(p.numel() for p in net.parameters() if p.requires_grad)),
        "epoch_log": log,
    }
    return head, metrics
