"""Classification head: class-weighted logistic regression with calibrated probabilities.

Embeddings are L2-normalised (the LVM's geometry is cosine) and standardised. The classes
are weighted by inverse frequency, so a handful of mergers among thousands of ellipticals
still moves the boundary; that weighting inflates rare-class probabilities, so the logits are
then calibrated on cross-validated predictions with a temperature and a per-class bias
(fitted by minimising the log loss). The same cross-validation chooses the regularisation
(the best CV AUC over ``C_GRID``: on 512-d embeddings and a few hundred noisy labels, C=1
overfits and converges slowly, e.g. CV AUC 0.685 against 0.727 at C=0.01 for the DECaLS
rings) and gives the version's metrics, slightly optimistic therefore (one parameter chosen
on the same folds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from galdb.errors import GaldbError
from galdb.heads.params import from_npz, to_npz
from galdb.review.strategies import margin_and_entropy

MAX_FOLDS = 5
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)  # inverse regularisation, chosen by CV AUC
DEFAULT_C = 0.1  # too few labels to cross-validate


def unit_rows(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


@dataclass
class ClassificationHead:
    """A fitted head: ``predict_proba(vectors)`` for any number of galaxies."""

    n_classes: int
    C: float | None = None  # None: chosen by cross-validation from C_GRID
    mean: np.ndarray = field(default=None, repr=False)
    scale: np.ndarray = field(default=None, repr=False)
    weights: np.ndarray = field(default=None, repr=False)  # (K, d)
    bias: np.ndarray = field(default=None, repr=False)  # (K,)
    temperature: float = 1.0
    calibration_bias: np.ndarray = field(default=None, repr=False)  # (K,)

    algorithm = "logistic-regression"

    @property
    def hyperparameters(self) -> dict:
        return {
            "C": self.C,
            "C_grid": list(C_GRID),
            "class_weight": "balanced",
            "features": "l2-normalised, standardised",
        }

    def fit(
        self, vectors: np.ndarray, targets: np.ndarray, seed: int = 0, cross_validate=True
    ) -> dict:
        """Fit on all labels; return cross-validated metrics (none where too few labels, or
        without ``cross_validate``, which also skips the calibration)."""
        counts = np.bincount(targets, minlength=self.n_classes)
        if (counts > 0).sum() < 2:
            raise GaldbError("a classification head needs labels of at least two classes")
        folds = min(MAX_FOLDS, int(counts[counts > 0].min())) if cross_validate else 0
        metrics: dict = {"n_folds": folds if folds >= 2 else 0}
        if folds >= 2:
            splits = list(
                StratifiedKFold(folds, shuffle=True, random_state=seed).split(vectors, targets)
            )
            grid = C_GRID if self.C is None else (self.C,)
            scored = [(c, self._cv_logits(vectors, targets, splits, c)) for c in grid]
            # best CV AUC; on a tie the stronger regularisation (smaller C)
            self.C, cv_logits = max(
                scored, key=lambda s: (auc(softmax(s[1], axis=1), targets), -s[0])
            )
            self.temperature, self.calibration_bias = _calibrate(cv_logits, targets)
            metrics |= _metrics(cv_logits, targets, self)
        elif self.C is None:
            self.C = DEFAULT_C
        self._fit_linear(vectors, targets)
        return metrics

    def _cv_logits(self, vectors, targets, splits, c: float) -> np.ndarray:
        logits = np.zeros((len(targets), self.n_classes))
        for train, test in splits:
            fold = ClassificationHead(self.n_classes, c)
            fold._fit_linear(vectors[train], targets[train])
            logits[test] = fold._logits(vectors[test])
        return logits

    def _fit_linear(self, vectors: np.ndarray, targets: np.ndarray) -> None:
        x = unit_rows(vectors)
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0).clip(1e-6)
        present = np.unique(targets)
        model = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000)
        model.fit((x - self.mean) / self.scale, targets)
        self.weights = np.zeros((self.n_classes, x.shape[1]))
        self.bias = np.full(self.n_classes, -1e4)  # classes without labels are never predicted
        if len(present) == 2:  # sklearn keeps one row for two classes: split it symmetrically
            self.weights[present] = np.vstack([-model.coef_[0], model.coef_[0]]) / 2
            self.bias[present] = np.array([-model.intercept_[0], model.intercept_[0]]) / 2
        else:
            self.weights[present] = model.coef_
            self.bias[present] = model.intercept_
        if self.calibration_bias is None:
            self.calibration_bias = np.zeros(self.n_classes)

    def _logits(self, vectors: np.ndarray) -> np.ndarray:
        x = (unit_rows(vectors) - self.mean) / self.scale
        return x @ self.weights.T + self.bias

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        return softmax(self._logits(vectors) / self.temperature + self.calibration_bias, axis=1)

    def prediction_columns(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of a predictions table for these galaxies (see materialize)."""
        return probability_columns(self.predict_proba(vectors))

    def to_bytes(self) -> bytes:
        return to_npz(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> ClassificationHead:
        return from_npz(cls, data)


def probability_columns(p: np.ndarray) -> dict[str, np.ndarray]:
    """A classification predictions table's columns from (n, classes) probabilities."""
    confidence, margin, entropy = margin_and_entropy(p)
    columns = {"class_index": p.argmax(axis=1).astype(np.int16)}
    columns |= {f"p{k}": p[:, k].astype(np.float32) for k in range(p.shape[1])}
    return columns | {"confidence": confidence, "margin": margin, "entropy": entropy}


def _calibrate(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Temperature and per-class bias minimising the log loss (bias lightly regularised)."""
    k = logits.shape[1]

    def loss(params):
        t, b = np.exp(params[0]), params[1:]
        nll = -log_softmax(logits / t + b, axis=1)[np.arange(len(targets)), targets].mean()
        return nll + 1e-3 * (b**2).sum()

    result = minimize(loss, np.zeros(k + 1), method="L-BFGS-B")
    return float(np.exp(result.x[0])), result.x[1:]


def _metrics(cv_logits: np.ndarray, targets: np.ndarray, head: ClassificationHead) -> dict:
    raw = softmax(cv_logits, axis=1)
    calibrated = softmax(cv_logits / head.temperature + head.calibration_bias, axis=1)
    present = np.unique(targets)
    predicted = calibrated.argmax(axis=1)
    out = {
        "cv_accuracy": float(accuracy_score(targets, predicted)),
        "cv_balanced_accuracy": float(balanced_accuracy_score(targets, predicted)),
        "cv_log_loss": float(
            -np.log(calibrated[np.arange(len(targets)), targets].clip(1e-12)).mean()
        ),
        "cv_ece_uncalibrated": expected_calibration_error(raw, targets),
        "cv_ece": expected_calibration_error(calibrated, targets),
        "temperature": head.temperature,
    }
    out["cv_auc"] = auc(calibrated, targets) if len(present) >= 2 else float("nan")
    return out


def auc(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Binary AUC, or macro one-vs-rest AUC over the classes present in ``targets``."""
    present = np.unique(targets)
    if probabilities.shape[1] == 2:
        return float(roc_auc_score(targets, probabilities[:, 1]))
    p = probabilities[:, present]
    p = p / p.sum(axis=1, keepdims=True).clip(1e-12)
    if len(present) == 2:
        return float(roc_auc_score(targets == present[1], p[:, 1]))
    return float(roc_auc_score(targets, p, multi_class="ovr", labels=present))


def expected_calibration_error(probabilities: np.ndarray, targets: np.ndarray, bins=10) -> float:
    """Gap between confidence and accuracy, averaged over 10 confidence bins."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == targets
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    gap = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            gap += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(gap)
