"""Scoring detections against a reference list: precision, recall and F1 at a radius.

Matching is greedy in score order, as in the usual detection benchmarks: each detection,
best first, takes the nearest reference object still unmatched within ``radius`` pixels.
With that order the matches of every score threshold come out of one pass, so the threshold
that maximises F1 on training fields can be chosen once and then applied to test fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

MATCH_RADIUS_PX = 3.0  # 0.79" at 0.262"/px: about half the PSF FWHM


@dataclass(frozen=True)
class Scores:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict:
        return {
            "tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": round(self.precision, 4),
            "recall": round(self.recall, 4), "f1": round(self.f1, 4),
        }  # fmt: skip


def greedy_match(xy: np.ndarray, scores: np.ndarray, ref_xy: np.ndarray, radius: float):
    """For detections ``xy`` (n, 2) with ``scores``: (order, is_match, matched_ref) with
    ``order`` the detections best first, ``is_match`` whether each (in that order) matched,
    ``matched_ref`` the reference index it took (-1 if none)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    is_match = np.zeros(len(order), bool)
    matched = np.full(len(order), -1)
    if len(order) == 0 or len(ref_xy) == 0:
        return order, is_match, matched
    tree = cKDTree(ref_xy)
    taken = np.zeros(len(ref_xy), bool)
    for rank, i in enumerate(order):
        for j in sorted(tree.query_ball_point(xy[i], radius), key=lambda j: _d(xy[i], ref_xy[j])):
            if not taken[j]:
                taken[j], is_match[rank], matched[rank] = True, True, j
                break
    return order, is_match, matched


def _d(a, b) -> float:
    return float(np.hypot(a[0] - b[0], a[1] - b[1]))


def score_at(detections, references, threshold: float, radius: float = MATCH_RADIUS_PX) -> Scores:
    """Totals over fields: ``detections`` and ``references`` are per-field lists of rows
    ``(x, y, …, score)`` with the score in column 3 for detections (see
    :func:`galdb.detect.model.decode`) and ``(x, y, …)`` for references."""
    tp = fp = fn = 0
    for det, ref in zip(detections, references, strict=True):
        keep = det[:, 3] >= threshold
        _, is_match, _ = greedy_match(det[keep, :2], det[keep, 3], ref[:, :2], radius)
        tp += int(is_match.sum())
        fp += int((~is_match).sum())
        fn += len(ref) - int(is_match.sum())
    return Scores(tp, fp, fn)


def best_threshold(detections, references, radius: float = MATCH_RADIUS_PX) -> float:
    """The score threshold with the highest F1 over the fields (ties: the lowest)."""
    scores, hits = [], []
    n_ref = 0
    for det, ref in zip(detections, references, strict=True):
        order, is_match, _ = greedy_match(det[:, :2], det[:, 3], ref[:, :2], radius)
        scores.append(det[order, 3])
        hits.append(is_match)
        n_ref += len(ref)
    if not scores or not sum(len(s) for s in scores):
        return 0.5
    s, h = np.concatenate(scores), np.concatenate(hits)
    order = np.argsort(-s, kind="stable")
    s, h = s[order], h[order]
    tp = np.cumsum(h)
    fp = np.cumsum(~h)
    f1 = 2 * tp / (tp + fp + n_ref)
    best = int(np.argmax(f1))
    return float(s[best])
