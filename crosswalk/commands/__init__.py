"""Subcommands of the ``crosswalk`` CLI: one module each, see ``crosswalk.cli``."""
