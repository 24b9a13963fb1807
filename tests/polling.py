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
