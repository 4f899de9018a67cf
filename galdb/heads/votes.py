"""Vote head: a Dirichlet-multinomial regression of volunteer vote counts on the embeddings.

As in Zoobot (Walmsley et al. 2022), a galaxy's votes ``n`` over the answers of one question
are modelled as a Dirichlet-multinomial: the head predicts the Dirichlet's
parameters ``alpha = A m`` from the L2-normalised, standardised embedding ``x``: the mean
fractions ``m = softmax(W x + b)`` and the total concentration ``A = exp(v x + c)``, two linear
maps, so how sure the fractions are is learned apart from what they are. The likelihood of
the counts is

    log p(n | alpha) = lgamma(A) - lgamma(N + A) + sum_k [lgamma(n_k + alpha_k) - lgamma(alpha_k)]

(``A = sum alpha``, ``N = sum n``, the multinomial coefficient dropped: it does not depend on
the head). Each galaxy weighs as many votes as it has, so a galaxy with 40 votes constrains
the fractions more than one with 3, and the concentration learns how far the fractions of
similar-looking galaxies scatter (volunteer noise plus what the embedding cannot see). The
expected fraction of answer k is ``alpha_k / A``, its standard deviation under the Dirichlet
``sqrt(m_k (1 - m_k) / (A + 1))``.

The weights are fitted by L-BFGS with an L2 penalty whose strength is chosen by
cross-validated held-out likelihood (``LAMBDAS``); the same folds give the version's metrics:
the mean absolute error of the expected fractions against the observed ones, the held-out
negative log-likelihood per vote, and the fraction of observed fractions within 1 sigma of
the prediction (sigma including the sampling noise of that galaxy's N votes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import digamma, gammaln, log_softmax
from sklearn.model_selection import KFold

from galdb.errors import GaldbError
from galdb.heads.classify import MAX_FOLDS, unit_rows
from galdb.heads.params import from_npz, to_npz
from galdb.review.strategies import margin_and_entropy

LAMBDAS = (1e-5, 1e-4, 1e-3, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)  # L2, chosen by CV likelihood
DEFAULT_LAMBDA = 0.01  # too few labels to cross-validate
LOG_CONCENTRATION = (-3.0, 9.0)  # total concentration within exp() of these (numerical safety)


def log_likelihood(log_alpha: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Dirichlet-multinomial log-likelihood per galaxy (without the multinomial coefficient)."""
    alpha = np.exp(log_alpha)
    total_alpha, total = alpha.sum(axis=1), counts.sum(axis=1)
    return (
        gammaln(total_alpha)
        - gammaln(total + total_alpha)
        + (gammaln(counts + alpha) - gammaln(alpha)).sum(axis=1)
    )


