"""How many threads the engine spreads its work over: the runner's :data:`THREADS`.

Kept for the comparison stage's own batches (``stages/compare.py``) and the per-source
loading (``sources.py``) until they take the runner's batches and ``parallel`` handle."""

from __future__ import annotations

from crosswalk.runners.local import THREADS

__all__ = ["THREADS"]
