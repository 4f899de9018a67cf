"""Detection benchmark: the LVM detector against SEP, photutils and Faster R-CNN.

For each number of training fields ``n`` every method is tuned on the first ``n`` fields of
a training directory and scored on a separate test directory (different seed) at the same
matching radius:

- ``lvm``: :func:`galdb.detect.train.train_detector` on the LVM backbone (its score
  threshold chosen on the training fields);
- ``sep``, ``photutils``: :mod:`galdb.detect.baselines`, their score cut chosen on the same
  training fields (up to ``THRESHOLD_FIELDS``);
- ``rcnn``: :mod:`galdb.detect.rcnn`, trained on the same fields with the same crops and
  batch count for ``rcnn_steps`` steps, threshold chosen as the LVM's.

Each result row: method, n_train, steps, train_seconds, seconds_per_field (detection),
threshold, tp, fp, fn, precision, recall, f1 and, for methods that classify, the fraction
of matched objects given the right kind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from galdb.detect.baselines import photutils_detect, sep_detect
from galdb.detect.evaluate import MATCH_RADIUS_PX, best_threshold, greedy_match, score_at
from galdb.detect.fields import field_paths, read_field, read_truth
from galdb.detect.train import THRESHOLD_FIELDS, TrainConfig, detect, train_detector
from galdb.lvm.specs import LoadedModel

METHODS = ("lvm", "sep", "photutils", "rcnn")
COLUMNS = (
    "method", "n_train", "steps", "train_seconds", "seconds_per_field", "threshold", "tp", "fp",
    "fn", "precision", "recall", "f1", "kind_accuracy",
)  # fmt: skip


@dataclass(frozen=True)
class DetectionBenchmark:
    train_dir: str
    test_dir: str
    sizes: tuple[int, ...]
    methods: tuple[str, ...] = METHODS
    config: TrainConfig = TrainConfig()
    rcnn_steps: int = 100
    radius: float = MATCH_RADIUS_PX


def kind_accuracy(found: list[np.ndarray], refs: list[np.ndarray], threshold: float, radius):
    """Among matched detections above the threshold, the fraction whose kind is right
    (None when the method does not classify)."""
    right = total = 0
    for det, ref in zip(found, refs, strict=True):
        det = det[det[:, 3] >= threshold]
        order, is_match, matched = greedy_match(det[:, :2], det[:, 3], ref[:, :2], radius)
        if len(det) and (det[:, 4] < 0).all():
            return None
        kinds = det[order, 4][is_match]
        right += int((kinds == ref[matched[is_match], 2]).sum())
        total += int(is_match.sum())
    return round(right / total, 4) if total else None


def run_benchmark(
    bench: DetectionBenchmark,
    loaded: LoadedModel,
    log: Callable[[str], object] = print,
    kept: dict | None = None,
) -> Iterable[dict]:
    """Yield one result row (see the module docstring) per method and size, as measured;
    ``kept["lvm"]`` receives the LVM detector trained on the most fields."""
    truth_train, truth_test = read_truth(bench.train_dir), read_truth(bench.test_dir)
    train_paths, test_paths = field_paths(bench.train_dir), field_paths(bench.test_dir)
    test_refs = [truth_test[p.stem] for p in test_paths]
    classical = {"sep": sep_detect, "photutils": photutils_detect}
    cached: dict[str, tuple[list, list, float]] = {}
    for name in [m for m in bench.methods if m in classical]:
        started = time.perf_counter()
        on_test = [classical[name](read_field(p).pixels) for p in test_paths]
        per_field = (time.perf_counter() - started) / len(test_paths)
        tuning = train_paths[: min(max(bench.sizes), THRESHOLD_FIELDS)]  # what tuning reads
        on_train = [classical[name](read_field(p).pixels) for p in tuning]
        cached[name] = (on_train, on_test, per_field)
    for n in bench.sizes:
        paths = train_paths[:n]
        refs = [truth_train[p.stem] for p in paths]
        for name in bench.methods:
            log(f"{name}: {n} training fields")
            row = {"method": name, "n_train": len(paths), "steps": 0, "train_seconds": 0.0}
            if name in classical:
                on_train, found, per_field = cached[name]
                tuned = min(len(paths), THRESHOLD_FIELDS)
                threshold = best_threshold(on_train[:tuned], refs[:tuned], bench.radius)
            elif name == "lvm":
                config = TrainConfig(**(bench.config.as_dict() | {"n_fields": n}))
                trained = train_detector(loaded, bench.train_dir, config)
                if kept is not None and n == max(bench.sizes):
                    kept["lvm"] = trained
                threshold = trained.threshold
                row |= {"steps": config.steps, "train_seconds": round(trained.seconds, 1)}
                started = time.perf_counter()
                found = [
                    r for _, r in detect(trained.detector, trained.preprocessing, test_paths,
                                         threshold=threshold)
                ]  # fmt: skip
                per_field = (time.perf_counter() - started) / len(test_paths)
            elif name == "rcnn":
                from galdb.detect.rcnn import rcnn_detect, train_rcnn

                config = TrainConfig(
                    **(bench.config.as_dict() | {"n_fields": n, "steps": bench.rcnn_steps})
                )
                model, seconds = train_rcnn(bench.train_dir, loaded.preprocessing, config)
                tuned = paths[:THRESHOLD_FIELDS]
                on_train = list(rcnn_detect(model, loaded.preprocessing, tuned))
                threshold = best_threshold(on_train, refs[: len(tuned)], bench.radius)
                started = time.perf_counter()
                found = list(rcnn_detect(model, loaded.preprocessing, test_paths))
                per_field = (time.perf_counter() - started) / len(test_paths)
                row |= {"steps": config.steps, "train_seconds": round(seconds, 1)}
            else:
                raise ValueError(f"unknown method {name!r}: use {', '.join(METHODS)}")
            scores = score_at(found, test_refs, threshold, bench.radius).as_dict()
            row |= {
                "seconds_per_field": round(per_field, 4),
                "threshold": round(threshold, 4),
                **scores,
                "kind_accuracy": kind_accuracy(found, test_refs, threshold, bench.radius),
            }
            log(f"{name} n={n}: P={scores['precision']} R={scores['recall']} F1={scores['f1']}")
            yield row
