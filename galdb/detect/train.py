"""Training the detector on simulated fields, running it, and storing it as bytes.

Training streams fields from disk: every step reads ``batch`` random fields, takes a random
``crop`` x ``crop`` window of each (flipped at random) and fits the whole network, backbone
included, with AdamW. After training, the score threshold that maximises F1 on (up to
``THRESHOLD_FIELDS`` of) the training fields is chosen and stored with the weights.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from galdb.detect.evaluate import best_threshold, score_at
from galdb.detect.fields import FieldImage, field_paths, model_input, read_field, read_truth
from galdb.detect.model import Detector, build_detector, decode, loss, make_targets
from galdb.errors import GaldbError
from galdb.lvm.preprocess import Preprocessing
from galdb.lvm.specs import LoadedModel

ALGORITHM = "centernet"
THRESHOLD_FIELDS = 64
FORMAT = "galdb-detector"


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 300
    batch: int = 8
    crop: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    width: int = 64
    seed: int = 0
    n_fields: int | None = None  # the first n fields of the directory (all if None)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Trained:
    """A trained detector with what a version records about it."""

    detector: Detector
    preprocessing: Preprocessing
    threshold: float
    config: TrainConfig
    n_fields: int
    n_objects: int
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0


def train_detector(
    loaded: LoadedModel, directory, config: TrainConfig = TrainConfig(), *, progress=None
) -> Trained:
    """Fine-tune a detector on the LVM ``loaded`` over the fields of ``directory`` (with
    ``truth.csv``); see the module docstring."""
    paths = field_paths(directory)[: config.n_fields]
    truth = read_truth(directory)
    if not paths:
        raise GaldbError(f"{directory}: no training fields")
    rng = np.random.default_rng(config.seed)
    detector = build_detector(loaded, config.width, config.seed)
    detector.train()
    optimiser = torch.optim.AdamW(
        detector.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = warmup_cosine(optimiser, config.steps)
    prep = loaded.preprocessing
    started = time.perf_counter()
    if progress is not None:
        progress.start(config.steps, "training detector")
    last = float("nan")
    for _ in range(config.steps):
        picks = rng.integers(len(paths), size=config.batch)
        images, objects = [], []
        for k in picks:
            image, rows = _crop(read_field(paths[k]), truth[paths[k].stem], config.crop, rng, prep)
            images.append(image)
            objects.append(rows)
        x = torch.stack(images)
        value = loss(detector(x), make_targets(objects, tuple(x.shape[-2:])))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        schedule.step()
        last = float(value.detach())
        if progress is not None:
            progress.advance(1)
    seconds = time.perf_counter() - started
    detector.eval()
    chosen = paths[:THRESHOLD_FIELDS]
    found = [rows for _, rows in detect(detector, prep, chosen, threshold=0.01)]
    refs = [truth[p.stem] for p in chosen]
    threshold = best_threshold(found, refs)
    metrics = {"final_loss": round(last, 5), "train_fields": score_at(found, refs, threshold)}
    metrics["train_fields"] = metrics["train_fields"].as_dict()
    n_objects = int(sum(len(truth[p.stem]) for p in paths))
    return Trained(detector, prep, threshold, config, len(paths), n_objects, metrics, seconds)


def warmup_cosine(optimiser, steps: int):
    """Linear warm-up over the first tenth of the steps, then cosine decay to zero."""
    warm = max(1, steps // 10)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def _crop(field: FieldImage, rows: np.ndarray, crop: int, rng, prep: Preprocessing):
    """A random crop (random flips) of a field's model input and its objects inside it."""
    x = model_input(field, prep)
    h, w = x.shape[-2:]
    top = int(rng.integers(0, h - crop + 1)) if h > crop else 0
    left = int(rng.integers(0, w - crop + 1)) if w > crop else 0
    x = x[:, top : top + crop, left : left + crop]
    rows = rows.copy()
    rows[:, 0] -= left
    rows[:, 1] -= top
    ch, cw = x.shape[-2:]
    inside = (rows[:, 0] >= 0) & (rows[:, 0] < cw) & (rows[:, 1] >= 0) & (rows[:, 1] < ch)
    rows = rows[inside]
    if rng.random() < 0.5:
        x = torch.flip(x, dims=[-1])
        rows[:, 0] = cw - 1 - rows[:, 0]
    if rng.random() < 0.5:
        x = torch.flip(x, dims=[-2])
        rows[:, 1] = ch - 1 - rows[:, 1]
    return x.contiguous(), rows


def detect(
    detector: Detector, prep: Preprocessing, paths, *, threshold: float, batch: int = 4
) -> Iterator[tuple[FieldImage, np.ndarray]]:
    """Per field file, in order: the field and its detections (see :func:`detect_images`)."""
    return detect_images(detector, prep, map(read_field, paths), threshold=threshold, batch=batch)


@torch.no_grad()
def detect_images(
    detector: Detector, prep: Preprocessing, fields, *, threshold: float, batch: int = 4
) -> Iterator[tuple[FieldImage, np.ndarray]]:
    """Per field, in order: the field and its detections, rows
    ``(x, y, radius_px, score, kind_index)`` (see :func:`galdb.detect.model.decode`).
    Fields of equal shape are run ``batch`` at a time."""
    detector.eval()
    pending: list[FieldImage] = []

    def flush():
        x = torch.stack([model_input(f, prep) for f in pending])
        rows = decode(detector(x), threshold)
        done = list(zip(pending, rows, strict=True))
        pending.clear()
        return done

    for f in fields:
        if pending and f.pixels.shape != pending[0].pixels.shape:
            yield from flush()
        pending.append(f)
        if len(pending) == batch:
            yield from flush()
    if pending:
        yield from flush()


def to_bytes(trained: Trained, arch: str, in_chans: int) -> bytes:
    """The detector's weights, architecture and threshold as one blob (torch.save)."""
    buffer = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "arch": arch,
            "in_chans": in_chans,
            "width": trained.config.width,
            "threshold": trained.threshold,
            "preprocessing": trained.preprocessing.to_dict(),
            "state_dict": trained.detector.state_dict(),
        },
        buffer,
    )
    return buffer.getvalue()


def from_bytes(data: bytes, loaded: LoadedModel) -> tuple[Detector, Preprocessing, float]:
    """A stored detector, rebuilt on the LVM ``loaded`` (its architecture) and its weights
    replaced by the stored ones; with its preprocessing and threshold."""
    payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GaldbError("stored detector is not a galdb detector blob")
    detector = build_detector(loaded, payload["width"])
    detector.load_state_dict(payload["state_dict"])
    detector.eval()
    return detector, Preprocessing.from_dict(payload["preprocessing"]), float(payload["threshold"])
