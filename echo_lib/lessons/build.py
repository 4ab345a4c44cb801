"""Notebook 09's display helper: the learner's code beside the library's, column by column."""

from __future__ import annotations

import html
from typing import Any

from ..view.source import Source, source

__all__ = ["SideBySide", "side_by_side"]


class SideBySide:
    """Source texts under their titles: columns in Jupyter (HTML), one after another as text."""

    def __init__(self, columns: list[tuple[str, str]]) -> None:
        self.columns = columns

    def _repr_html_(self) -> str:
        head = "".join(
            f"<th style='text-align:left'>{html.escape(title)}</th>" for title, _ in self.columns
        )
        cells = "".join(
            "<td style='vertical-align:top;text-align:left'>"
            f"<pre style='font-size:85%'>{html.escape(text)}</pre></td>"
            for _, text in self.columns
        )
        return f"<table><tr>{head}</tr><tr>{cells}</tr></table>"

    def __repr__(self) -> str:
        return "\n\n".join(f"# --- {title} ---\n{text}" for title, text in self.columns)


def side_by_side(*columns: tuple[str, Any]) -> SideBySide:
    """``(title, objs)`` pairs shown as columns.

    ``objs`` is a function, a method or a module-level class (its source is
    shown), a `Source`, or a tuple of these, shown one after another. Raises
    `OSError` or `TypeError` (from `inspect.getsource`) for an object whose
    source cannot be found, e.g. a class defined in a notebook cell.
    """
    return SideBySide([(title, _text(objs)) for title, objs in columns])


def _text(objs: Any) -> str:
    if isinstance(objs, tuple):
        return "\n\n".join(_text(obj) for obj in objs)
    return objs.text if isinstance(objs, Source) else source(objs).text