@dataclass
class VoteHead:
    """A fitted head: ``predict(vectors)`` gives expected fractions and concentrations."""

    n_answers: int
    l2: float | None = None  # None: chosen by cross-validation from LAMBDAS
    mean: np.ndarray = field(default=None, repr=False)
    scale: np.ndarray = field(default=None, repr=False)
    weights: np.ndarray = field(default=None, repr=False)  # (K + 1, d)
    bias: np.ndarray = field(default=None, repr=False)  # (K + 1,)

    algorithm = "dirichlet-multinomial"

    @property
    def hyperparameters(self) -> dict:
        return {
            "l2": self.l2,
            "l2_grid": list(LAMBDAS),
            "link": "alpha = exp(v x + c) softmax(W x + b)",
            "features": "l2-normalised, standardised",
        }

    def fit(
        self, vectors: np.ndarray, targets: np.ndarray, seed: int = 0, cross_validate=True
    ) -> dict:
        """Fit on vote counts ``targets`` (n, K); return cross-validated metrics (none where
        too few galaxies, or without ``cross_validate``)."""
        counts = np.asarray(targets, dtype=np.float64)
        if counts.ndim != 2 or counts.shape[1] != self.n_answers:
            raise GaldbError(
                f"a vote head of {self.n_answers} answers needs (n, {self.n_answers}) counts, "
                f"not an array of shape {counts.shape}"
            )
        if len(counts) < 2:
            raise GaldbError(f"a vote head needs 2 labelled galaxies or more, not {len(counts)}")
        folds = min(MAX_FOLDS, len(counts) // 4) if cross_validate else 0
        metrics: dict = {"n_folds": folds if folds >= 2 else 0}
        if folds >= 2:
            splits = list(KFold(folds, shuffle=True, random_state=seed).split(vectors))
            grid = LAMBDAS if self.l2 is None else (self.l2,)
            scored = [(lam, self._cv_log_alpha(vectors, counts, splits, lam)) for lam in grid]
            # the best held-out likelihood; on a tie the stronger penalty
            self.l2, cv_log_alpha = max(
                scored, key=lambda s: (log_likelihood(s[1], counts).sum(), s[0])
            )
            metrics |= _metrics(cv_log_alpha, counts)
        elif self.l2 is None:
            self.l2 = DEFAULT_LAMBDA
        self._fit_linear(vectors, counts)
        metrics["l2"] = self.l2
        return metrics

    def _cv_log_alpha(self, vectors, counts, splits, lam: float) -> np.ndarray:
        out = np.zeros_like(counts)
        for train, test in splits:
            fold = VoteHead(self.n_answers, lam)
            fold._fit_linear(vectors[train], counts[train])
            out[test] = fold.log_alpha(vectors[test])
        return out

    def _fit_linear(self, vectors: np.ndarray, counts: np.ndarray) -> None:
        x = unit_rows(vectors)
        self.mean, self.scale = x.mean(axis=0), x.std(axis=0).clip(1e-6)
        x = (x - self.mean) / self.scale
        n, d = x.shape
        k = self.n_answers
        # start: every galaxy at the pooled fractions, a concentration of 10
        pooled = (counts.sum(axis=0) + 0.5) / (counts.sum() + 0.5 * k)
        start = np.concatenate([np.zeros((k + 1) * d), np.log(pooled), [np.log(10.0)]])
        per_vote = 1.0 / counts.sum()  # the likelihood per vote, the penalty per weight

        def loss(params):
            w, b = params[: (k + 1) * d].reshape(k + 1, d), params[(k + 1) * d :]
            z = x @ w.T + b
            log_alpha, inside = _log_alpha(z)
            alpha = np.exp(log_alpha)
            big_a, big_n = alpha.sum(axis=1), counts.sum(axis=1)
            ll = (
                gammaln(big_a)
                - gammaln(big_n + big_a)
                + (gammaln(counts + alpha) - gammaln(alpha)).sum(axis=1)
            )
            d_alpha = (digamma(big_a) - digamma(big_n + big_a))[:, None] + (
                digamma(counts + alpha) - digamma(alpha)
            )
            g = -d_alpha * alpha  # d(-ll)/d(log alpha)
            m = alpha / big_a[:, None]
            d_z = np.empty_like(z)
            d_z[:, :k] = g - m * g.sum(axis=1, keepdims=True)  # through log_softmax
            d_z[:, k] = g.sum(axis=1) * inside  # through the log-concentration
            value = -ll.sum() * per_vote + 0.5 * self.l2 * (w**2).sum()
            grad_w = (d_z.T @ x) * per_vote + self.l2 * w
            grad_b = d_z.sum(axis=0) * per_vote
            return value, np.concatenate([grad_w.ravel(), grad_b])

        result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000})
        self.weights = result.x[: (k + 1) * d].reshape(k + 1, d)
        self.bias = result.x[(k + 1) * d :]

    def log_alpha(self, vectors: np.ndarray) -> np.ndarray:
        x = (unit_rows(vectors) - self.mean) / self.scale
        return _log_alpha(x @ self.weights.T + self.bias)[0]

    def predict(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected vote fractions (n, K) and concentrations ``A`` (n,)."""
        return expectation(self.log_alpha(vectors))

    def prediction_columns(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """The columns of a predictions table for these galaxies (see materialize and
        :meth:`galdb.heads.kinds.votes.Votes.prediction_columns`)."""
        fractions, concentration = self.predict(vectors)
        sigma = fraction_sigma(fractions, concentration)
        confidence, margin, entropy = margin_and_entropy(fractions)
        columns = {"class_index": fractions.argmax(axis=1).astype(np.int16)}
        columns |= {f"p{k}": fractions[:, k].astype(np.float32) for k in range(self.n_answers)}
        columns |= {f"sd{k}": sigma[:, k].astype(np.float32) for k in range(self.n_answers)}
        return columns | {
            "concentration": concentration.astype(np.float32),
            "confidence": confidence,
            "margin": margin,
            "entropy": entropy,
        }

    def to_bytes(self) -> bytes:
        return to_npz(self)

    @classmethod
    def from_bytes(cls, data: bytes) -> VoteHead:
        return from_npz(cls, data)


def _log_alpha(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log alpha`` from the head's K + 1 outputs (K fraction logits, one log-concentration),
    and where the log-concentration is inside its bounds (the gradient is 0 outside)."""
    s = z[:, -1]
    inside = (s > LOG_CONCENTRATION[0]) & (s < LOG_CONCENTRATION[1])
    return np.clip(s, *LOG_CONCENTRATION)[:, None] + log_softmax(z[:, :-1], axis=1), inside


def expectation(log_alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected fractions and total concentration of Dirichlets given by ``log alpha``."""
    alpha = np.exp(log_alpha)
    total = alpha.sum(axis=1)
    return alpha / total[:, None], total


def fraction_sigma(fractions: np.ndarray, concentration: np.ndarray, votes=None) -> np.ndarray:
    """Standard deviation of each answer's fraction under the Dirichlet; with ``votes`` (N per
    galaxy), of the fraction observed among N votes (adds the sampling noise)."""
    var = fractions * (1 - fractions) / (concentration + 1)[:, None]
    if votes is not None:
        var = var * ((votes + concentration) / votes.clip(1e-12))[:, None]
    return np.sqrt(var)


def _metrics(cv_log_alpha: np.ndarray, counts: np.ndarray) -> dict:
    fractions, concentration = expectation(cv_log_alpha)
    votes = counts.sum(axis=1)
    observed = counts / votes[:, None]
    sigma = fraction_sigma(fractions, concentration, votes)
    error = np.abs(fractions - observed)
    return {
        "cv_mae": float(error.mean()),
        "cv_nll": float(-log_likelihood(cv_log_alpha, counts).sum() / votes.sum()),
        "cv_within_1sigma": float((error <= sigma).mean()),
        "cv_mean_concentration": float(concentration.mean()),
    }
