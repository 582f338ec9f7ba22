"""Rollout strategies: how traffic moves from the live variant to the candidate.

A strategy arrives as JSON in a promotion command; :func:`parse_strategy` turns it into one of the
frozen models below or raises :class:`InvalidStrategy` with a precise, human-readable reason (each
problem as ``path: message``, e.g. ``steps[1].percent: must be greater than the previous step's
percent (50 <= 50)``), so a bad request becomes a ``Promotion Rejected`` announcement before
anything touches the endpoint. Keep the strategy a raw JSON object in the command model and call
:func:`parse_strategy` in the service: a pydantic error inside the command would reject the whole
command instead of naming the problem.

Strategies (``type`` is the discriminator; unknown fields and unknown types are rejected)::

    {"type": "canary", "canary_percent": 10, "bake_seconds": 600}        -> 10 (bake 600), 100
    {"type": "linear", "step_percent": 20, "interval_seconds": 300}      -> 20, 40, 60, 80 (bake 300 each), 100
    {"type": "steps", "steps": [{"percent": 5, "bake_seconds": 300},
                                {"percent": 50, "bake_seconds": 600}, {"percent": 100}]}
    {"type": "all_at_once"}                                              -> 100
    {"type": "blue_green"}                        -> (candidate up at 0%, held for an operator) 100

Every strategy also takes ``post_deploy_watch_seconds`` (default 900): after 100% the previous
variant stays deployed at weight 0 this long, so a rollback is one weight change; and ``analysis``,
the thresholds of the per-rollout CloudWatch alarms and the canary judge (see :class:`Analysis`).

:meth:`plan` gives the effective traffic steps, the thing announced and recorded: strictly
increasing percents in 1..100, each baked for ``bake_seconds`` after the endpoint reaches it; the
last step is always 100 with ``bake_seconds == 0`` because the post-deploy watch window follows it.
A step with ``gate: "manual"`` is requested only once an operator resumes the rollout (hold.py): for
the first step, with the candidate up at weight 0; for a later one, once the step before is baked.

Integers are strict (``true`` is not 1%, ``"10"`` is not 10): a strategy decides how much
production traffic a model gets, so a type slip is an error, not a guess. Bakes, intervals and the
watch window go up to 604800 s (7 days): teams bake canaries for a day or two, far beyond
SageMaker's own one-hour guardrails.
"""

import itertools
from collections.abc import Iterable
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shepherd.analysis.config import RULE_ERROR, JudgeConfig
from shepherd.kernel.frozen import Frozen

MAX_BAKE_SECONDS = 604_800
"""Seven days: the upper bound of every bake, interval and watch window."""

DEFAULT_POST_DEPLOY_WATCH_SECONDS = 900

# CloudWatch evaluates an alarm over at most one day (period x evaluation periods).
_MAX_ALARM_WINDOW_SECONDS = 86_400
# A real-time endpoint times an invocation out at 60 s, so a p99 threshold above that never fires.
_MAX_LATENCY_P99_MS = 60_000

# Custom error type for cross-field rules; its message already carries its own path.
_RULE_ERROR = RULE_ERROR

Percent = Annotated[StrictInt, Field(ge=1, le=100)]
Seconds = Annotated[StrictInt, Field(ge=0, le=MAX_BAKE_SECONDS)]


class InvalidStrategy(Exception):
    """A strategy that cannot be used; ``reason`` says exactly why, for the rejection announcement."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TrafficStep(Frozen):
    """One step of a plan: the candidate's share of traffic, then how long to hold it."""

    percent: Percent
    bake_seconds: Seconds = 0
    # "manual": this step's traffic waits for an operator's resume (hold.py). Left out of the stored
    # record when unset, so a plan without a gate is stored exactly as before.
    gate: Literal["manual"] | None = Field(default=None, exclude_if=lambda gate: gate is None)


