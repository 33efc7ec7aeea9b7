"""Ranking weights learnt from what happened to earlier suggestions.

Each finished match is one outcome: the feature values its suggestion was
scored with (fit, proximity, shared events, ...) and whether it ended in a
deal. Declined, expired and dealless matches are the negatives; matches still
under way are left out.

Once there are enough outcomes of both kinds, an L2-regularised logistic
regression of deal on features is fitted by Newton's method. Ranking by its
logit is ranking by the coefficients, so the positive coefficients, scaled to
sum to one, are the learnt weights; a feature whose coefficient is not
positive gets none (every feature is meant as a reason for a match, so a
negative one says the data cannot support it yet). The learnt weights are
blended with the heuristic ones as if the heuristic were PRIOR_OUTCOMES
outcomes of evidence, so a few hundred outcomes move the ranking only part of
the way, and the heuristic returns when the outcomes are too few or all alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

MIN_OUTCOMES = 200
MIN_OF_EACH = 20
PRIOR_OUTCOMES = 500
L2 = 1.0
MAX_ITERATIONS = 50
TOLERANCE = 1e-9
WEIGHT_DIGITS = 4

K = TypeVar("K", bound=str)  # the names of the features


@dataclass(frozen=True)
class Outcome:
    """One finished match: its suggestion's feature values, and whether it
    ended in a deal."""

    features: Mapping[str, float]
    deal: bool


@dataclass(frozen=True)
class LearntWeights(Generic[K]):
    """Weights for ranking, and what they were learnt from."""

    weights: dict[K, float]
    outcomes: int
    deals: int
    coefficients: dict[K, float]

    @property
    def model_version(self) -> str:
        return f"learnt-{self.outcomes}"


def learn_weights(
    outcomes: Sequence[Outcome], prior: Mapping[K, float]
) -> LearntWeights[K] | None:
    """Return weights learnt from the outcomes, or None while they are too few
    (fewer than MIN_OUTCOMES, or fewer than MIN_OF_EACH deals or non-deals).

    ``prior`` holds the heuristic weights; its keys are the features learnt.
    """
    deals = sum(o.deal for o in outcomes)
    if len(outcomes) < MIN_OUTCOMES or min(deals, len(outcomes) - deals) < MIN_OF_EACH:
        return None
    kinds = list(prior)
    rows = [[1.0, *(o.features.get(k, 0.0) for k in kinds)] for o in outcomes]
    labels = [1.0 if o.deal else 0.0 for o in outcomes]
    beta = _logistic_regression(rows, labels)
    coefficients = dict(zip(kinds, beta[1:], strict=True))
    positive = {k: max(c, 0.0) for k, c in coefficients.items()}
    total = sum(positive.values())
    if total <= 0:
        return None
    n = len(outcomes)
    prior_total = sum(prior.values())
    blended = {
        k: (PRIOR_OUTCOMES * prior[k] / prior_total + n * positive[k] / total)
        / (PRIOR_OUTCOMES + n)
        for k in kinds
    }
    weights = {k: round(w, WEIGHT_DIGITS) for k, w in blended.items()}
    rounded = {k: round(c, WEIGHT_DIGITS) for k, c in coefficients.items()}
    return LearntWeights(weights, n, deals, rounded)


def _logistic_regression(rows: list[list[float]], labels: list[float]) -> list[float]:
    """Fit an L2-regularised logistic regression (intercept not penalised) by
    Newton's method; return the coefficients, intercept first."""
    d = len(rows[0])
    beta = [0.0] * d
    for _ in range(MAX_ITERATIONS):
        gradient = [-L2 * b if j else 0.0 for j, b in enumerate(beta)]
        hessian = [[L2 if i == j and i else 0.0 for j in range(d)] for i in range(d)]
        for x, y in zip(rows, labels, strict=True):
            p = _sigmoid(sum(b * v for b, v in zip(beta, x, strict=True)))
            w = p * (1 - p)
            for i in range(d):
                gradient[i] += (y - p) * x[i]
                if x[i]:
                    row = hessian[i]
                    for j in range(d):
                        row[j] += w * x[i] * x[j]
        step = _solve(hessian, gradient)
        beta = [b + s for b, s in zip(beta, step, strict=True)]
        if max(abs(s) for s in step) < TOLERANCE:
            break
    return beta


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a x = b by Gaussian elimination with partial pivoting (a is small
    and, with the L2 term, positive definite)."""
    n = len(b)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            m[col][col] = 1e-12  # a feature that never varies: leave it alone
        for r in range(col + 1, n):
            factor = m[r][col] / m[col][col]
            if factor:
                for c in range(col, n + 1):
                    m[r][c] -= factor * m[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x
