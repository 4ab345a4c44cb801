"""What a stage's programs say, as text and as events: parsing, tidying, one-line errors.

A seed program reports through ``say(text)`` what the seed printed. `LineReader`
reads such lines the way a person reads the seed's output: ``accept((host,
port))`` starts a connection, ``  received b'...'`` is bytes in, ``closing`` is
the peer gone. It keeps which connection a server's ``read()`` is about, so the
bytes land on the right actor (``server/conn-1``...). `tidy` and `collapse` make a
log the same text on every run (ports change, long byte strings are cut short,
a repeated line shows once). Nothing here touches a socket.
"""

from __future__ import annotations

import ast
import re
import traceback
from collections.abc import Iterable

__all__ = [
    "BYTES_LINE",
    "LineReader",
    "collapse",
    "format_log",
    "one_line",
    "plural",
    "tidy",
    "where",
]

_ADDRESS = r"(\(.*\))"
#: A line about bytes: ``  received b'...'`` or ``  sending b'...'``.
BYTES_LINE = re.compile(r"^(\s*(?:received|sending) )(b(['\"]).*\3)$")
_PIECE = re.compile(r"sending bytes (\d+)\.\.(\d+) of \d+")
_PORT_IN_ADDRESS = re.compile(r"(\('(?:127\.0\.0\.1|localhost)', )\d+\)")
_PORT_WORD = re.compile(r"(\bport )\d+")
_REPEATED = "  (repeated)"
_LONG_BYTES = 60  # a bytes literal longer than this is shown cut short


class LineReader:
    """Turn one program's lines into (action, actor, nbytes, detail) for its timeline."""

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self._conns: dict[str, str] = {}
        self._current = actor  # the connection a server's read() is about

    def event(self, text: str) -> tuple[str, str, int, str]:
        """The event ``text`` stands for; a plain ``log`` line if it stands for none."""
        if match := re.fullmatch(r"accept" + _ADDRESS, text):
            conn = f"{self.actor}/conn-{len(self._conns) + 1}"
            self._conns[match[1]] = self._current = conn
            return "accept", self.actor, 0, conn.rsplit("/", 1)[1]
        if match := re.fullmatch(r"read" + _ADDRESS, text):
            self._current = self._conns.get(match[1], self.actor)
            return "log", self.actor, 0, text
        if match := BYTES_LINE.match(text):
            if "received" in match[1]:
                return "recv", self._current, _nbytes(match[2]), ""
            return "send", self.actor, _nbytes(match[2]), ""
        if match := _PIECE.fullmatch(text):
            return "send", self._current, int(match[2]) - int(match[1]), ""
        if text.strip() == "closing" or text.startswith("the client closed the connection"):
            return "close", self._current, 0, "peer closed"
        if text.startswith("connecting to"):
            return "connect", self.actor, 0, ""
        return "log", self.actor, 0, text


def _nbytes(literal: str) -> int:
    try:
        return len(ast.literal_eval(literal))
    except (ValueError, SyntaxError):
        return 0


def plural(count: int, word: str) -> str:
    """``1 client``, ``2 clients``: a count and its noun (an English plural in -s)."""
    return f"{count} {word}{'s' * (count != 1)}"


def one_line(exc: BaseException) -> str:
    """``KeyError: 'boom'``: the exception's type and message on one line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")


def where(exc: BaseException, skip: Iterable[str] = ()) -> str:
    """`` (in read(): connection.sendall(data))``: the innermost frame not named in ``skip``."""
    skipped = set(skip)
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.name not in skipped]
    if not frames:
        return ""
    frame = frames[-1]
    line = (frame.line or "").split("  #")[0].strip()
    return f" (in {frame.name}(): {line})" if line else f" (in {frame.name}())"


def tidy(text: str) -> str:
    """``text`` with ports as ``PORT`` and a long bytes literal cut short."""
    text = _PORT_IN_ADDRESS.sub(r"\1PORT)", text)
    text = _PORT_WORD.sub(r"\1PORT", text)
    match = BYTES_LINE.match(text)
    if match and len(match[2]) > _LONG_BYTES:
        data = ast.literal_eval(match[2])
        return f"{match[1]}{data[:16]!r}... ({len(data)} bytes)"
    return text


def collapse(rows: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (actor, text) rows with a row repeated in a row shown once, marked ``(repeated)``."""
    out: list[tuple[str, str]] = []
    for row in rows:
        if out and (out[-1][0], out[-1][1].removesuffix(_REPEATED)) == row:
            if not out[-1][1].endswith(_REPEATED):
                out[-1] = (row[0], row[1] + _REPEATED)
        else:
            out.append(row)
    return out


def format_log(rows: Iterable[tuple[str, str]], last: int | None = None) -> str:
    """``actor | text`` lines, tidied and collapsed; with ``last``, only the last ones."""
    shown = collapse((actor, tidy(text)) for actor, text in rows)
    if last is not None:
        shown = shown[-last:] if last else []
    width = max((len(actor) for actor, _ in shown), default=0)
    return "\n".join(f"{a:<{width}} | {t}".rstrip() for a, t in shown) or "(nothing said)"
