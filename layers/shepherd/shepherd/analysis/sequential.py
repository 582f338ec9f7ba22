"""Always-valid confidence sequences: intervals that may be looked at every minute, for ever.

A fixed-sample test looked at once a minute for an hour rejects a true null far more often than its
level (60 chances); these intervals cover the true value at *every* look at once with probability at
least ``1 - alpha`` (Ville's inequality applied to a mixture likelihood ratio, which is a
nonnegative martingale under the value tested). Each is obtained by inverting a mixture sequential
probability ratio test (mSPRT): the interval is every value the test has not rejected so far.

- :func:`rate_ratio_interval`: the ratio of two Poisson error rates, from counts. Conditional on the
  total number of errors, each error is the candidate's with probability ``p = λr / (λr + 1)``
  (``r`` = candidate requests / baseline requests, ``λ`` = the rate ratio), so the errors are a
  Bernoulli sequence; the mixture is a conjugate Beta prior on ``p``, in closed form.
- :func:`paired_log_ratio_interval`: the mean of per-minute log ratios ``log(candidate / baseline)``
  with unknown variance: the sequential t-test (normal prior on the standardised effect, scale-
  invariant prior on the variance), whose Bayes factor is a test martingale for every variance
  (Lai 1976; Pérez-Ortiz, Lardy, de Heide, Grünwald 2024). Exact for normal log ratios.
"""

from __future__ import annotations

import math

from msgspec import Struct

# Prior weight of the rate mixture, in errors: a Beta prior centred on "no change" (λ = 1) holding
# as much information as this many errors. Small enough to let 5 times the errors show in a minute
# at 10% of 50 requests/s, large enough not to spend the evidence of a doubling on unlikely ratios
# (bench/canary_detection.py: 3, 5, 10, 20, 40 errors detect a doubling within 15 minutes in 91%,
# 92%, 93%, 94%, 94% of canaries).
RATE_PRIOR_ERRORS = 20.0
# Prior variance of the standardised effect (mean / sd of the per-minute log ratio) in the paired
# test. Large: per-minute comparisons on one endpoint are precise, so real regressions are many
# standard deviations; it also lets a gross regression fail after 5 minutes at alpha = 0.0025
# (1: 8 minutes for +50% latency; 100 loses power on +20%).
PAIRED_PRIOR_EFFECT_VARIANCE = 10.0

_LOGIT_LIMIT = 40.0  # |log-odds| beyond which a bound is taken as 0 or infinity
_NEWTON_STEPS = 50  # converges in under 10 from the outside


class RatioInterval(Struct, frozen=True):
    """A ratio candidate / baseline: the estimate and an always-valid interval (bounds may be 0 or inf)."""

    estimate: float
    lower: float
    upper: float


def rate_ratio_interval(
    candidate_errors: float,
    candidate_requests: float,
    baseline_errors: float,
    baseline_requests: float,
    alpha: float,
) -> RatioInterval | None:
    """The candidate's error rate over the baseline's, or None without requests on both sides."""
    if candidate_requests <= 0 or baseline_requests <= 0:
        return None
    log_r = math.log(candidate_requests / baseline_requests)
    x, y = candidate_errors, baseline_errors
    if x + y == 0:
        return RatioInterval(estimate=1.0, lower=0.0, upper=math.inf)
    p_even = 1.0 / (1.0 + math.exp(-log_r))  # p when the rates are equal
    a, b = RATE_PRIOR_ERRORS * p_even, RATE_PRIOR_ERRORS * (1.0 - p_even)
    # In the log-odds theta of p0, log M(theta) - log(1/alpha) is convex with its minimum (below
    # zero: a mixture never beats the best fit) at the estimate; the bounds are its two roots.
    excess = _RateExcess(x, y, _log_beta(a + x, b + y) - _log_beta(a, b) - math.log(1.0 / alpha))
    centre = math.log(x / y) if x > 0 and y > 0 else (_LOGIT_LIMIT if y == 0 else -_LOGIT_LIMIT)
    low = excess.root(centre, -1.0)
    high = excess.root(centre, 1.0)
    estimate = math.exp(centre - log_r) if x > 0 and y > 0 else (0.0 if x == 0 else math.inf)
    return RatioInterval(
        estimate=estimate,
        lower=0.0 if low is None else math.exp(low - log_r),
        upper=math.inf if high is None else math.exp(high - log_r),
    )


class _RateExcess(Struct, frozen=True):
    """f(theta) = log M(p0) - log(1/alpha) for p0 = sigmoid(theta): the test rejects p0 where f >= 0."""

    x: float
    y: float
    constant: float  # log of the Beta mixture's integral, minus log(1/alpha)

    def value(self, theta: float) -> float:
        # -x log p0 - y log(1 - p0), with log p0 = -softplus(-theta) and log(1 - p0) = -softplus(theta)
        return self.constant + self.x * _softplus(-theta) + self.y * _softplus(theta)

    def slope(self, theta: float) -> float:
        return (self.x + self.y) * _sigmoid(theta) - self.x

    def root(self, centre: float, side: float) -> float | None:
        """The root on ``side`` (-1 left, +1 right) of the minimum, or None if f stays below zero."""
        limit = side * _LOGIT_LIMIT
        if self.value(limit) < 0:
            return None
        # Step out until f > 0, then Newton back in: on a convex function, started outside the
        # root, Newton's steps never overshoot it.
        step = 1.0
        outside = centre + side * step
        while side * (limit - outside) > 0 and self.value(outside) < 0:
            step *= 2.0
            outside = centre + side * step
        theta = limit if side * (outside - limit) > 0 else outside
        for _ in range(_NEWTON_STEPS):
            slope = self.slope(theta)
            if slope == 0:
                break
            move = self.value(theta) / slope
            theta -= move
            if abs(move) < 1e-10:
                break
        return theta


