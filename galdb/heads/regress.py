"""Regression head: a bootstrap ensemble of ridge regressions with a per-galaxy uncertainty.

The ridge strength is chosen by efficient leave-one-out (RidgeCV). The uncertainty of a
galaxy combines the spread of the ensemble's members there (large far from the labelled
galaxies) with the scatter of the cross-validated residuals (the noise no linear head on
these embeddings explains): ``sigma^2 = var(members) + rms(cv residual)^2``. The version's
metrics are cross-validated: R², RMSE, and the fraction of residuals within 1 sigma (0.68
for honest Gaussian uncertainties).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold

from galdb.errors import GaldbError
from galdb.heads.classify import MAX_FOLDS, unit_rows
from galdb.heads.params import from_npz, to_npz

ALPHAS = np.logspace(-2, 4, 13)


@dataclass
class RegressionHead:
    members: int = 8
    alpha: float | None = None  # chosen by leave-one-out when fitting
    mean: np.ndarray = field(default=None, repr=False)
    scale: np.ndarray = field(default=None, repr=False)
    weights: np.ndarray = field(default=None, repr=False)  # (members, d)
    bias: np.ndarray = field(default=None, repr=False)  # (members,)
    noise: float = 0.0

    algorithm = "ridge-bootstrap-ensemble"

    @property
    def hyperparameters(self) -> dict:
        return {"alpha": self.alpha, "members": self.members, "features": "l2-normalised"}

    def fit(
        self, vectors: np.ndarray, targets: np.ndarray, seed: int = 0, cross_validate=True
    ) -> dict:
        """Fit on all labels; return cross-validated metrics (none without
        ``cross_validate``, and the uncertainty is then the ensemble spread alone)."""
        targets = np.asarray(targets, dtype=np.float64)
        if len(targets) < 3:
            raise GaldbError(f"a regression head needs 3 labels or more, not {len(targets)}")
        folds = min(MAX_FOLDS, len(targets) // 2) if cross_validate else 0
        metrics: dict = {"n_folds": folds if folds >= 2 else 0}
        if folds >= 2:
            predicted, spread = np.zeros(len(targets)), np.zeros(len(targets))
            for train, test in KFold(folds, shuffle=True, random_state=seed).split(vectors):
                fold = RegressionHead(self.members)
                fold._fit_members(vectors[train], targets[train], seed)
                predicted[test], spread[test] = fold._mean_and_spread(vectors[test])
            residual = targets - predicted
            self.noise = float(np.sqrt(np.mean(residual**2)))
            sigma = np.sqrt(spread**2 + self.noise**2)
            total = np.sum((targets - targets.mean()) ** 2)
            metrics |= {
                "cv_r2": float(1 - np.sum(residual**2) / total) if total > 0 else float("nan"),
                "cv_rmse": self.noise,
                "cv_mae": float(np.mean(np.abs(residual))),
                "cv_within_1sigma": float(np.mean(np.abs(residual) <= sigma)),
            }
        self._fit_members(vectors, targets, seed)
        metrics["alpha"] = self.alpha
        return metrics

    def _fit_members(self, vectors: np.ndarray, targets: np.ndarray, seed: int) -> None:
        x = unit_rows(vectors)
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0).clip(1e-6)
        x = (x - self.mean) / self.scale
        if self.alpha is None:
            self.alpha = float(RidgeCV(alphas=ALPHAS).fit(x, targets).alpha_)
        rng = np.random.default_rng(seed)
        weights, bias = [], []
        for _ in range(self.members):
            pick = rng.integers(0, len(targets), len(targets))
            member = Ridge(alpha=self.alpha).fit(x[pick], targets[pick])
            weights.append(member.coef_)
            bias.append(member.intercept_)
        self.weights, self.bias = np.array(weights), np.array(bias)

    def _mean_and_spread(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = (unit_rows(vectors) - self.mean) / self.scale
        each = x @ self.weights.T + self.bias
        return each.mean(axis=1), each.std(axis=1)

    def predict(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Value and 1-sigma uncertainty per galaxy."""
        value, spread = self._mean_and_spread(vectors)
        return value, np.sqrt(spread**2 + self.noise**2)

    def prediction_columns(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        value, sigma = self.predict(vectors)
        return {"value": value, "uncertainty": sigma}

    def to_bytes(self) -> bytes:
        return to_npz(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> RegressionHead:
        return from_npz(cls, data)
