import math

import pytest

from selfimprove.core.stats import bootstrap_interval, mcnemar_exact, paired_comparison


def test_mcnemar_by_hand():
    # n = 6 discordant, 1 vs 5: 2 * (C(6,0) + C(6,1)) / 2^6 = 14/64.
    assert mcnemar_exact(1, 5) == pytest.approx(14 / 64)
    assert mcnemar_exact(5, 1) == pytest.approx(14 / 64)
    assert mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    assert mcnemar_exact(3, 3) == 1.0  # 2 * P(X <= 3 | n=6) = 2 * 42/64 > 1, capped
    assert mcnemar_exact(0, 0) == 1.0


def test_bootstrap_degenerate_and_normal_approximation():
    assert bootstrap_interval([1.0] * 20) == (1.0, 1.0)
    outcomes = [1.0] * 200 + [0.0] * 200
    low, high = bootstrap_interval(outcomes)
    half = 1.96 * math.sqrt(0.25 / 400)  # about 0.049
    assert low == pytest.approx(0.5 - half, abs=0.012)
    assert high == pytest.approx(0.5 + half, abs=0.012)
    assert bootstrap_interval(outcomes) == (low, high)  # seeded


def test_paired_comparison_counts_and_direction():
    a = [True, True, False, False, True, False]
    b = [True, False, True, True, True, True]
    c = paired_comparison(a, b)
    assert (c.shared, c.b_wins, c.b_losses, c.both_right, c.both_wrong) == (6, 3, 1, 2, 0)
    assert c.accuracy_a == pytest.approx(0.5) and c.accuracy_b == pytest.approx(5 / 6)
    assert c.difference == pytest.approx(1 / 3)
    assert c.p_value == pytest.approx(mcnemar_exact(1, 3))  # 2 * (1 + 4) / 16 = 0.625
    assert c.p_value == pytest.approx(0.625)
    assert c.interval[0] <= c.difference <= c.interval[1]


def test_identical_runs_have_a_zero_width_interval():
    a = [True, False, True]
    c = paired_comparison(a, a)
    assert c.difference == 0 and c.interval == (0.0, 0.0) and c.p_value == 1.0


def test_bad_input():
    with pytest.raises(ValueError):
        paired_comparison([True], [True, False])
    with pytest.raises(ValueError):
        bootstrap_interval([])
