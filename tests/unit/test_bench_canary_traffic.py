"""The canary detection bench answers as CloudWatch would, from one set of requests per minute.

bench/canary_traffic.py draws a minute's statistics without generating its requests; these checks
hold it to what one set of requests implies (the TC above a minute's own p99 is the requests ranked
above it), and its Kayenta-style Mann-Whitney to SciPy's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import canary_traffic as traffic
from canary_judges import _MannWhitney

REALISTIC = traffic.Mess("realistic", error_cv=0.3, hosts=True, common=True, load="diurnal", warmup="typical")


@pytest.mark.parametrize("rps", [1, 2000])
def test_every_statistic_of_a_minute_comes_from_the_same_requests(rps: int) -> None:
    condition = traffic.Condition(REALISTIC, rps, 10)
    batch = traffic.simulate(condition, traffic.Change("p99 +50%", p99_factor=1.5), 4, np.random.default_rng(1))
    cloudwatch = traffic.SimulatedCloudWatch(batch, 0, np.random.default_rng(2))
    for side in ("candidate", "baseline"):
        for minute in range(traffic.MINUTES):
            count = cloudwatch.datapoint("ModelLatency", "SampleCount", side, minute)
            requests = cloudwatch.datapoint("Invocations", "Sum", side, minute)
            if not count:
                assert cloudwatch.datapoint("ModelLatency", "p99", side, minute) is None
                continue
            n = int(count)
            assert requests is not None
            assert n == requests - cloudwatch.datapoint("Invocation5XXErrors", "Sum", side, minute)
            p50 = cloudwatch.datapoint("ModelLatency", "p50", side, minute)
            p99 = cloudwatch.datapoint("ModelLatency", "p99", side, minute)
            assert p50 is not None and p99 is not None and p50 <= p99
            # Nearest rank: p99 is the ceil(0.99 n)-th smallest value, so exactly n - that many lie above it.
            assert cloudwatch.datapoint("ModelLatency", f"TC({p99}:)", side, minute) == n - -(-99 * n // 100)
            assert cloudwatch.datapoint("ModelLatency", f"PR(:{p50})", side, minute) == 100 * -(-n // 2) / n
            above = [cloudwatch.datapoint("ModelLatency", f"TC({t}:)", side, minute) for t in (5000, 20000, 100000)]
            assert above == sorted(above, reverse=True)
            between = cloudwatch.datapoint("ModelLatency", "TC(20000:100000)", side, minute)
            assert between == above[1] - above[2]  # (a, b]: above a and not above b
            assert cloudwatch.datapoint("ModelLatency", "TC(:20000)", side, minute) == n - above[1]


def test_statistics_are_parsed_as_cloudwatch_names_them() -> None:
    errors = traffic.CountSample(count=200, ones=3)
    assert traffic.statistic(errors, "Sum") == 3
    assert traffic.statistic(errors, "SampleCount") == 200
    assert traffic.statistic(errors, "Average") == pytest.approx(0.015)
    assert traffic.statistic(errors, "Maximum") == 1
    assert traffic.statistic(errors, "p99") == 1  # the 198th of 200 values: 3 of them are 1
    assert traffic.statistic(errors, "TC(0.5:)") == 3
    assert traffic.statistic(errors, "PR(:0)") == pytest.approx(98.5)
    assert traffic.statistic(traffic.CountSample(0, 0), "Sum") is None  # no requests: no datapoint
    with pytest.raises(ValueError, match="TM"):
        traffic.statistic(errors, "TM(10%:90%)")


def test_the_kayenta_style_mann_whitney_is_scipys() -> None:
    rng = np.random.default_rng(3)
    candidate = rng.poisson(2, (50, 20)) / 10
    baseline = rng.poisson(2.4, (50, 20)) / 10
    candidate[rng.random(candidate.shape) < 0.1] = np.nan  # minutes without a datapoint
    test = _MannWhitney(50, 20)
    for minute in range(20):
        test.add(candidate[:, minute], baseline[:, minute])
    p_value, higher = test.two_sided()
    for trial in range(50):
        c, b = candidate[trial], baseline[trial]
        c, b = c[~np.isnan(c)], b[~np.isnan(b)]
        expected = stats.mannwhitneyu(c, b, alternative="two-sided", method="asymptotic")
        assert p_value[trial] == pytest.approx(expected.pvalue, abs=1e-12)
        assert higher[trial] == (expected.statistic > len(c) * len(b) / 2)
