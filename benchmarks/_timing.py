"""The one timing helper of the benchmark scripts.

The scripts run from the repository root as ``python benchmarks/bench_x.py``, so this folder is
``sys.path[0]`` and they import it as ``from _timing import timed``. Standard library only: a
script may set thread counts in the environment before numpy or torch is imported.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

__all__ = ["timed"]


def timed(
    fn: Callable[[], object],
    repeats: int = 1,
    *,
    warmup: bool = False,
    synchronize: Callable[[], None] | None = None,
) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``fn``.

    Parameters
    ----------
    fn : callable
        Called without arguments; its result is dropped.
    repeats : int
        Timed calls (≥ 1).
    warmup : bool
        Make one untimed call first (compilation, caches).
    synchronize : callable, optional
        Called before each timed call (untimed) and right after it (timed), e.g.
        ``torch.cuda.synchronize``, so that the call's asynchronous device work is counted.

    Returns
    -------
    float
        The median of the timed calls.

    Examples
    --------
    >>> timed(lambda: None, 3) < 1.0
    True
    """
    if repeats < 1:
        raise ValueError(f"Expected `repeats` to be ≥ 1, but got {repeats!r}.")
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        if synchronize is not None:
            synchronize()
        start = time.perf_counter()
        fn()
        if synchronize is not None:
            synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
