"""Helpers for tests/test_persist_compat.py: persist 3.2.1 DataSets and archives.

``expected.py`` holds the objects the fixtures store, ``persist321.py`` writes and reads
them with persist 3.2.1 (run it in a subprocess), ``check_import.py`` imports them through
persist_hooks' import hook in a fresh interpreter.  ``fixtures/`` is the committed output
of ``python tests/persist_compat/persist321.py write tests/persist_compat/fixtures``.
"""
