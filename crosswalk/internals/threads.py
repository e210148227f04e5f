"""How many threads the stages spread their work over."""

from __future__ import annotations

import os

#: Threads for the work that runs outside the GIL (Arrow's kernels, rapidfuzz, numpy):
#: one per core, at most 4, beyond which the parts that hold the GIL dominate.
THREADS = min(os.cpu_count() or 1, 4)