class Analysis(Frozen):
    """Thresholds of the per-rollout alarms Shepherd creates on the candidate variant, and the judge.

    The error-rate alarm is metric math ``100 * Invocation5XXErrors / Invocations``; the latency
    alarm is ``ModelLatency`` p99 (SageMaker reports microseconds: the adapter multiplies by 1000).
    Both evaluate ``evaluation_periods`` periods of ``period_seconds`` and fire when every one of
    them breaches. ``judge`` compares the candidate with the live variant (see
    :mod:`shepherd.analysis.config`); the alarms keep working alongside it.
    """

    max_error_rate_percent: Annotated[float, Strict(), Field(gt=0, le=100, allow_inf_nan=False)] = 5.0
    max_latency_p99_ms: Annotated[float, Strict(), Field(gt=0, le=_MAX_LATENCY_P99_MS, allow_inf_nan=False)] = 300.0
    # SageMaker publishes endpoint metrics once a minute: a shorter period would see gaps.
    period_seconds: Annotated[StrictInt, Field(ge=60, le=_MAX_ALARM_WINDOW_SECONDS, multiple_of=60)] = 60
    evaluation_periods: Annotated[StrictInt, Field(ge=1, le=1440)] = 3
    judge: JudgeConfig = Field(default_factory=JudgeConfig)

    @model_validator(mode="after")
    def _window_within_a_day(self) -> Self:
        window = self.period_seconds * self.evaluation_periods
        if window > _MAX_ALARM_WINDOW_SECONDS:
            raise PydanticCustomError(
                _RULE_ERROR,
                "period_seconds * evaluation_periods must be at most {limit} (one day, CloudWatch's "
                "limit), got {period} * {periods} = {window}",
                {
                    "limit": _MAX_ALARM_WINDOW_SECONDS,
                    "period": self.period_seconds,
                    "periods": self.evaluation_periods,
                    "window": window,
                },
            )
        return self


class _StrategyBase(Frozen):
    post_deploy_watch_seconds: Seconds = DEFAULT_POST_DEPLOY_WATCH_SECONDS
    analysis: Analysis = Field(default_factory=Analysis)

    def plan(self) -> tuple[TrafficStep, ...]:
        raise NotImplementedError


class CanaryStrategy(_StrategyBase):
    """``canary_percent`` (1..99) baked for ``bake_seconds``, then 100%."""

    type: Literal["canary"]
    # 100 would be a second 100% step: use all_at_once with a watch window instead.
    canary_percent: Annotated[StrictInt, Field(ge=1, le=99)]
    bake_seconds: Seconds

    def plan(self) -> tuple[TrafficStep, ...]:
        return (TrafficStep(percent=self.canary_percent, bake_seconds=self.bake_seconds), _final_step())


class LinearStrategy(_StrategyBase):
    """Steps of ``step_percent``, each baked for ``interval_seconds``, then 100%.

    When ``step_percent`` does not divide 100, the plan ends with one shorter final step to 100:
    ``30`` gives 30, 60, 90, 100. It is never rejected and never hidden: the plan is what the
    rollout announces and records. ``step_percent`` 100 is all at once.
    """

    type: Literal["linear"]
    step_percent: Percent
    interval_seconds: Seconds

    def plan(self) -> tuple[TrafficStep, ...]:
        below_full = range(self.step_percent, 100, self.step_percent)
        steps = [TrafficStep(percent=p, bake_seconds=self.interval_seconds) for p in below_full]
        return (*steps, _final_step())


