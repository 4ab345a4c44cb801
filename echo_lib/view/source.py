"""Showing and editing code in a notebook: `source()` displays a program, `edit()` changes a copy.

A fix to the seed is a small edit of its program: delete a line, change a
test, wrap a call in try/except. The learner makes it in the program's cell
and re-runs it; `edit()` makes the same edit on a copy, so that the notebook
still runs top to bottom with the seed's faults intact above. The copy is
compiled from the edited source in a copy of the program's globals (so it
sees `selectors`, `time`... but never rebinds the original's name), and its
source is registered with `linecache`, as IPython does for a cell, so that a
traceback through it shows the edited line.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import linecache
import textwrap
from collections.abc import Callable
from typing import Any

__all__ = ["Edit", "Source", "edit", "source"]


class Source:
    """Python source that displays highlighted in Jupyter and as plain text elsewhere."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.text}\n```"

    def __repr__(self) -> str:
        return self.text


def source(obj: Any, start: str | None = None, stop: str | None = None) -> Source:
    """The source of ``obj``, dedented; with ``start``/``stop``, only a part of it.

    The part begins at the first line containing ``start`` and ends before
    the next line (after it) containing ``stop``. Raises `ValueError` if
    either text is not found.
    """
    lines = inspect.getsource(obj).splitlines()
    first = _find(lines, start, 0, obj) if start is not None else 0
    last = _find(lines, stop, first + 1, obj) if stop is not None else len(lines)
    return Source(textwrap.dedent("\n".join(lines[first:last])).strip("\n"))


def _find(lines: list[str], text: str, begin: int, obj: Any) -> int:
    for index in range(begin, len(lines)):
        if text in lines[index]:
            return index
    raise ValueError(f"{text!r} is not in the source of {getattr(obj, '__name__', obj)!r}")


class Edit:
    """A program with one edit applied: callable like the program, displayed as the diff.

    Attributes: `program` (the new function), `source` (its text), `diff`
    (a unified diff from the program it was made from).
    """

    def __init__(self, program: Callable[..., Any], source: str, diff: str) -> None:
        self.program, self.source, self.diff = program, source, diff
        self.__name__ = program.__name__
        self.__signature__ = inspect.signature(program)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.program(*args, **kwargs)

    def _repr_markdown_(self) -> str:
        return f"```diff\n{self.diff}\n```"

    def __repr__(self) -> str:
        return self.diff


def edit(program: Callable[..., Any] | Edit, old: str, new: str) -> Edit:
    """A copy of ``program`` with the text ``old`` in its source replaced by ``new``.

    ``program`` is a function whose source `inspect` can find (a notebook
    cell's or a module's) or an earlier `Edit`. Raises `ValueError` if
    ``old`` is not in the source exactly once.
    """
    function = program.program if isinstance(program, Edit) else program
    before = (
        program.source if isinstance(program, Edit) else textwrap.dedent(inspect.getsource(program))
    )
    count = before.count(old)
    if count != 1:
        raise ValueError(
            f"the text to replace must occur once in {function.__name__}(), "
            f"found {count} times: {old!r}"
        )
    after = before.replace(old, new)
    return Edit(_compile(function, after), after, _diff(before, after))


def _compile(function: Callable[..., Any], text: str) -> Callable[..., Any]:
    """``text`` defining ``function``'s name, run in a copy of its globals; the new function."""
    filename = f"<edit of {function.__name__} {hashlib.sha1(text.encode()).hexdigest()[:8]}>"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = dict(function.__globals__)
    exec(compile(text, filename, "exec"), namespace)
    return namespace[function.__name__]


def _diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "as it was", "edited", n=1, lineterm=""
    )
    return "\n".join(list(lines)[2:])
