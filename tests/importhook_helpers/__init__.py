"""Helpers for the import-hook tests: DataSet directories written by hand, fresh interpreters.

``datasets`` writes DataSet directories following docs/format.md without using
persist_hooks' writer; ``importtime`` measures import cost with ``-X importtime``.
"""