class StepsStrategy(_StrategyBase):
    """An explicit list: percents strictly increasing, the last one 100 with no bake."""

    type: Literal["steps"]
    steps: Annotated[tuple[TrafficStep, ...], Field(min_length=1, max_length=100)]

    @model_validator(mode="after")
    def _increasing_to_full(self) -> Self:
        for index, (before, step) in enumerate(itertools.pairwise(self.steps), start=1):
            if step.percent <= before.percent:
                raise _rule(
                    f"steps[{index}].percent: must be greater than the previous step's percent "
                    f"({step.percent} <= {before.percent})"
                )
        last_index = len(self.steps) - 1
        last = self.steps[last_index]
        if last.percent != 100:
            raise _rule(f"steps[{last_index}].percent: the last step must be 100 (got {last.percent})")
        if last.bake_seconds != 0:
            raise _rule(
                f"steps[{last_index}].bake_seconds: the final 100% step has no bake; the "
                f"post_deploy_watch_seconds window follows it (got {last.bake_seconds})"
            )
        return self

    def plan(self) -> tuple[TrafficStep, ...]:
        return self.steps


class AllAtOnceStrategy(_StrategyBase):
    """Straight to 100%; the post-deploy watch window still applies."""

    type: Literal["all_at_once"]

    def plan(self) -> tuple[TrafficStep, ...]:
        return (_final_step(),)


class BlueGreenStrategy(_StrategyBase):
    """The candidate deployed beside the live variant at weight 0 ("green" up, no traffic), held until
    an operator resumes the rollout, then 100% at once; the post-deploy watch window follows."""

    type: Literal["blue_green"]

    def plan(self) -> tuple[TrafficStep, ...]:
        return (TrafficStep(percent=100, bake_seconds=0, gate="manual"),)


def _final_step() -> TrafficStep:
    # One per plan rather than one made at import, which would build TrafficStep's validator there.
    return TrafficStep(percent=100, bake_seconds=0)


Strategy = Annotated[
    CanaryStrategy | LinearStrategy | StepsStrategy | AllAtOnceStrategy | BlueGreenStrategy,
    Field(discriminator="type"),
]
"""Any strategy; usable as a pydantic field type (the rollout record stores the requested one)."""

STRATEGY_TYPES = ("canary", "linear", "steps", "all_at_once", "blue_green")

_ADAPTER: TypeAdapter[Strategy] = TypeAdapter(Strategy, config=ConfigDict(defer_build=True))


def parse_strategy(raw: object) -> Strategy:
    """Validate a strategy from a command; raises :class:`InvalidStrategy` naming every problem."""
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as error:
        raise InvalidStrategy(_reason(error.errors(include_url=False, include_context=False))) from None


def _rule(message: str) -> PydanticCustomError:
    return PydanticCustomError(_RULE_ERROR, "{message}", {"message": message})


def _reason(errors: Iterable[Any]) -> str:
    return "; ".join(_describe(error) for error in errors)


def _describe(error: Any) -> str:
    kind: str = error["type"]
    loc: tuple[int | str, ...] = tuple(error["loc"])
    if kind == "union_tag_not_found":
        return f"type: Field required (one of {_expected_types()})"
    if kind == "union_tag_invalid":
        raw = error.get("input")
        tag = raw.get("type") if isinstance(raw, dict) else None
        return f"type: must be one of {_expected_types()}{_got(tag)}"
    # Inside a variant the first location element is the tag ("steps", "canary", ...), not a field.
    path = _path(loc[1:])
    message: str = error["msg"]
    if kind == _RULE_ERROR:
        # Rules on the strategy itself spell out their own path; nested ones get it prefixed.
        return f"{path}: {message}" if path else message
    if kind not in {"missing", "extra_forbidden"}:
        message += _got(error.get("input"))
    return f"{path or 'strategy'}: {message}"


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _expected_types() -> str:
    return ", ".join(f"'{name}'" for name in STRATEGY_TYPES)


def _got(value: object) -> str:
    """` (got 150)` for a short scalar input; nothing for anything long, nested or huge."""
    if isinstance(value, bool) or value is None:
        return f" (got {str(value).lower() if value is not None else 'null'})"
    if isinstance(value, int):
        # Huge ints: str() is slow and capped by sys.set_int_max_str_digits; say what it is instead.
        return f" (got {value})" if value.bit_length() <= 64 else " (got a very large integer)"
    if isinstance(value, float):
        return f" (got {value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f" (got {shown!r})"
    return ""
