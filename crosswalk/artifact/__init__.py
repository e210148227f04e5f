"""Reading the published artifact (``crosswalk.sqlite`` of a build or a release)."""
