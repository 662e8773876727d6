"""Time from moving a control of the loss explorer to updated views, kernel side (the 1-second target).

    python benchmarks/bench_explorer.py [SIZE ...]      # default 64

For each phantom size and loss: the explorer widget of 01_loss_explorer is built, then the
`dilate` slider is set to each of -1, 1, 2, 0 (as a user releasing it would) and each change is
timed until every view (values, component table, bars, slices) has been updated; also the slice
slider alone (no re-evaluation). The browser adds its drawing on top (tests/lab/test_lab.py prints
what it measures in JupyterLab). The first evaluation, which compiles the loss kernels on a fresh
install, is timed separately.
"""

from __future__ import annotations

import statistics
import sys
import time

from _timing import timed

from workbench.viz.explorer import EXPLORER_LOSSES, LossExplorer, Shaping, explorer_widget


def measure(size: int) -> None:
    start = time.perf_counter()
    explorer = LossExplorer(0, (size, size, size))
    built = time.perf_counter() - start
    first = explorer.evaluate("blob", Shaping()).seconds
    print(f"{size}³: phantom and instance maps {built:.1f} s, first evaluation {first:.2f} s")
    for loss in EXPLORER_LOSSES:
        box = explorer_widget(explorer, loss)
        slider = box.controls["dilate"]
        moves, evaluations = [], []
        for value in (-1, 1, 2, 0) * 2:
            moves.append(timed(lambda value=value: setattr(slider, "value", value)))
            evaluations.append(box.exploration.seconds)
        evaluation = statistics.median(evaluations)
        z = box.controls["z"]
        slices = [timed(lambda value=value: setattr(z, "value", value)) for value in (z.value - 1, z.value + 1) * 3]
        print(f"  {loss:>8}: control → all views {statistics.median(moves):.2f} s (max {max(moves):.2f}; "
              f"evaluation {evaluation:.2f} s), slice → slices {statistics.median(slices):.2f} s")


if __name__ == "__main__":
    for size in [int(arg) for arg in sys.argv[1:]] or [64]:
        measure(size)
