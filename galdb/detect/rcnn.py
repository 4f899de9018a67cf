"""The seed paper's detection baseline: torchvision Faster R-CNN, ResNet50-FPN, trained from
scratch (no pretrained weights: offline, and the same start as a randomly initialised LVM)
on the same fields, crops and flips as :mod:`galdb.detect.train`.

Mask R-CNN is this network plus a mask branch; the fields have no masks to learn and the
benchmark scores positions, so the box detector is what is compared. The anchors are scaled
down to the objects' sizes (8 to 128 px instead of 32 to 512), the one change from
torchvision's defaults. Rows out are those of :func:`galdb.detect.model.decode`.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from galdb.detect.fields import field_paths, model_input, read_field, read_truth
from galdb.detect.model import BOX_PER_RADIUS, KINDS
from galdb.detect.train import TrainConfig, _crop, warmup_cosine
from galdb.lvm.preprocess import Preprocessing


def build_rcnn(seed: int = 0):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn
    from torchvision.models.detection.anchor_utils import AnchorGenerator

    torch.manual_seed(seed)
    anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((0.5, 1.0, 2.0),) * 5)
    return fasterrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=len(KINDS) + 1,
        rpn_anchor_generator=anchors,
        image_mean=[0.0, 0.0, 0.0],  # inputs are already normalised (model_input)
        image_std=[1.0, 1.0, 1.0],
        box_detections_per_img=1000,
    )


def _at_size(model, h: int, w: int) -> None:
    """No resizing: the transform keeps the image at its own size."""
    model.transform.min_size = (min(h, w),)
    model.transform.max_size = max(h, w)


def train_rcnn(directory, prep: Preprocessing, config: TrainConfig, *, progress=None):
    """Train Faster R-CNN as :func:`galdb.detect.train.train_detector` trains the detector
    (same fields, steps, batch, crop, seed); return (model, seconds)."""
    paths = field_paths(directory)[: config.n_fields]
    truth = read_truth(directory)
    rng = np.random.default_rng(config.seed)
    model = build_rcnn(config.seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-4)
    schedule = warmup_cosine(optimiser, config.steps)
    started = time.perf_counter()
    for _ in range(config.steps):
        images, targets = [], []
        for k in rng.integers(len(paths), size=config.batch):
            image, rows = _crop(read_field(paths[k]), truth[paths[k].stem], config.crop, rng, prep)
            half = np.maximum(BOX_PER_RADIUS / 2 * rows[:, 3], 3.0)
            boxes = np.column_stack(
                [rows[:, 0] - half, rows[:, 1] - half, rows[:, 0] + half, rows[:, 1] + half]
            )
            images.append(image)
            targets.append(
                {
                    "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                    "labels": torch.as_tensor(rows[:, 2] + 1, dtype=torch.int64),
                }
            )
        _at_size(model, *images[0].shape[-2:])
        losses = model(images, targets)
        total = sum(losses.values())
        optimiser.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimiser.step()
        schedule.step()
        if progress is not None:
            progress.advance(1)
    return model, time.perf_counter() - started


@torch.no_grad()
def rcnn_detect(model, prep: Preprocessing, paths):
    """Per field: rows ``(x, y, radius_px, score, kind_index)`` from the box centres."""
    model.eval()
    for path in paths:
        field = read_field(path)
        x = model_input(field, prep)
        _at_size(model, *x.shape[-2:])
        out = model([x])[0]
        boxes = out["boxes"].numpy().astype(np.float64)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        radius = (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2 / BOX_PER_RADIUS
        kind = out["labels"].numpy() - 1.0
        yield np.column_stack([cx, cy, radius, out["scores"].numpy(), kind]).reshape(-1, 5)
