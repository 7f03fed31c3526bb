"""What the benchmarks share: one table printer, a stopwatch, and how to spot a capped timing."""

import time

# This machine's host sometimes caps it at one CPU's worth of time for a while. A timed block
# that got no more CPU time than wall time (CPU time / wall time below this) ran capped;
# training here keeps about 1.6-2.0 CPUs busy otherwise.
CAPPED_UTILIZATION = 1.25


def print_table(header, rows):
    table = [tuple(str(c) for c in r) for r in [header, *rows]]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    print()
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


class Stopwatch:
    """Wall time and this process's CPU time (all its threads) of a ``with`` block."""

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu
