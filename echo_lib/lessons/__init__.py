"""Helpers specific to one notebook each, named after its topic (e.g. `modify` for 04-modify)."""
