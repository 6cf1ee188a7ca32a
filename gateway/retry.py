"""Backoff: how long to wait before trying again after a temporary failure."""

from __future__ import annotations


def backoff(attempt: int, base: float, ceiling: float) -> float:
    """Doubling delay from base (attempt counts from 1), never above ceiling.

    >>> [backoff(n, 30, 3600) for n in (1, 2, 3, 20)]
    [30.0, 60.0, 120.0, 3600]
    >>> [backoff(n, 1.0, 60.0) for n in (1, 6, 7, 500)]
    [1.0, 32.0, 60.0, 60.0]
    """
    if attempt > 64:  # 2**64 times anything sensible is past every ceiling
        return ceiling
    return min(base * 2.0 ** max(attempt - 1, 0), ceiling)
