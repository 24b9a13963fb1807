"""Waiting in tests: poll a condition with a deadline, never sleep a fixed time to synchronise."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.02, message: str = ""
) -> T:
    """Poll `condition()` until it returns something truthy, and return it; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {message} (last value {value!r})")
        time.sleep(interval)


def collect(
    poll: Callable[[], list[T]], done: Callable[[list[T]], bool], *, timeout: float = 20.0,
    message: str = "",
) -> list[T]:
    """Call `poll()` (which should block briefly) and gather what it returns until `done(gathered)`
    holds; return the gathered items. Fail after `timeout`, showing what was gathered."""
    gathered: list[T] = []

    def finished() -> bool:
        if not done(gathered):
            gathered.extend(poll())
        return done(gathered)

    try:
        wait_until(finished, timeout=timeout, interval=0.0, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; gathered so far: {gathered!r}") from None
    return gathered


async def eventually(
    condition: Callable[[], Awaitable[T]], *, timeout: float = 20.0, interval: float = 0.02,
    message: str = "",
) -> T:
    """The async twin of wait_until: await `condition()` until it is truthy and return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {message} (last value {value!r})")
        await anyio.sleep(interval)
