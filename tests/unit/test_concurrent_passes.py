"""A tick's passes run concurrently, endpoint by endpoint, each endpoint's in order.

Concurrency is proven with barriers and events, never with timing: a barrier that several passes must
reach together can only be passed if they run at once (one at a time, the first waits for ever; the
timeouts below only turn such a hang into a failure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from shepherd.rollouts.concurrent_passes import FAILED, Pass, run_passes

WAIT = 1  # seconds before a hang is a failure; never reached when the runner works


def test_passes_of_different_endpoints_run_at_once() -> None:
    # Given: four endpoints whose passes can finish only when all four have started.
    together = threading.Barrier(4, timeout=WAIT)

    def meet(name: str) -> Callable[[], str]:
        return lambda: f"{name} met the others after {together.wait()} arrivals"

    passes = [Pass(name, name, meet(name)) for name in ("a", "b", "c", "d")]

    # When
    outcomes = run_passes(passes, concurrency=4)

    # Then: each met the others (one at a time, the barrier breaks and every pass fails).
    assert [name for name, _ in outcomes] == ["a", "b", "c", "d"]
    assert all("met the others" in outcome for _, outcome in outcomes)


def test_concurrency_bounds_the_passes_in_flight() -> None:
    in_flight, most = 0, 0
    lock = threading.Lock()
    two_running = threading.Barrier(2, timeout=WAIT)

    def counted() -> str:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        two_running.wait()  # pairs of passes meet: never a third, or the barrier would reset under it
        with lock:
            in_flight -= 1
        return "ok"

    outcomes = run_passes([Pass(f"p{n}", f"e{n}", counted) for n in range(8)], concurrency=2)

    assert [outcome for _, outcome in outcomes] == ["ok"] * 8
    assert most == 2


def test_a_slow_pass_holds_only_its_own_endpoint() -> None:
    # Given: a pass on "slow" that lasts until every other endpoint's pass has finished.
    others_done = threading.Event()
    finished: list[str] = []

    def slow() -> str:
        return "slow done" if others_done.wait(WAIT) else "never released"

    def quick(name: str, last: bool) -> Callable[[], str]:
        def run() -> str:
            finished.append(name)
            if last:
                others_done.set()
            return "done"

        return run

    names = [f"quick-{n}" for n in range(5)]
    passes = [Pass("slow", "slow", slow)] + [Pass(n, n, quick(n, n == names[-1])) for n in names]

    # When: two workers, one of them held by the slow pass.
    outcomes = dict(run_passes(passes, concurrency=2))

    # Then: the other worker served every other endpoint meanwhile.
    assert outcomes["slow"] == "slow done"
    assert sorted(finished) == names


def test_a_failing_pass_is_reported_and_stops_nothing() -> None:
    # Given: a failure on one endpoint, followed on that endpoint by its next pass.
    ran: list[str] = []

    def fails() -> str:
        raise RuntimeError("SageMaker said no")

    def runs(name: str) -> Callable[[], str]:
        return lambda: ran.append(name) or "done"  # type: ignore[func-returns-value]

    passes = [Pass("broken", "e1", fails), Pass("clean-up e1", "e1", runs("clean-up e1"))]
    passes += [Pass(f"other {n}", f"e{n}", runs(f"other {n}")) for n in range(2, 6)]

    outcomes = dict(run_passes(passes, concurrency=3))

    assert outcomes.pop("broken") == FAILED
    assert set(outcomes.values()) == {"done"}
    assert sorted(ran) == ["clean-up e1", "other 2", "other 3", "other 4", "other 5"]


def test_an_endpoints_passes_run_in_order_one_at_a_time() -> None:
    # Given: endpoint "e" has three passes (announcements, its rollout, a clean-up); its first one
    # waits until endpoint "f"'s pass has run, so a runner that started e's later passes beside it
    # (rather than after it) would record them first.
    f_ran = threading.Event()
    order: list[str] = []
    running_on_e = 0
    lock = threading.Lock()

    def on_e(name: str, wait_for_f: bool) -> Callable[[], str]:
        def run() -> str:
            nonlocal running_on_e
            with lock:
                running_on_e += 1
                alone = running_on_e == 1
            if wait_for_f:
                assert f_ran.wait(WAIT)
            order.append(name)
            with lock:
                running_on_e -= 1
            return "alone" if alone else "beside another pass of e"

        return run

    def on_f() -> str:
        order.append("f")
        f_ran.set()
        return "alone"

    passes = [
        Pass("outbox e", "e", on_e("outbox e", wait_for_f=True)),
        Pass("rollout e", "e", on_e("rollout e", wait_for_f=False)),
        Pass("rollout f", "f", on_f),
        Pass("clean-up e", "e", on_e("clean-up e", wait_for_f=False)),
    ]

    outcomes = run_passes(passes, concurrency=8)

    assert order == ["f", "outbox e", "rollout e", "clean-up e"]
    assert [outcome for _, outcome in outcomes] == ["alone"] * 4


@pytest.mark.parametrize("concurrency", [1, 16])
def test_outcomes_come_back_in_the_order_given(concurrency: int) -> None:
    passes = [Pass(f"p{n}", f"e{n % 3}", lambda n=n: f"outcome {n}") for n in range(10)]

    assert run_passes(passes, concurrency) == [(f"p{n}", f"outcome {n}") for n in range(10)]


def test_one_endpoint_or_concurrency_1_runs_on_the_callers_thread() -> None:
    caller = threading.get_ident()
    on_caller = lambda: "caller" if threading.get_ident() == caller else "worker"  # noqa: E731

    assert {o for _, o in run_passes([Pass(f"p{n}", "e", on_caller) for n in range(3)], 16)} == {"caller"}
    assert {o for _, o in run_passes([Pass(f"p{n}", f"e{n}", on_caller) for n in range(3)], 1)} == {"caller"}
