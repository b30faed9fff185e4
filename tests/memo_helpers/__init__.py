"""Importable helper modules for the memoize tests (functions that must live in modules)."""
