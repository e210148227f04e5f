"""HTTP API over a published crosswalk (placeholder until built)."""
