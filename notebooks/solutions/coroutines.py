"""Solutions to the exercises in 08-from-callbacks-to-asyncio."""

import contextlib

from echo_lib.driver.coroutines import Future


def eager_echo_handler(sched, sock):
    """Echo until EOF: send() at once; wait for EVENT_WRITE only while bytes are left."""
    with sock:
        while True:
            yield sched.readable(sock)
            data = sock.recv(65536)
            if not data:
                return
            while data:
                with contextlib.suppress(BlockingIOError):  # the kernel's buffer is full
                    data = data[sock.send(data) :]
                if data:
                    yield sched.writable(sock)


class AwaitableFuture(Future):
    def __iter__(self):
        """`result = yield from future`: hand this future to the Task, then return its result."""
        yield self  # the Task adds its step() as a callback and waits
        return self.result


# Exercise 1: a generator is an iterator and is not awaitable; a native
# coroutine is awaitable and is not an iterator. Both take send().
PROTOCOL_PREDICTION = {
    "generator": {"next": True, "send": True, "iter": True, "__await__": False},
    "coroutine": {"next": False, "send": True, "iter": False, "__await__": True},
}
