"""Weights learnt from outcomes: only with enough of them, towards what worked."""

import random

import pytest

from matching.learning import MIN_OUTCOMES, Outcome, learn_weights

PRIOR = {"fit": 0.4, "ward": 0.3, "credential": 0.3}


def outcomes(n: int, seed: int = 1, deal_feature: str = "ward") -> list[Outcome]:
    """Deals follow one feature; the others are noise."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        features = {k: rng.random() for k in PRIOR}
        chance = 0.05 + 0.6 * features[deal_feature]
        out.append(Outcome(features, rng.random() < chance))
    return out


def test_too_few_outcomes_keep_the_heuristic() -> None:
    assert learn_weights(outcomes(MIN_OUTCOMES - 1), PRIOR) is None


def test_outcomes_all_alike_keep_the_heuristic() -> None:
    alike = [Outcome({"fit": 0.5}, deal=False) for _ in range(MIN_OUTCOMES * 2)]
    assert learn_weights(alike, PRIOR) is None


def test_weights_move_towards_the_feature_that_predicts_deals() -> None:
    learnt = learn_weights(outcomes(3000), PRIOR)

    assert learnt is not None
    assert learnt.weights["ward"] > PRIOR["ward"]
    assert learnt.weights["ward"] == max(learnt.weights.values())
    assert learnt.coefficients["ward"] > 1.5
    assert abs(learnt.coefficients["fit"]) < 0.5
    assert sum(learnt.weights.values()) == pytest.approx(1.0, abs=1e-3)
    assert learnt.model_version == "learnt-3000"


def test_more_outcomes_move_the_weights_further_from_the_prior() -> None:
    few = learn_weights(outcomes(400, seed=2), PRIOR)
    many = learn_weights(outcomes(4000, seed=2), PRIOR)

    assert few is not None and many is not None
    assert PRIOR["ward"] < few.weights["ward"] < many.weights["ward"]


def test_same_outcomes_give_the_same_weights() -> None:
    assert learn_weights(outcomes(500), PRIOR) == learn_weights(outcomes(500), PRIOR)
