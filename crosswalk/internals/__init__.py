"""Engine stages. Each stage maps a pandas batch to a pandas batch.

Nothing here is public API: import from ``crosswalk`` instead.
"""
