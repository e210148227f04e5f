"""Review workflow web UI and JSON endpoints (placeholder until built)."""

from __future__ import annotations

from typing import Any


def register(app: Any) -> None:
    """Attach the review blueprints to ``app`` (nothing yet)."""
