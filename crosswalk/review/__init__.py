"""The review workflow: disputes raised by each build, decided by department reviewers.

The build pipeline calls :func:`load_constraints` before clustering (the
decisions in force become must-link and cannot-link constraints) and
:func:`queue_disputes` after publishing (the build's uncertain pairs,
conflicts and suspicious clusters go to the review queue). ``docs/review.md``
describes the workflow.
"""

from __future__ import annotations

from crosswalk.review.constraints import Constraints, load_constraints
from crosswalk.review.disputes import queue_disputes
from crosswalk.review.store import Pair, RecordKey, ReviewStore

__all__ = [
    "Constraints",
    "Pair",
    "RecordKey",
    "ReviewStore",
    "load_constraints",
    "queue_disputes",
]
