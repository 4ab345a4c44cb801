"""What 08-from-callbacks-to-asyncio says about selectors and coroutines, checked on this platform.

Each test is named after the notebook section that makes the claim; those
about selector classes run over every class the platform has.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections.abc import Generator
from typing import Any

from echo_lib import available_selectors
from echo_lib.driver.asyncio_thread import LoopThread
from echo_lib.lessons.coroutines import EchoProtocol, run_clients

# -- 3. asyncio Protocol: SelectorEventLoop takes any selector ------------------------


def test_3_asyncio_protocol_selector_event_loop_takes_any_selector(selector_name: str) -> None:
    loop = asyncio.SelectorEventLoop(available_selectors()[selector_name]())
    with socket.create_server(("127.0.0.1", 0)) as listener, LoopThread(loop) as runner:
        runner.run(runner.loop.create_server(EchoProtocol, sock=listener))
        results = run_clients(listener.getsockname()[:2], clients=2)
        assert type(runner.loop._selector).__name__ == selector_name  # type: ignore[attr-defined]
    assert [str(result).endswith("complete") for result in results] == [True, True]


def test_3_asyncio_protocol_key_data_is_a_reader_writer_pair() -> None:
    loop = asyncio.SelectorEventLoop()
    try:
        a, b = socket.socketpair()
        with a, b:
            loop.add_reader(a.fileno(), lambda: None)
            key = loop._selector.get_key(a.fileno())  # type: ignore[attr-defined]
            reader, writer = key.data
            assert isinstance(reader, asyncio.Handle) and writer is None
            loop.remove_reader(a.fileno())
    finally:
        loop.close()


# -- 4. asyncio streams: a coroutine is not a generator ------------------------------


async def _answer() -> int:
    return 42


def test_4_asyncio_streams_a_native_coroutine_has_no_next_and_no_iter() -> None:
    coro = _answer()
    try:
        assert not hasattr(coro, "__next__") and not hasattr(coro, "__iter__")
        assert all(hasattr(coro, name) for name in ("send", "throw", "close", "__await__"))
    finally:
        coro.close()


class _Ready:
    """An awaitable whose __await__ yields once, like an asyncio Future not yet done."""

    def __await__(self) -> Generator[str, Any, Any]:
        sent = yield "the future itself"
        return sent


async def _waits() -> Any:
    return await _Ready()


def test_4_asyncio_streams_await_works_like_yield_from_dunder_await() -> None:
    coro = _waits()
    assert coro.send(None) == "the future itself"  # what __await__ yielded goes up to the driver
    try:
        coro.send("result")
    except StopIteration as stop:
        assert stop.value == "result"  # what the driver sent comes back as await's value
    else:
        raise AssertionError("the coroutine did not finish")


# -- 5. The selector under asyncio -------------------------------------------------------


def test_5_the_selector_under_asyncio_is_default_selector() -> None:
    loop = asyncio.SelectorEventLoop()
    try:
        assert type(loop._selector) is selectors.DefaultSelector  # type: ignore[attr-defined]
    finally:
        loop.close()
