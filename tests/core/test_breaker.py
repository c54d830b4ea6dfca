"""The circuit breaker (src/tidings/breaker.py) on plain coroutines: budget, open, half-open."""

from __future__ import annotations

import asyncio
import time

import pytest

from tidings.breaker import Breaker, CircuitOpen

pytestmark = pytest.mark.anyio


async def hang() -> None:
    await asyncio.Event().wait()  # a black hole: never answers


async def ok() -> str:
    return "ok"


async def refuse() -> None:
    raise ConnectionRefusedError


def state(breaker: Breaker) -> str:
    return breaker.state  # read afresh (mypy would keep a narrowed property)


async def test_a_hanging_call_costs_its_budget_then_the_breaker_refuses_at_once() -> None:
    breaker = Breaker("t", budget=0.05, cooldown=0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await breaker.call(hang)
    assert time.monotonic() - started < 0.5 and state(breaker) == "open"
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)  # refused without being called
    assert breaker.refused == 1
    await asyncio.sleep(0.35)
    assert state(breaker) == "half-open"
    assert await breaker.call(ok) == "ok"  # the probe closes it
    assert state(breaker) == "closed"


async def test_half_open_lets_one_probe_through_and_a_failed_probe_reopens() -> None:
    breaker = Breaker("t", budget=0.05, cooldown=0.2)
    with pytest.raises(TimeoutError):
        await breaker.call(hang)
    await asyncio.sleep(0.25)
    probe = asyncio.create_task(breaker.call(hang))
    await asyncio.sleep(0)  # the probe is in flight
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    with pytest.raises(TimeoutError):
        await probe
    assert state(breaker) == "open"


async def test_a_quick_refusal_passes_through_and_leaves_it_closed() -> None:
    breaker = Breaker("t", budget=0.05, cooldown=10)
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            await breaker.call(refuse)
    assert state(breaker) == "closed"
    assert await breaker.call(ok) == "ok"