class LogRatioSummary(Struct, frozen=True):
    """What the paired test needs from the per-minute log ratios: count, mean, sample sd."""

    count: int
    mean: float
    sd: float

    @classmethod
    def of(cls, log_ratios: list[float]) -> LogRatioSummary:
        n = len(log_ratios)
        mean = math.fsum(log_ratios) / n if n else 0.0
        variance = math.fsum((d - mean) ** 2 for d in log_ratios) / (n - 1) if n > 1 else 0.0
        return cls(count=n, mean=mean, sd=math.sqrt(variance))


def paired_log_ratio_interval(summary: LogRatioSummary, alpha: float) -> RatioInterval:
    """The geometric-mean ratio candidate / baseline with its always-valid interval."""
    estimate = math.exp(summary.mean) if summary.count else 1.0
    half_width = _t_half_width(summary, alpha)
    if half_width is None:
        return RatioInterval(estimate=estimate, lower=0.0, upper=math.inf)
    return RatioInterval(
        estimate=estimate,
        lower=math.exp(summary.mean - half_width),
        upper=_exp_or_inf(summary.mean + half_width),
    )


def _t_half_width(summary: LogRatioSummary, alpha: float) -> float | None:
    """Half-width of {mu0 : sequential t Bayes factor against mu0 < 1/alpha}, or None (unbounded).

    With a = 1 + n g and nu = n - 1, the Bayes factor is
    BF = a^(-1/2) * ((nu + t^2) / (nu + t^2 / a))^((nu + 1) / 2), increasing in t^2 and bounded by
    a^(nu / 2): when that bound is below 1/alpha no mean can be rejected yet. Otherwise BF >= 1/alpha
    exactly when t^2 >= nu (c - 1) / (1 - c / a), with c = (a^(1/2) / alpha)^(2 / (nu + 1)).
    """
    n = summary.count
    if n < 2:
        return None
    nu = n - 1
    a = 1.0 + n * PAIRED_PRIOR_EFFECT_VARIANCE
    log_c = (0.5 * math.log(a) + math.log(1.0 / alpha)) * 2.0 / (nu + 1)
    if log_c >= math.log(a):
        return None
    c = math.exp(log_c)
    t_squared = nu * (c - 1.0) / (1.0 - c / a)
    return math.sqrt(t_squared) * summary.sd / math.sqrt(n)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _softplus(value: float) -> float:
    """log(1 + e^value) without overflow."""
    return value + math.log1p(math.exp(-value)) if value > 0 else math.log1p(math.exp(value))


def _sigmoid(value: float) -> float:
    return 1.0 / (1.0 + math.exp(-value)) if value >= 0 else math.exp(value) / (1.0 + math.exp(value))


def _exp_or_inf(value: float) -> float:
    return math.exp(value) if value < 700 else math.inf


def poisson_rate_upper(events: float, exposure: float, alpha: float, prior_rate: float) -> float:
    """An always-valid upper bound of a Poisson rate per unit of exposure (events per request).

    The mixture is a Gamma prior of shape 1 and mean ``prior_rate`` on the rate: its likelihood ratio
    against a rate ``mu`` is a nonnegative martingale under ``mu``, so ``mu`` is rejected when it
    reaches ``1/alpha``. The bound is the largest rate not rejected, above the estimate (the ratio is
    convex in ``log mu``, so bisection on it finds the root). ``inf`` without exposure or prior.
    """
    if exposure <= 0 or prior_rate <= 0:
        return math.inf
    shape, scale_rate = 1.0, 1.0 / prior_rate
    log_mixture = (
        shape * math.log(scale_rate)
        - math.lgamma(shape)
        + math.lgamma(shape + events)
        - (shape + events) * math.log(scale_rate + exposure)
    )
    threshold = math.log(1.0 / alpha)

    def excess(log_mu: float) -> float:  # log LR(mu) - log(1/alpha): negative while mu is not rejected
        return log_mixture - events * log_mu + math.exp(log_mu) * exposure - threshold

    low = math.log(max(events, 0.5) / exposure)  # at or above the estimate: the ratio rises from here
    if excess(low) >= 0:
        return math.exp(low)
    high = low + 1.0
    while excess(high) < 0:
        high += 1.0 + (high - low)
    for _ in range(60):
        middle = (low + high) / 2
        if excess(middle) < 0:
            low = middle
        else:
            high = middle
    return math.exp(high)
