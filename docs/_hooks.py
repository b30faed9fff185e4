"""Griffe extension for the API reference: adapt persist_hooks' docstrings to Markdown.

persist_hooks' docstrings are Google style with two habits that Griffe's Markdown
rendering does not share, adapted here at build time (the sources stay as they are):

* doctests are headed ``Example:``; Griffe's Google parser knows only ``Examples:`` as
  the examples section and renders ``Example:`` as an admonition whose ``>>>`` lines
  Markdown turns into nested block quotes;
* Sphinx roles (``:class:`Archive```) would show up literally; they become code spans.

Loaded by ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|data|mod|exc|obj):`~?([^`]+)`")


class DocstringCompat(griffe.Extension):
    """Rename ``Example:`` headings to ``Examples:`` and turn Sphinx roles into code spans."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub(r"`\1`", value)
